/**
 * The three {@link SqlDialect} values (src/store/sql/dialect.ts says what each piece is).
 * Plain strings only: no driver is loaded here, so the schema helpers of the layers above
 * (src/store/schema/portable.ts) can use the column types without loading an adapter.
 */
import type { DialectName } from '../types.js';
import type { ColumnTypes, SqlDialect } from './dialect.js';

/** SQLite's clock in integer milliseconds (read once per statement step). */
const SQLITE_NOW = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`;

const MYSQL_TABLE = ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

export const POSTGRES: SqlDialect = {
  name: 'postgres',
  placeholder: (n) => `$${n}`,
  now: 'now()',
  nowPlusMs: (b, ms) => `now() + ${b.bind(ms)}::bigint * interval '1 millisecond'`,
  nowMinusMs: (b, ms) => `now() - ${b.bind(ms)}::bigint * interval '1 millisecond'`,
  msSince: (column) => `floor(extract(epoch FROM now() - ${column}) * 1000)::bigint`,
  inList: (b, column, values, type) => `${column} = ANY(${b.bind([...values])}::${type}[])`,
  maxInList: Number.POSITIVE_INFINITY,
  inIdSet: (b, column, ids) => `${column} = ANY(${b.bind([...ids])}::text[])`,
  json: (b, text) => `${b.bind(text)}::jsonb`,
  bool: (value) => value,
  int: (b, value) => `${b.bind(value)}::integer`,
  insertIgnore: (table, rest, conflict) => `INSERT INTO ${table} ${rest} ON CONFLICT (${conflict}) DO NOTHING`,
  returning: true,
  forUpdate: ' FOR UPDATE',
  skipLocked: ' FOR UPDATE SKIP LOCKED',
  keyColumn: 'key',
  rowsPerInsert: 1000,
  tableExists: (b, name) =>
    `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ${b.bind(name)}`,
  types: {
    id: 'text COLLATE "C"',
    string: 'text',
    text: 'text',
    json: 'jsonb',
    int: 'integer',
    bigint: 'bigint',
    bool: 'boolean',
    time: 'timestamptz',
    serialKey: 'bigserial PRIMARY KEY',
    tableOptions: '',
  },
};

export const MYSQL: SqlDialect = {
  name: 'mysql',
  placeholder: () => '?',
  now: 'NOW(6)',
  nowPlusMs: (b, ms) => `DATE_ADD(NOW(6), INTERVAL ${b.bind(ms * 1000)} MICROSECOND)`,
  nowMinusMs: (b, ms) => `DATE_SUB(NOW(6), INTERVAL ${b.bind(ms * 1000)} MICROSECOND)`,
  msSince: (column) => `TIMESTAMPDIFF(MICROSECOND, ${column}, NOW(6)) DIV 1000`,
  // mysql2 formats values client-side and expands an array into a list: `IN (?)` with
  // ['a', 'b'] reaches the server as `IN ('a', 'b')`
  inList: (b, column, values) => `${column} IN (${b.bind([...values])})`,
  maxInList: 1000,
  inIdSet: (b, column, ids) => `${column} IN (${b.bind([...ids])})`,
  json: (b, text) => b.bind(text),
  bool: (value) => (value ? 1 : 0),
  int: (b, value) => b.bind(value),
  insertIgnore: (table, rest) => `INSERT IGNORE INTO ${table} ${rest}`,
  returning: false,
  forUpdate: ' FOR UPDATE',
  skipLocked: ' FOR UPDATE SKIP LOCKED',
  keyColumn: '`key`',
  rowsPerInsert: 200,
  tableExists: (b, name) =>
    `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ${b.bind(name)}`,
  types: {
    id: 'VARBINARY(255)',
    string: 'VARCHAR(255)',
    text: 'LONGTEXT',
    json: 'LONGTEXT',
    int: 'INT',
    bigint: 'BIGINT',
    bool: 'TINYINT(1)',
    time: 'DATETIME(6)',
    serialKey: 'BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY',
    tableOptions: MYSQL_TABLE,
  },
};

export const SQLITE: SqlDialect = {
  name: 'sqlite',
  placeholder: () => '?',
  now: SQLITE_NOW,
  nowPlusMs: (b, ms) => `${SQLITE_NOW} + ${b.bind(ms)}`,
  nowMinusMs: (b, ms) => `${SQLITE_NOW} - ${b.bind(ms)}`,
  msSince: (column) => `${SQLITE_NOW} - ${column}`,
  inList: (b, column, values) => `${column} IN (${values.map((v) => b.bind(v)).join(', ')})`,
  maxInList: 500,
  // one parameter whatever the number of ids (SQLite allows 32,766 per statement)
  inIdSet: (b, column, ids) => `${column} IN (SELECT value FROM json_each(${b.bind(JSON.stringify(ids))}))`,
  json: (b, text) => b.bind(text),
  bool: (value) => (value ? 1 : 0),
  int: (b, value) => b.bind(value),
  insertIgnore: (table, rest) => `INSERT OR IGNORE INTO ${table} ${rest}`,
  returning: true,
  forUpdate: '',
  skipLocked: '',
  keyColumn: 'key',
  // one row per statement: one prepared statement, run once per row, costs SQLite less than
  // multi-row VALUES (measured on a drain of 1,000 runs: events of 16-32 rows per commit)
  rowsPerInsert: 1,
  tableExists: (b, name) => `SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${b.bind(name)}`,
  types: {
    id: 'TEXT',
    string: 'TEXT',
    text: 'TEXT',
    json: 'TEXT',
    int: 'INTEGER',
    bigint: 'INTEGER',
    bool: 'INTEGER',
    time: 'INTEGER',
    serialKey: 'INTEGER PRIMARY KEY AUTOINCREMENT',
    tableOptions: '',
  },
};

const DIALECTS: Readonly<Record<DialectName, SqlDialect>> = { postgres: POSTGRES, mysql: MYSQL, sqlite: SQLITE };

/** The fragments of a dialect. */
export function sqlDialect(name: DialectName): SqlDialect {
  return DIALECTS[name];
}

/** The column types of a dialect (for schemas written once: src/store/schema/portable.ts). */
export function columnTypes(name: DialectName): ColumnTypes {
  return DIALECTS[name].types;
}
