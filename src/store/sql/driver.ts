/**
 * What the shared statements (src/store/sql/) need from a database driver: run a statement
 * for its rows or for the number of rows it matched, on one session, alone or inside a
 * transaction that follows the dialect's rules (locks, retries, error wrapping). Each
 * adapter implements it over its driver: `postgres/postgres-driver.ts` (node-postgres pool),
 * `mysql/mysql-driver.ts` (mysql2 pool), `sqlite/sqlite-driver.ts` (better-sqlite3, one
 * connection behind a mutex, statements run synchronously inside `BEGIN IMMEDIATE`).
 *
 * Text given to a session may hold `{p}`, the table prefix; the driver substitutes it (and
 * caches the result). Errors come out as StoreError (`STOKER_STORE_QUERY_FAILED`, or
 * `STOKER_STORE_UNREACHABLE` when the database cannot be used from here), naming the
 * statement by its `purpose`, never its values.
 */

/** A row as the driver returns it. */
export type Raw = Record<string, unknown>;

/** Statements on one session: a pooled connection, a transaction's connection, SQLite's one connection. */
export interface SqlSession {
  /**
   * A statement that returns rows. `name` asks for a named prepared statement, parsed and
   * planned once per connection (PostgreSQL; ignored elsewhere).
   */
  rows(purpose: string, text: string, params: readonly unknown[], name?: string): Promise<Raw[]>;
  /** a statement that returns at most one row (or whose first row alone counts): that row */
  row(purpose: string, text: string, params: readonly unknown[]): Promise<Raw | undefined>;
  /** a write; resolves to the number of rows it matched */
  exec(purpose: string, text: string, params: readonly unknown[]): Promise<number>;
}

/** The session of the migration runner, which also runs schema statements. */
export interface MigrationSession extends SqlSession {
  /** a statement without parameters that is run once (DDL): never prepared, never cached */
  ddl(purpose: string, text: string): Promise<void>;
}

/** Per-attempt bookkeeping of one transaction, shared with its RunTx (src/store/sql/run-tx.ts). */
export interface TxState {
  /** the transaction has ended (or its callback settled): no more statements */
  done: boolean;
  /** the first database error inside the transaction: it can only roll back now */
  failure: unknown;
}

export interface TxOptions {
  /**
   * A start that supersedes this key: starts of one key queue, so the next one sees the run
   * this one starts (MySQL takes a session lock on it around the transaction; PostgreSQL
   * queues inside it, src/store/sql/starts.ts; SQLite has one writer anyway).
   */
  supersedeKey?: string;
  /**
   * Commit without waiting for the log flush (PostgreSQL `synchronous_commit = off`; the
   * other dialects commit as usual). Only for writes that a later ordinary commit of the
   * same store always follows before anything depends on them: PostgreSQL flushes its log
   * in order, so that commit makes them durable too (docs/orchestration.md, "Durability").
   */
  lazyCommit?: boolean;
}

export interface SqlDriver {
  /** the database's name in messages: `PostgreSQL`, `MySQL`, `SQLite` */
  readonly label: string;
  /** true once `close()` was called */
  readonly closed: boolean;
  /** throws STOKER_STORE_CLOSED after `close()` */
  assertOpen(): void;
  /** reads, never a write and never a lock (each statement may use another pooled connection) */
  read<T>(purpose: string, fn: (s: SqlSession) => Promise<T>): Promise<T>;
  /** writes that need no transaction of their own (SQLite: one `BEGIN IMMEDIATE` write) */
  write<T>(purpose: string, fn: (s: SqlSession) => Promise<T>, options?: Pick<TxOptions, 'lazyCommit'>): Promise<T>;
  /**
   * A transaction on one connection: commits when `fn` resolves, rolls back and rethrows
   * when it rejects. PostgreSQL and MySQL run it again, whole, after a deadlock or a
   * serialization failure (so `fn` may be called more than once).
   */
  transaction<T>(purpose: string, fn: (s: SqlSession, state: TxState) => Promise<T>, options?: TxOptions): Promise<T>;
  /**
   * Runs `fn` under the migration lock: PostgreSQL in one transaction holding an advisory
   * transaction lock; MySQL on one connection holding `GET_LOCK` (DDL is not transactional
   * there); SQLite inside one `BEGIN IMMEDIATE`.
   */
  migrating<T>(fn: (s: MigrationSession) => Promise<T>): Promise<T>;
}
