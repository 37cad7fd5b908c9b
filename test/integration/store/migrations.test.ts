/**
 * Migrations per schema module, on every dialect: a module written once for all dialects
 * (portableSchemaModule) is applied after the core schema, numbered from 1 within its
 * module; a database with a newer migration of a module than this build, or a changed
 * applied one, is refused, naming the module, before anything is applied; and a database
 * migrated by the previous release (bookkeeping in `{p}migrations`, keyed by version)
 * upgrades in place, keeping the old table with a marker row that makes an older release
 * refuse it.
 */
import { expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import { migrationChecksum, pendingMigrations, type SchemaModule } from '../../../src/store/migration.js';
import { mysqlMigrations } from '../../../src/store/mysql/migrations.js';
import { postgresMigrations } from '../../../src/store/postgres/migrations.js';
import { portableSchemaModule, type PortableMigration } from '../../../src/store/schema/portable.js';
import { sqliteMigrations } from '../../../src/store/sqlite/migrations.js';
import { describeEachDialect } from '../../helpers/databases.js';
import { newRun } from '../../helpers/graphs.js';

/** A module with two tables, written once: every column type the helper offers. */
const STACKS: readonly PortableMigration[] = [
  {
    version: 1,
    name: 'stacks',
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS {p}st_stacks (
        id ${t.id} NOT NULL PRIMARY KEY,
        name ${t.string} NOT NULL,
        template ${t.json},
        size ${t.bigint} NOT NULL,
        count ${t.int} NOT NULL,
        enabled ${t.bool} NOT NULL,
        created_at ${t.time}
      )${t.tableOptions}`,
    ],
  },
  {
    version: 2,
    name: 'stack events',
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS {p}st_events (id ${t.serialKey}, stack_id ${t.id} NOT NULL, body ${t.text} NOT NULL)${t.tableOptions}`,
    ],
  },
];
const stacks = portableSchemaModule('stacks', STACKS);

/** The bookkeeping table of the previous release, as its adapters created it. */
const OLD_TABLE = {
  sqlite: `CREATE TABLE IF NOT EXISTS {p}migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
  postgres: `CREATE TABLE IF NOT EXISTS {p}migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL)`,
  mysql: `CREATE TABLE IF NOT EXISTS {p}migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, checksum CHAR(64) NOT NULL, applied_at DATETIME(6) NOT NULL)
          ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
};

const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => null,
    (e: unknown) => e,
  );

await describeEachDialect('migrations per module', (ctx) => {
  const core = () => ({ sqlite: sqliteMigrations, postgres: postgresMigrations, mysql: mysqlMigrations })[ctx.dialect];
  const coreRecords = () => core().map((m) => ({ module: 'core', version: m.version, name: m.name }));

  it('applies the core schema, then a module written once, numbered from 1 in its module; once', async () => {
    const s = await ctx.db.open({ tablePrefix: 'mod_', migrate: false });
    expect(await s.migrate({ modules: [stacks] })).toEqual([
      ...coreRecords(),
      { module: 'stacks', version: 1, name: 'stacks' },
      { module: 'stacks', version: 2, name: 'stack events' },
    ]);
    expect(await s.migrate({ modules: [stacks] })).toEqual([]);
    expect(await s.migrate()).toEqual([]); // without the module: its rows are not looked at
    const rows = await ctx.db.exec(`SELECT module, version, checksum FROM mod_schema_migrations WHERE module = 'stacks' ORDER BY version`);
    expect(rows.map((r) => [r.module, Number(r.version), r.checksum])).toEqual(
      stacks.migrations(ctx.dialect).map((m) => ['stacks', m.version, migrationChecksum(m)]),
    );
    // the tables are there, with working column types (an auto-increment key among them)
    await ctx.db.exec(`INSERT INTO mod_st_events (stack_id, body) VALUES ('a', 'x')`);
    await ctx.db.exec(`INSERT INTO mod_st_events (stack_id, body) VALUES ('a', 'y')`);
    expect((await ctx.db.exec(`SELECT id FROM mod_st_events ORDER BY id`)).map((r) => Number(r.id))).toEqual([1, 2]);
    await ctx.db.exec(
      `INSERT INTO mod_st_stacks (id, name, size, count, enabled) VALUES ('s1', 'one', 9007199254740991, 1, ${ctx.dialect === 'postgres' ? 'true' : '1'})`,
    );
    expect(await ctx.db.exec(`SELECT name FROM mod_st_stacks WHERE id = 's1'`)).toEqual([{ name: 'one' }]);
    // the core schema still works beside it
    const { run } = await s.startRun(newRun());
    expect((await s.getRun(run.id))!.status).toBe('PENDING');
  });

  it('adds a module to a database migrated without it, and concurrent migrators apply it once', async () => {
    const a = await ctx.db.open({ tablePrefix: 'add_' });
    const b = await ctx.db.open({ tablePrefix: 'add_', migrate: false });
    const both = a.capabilities.singleWriter
      ? [await a.migrate({ modules: [stacks] }), await b.migrate({ modules: [stacks] })]
      : await Promise.all([a.migrate({ modules: [stacks] }), b.migrate({ modules: [stacks] })]);
    expect(both.flat()).toEqual([
      { module: 'stacks', version: 1, name: 'stacks' },
      { module: 'stacks', version: 2, name: 'stack events' },
    ]);
  });

  it('refuses a database with a newer migration of a module than this build, naming the module, and applies nothing', async () => {
    const s = await ctx.db.open({ tablePrefix: 'new_', migrate: false });
    await s.migrate({ modules: [stacks] });
    const older = portableSchemaModule('stacks', STACKS.slice(0, 1));
    const other = portableSchemaModule('other', [
      {
        version: 1,
        name: 'other',
        statements: (t) => [`CREATE TABLE IF NOT EXISTS {p}other (id ${t.id} NOT NULL PRIMARY KEY)${t.tableOptions}`],
      },
    ]);
    const err = await failure(s.migrate({ modules: [other, older] }));
    expect(err).toMatchObject({ code: 'STOKER_STORE_SCHEMA_TOO_NEW', details: { module: 'stacks', applied: 2, known: 1 } });
    expect((err as Error).message).toContain('module stacks');
    // checked before anything was applied: the other module's table and rows are absent
    expect(await ctx.db.exec(`SELECT version FROM new_schema_migrations WHERE module = 'other'`)).toEqual([]);
    expect(await failure(ctx.db.exec(`SELECT id FROM new_other`))).not.toBeNull();
  });

  it('checkSchema reads only: an unmigrated database is STOKER_STORE_NOT_MIGRATED and stays without tables', async () => {
    const s = await ctx.db.open({ tablePrefix: 'chk_', migrate: false });
    expect(await failure(s.checkSchema())).toMatchObject({ code: 'STOKER_STORE_NOT_MIGRATED' });
    expect(((await failure(s.checkSchema())) as Error).message).toMatch(
      /has no Stoker tables \(prefix chk_\): not migrated, run `stoker migrate`/,
    );
    // createRuntime with migrate: 'check' (what the CLI's commands do) refuses it the same way
    const { createRuntime } = await import('../../../src/runtime/create-runtime.js');
    expect(
      await failure(createRuntime({ store: ctx.url, storeOptions: { tablePrefix: 'chk_' }, migrate: 'check', engines: 0 })),
    ).toMatchObject({
      code: 'STOKER_STORE_NOT_MIGRATED',
    });
    expect(await failure(ctx.db.exec(`SELECT version FROM chk_schema_migrations`))).not.toBeNull();
    // core migrated, a module missing: named
    await s.migrate();
    await s.checkSchema();
    expect(await failure(s.checkSchema({ modules: [stacks] }))).toMatchObject({
      code: 'STOKER_STORE_NOT_MIGRATED',
      details: { missing: ['stacks 1, 2'] },
    });
    // newer than this build
    await ctx.db.exec(
      `INSERT INTO chk_schema_migrations (module, version, name, checksum, applied_at) VALUES ('core', 999, 'future', 'x', ${ctx.dialect === 'sqlite' ? '0' : 'CURRENT_TIMESTAMP'})`,
    );
    expect(await failure(s.checkSchema())).toMatchObject({ code: 'STOKER_STORE_SCHEMA_TOO_NEW' });
  });

  it('refuses a module migration that changed after it was applied', async () => {
    const s = await ctx.db.open({ tablePrefix: 'chg_', migrate: false });
    await s.migrate({ modules: [stacks] });
    const changed = portableSchemaModule('stacks', [
      { ...STACKS[0]!, statements: (t, d) => [...STACKS[0]!.statements(t, d), 'SELECT 1'] },
      STACKS[1]!,
    ]);
    expect(await failure(s.migrate({ modules: [changed] }))).toMatchObject({
      code: 'STOKER_STORE_MIGRATION_CHECKSUM',
      details: { module: 'stacks', version: 1 },
    });
  });

  it('refuses invalid modules as ValidationError: core, a bad name, a module twice, a bad version', async () => {
    const s = await ctx.db.open({ tablePrefix: 'bad_', migrate: false });
    const bad: SchemaModule[][] = [
      [portableSchemaModule('core', STACKS)],
      [portableSchemaModule('Not a name', STACKS)],
      [stacks, stacks],
      [portableSchemaModule('zero', [{ ...STACKS[0]!, version: 0 }])],
      [portableSchemaModule('twice', [STACKS[0]!, { ...STACKS[1]!, version: 1 }])],
    ];
    for (const modules of bad) {
      const err = await failure(s.migrate({ modules }));
      expect(err, modules.map((m) => m.name).join(', ')).toBeInstanceOf(ValidationError);
      expect(err).toMatchObject({ code: 'STOKER_CONFIG_INVALID' });
    }
    // nothing was created: the checks come first
    expect(await failure(ctx.db.exec(`SELECT module FROM bad_schema_migrations`))).not.toBeNull();
  });

  it('upgrades a database migrated by the previous release, and an older release then refuses it', async () => {
    // What the previous release left: the core tables, and their record in {p}migrations.
    // Built here from the current layout; migrations from 4 on (engine lock sessions, MySQL's
    // procedures, engine remote waits) are taken back out, so the upgrade also applies core
    // migrations after copying the record.
    await ctx.db.open({ tablePrefix: 'up_' });
    await ctx.db.exec(OLD_TABLE[ctx.dialect].replaceAll('{p}', 'up_'));
    await ctx.db.exec(
      `INSERT INTO up_migrations (version, name, checksum, applied_at) SELECT version, name, checksum, applied_at FROM up_schema_migrations WHERE module = 'core'`,
    );
    await ctx.db.exec(`DROP TABLE up_schema_migrations`);
    await ctx.db.exec(`ALTER TABLE up_engines DROP COLUMN lock_session`);
    await ctx.db.exec(`ALTER TABLE up_engines DROP COLUMN remote_queued`);
    await ctx.db.exec(`ALTER TABLE up_engines DROP COLUMN remote_oldest_ms`);
    await ctx.db.exec(`DELETE FROM up_migrations WHERE version >= 4`);
    const later = core().filter((m) => m.version >= 4);
    const before = await ctx.db.exec(`SELECT version, name, checksum FROM up_migrations ORDER BY version`);

    const a = await ctx.db.open({ tablePrefix: 'up_', migrate: false });
    const b = await ctx.db.open({ tablePrefix: 'up_', migrate: false });
    const both = a.capabilities.singleWriter ? [await a.migrate(), await b.migrate()] : await Promise.all([a.migrate(), b.migrate()]);
    expect(both.flat()).toEqual(later.map((m) => ({ module: 'core', version: m.version, name: m.name })));
    expect(await a.migrate()).toEqual([]);

    const copied = await ctx.db.exec(`SELECT module, version, name, checksum FROM up_schema_migrations ORDER BY version`);
    expect(copied.map((r) => [r.module, Number(r.version), r.name, r.checksum])).toEqual([
      ...before.map((r) => ['core', Number(r.version), r.name, r.checksum]),
      ...later.map((m) => ['core', m.version, m.name, migrationChecksum(m)]),
    ]);
    // the old table is kept, with the marker row
    const old = await ctx.db.exec(`SELECT version, name, checksum FROM up_migrations ORDER BY version`);
    expect(old.map((r) => Number(r.version))).toEqual([1, 2, 3, 2147483647]);
    expect(String(old.at(-1)!.name)).toContain('up_schema_migrations');
    // an older Stoker reads only that table: it finds a migration newer than any it knows
    const olderRelease = core().filter((m) => m.version <= 3);
    const seen = old.map((r) => ({ version: Number(r.version), name: String(r.name), checksum: String(r.checksum) }));
    expect(() => pendingMigrations('core', olderRelease, seen)).toThrow(/has migration 2147483647 .*upgrade Stoker/);
    // and the upgraded store works, migration 4's column included
    await a.registerEngine({ id: 'up-engine', host: 'h', pid: process.pid, version: 't', leaseMs: 60_000 });
    const { run } = await a.startRun(newRun());
    expect((await a.claimAtoms('up-engine', 1)).map((c) => c.runId)).toEqual([run.id]);
    await a.deregisterEngine('up-engine');
  });

  it.runIf(ctx.dialect === 'postgres')(
    'PostgreSQL migration 12: graphs stored as jsonb before it are read back as before, and an engine not yet upgraded can still store one',
    async () => {
      // a database as migration 6 left it, with a run started there (its graph in jsonb)
      const first = await ctx.db.open({ tablePrefix: 'g12_' });
      const { run } = await first.startRun(newRun({ predecessors: [[], [0], [1]] }));
      const before = await first.getRunGraph(run.id);
      await ctx.db.exec(`ALTER TABLE g12_graphs ALTER COLUMN graph TYPE jsonb USING graph::jsonb`);
      await ctx.db.exec(`DELETE FROM g12_schema_migrations WHERE module = 'core' AND version = 12`);
      const type = async () =>
        (
          await ctx.db.exec(`SELECT data_type FROM information_schema.columns WHERE table_name = 'g12_graphs' AND column_name = 'graph'`)
        )[0]!.data_type;
      expect(await type()).toBe('jsonb');

      const upgraded = await ctx.db.open({ tablePrefix: 'g12_', migrate: false });
      expect(await upgraded.migrate()).toEqual([{ module: 'core', version: 12, name: 'graphs stored as text' }]);
      expect(await type()).toBe('text');
      // a fresh store reads the converted row (no cached graph)
      const fresh = await ctx.db.open({ tablePrefix: 'g12_', migrate: false });
      expect(await fresh.getRunGraph(run.id)).toEqual(before);
      // the previous release's insert (jsonb) into the text column, and this one's start
      await ctx.db.exec(`INSERT INTO g12_graphs (hash, graph, created_at) VALUES ('old-engine', '{"atoms": []}'::text::jsonb, now())`);
      expect((await ctx.db.exec(`SELECT graph FROM g12_graphs WHERE hash = 'old-engine'`))[0]!.graph).toBe('{"atoms": []}');
      const { run: next } = await fresh.startRun(newRun({ predecessors: [[], [0]] }));
      expect((await fresh.getRunGraph(next.id))!.atoms).toHaveLength(2);
    },
  );
});
