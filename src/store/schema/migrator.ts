/**
 * The migration runner, written once for the three dialects: read what the database has
 * applied, compare checksums, apply what is missing, record it. Each adapter runs it under
 * its migration lock (`SqlDriver.migrating`: an advisory transaction lock in one
 * transaction on PostgreSQL, `GET_LOCK` on MySQL, `BEGIN IMMEDIATE` on SQLite), so engines
 * starting together never migrate twice.
 *
 * Bookkeeping: `{p}schema_migrations (module, version, name, checksum, applied_at)`, one
 * row per applied migration of each schema module (src/store/migration.ts). Before there
 * were modules, the core schema's rows lived in `{p}migrations`, keyed by version alone.
 * When that table exists, its rows are copied in as module `core` inside the same locked
 * step, and the old table is KEPT, with one more row: version 2147483647, "moved to
 * {p}schema_migrations". An older Stoker started against this database reads only the old
 * table, finds a migration newer than any it knows and refuses to run
 * (`STOKER_STORE_SCHEMA_TOO_NEW`, "upgrade Stoker") — dropping the table instead would make
 * it start from an empty history and try to create the tables again (on MySQL, whose
 * migrations are `IF NOT EXISTS`, it would even succeed and run against a schema it does
 * not know). The marker row also says that the copy is done.
 */
import type { SqlDialect } from '../sql/dialect.js';
import { statement } from '../sql/binder.js';
import { StoreError } from '../../errors.js';
import type { MigrationSession, Raw, SqlSession } from '../sql/driver.js';
import {
  migrationChecksum,
  pendingMigrations,
  type AppliedMigration,
  type Migration,
  type MigrationRecord,
  type SchemaModule,
} from '../migration.js';

/** The row that marks the old `{p}migrations` table as copied (and stops older releases). */
const MOVED_VERSION = 2147483647;

/** The bookkeeping table of one dialect (created by the runner, not by a numbered migration). */
export function schemaMigrationsTable(d: SqlDialect): string {
  const t = d.types;
  return `CREATE TABLE IF NOT EXISTS {p}schema_migrations (
    module ${t.string} NOT NULL,
    version ${t.int} NOT NULL,
    name ${t.string} NOT NULL,
    checksum ${t.string} NOT NULL,
    applied_at ${t.time} NOT NULL,
    PRIMARY KEY (module, version)
  )${t.tableOptions}`;
}

/**
 * Applies the pending migrations of `modules` (the core module first), in module order and
 * version order, after checking every module: nothing is applied when one of them is newer
 * in the database than in this build or was changed. Returns what was applied.
 */
export async function runMigrations(
  s: MigrationSession,
  d: SqlDialect,
  prefix: string,
  modules: readonly SchemaModule[],
): Promise<MigrationRecord[]> {
  await s.ddl('create the schema_migrations table', schemaMigrationsTable(d));
  await adoptLegacyTable(s, d, prefix);
  const rows = await s.rows('read applied migrations', `SELECT module, version, name, checksum FROM {p}schema_migrations`, []);
  const applied = new Map<string, AppliedMigration[]>();
  for (const r of rows) {
    const list = applied.get(String(r.module)) ?? [];
    list.push({ version: Number(r.version), name: String(r.name), checksum: String(r.checksum) });
    applied.set(String(r.module), list);
  }
  const todo: { module: string; migration: Migration }[] = [];
  for (const m of modules) {
    for (const migration of pendingMigrations(m.name, m.migrations(d.name), applied.get(m.name) ?? [])) {
      todo.push({ module: m.name, migration });
    }
  }
  for (const { module, migration: m } of todo) {
    const what = module === 'core' ? `migration ${m.version}` : `migration ${m.version} of ${module}`;
    for (const [i, text] of m.statements.entries()) await s.ddl(`${what} statement ${i + 1}`, text);
    const record = statement(
      d,
      (b) =>
        `INSERT INTO {p}schema_migrations (module, version, name, checksum, applied_at)
         VALUES (${b.bind(module)}, ${b.bind(m.version)}, ${b.bind(m.name)}, ${b.bind(migrationChecksum(m))}, ${d.now})`,
    );
    await s.exec('record a migration', record.text, record.params);
  }
  return todo.map(({ module, migration: m }) => ({ module, version: m.version, name: m.name }));
}

/**
 * Checks, with reads only, that every migration of `modules` is applied and none is newer
 * or changed (see {@link runMigrations}); throws `STOKER_STORE_NOT_MIGRATED` naming what is
 * missing. Commands that must not change the schema use it instead of migrating: a
 * `runs list` against the wrong database used to create Stoker's tables there (docs/schema.md).
 */
export async function checkSchema(
  s: SqlSession,
  d: SqlDialect,
  prefix: string,
  modules: readonly SchemaModule[],
  where: string,
): Promise<void> {
  const exists = async (table: string): Promise<boolean> => {
    const q = statement(d, (b) => d.tableExists(b, table));
    return Number(((await s.row(`look for table ${table}`, q.text, q.params)) as Raw).n) > 0;
  };
  const run = '`stoker migrate` (with the same --store and --table-prefix)';
  if (!(await exists(`${prefix}schema_migrations`))) {
    const legacy = await exists(`${prefix}migrations`);
    throw new StoreError(
      'STOKER_STORE_NOT_MIGRATED',
      legacy
        ? `${where} was migrated by an older Stoker: run ${run} to upgrade it`
        : `${where} has no Stoker tables (prefix ${prefix}): not migrated, run ${run}; or check that this is the right database`,
      { details: { prefix, missing: modules.map((m) => m.name) } },
    );
  }
  const rows = await s.rows('read applied migrations', `SELECT module, version, name, checksum FROM {p}schema_migrations`, []);
  const applied = new Map<string, AppliedMigration[]>();
  for (const r of rows) {
    const list = applied.get(String(r.module)) ?? [];
    list.push({ version: Number(r.version), name: String(r.name), checksum: String(r.checksum) });
    applied.set(String(r.module), list);
  }
  const missing: string[] = [];
  for (const m of modules) {
    const pending = pendingMigrations(m.name, m.migrations(d.name), applied.get(m.name) ?? []);
    if (pending.length > 0) missing.push(`${m.name} ${pending.map((p) => p.version).join(', ')}`);
  }
  if (missing.length > 0) {
    throw new StoreError('STOKER_STORE_NOT_MIGRATED', `${where} lacks migrations this Stoker needs (${missing.join('; ')}): run ${run}`, {
      details: { prefix, missing },
    });
  }
}

/** Copies the rows of the pre-module `{p}migrations` table as module `core`, once (see the top of this file). */
async function adoptLegacyTable(s: MigrationSession, d: SqlDialect, prefix: string): Promise<void> {
  const exists = statement(d, (b) => d.tableExists(b, `${prefix}migrations`));
  const found = (await s.row('look for the old migrations table', exists.text, exists.params)) as Raw;
  if (Number(found.n) === 0) return;
  const moved = await s.rows('read the old migrations table', `SELECT version FROM {p}migrations WHERE version = ${MOVED_VERSION}`, []);
  if (moved.length > 0) return;
  await s.exec(
    'copy the old migrations table',
    d.insertIgnore(
      '{p}schema_migrations',
      `(module, version, name, checksum, applied_at)
       SELECT 'core', version, name, checksum, applied_at FROM {p}migrations WHERE version <> ${MOVED_VERSION}`,
      'module, version',
    ),
    [],
  );
  await s.exec(
    'mark the old migrations table as moved',
    `INSERT INTO {p}migrations (version, name, checksum, applied_at)
     VALUES (${MOVED_VERSION}, 'moved to ${prefix}schema_migrations: this database needs a newer Stoker', 'moved', ${d.now})`,
    [],
  );
}
