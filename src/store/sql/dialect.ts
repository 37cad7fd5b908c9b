/**
 * The dialect-fragment builder: what the three SQL dialects spell differently, as small
 * pieces, so that a statement that is the same everywhere but for those pieces is written
 * once (src/store/sql/*.ts) and each dialect keeps only the statements whose shape is its
 * own (src/store/<dialect>/). The three values are in ./dialects.ts.
 *
 * Parameters are collected by a Binder (./binder.ts) while the text is built.
 *
 * Things no fragment can hide, which the shared statements keep true by construction:
 * - MySQL evaluates `SET a = …, b = …` left to right, each assignment seeing the ones
 *   before it; the shared statements assign bound values or read only the column they
 *   assign, so order never matters there (MySQL's claim and pending-count statements, where
 *   it does, are MySQL's own: src/store/mysql/);
 * - MySQL has no `RETURNING`: with {@link SqlDialect.returning} false a shared statement
 *   writes, then reads the rows back inside the same transaction (they stay locked).
 *
 * @example
 * ```ts
 * const b = new Binder(POSTGRES);
 * const text = `UPDATE {p}engines SET lease_expires_at = ${POSTGRES.nowPlusMs(b, 30_000)} WHERE id = ${b.bind('e1')}`;
 * // text: … = now() + $1::bigint * interval '1 millisecond' WHERE id = $2; b.params: [30000, 'e1']
 * ```
 */
import type { DialectName } from '../types.js';
import type { Binder } from './binder.js';

/**
 * Column types for schemas written once for every dialect (src/store/schema/portable.ts).
 * Applied migrations are checksummed, so a type here is never edited once a migration uses
 * it: add a new one instead.
 */
export interface ColumnTypes {
  /** ids, keys and names compared byte for byte (PostgreSQL `text COLLATE "C"`, MySQL `VARBINARY(255)`) */
  id: string;
  /** a short string, up to 255 characters */
  string: string;
  /** a string of any length */
  text: string;
  /** a JSON document (PostgreSQL `jsonb`; text elsewhere, read with jsonColumn) */
  json: string;
  int: string;
  bigint: string;
  /** 0/1 on SQLite and MySQL, `boolean` on PostgreSQL (bind it with {@link SqlDialect.bool}) */
  bool: string;
  /** a point in time from the database clock (SQLite: INTEGER milliseconds) */
  time: string;
  /** an auto-increment 64-bit primary key column (its whole definition, `PRIMARY KEY` included) */
  serialKey: string;
  /** after a CREATE TABLE's closing parenthesis (MySQL: engine and binary collation) */
  tableOptions: string;
}

/** What one dialect spells its own way. */
export interface SqlDialect {
  readonly name: DialectName;
  /** the placeholder of the n-th parameter (1-based) */
  placeholder(n: number): string;
  /** the database clock (SQLite: integer milliseconds) */
  readonly now: string;
  /** the database clock plus a bound number of milliseconds (MySQL binds microseconds) */
  nowPlusMs(b: Binder, ms: number): string;
  /** the database clock minus a bound number of milliseconds */
  nowMinusMs(b: Binder, ms: number): string;
  /** whole milliseconds from the time column `column` to now */
  msSince(column: string): string;
  /**
   * `column` is one of `values` (a short list: callers chunk at {@link maxInList}): PostgreSQL
   * `= ANY($n::type[])`, MySQL `IN (?)` with the array (mysql2 expands it), SQLite one `?` each.
   */
  inList(b: Binder, column: string, values: readonly unknown[], type: 'text' | 'integer'): string;
  /** the most values one {@link inList} takes */
  readonly maxInList: number;
  /** `column` is one of any number of ids in one parameter (SQLite: a JSON array through json_each) */
  inIdSet(b: Binder, column: string, ids: readonly string[]): string;
  /** a JSON document bound as text (PostgreSQL casts it to jsonb) */
  json(b: Binder, text: string | null): string;
  /** a boolean parameter value: true/false on PostgreSQL, 1/0 elsewhere */
  bool(value: boolean): boolean | number;
  /** an integer parameter in an expression (PostgreSQL casts it to integer) */
  int(b: Binder, value: number): string;
  /** `INSERT … rest` that inserts nothing where a row with the same `conflict` key exists */
  insertIgnore(table: string, rest: string, conflict: string): string;
  /** `UPDATE/INSERT … RETURNING` (not MySQL: write, then read back) */
  readonly returning: boolean;
  /** appended to a read that locks its rows (`''` on SQLite, where the write lock is the transaction's) */
  readonly forUpdate: string;
  /** appended to a read that locks the rows no one else holds (`''` on SQLite) */
  readonly skipLocked: string;
  /** the `key` column of runs (a reserved word on MySQL) */
  readonly keyColumn: string;
  /** rows per multi-row INSERT (MySQL: well inside the range optimizer's limits; SQLite: 1, a prepared statement per row) */
  readonly rowsPerInsert: number;
  /** a query whose `n` is 1 when the table `name` exists where unqualified names resolve */
  tableExists(b: Binder, name: string): string;
  readonly types: ColumnTypes;
}
