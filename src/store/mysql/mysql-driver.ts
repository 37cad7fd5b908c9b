/**
 * The MySQL 8 / MariaDB 10.6+ driver of the shared statements (src/store/sql/driver.ts),
 * over a mysql2/promise pool:
 * - every connection gets this store's session settings once (docs/reliability.md R12):
 *   UTC, READ COMMITTED (locking reads and UPDATEs always see the latest committed row,
 *   docs/reliability.md R4: a plain REPEATABLE READ snapshot can be stale; and no gap
 *   locks), a lock wait timeout, and a statement time limit plus, on MariaDB,
 *   `idle_transaction_timeout`;
 * - connections use the FOUND_ROWS flag, so a write's count is of *matched* rows: a fenced
 *   update that matched but changed nothing still reports 1, and 0 always means fenced;
 * - a transaction is START TRANSACTION … COMMIT on one pooled connection, run again whole
 *   after a deadlock (1213) or lock wait timeout (1205);
 * - values are bound with mysql2's `query` placeholders (client-side escaping, every value
 *   through `?`); server-side prepared statements are avoided because statements with
 *   variable IN lists would fill the per-connection statement cache;
 * - DDL is not transactional: migrations run under `GET_LOCK` on one connection.
 */
import type { Connection as StreamingConnection } from 'mysql2';
import mysql from 'mysql2/promise';
import { createHash } from 'node:crypto';
import { StoreError, isStokerError } from '../../errors.js';
import { withPrefix } from '../migration.js';
import type { MigrationSession, Raw, SqlDriver, SqlSession, TxOptions, TxState } from '../sql/driver.js';
import { inTransaction, recordFailure, withRetries } from '../sql/transactions.js';
import { codeDetails, describeCause, isRetryable, isUnreachable } from './mysql-errors.js';

/** Options of {@link MysqlStore}. Durations in milliseconds. */
export interface MysqlStoreOptions {
  /** `mysql://user:password@host:port/database` (`mariadb://` is accepted too) */
  uri: string;
  /** table name prefix, default `stoker_` */
  tablePrefix?: string;
  /** maximum pooled connections, default 10 */
  poolSize?: number;
  /** sent as the `program_name` connection attribute `stoker-<role>`, default `store` */
  role?: string;
  /** `innodb_lock_wait_timeout`, default 5 000 (rounded up to whole seconds) */
  lockTimeoutMs?: number;
  /** MariaDB `idle_transaction_timeout` (docs/reliability.md R12: at most half the lease), default 15 000 */
  idleInTransactionTimeoutMs?: number;
  /** per-statement limit (MariaDB `max_statement_time`, MySQL `max_execution_time`), default 30 000 */
  statementTimeoutMs?: number;
  /** how long opening a connection may take, default 5 000 */
  connectTimeoutMs?: number;
  /** attempts of a transaction that hits a deadlock or lock wait timeout, default 5 */
  maxTransactionAttempts?: number;
  /** errors of idle pooled connections (the server went away); the next query reports it too */
  onError?: (error: Error) => void;
}

/** Where a MySQL store URL points. */
export interface MysqlTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

type Conn = mysql.PoolConnection;

const MIGRATION_LOCK = 'stoker_migrate';
/** the largest `wait_timeout`: the lock connection is idle by design and must not be closed for it */
const LOCK_SESSION_WAIT_TIMEOUT_S = 31_536_000;

export class MysqlDriver implements SqlDriver {
  readonly label = 'MySQL';
  readonly pool: mysql.Pool;
  /** host:port/database, for messages (never the password) */
  readonly target: string;
  readonly onError: (error: Error) => void;
  readonly lockWaitS: number;
  readonly statementTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly idleInTransactionS: number;
  /** connections whose session settings are in place */
  private readonly prepared = new WeakSet<object>();
  private sessionSql: string[] | undefined;
  private readonly sqlCache = new Map<string, string>();
  /** settings of every connection, pooled or dedicated */
  private readonly connectionOptions: mysql.ConnectionOptions;
  private isClosed = false;
  /** sessions of transactions that wake idle engines after their commit */
  private readonly wakeAfterCommit = new WeakSet<SqlSession>();

  constructor(
    options: MysqlStoreOptions,
    t: MysqlTarget,
    private readonly prefix: string,
    private readonly role: string,
    /** hashed into this deployment's lock names: GET_LOCK names are server-wide */
    readonly lockNamespace: string,
  ) {
    this.target = `${t.host}:${t.port}/${t.database}`;
    this.maxAttempts = Math.max(1, options.maxTransactionAttempts ?? 5);
    this.lockWaitS = Math.max(1, Math.ceil((options.lockTimeoutMs ?? 5_000) / 1000));
    this.idleInTransactionS = Math.max(1, Math.ceil((options.idleInTransactionTimeoutMs ?? 15_000) / 1000));
    this.statementTimeoutMs = Math.max(1, Math.round(options.statementTimeoutMs ?? 30_000));
    this.connectionOptions = {
      host: t.host,
      port: t.port,
      user: t.user,
      password: t.password,
      database: t.database,
      connectTimeout: options.connectTimeoutMs ?? 5_000,
      enableKeepAlive: true,
      keepAliveInitialDelay: 10_000,
      // DATETIMEs are UTC on both sides (the session sets time_zone = '+00:00').
      timezone: 'Z',
      supportBigNumbers: true,
      // affectedRows = matched rows, so "fenced" (0) is never confused with "unchanged".
      flags: ['FOUND_ROWS'],
      multipleStatements: false,
      // mysql2 captures a stack trace per query for its own errors; every error is wrapped
      // in a StoreError here, whose stack names the caller anyway. The capture was a third
      // of mysql2's CPU in a linear flow (bench/linear-cpu.ts under --cpu-prof: about
      // 18 µs a call).
      trace: false,
      connectAttributes: { program_name: `stoker-${role}` },
      // VARBINARY ids and keys come back as UTF-8 strings, not Buffers.
      typeCast: (field, next) => (field.type === 'VAR_STRING' || field.type === 'STRING' ? field.string('utf8') : next()),
    };
    this.pool = mysql.createPool({
      ...this.connectionOptions,
      connectionLimit: options.poolSize ?? 10,
      maxIdle: options.poolSize ?? 10,
      idleTimeout: 60_000,
    });
    const onError = options.onError ?? (() => undefined);
    this.onError = onError;
    // A pooled connection's own 'error' listener is a `once`; a second error (the server
    // going away twice) would otherwise crash the process.
    this.pool.on('connection', (conn) => {
      (conn as unknown as { on(ev: 'error', fn: (e: Error) => void): void }).on('error', (e) => onError(e));
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  assertOpen(): void {
    if (this.isClosed) throw new StoreError('STOKER_STORE_CLOSED', 'the store is closed');
  }

  /** Refuses further calls; the pool is ended by {@link end}. */
  markClosed(): void {
    this.isClosed = true;
  }

  end(): Promise<void> {
    return this.pool.end();
  }

  /** `text` with this store's table prefix in place of `{p}` */
  prefixed(text: string): string {
    return this.sql(text);
  }

  /**
   * Wake idle engines (protocol 6, ./wakeups.ts) once the transaction of `s` has committed:
   * a keyed start or a signal made atoms claimable. Called inside the transaction; before
   * its commit the woken engines would find nothing.
   */
  announceAtCommit(s: SqlSession): void {
    this.wakeAfterCommit.add(s);
  }

  private sql(text: string): string {
    let s = this.sqlCache.get(text);
    if (s === undefined) {
      s = withPrefix(text, this.prefix);
      this.sqlCache.set(text, s);
    }
    return s;
  }

  wrap(e: unknown, purpose: string): unknown {
    if (isStokerError(e)) return e;
    if (isUnreachable(e)) {
      return new StoreError('STOKER_STORE_UNREACHABLE', `cannot connect to MySQL at ${this.target} (${purpose}): ${describeCause(e)}`, {
        cause: e,
        details: { target: this.target, ...codeDetails(e) },
      });
    }
    return new StoreError('STOKER_STORE_QUERY_FAILED', `MySQL: ${purpose} failed: ${describeCause(e)}`, {
      cause: e,
      details: { purpose, ...codeDetails(e) },
    });
  }

  private retry<T>(op: () => Promise<T>): Promise<T> {
    return withRetries(this.maxAttempts, (e) => isRetryable(e, `${this.prefix}runs_active_key`), op);
  }

  /** A pooled connection with this store's session settings in place. */
  async acquire(purpose: string): Promise<Conn> {
    this.assertOpen();
    let conn: Conn;
    try {
      conn = await this.pool.getConnection();
    } catch (e) {
      throw this.wrap(e, purpose);
    }
    if (!this.prepared.has(conn.connection)) {
      try {
        for (const s of await this.sessionStatements(conn)) await conn.query(s);
        this.prepared.add(conn.connection);
      } catch (e) {
        conn.destroy();
        throw this.wrap(e, 'prepare a session');
      }
    }
    return conn;
  }

  private async sessionStatements(conn: mysql.Connection): Promise<string[]> {
    if (this.sessionSql === undefined) {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
      const mariadb = /mariadb/i.test(String(rows[0]?.v ?? ''));
      this.sessionSql = [
        `SET SESSION time_zone = '+00:00', SESSION innodb_lock_wait_timeout = ${this.lockWaitS}, ` +
          `SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO', ` +
          (mariadb
            ? // docs/reliability.md R12: a session frozen inside a transaction must not hold
              // its row locks for hours; MariaDB ends it after this (MySQL 8 has no such setting)
              `SESSION max_statement_time = ${this.statementTimeoutMs / 1000}, SESSION idle_transaction_timeout = ${this.idleInTransactionS}`
            : `SESSION max_execution_time = ${this.statementTimeoutMs}`),
        'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
      ];
    }
    return this.sessionSql;
  }

  /** A statement that returns rows, on `conn` (a failure inside a transaction is recorded in its `state`). */
  async rowsOn(conn: mysql.Connection, purpose: string, text: string, params: readonly unknown[], state?: TxState): Promise<Raw[]> {
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(this.sql(text), params as unknown[]);
      return rows as Raw[];
    } catch (e) {
      const wrapped = this.wrap(e, purpose);
      throw state ? recordFailure(state, wrapped) : wrapped;
    }
  }

  /** A write on `conn`; returns the number of *matched* rows (FOUND_ROWS). */
  async execOn(conn: mysql.Connection, purpose: string, text: string, params: readonly unknown[], state?: TxState): Promise<number> {
    try {
      const [res] = await conn.query<mysql.ResultSetHeader>(this.sql(text), params as unknown[]);
      return res.affectedRows;
    } catch (e) {
      const wrapped = this.wrap(e, purpose);
      throw state ? recordFailure(state, wrapped) : wrapped;
    }
  }

  /**
   * A `CALL` of one of this store's procedures (./procedures.ts) on a pooled connection in
   * autocommit: the procedure begins and commits its own transactions. Returns the rows of
   * its first result set. Made again, whole, after a deadlock or lock wait timeout: the
   * procedure rolled everything back before it raised the error.
   */
  async call(purpose: string, text: string, params: readonly unknown[]): Promise<Raw[]> {
    return (await this.callSets(purpose, text, params))[0] ?? [];
  }

  /** {@link call}, returning the rows of every result set the procedure sent, in order. */
  callSets(purpose: string, text: string, params: readonly unknown[]): Promise<Raw[][]> {
    return this.retry(() =>
      this.onConnection(purpose, async (conn) => {
        const [sets] = await conn.query<mysql.RowDataPacket[][]>(this.sql(text), params as unknown[]);
        // the last entry is the CALL's own status, not a result set; a procedure that sends
        // no result set returns that status alone
        return Array.isArray(sets) ? (sets.filter((s) => Array.isArray(s)) as Raw[][]) : [];
      }),
    );
  }

  /** `fn` on a pooled connection; its errors wrapped, the connection dropped if the server went away. */
  private async onConnection<T>(purpose: string, fn: (conn: Conn) => Promise<T>): Promise<T> {
    const conn = await this.acquire(purpose);
    let discard = false;
    try {
      return await fn(conn);
    } catch (e) {
      const wrapped = this.wrap(e, purpose);
      if (isUnreachable(e)) discard = true;
      throw wrapped;
    } finally {
      if (discard) conn.destroy();
      else conn.release();
    }
  }

  /**
   * {@link callSets} for a procedure that sends results before its COMMIT
   * (./visible-claims.ts): `early` gets the result sets up to and including the first one
   * that has a column `mark`, as soon as its row arrives, while the server is still
   * committing. The promise resolves with every set once the CALL has returned (committed),
   * or rejects (also with what `early` threw); once `early` has been called it is never
   * made again, since the transaction whose rows `early` got may or may not have committed.
   */
  callEarly(purpose: string, text: string, params: readonly unknown[], mark: string, early: (sets: Raw[][]) => void): Promise<Raw[][]> {
    let delivered = false;
    const retryable = (e: unknown): boolean => !delivered && isRetryable(e, `${this.prefix}runs_active_key`);
    return withRetries(this.maxAttempts, retryable, () =>
      this.onConnection(purpose, async (conn) => {
        const streaming = conn.connection as unknown as StreamingConnection;
        let onFatal: ((e: Error) => void) | undefined;
        let earlyFailure: { error: unknown } | undefined;
        return await new Promise<Raw[][]>((resolve, reject) => {
          const sets: Raw[][] = [];
          // a streamed query hears of a lost connection only through the connection's event
          onFatal = reject;
          streaming.once('error', onFatal);
          // the callback connection under the promise wrapper: its query streams rows as they come
          const query = streaming.query(this.sql(text), params as unknown[]);
          query.on('result', (row: Raw, index: number | undefined) => {
            // the CALL's own status comes last, with no result set index
            if (index === undefined || delivered) return;
            (sets[index] ??= []).push(row);
            if (mark in row) {
              delivered = true;
              // thrown inside the driver's parser it would break the connection: reported at the end
              try {
                early(sets.map((s) => s ?? []));
              } catch (e) {
                earlyFailure = { error: e };
              }
            }
          });
          query.on('error', reject);
          query.on('end', () => (earlyFailure ? reject(earlyFailure.error) : resolve(sets.map((s) => s ?? []))));
        }).finally(() => {
          if (onFatal) streaming.removeListener('error', onFatal);
        });
      }),
    );
  }

  /** Statements on one connection; inside a transaction, they record its first failure in `state`. */
  session(conn: mysql.Connection, state?: TxState): MigrationSession {
    return {
      rows: (purpose, text, params) => this.rowsOn(conn, purpose, text, params, state),
      row: async (purpose, text, params) => (await this.rowsOn(conn, purpose, text, params, state))[0],
      exec: (purpose, text, params) => this.execOn(conn, purpose, text, params, state),
      ddl: async (purpose, text) => {
        await this.execOn(conn, purpose, text, [], state);
      },
    };
  }

  /** Statements outside any transaction, on one pooled connection for their duration. */
  async read<T>(purpose: string, fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    const conn = await this.acquire(purpose);
    let discard = false;
    try {
      return await fn(this.session(conn));
    } catch (e) {
      if (isStokerError(e) && e.code === 'STOKER_STORE_UNREACHABLE') discard = true;
      throw e;
    } finally {
      if (discard) conn.destroy();
      else conn.release();
    }
  }

  write<T>(purpose: string, fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    return this.read(purpose, fn);
  }

  /**
   * START TRANSACTION; fn; COMMIT on one pooled connection, ROLLBACK on any error; the whole
   * transaction runs again after a deadlock or lock wait timeout (so `fn` may run more than
   * once). A start that supersedes a key queues first on a session lock named after it
   * (MySQL has no transaction-scoped one), let go after the commit.
   */
  transaction<T>(purpose: string, fn: (s: MigrationSession, state: TxState) => Promise<T>, options?: TxOptions): Promise<T> {
    const queue = options?.supersedeKey === undefined ? undefined : supersedeLockName(this.lockNamespace, options.supersedeKey);
    return this.retry(async () => {
      const conn = await this.acquire(purpose);
      const state: TxState = { done: false, failure: undefined };
      let queued = false;
      let committed = false;
      const session = this.session(conn, state);
      return inTransaction(
        {
          session,
          begin: async () => {
            if (queue !== undefined) {
              // taken before any row lock and let go after the commit: callers with the same name run one by one
              const got = await this.rowsOn(conn, `${purpose}: queue`, 'SELECT GET_LOCK(?, ?) AS ok', [queue, this.lockWaitS]);
              if (Number(got[0]?.ok) !== 1) {
                throw new StoreError(
                  'STOKER_STORE_QUERY_FAILED',
                  `MySQL: ${purpose} failed: waited ${this.lockWaitS} s for its turn (lock ${queue})`,
                  {
                    cause: Object.assign(new Error('Lock wait timeout exceeded'), { errno: 1205 }),
                    details: { purpose },
                  },
                );
              }
              queued = true;
            }
            await this.execOn(conn, `${purpose}: begin`, 'START TRANSACTION', []);
          },
          commit: async () => {
            await this.execOn(conn, `${purpose}: commit`, 'COMMIT', []);
            committed = true;
          },
          rollback: () =>
            conn.query('ROLLBACK').then(
              () => true,
              () => false,
            ),
          release: async (discard) => {
            if (queued && !discard) await conn.query('SELECT RELEASE_LOCK(?)', [queue]).catch(() => (discard = true));
            // a hint, after the commit and after the next start of the key may go: its failure fails nothing
            if (committed && !discard && this.wakeAfterCommit.has(session))
              await conn
                .query(this.sql('CALL {p}wake_engines()'))
                .catch((e: unknown) => this.onError(this.wrap(e, 'wake idle engines') as Error));
            if (discard) conn.destroy();
            else conn.release();
          },
        },
        state,
        fn,
      );
    });
  }

  /** The migration lock is a session lock (`GET_LOCK`): DDL commits itself here, so there is no transaction to hold it. */
  migrating<T>(fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    return this.read('migrate', async (s) => {
      const got = await s.rows('take the migration lock', 'SELECT GET_LOCK(?, 30) AS ok', [MIGRATION_LOCK]);
      if (Number(got[0]?.ok) !== 1) {
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `MySQL: another process held the migration lock "${MIGRATION_LOCK}" for 30 s`, {
          details: { purpose: 'migrate' },
        });
      }
      try {
        return await fn(s);
      } finally {
        await s.rows('let the migration lock go', 'SELECT RELEASE_LOCK(?)', [MIGRATION_LOCK]).catch(() => undefined);
      }
    });
  }

  /**
   * A connection outside the pool, with the session settings of the pooled ones, named
   * `stoker-<role>-<purpose>`, whose `wait_timeout` is the largest the server allows: it is
   * idle by design. A watch, listen or hold connection ignores its errors: its wait's query
   * rejects instead (a hold's loss shows as its listener getting the lock it held).
   */
  async lockConnection(purpose: 'lock' | 'watch' | 'listen' | 'hold' = 'lock'): Promise<mysql.Connection> {
    let conn: mysql.Connection;
    try {
      conn = await mysql.createConnection({
        ...this.connectionOptions,
        connectAttributes: { program_name: `stoker-${this.role}-${purpose}` },
      });
    } catch (e) {
      throw this.wrap(e, `open a ${purpose} connection`);
    }
    // until the caller installs its own: an error of an idle connection must not crash the process
    const early = (e: Error): void => this.onError(e);
    conn.on('error', early);
    try {
      for (const s of await this.sessionStatements(conn)) await conn.query(s);
      await conn.query(`SET SESSION wait_timeout = ${LOCK_SESSION_WAIT_TIMEOUT_S}`);
    } catch (e) {
      conn.destroy();
      throw this.wrap(e, `prepare a ${purpose} connection`);
    } finally {
      conn.removeListener('error', early);
    }
    if (purpose !== 'lock') conn.on('error', () => undefined); // the wait's query rejects (or gets the held lock) instead
    return conn;
  }
}

/** The GET_LOCK name that queues the supersedes of one key (at most 64 characters; lock names are server-wide). */
function supersedeLockName(namespace: string, key: string): string {
  return `stoker_supersede_${createHash('sha256').update(`${namespace}supersede:${key}`).digest('hex').slice(0, 40)}`;
}
