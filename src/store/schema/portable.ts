/**
 * Schema modules written once for the three dialects: each migration's statements are a
 * function of the dialect's column types (src/store/sql/dialects.ts), so a layer above the
 * store (orchestration, the API's identity tables) declares its tables once and passes the
 * module to `Store.migrate({ modules })` (the runner: src/store/schema/migrator.ts).
 *
 * Rules for the statements, because one text must work everywhere:
 * - `{p}` is the table prefix; prefix index names too (`{p}stacks_owner`): index names
 *   are per schema on PostgreSQL and SQLite;
 * - MySQL commits every DDL statement, so a migration that fails half-way is run again
 *   from its first statement: use `CREATE TABLE IF NOT EXISTS`; put a MySQL table's
 *   indexes inside its CREATE TABLE (`dialect === 'mysql'`), since MySQL 8 has no
 *   `CREATE INDEX IF NOT EXISTS`;
 * - the checksum of an applied migration covers the statements as generated, so neither
 *   the statements nor the column types they use may change once released.
 *
 * @example
 * ```ts
 * export const stacksSchema = portableSchemaModule('orchestration', [
 *   {
 *     version: 1,
 *     name: 'stacks',
 *     statements: (t) => [
 *       `CREATE TABLE IF NOT EXISTS {p}stacks (id ${t.id} NOT NULL PRIMARY KEY, name ${t.string} NOT NULL,
 *          template ${t.json} NOT NULL, created_at ${t.time} NOT NULL)${t.tableOptions}`,
 *     ],
 *   },
 * ]);
 * await store.migrate({ modules: [stacksSchema] });
 * ```
 */
import type { Migration, SchemaModule } from '../migration.js';
import type { ColumnTypes } from '../sql/dialect.js';
import { columnTypes } from '../sql/dialects.js';
import type { DialectName } from '../types.js';

/** One migration of a portable module. */
export interface PortableMigration {
  version: number;
  name: string;
  /** the statements for one dialect, given its column types */
  statements(types: ColumnTypes, dialect: DialectName): readonly string[];
}

/** A {@link SchemaModule} whose migrations are written once (see the top of this file). */
export function portableSchemaModule(name: string, migrations: readonly PortableMigration[]): SchemaModule {
  const byDialect = new Map<DialectName, readonly Migration[]>();
  return {
    name,
    migrations(dialect) {
      let out = byDialect.get(dialect);
      if (!out) {
        const types = columnTypes(dialect);
        out = migrations.map((m) => ({ version: m.version, name: m.name, statements: [...m.statements(types, dialect)] }));
        byDialect.set(dialect, out);
      }
      return out;
    },
  };
}
