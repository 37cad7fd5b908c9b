/**
 * docs/schema.md against the migrations each dialect ships: the same tables, the same
 * columns, and the same column types, so the doc cannot drift from the schema.
 */
import { describe, expect, it } from 'vitest';
import type { Migration } from '../../../src/store/migration.js';
import { mysqlMigrations } from '../../../src/store/mysql/migrations.js';
import { postgresMigrations } from '../../../src/store/postgres/migrations.js';
import { sqliteMigrations } from '../../../src/store/sqlite/migrations.js';
import { schemaMigrationsTable } from '../../../src/store/schema/migrator.js';
import { sqlDialect } from '../../../src/store/sql/dialects.js';
import { codeSpans, readDoc, tableUnder } from './markdown.js';

const DIALECTS = [
  { column: 'SQLite', migrations: sqliteMigrations, dialect: 'sqlite' },
  { column: 'PostgreSQL', migrations: postgresMigrations, dialect: 'postgres' },
  { column: 'MySQL', migrations: mysqlMigrations, dialect: 'mysql' },
] as const;

type Columns = Map<string, Map<string, string>>; // table → column → type

/** The text between the parenthesis at `open` and its match. */
function parenthesised(sql: string, open: number): string {
  let depth = 0;
  for (let i = open; i < sql.length; i++) {
    if (sql[i] === '(') depth++;
    else if (sql[i] === ')' && --depth === 0) return sql.slice(open + 1, i);
  }
  throw new Error(`unbalanced parentheses in ${sql.slice(open, open + 80)}`);
}

/** Splits on commas outside parentheses. */
function topLevelItems(body: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '(') depth++;
    else if (body[i] === ')') depth--;
    else if (body[i] === ',' && depth === 0) {
      items.push(body.slice(start, i));
      start = i + 1;
    }
  }
  items.push(body.slice(start));
  return items.map((s) => s.trim()).filter((s) => s.length > 0);
}

const CONSTRAINT = /^(PRIMARY\s+KEY|UNIQUE\s+KEY|UNIQUE\s*\(|KEY\s|INDEX\s|CONSTRAINT\s|FOREIGN\s+KEY|CHECK\s*\()/; // case-sensitive: `key` is also a column name

function addColumn(into: Columns, table: string, definition: string): void {
  const m = /^`?(\w+)`?\s+([A-Za-z]+(?:\s*\([^)]*\))?)/.exec(definition);
  if (!m) throw new Error(`cannot read column definition "${definition}"`);
  if (!into.has(table)) into.set(table, new Map());
  into.get(table)!.set(m[1]!, m[2]!.replace(/\s+/g, ''));
}

/** Tables and columns created by a list of SQL statements (CREATE TABLE, ALTER TABLE … ADD / DROP COLUMN, ALTER COLUMN … TYPE). */
function columnsOf(statements: readonly string[], into: Columns = new Map()): Columns {
  for (const sql of statements) {
    const create = /CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\{p\}(\w+)\s*\(/i.exec(sql);
    if (create) {
      const body = parenthesised(sql, create.index + create[0].length - 1);
      for (const item of topLevelItems(body)) if (!CONSTRAINT.test(item)) addColumn(into, create[1]!, item);
      continue;
    }
    const alter = /ALTER\s+TABLE\s+\{p\}(\w+)\s+ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(.*)$/is.exec(sql);
    if (alter) addColumn(into, alter[1]!, alter[2]!.trim());
    const drop = /ALTER\s+TABLE\s+\{p\}(\w+)\s+DROP\s+COLUMN\s+(?:IF\s+EXISTS\s+)?(\w+)\s*$/is.exec(sql);
    if (drop) into.get(drop[1]!)?.delete(drop[2]!);
    const retype = /ALTER\s+TABLE\s+\{p\}(\w+)\s+ALTER\s+COLUMN\s+(\w+)\s+TYPE\s+(\w+)/is.exec(sql);
    if (retype) addColumn(into, retype[1]!, `${retype[2]!} ${retype[3]!}`);
  }
  return into;
}

function schemaOf(dialect: (typeof DIALECTS)[number]): Columns {
  const all = columnsOf(dialect.migrations.flatMap((m: Migration) => m.statements));
  // the bookkeeping table is created by the migration runner itself (src/store/schema/migrator.ts)
  return columnsOf([schemaMigrationsTable(sqlDialect(dialect.dialect))], all);
}

describe('docs/schema.md', () => {
  const doc = readDoc('schema.md');
  const schemas = DIALECTS.map((d) => ({ ...d, schema: schemaOf(d) }));

  it('every dialect has the same tables and columns', () => {
    const shape = (s: Columns): Record<string, string[]> =>
      Object.fromEntries([...s].map(([t, cols]) => [t, [...cols.keys()].sort()]).sort());
    const [first, ...rest] = schemas;
    for (const other of rest) expect(shape(other.schema), `${other.column} vs ${first!.column}`).toEqual(shape(first!.schema));
  });

  for (const { column, schema } of schemas) {
    it(`documents every ${column} table, column and type`, () => {
      const documented: Record<string, Record<string, string>> = {};
      for (const table of schema.keys()) {
        const t = tableUnder(doc, table);
        expect(t.header).toEqual(['column', 'SQLite', 'PostgreSQL', 'MySQL', 'meaning']);
        const at = t.header.indexOf(column);
        documented[table] = Object.fromEntries(
          t.rows.map((r) => [
            codeSpans(r[0] ?? '')[0] ?? r[0] ?? '',
            (codeSpans(r[at] ?? '')[0] ?? r[at] ?? '').replace(/\s+/g, '').toLowerCase(),
          ]),
        );
      }
      const actual = Object.fromEntries(
        [...schema].map(([t, cols]) => [t, Object.fromEntries([...cols].map(([c, ty]) => [c, ty.toLowerCase()]))]),
      );
      expect(documented).toEqual(actual);
    });
  }

  it('documents no table the schema does not have', () => {
    const headings = [...doc.matchAll(/^## (\w+)$/gm)].map((m) => m[1]!).filter((h) => /^[a-z_]+$/.test(h));
    expect(headings.sort()).toEqual([...schemas[0]!.schema.keys()].sort());
  });
});
