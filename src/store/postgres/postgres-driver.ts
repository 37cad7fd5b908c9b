/**
 * The PostgreSQL driver of the shared statements (src/store/sql/driver.ts), over a
 * node-postgres pool:
 * - every session, pooled or dedicated, gets the settings of docs/reliability.md R12 as
 *   startup parameters (no extra round trip): `statement_timeout`, `lock_timeout`,
 *   `idle_in_transaction_session_timeout`, server-side TCP keepalives,
 *   `application_name = stoker-<role>`, and `search_path` for a schema;
 * - a transaction is BEGIN … COMMIT on one pooled client, run again whole on a
 *   serialization failure or deadlock (SQLSTATE 40001/40P01);
 * - statements named by the caller are prepared once per connection (the claim, the fast
 *   paths, the one-statement start);
 * - errors become StoreError: STOKER_STORE_UNREACHABLE when the database cannot be used
 *   from here, else STOKER_STORE_QUERY_FAILED, naming the statement's purpose.
 */
import pg from 'pg';
import { StoreError, isStokerError } from '../../errors.js';
import { withPrefix } from '../migration.js';
import type { MigrationSession, Raw, SqlDriver, TxOptions, TxState } from '../sql/driver.js';
import { inTransaction, recordFailure, withRetries } from '../sql/transactions.js';
import { HotConnection } from './hot-connection.js';
import { codeDetails, describeCause, describeTarget, isRetryable, isUnreachable, sqlState } from './pg-errors.js';

/** Options of {@link PostgresStore}. Durations in milliseconds. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` */
  connectionString: string;
  /** schema for Stoker's tables (created by migrate; set as `search_path` on every session) */
  schema?: string;
  /** table name prefix, default `stoker_` */
  tablePrefix?: string;
  /** maximum pooled connections, default 10 */
  poolSize?: number;
  /** shown as `application_name = stoker-<role>` in pg_stat_activity, default `store` */
  role?: string;
  /** default 30 000 (docs/reliability.md R12) */
  statementTimeoutMs?: number;
  /** default 5 000 */
  lockTimeoutMs?: number;
  /** default 15 000 (≤ half the default engine lease) */
  idleInTransactionTimeoutMs?: number;
  /** how long opening a connection may take, default 5 000 */
  connectTimeoutMs?: number;
  /** attempts of a transaction that hits a deadlock or serialization failure, default 5 */
  maxTransactionAttempts?: number;
  /**
   * errors of idle pooled connections (the server went away; the next query reports it too),
   * and of the wake-up listener's connection (it reconnects by itself)
   */
  onError?: (error: Error) => void;
}

export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/** pg_advisory_xact_lock key of the migration runner ("STOKER" in ASCII). */
const MIGRATION_LOCK_KEY = '91754623788370';
const JSON_OID = 114;
const JSONB_OID = 3802;

export class PostgresDriver implements SqlDriver {
  readonly label = 'PostgreSQL';
  readonly pool: pg.Pool;
  /** host:port/database, for messages (never the password) */
  readonly target: string;
  readonly onError: (error: Error) => void;
  /** statements on the pool, each on whichever connection is free */
  readonly poolSession: MigrationSession;
  private readonly maxAttempts: number;
  private readonly sqlCache = new Map<string, string>();
  /** settings of every session, pooled or dedicated */
  private readonly clientConfig: pg.ClientConfig;
  private isClosed = false;
  /** the pool of lazy commits (TxOptions.lazyCommit), opened on first use */
  private lazy: pg.Pool | undefined;
  private readonly poolSize: number;
  /** the connection of the hot path's statements (hot-connection.ts) */
  private readonly hot: HotConnection;

  constructor(
    options: PostgresStoreOptions,
    private readonly prefix: string,
    private readonly schema: string | undefined,
    private readonly role: string,
  ) {
    this.target = describeTarget(options.connectionString);
    this.maxAttempts = Math.max(1, options.maxTransactionAttempts ?? 5);
    // Server-side keepalives end a partitioned engine's session (and its row locks) in
    // about 25 s instead of the kernel default of 2 h 11 min (docs/reliability.md R12, measured).
    const startup = ['-c tcp_keepalives_idle=10', '-c tcp_keepalives_interval=5', '-c tcp_keepalives_count=3'];
    if (schema !== undefined) startup.push(`-c search_path=${schema}`);
    this.clientConfig = {
      connectionString: options.connectionString,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: `stoker-${role}`,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      lock_timeout: options.lockTimeoutMs ?? 5_000,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 15_000,
      options: startup.join(' '),
      // json/jsonb arrive as text and are parsed by jsonColumn, like the other dialects: pg's
      // own parser would hand a JSON *string* value over as a bare JS string, which cannot be
      // told apart from JSON text. Per pool, so other users of pg in the process are unaffected.
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === JSON_OID || oid === JSONB_OID ? (v: string) => v : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    };
    this.poolSize = options.poolSize ?? 10;
    this.pool = new pg.Pool({ ...this.clientConfig, max: this.poolSize });
    const onError = options.onError ?? (() => undefined);
    this.onError = onError;
    // Without a listener an idle client's error (server restart, pg_terminate_backend)
    // would crash the process; the pool already discards that client.
    this.pool.on('error', (e) => onError(e));
    this.poolSession = this.session(this.pool);
    this.hot = new HotConnection({ open: () => this.dedicatedClient('hot'), onError });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  assertOpen(): void {
    if (this.isClosed) throw new StoreError('STOKER_STORE_CLOSED', 'the store is closed');
  }

  /** `{p}` resolved, once per text. */
  sql(text: string): string {
    let s = this.sqlCache.get(text);
    if (s === undefined) {
      s = withPrefix(text, this.prefix);
      this.sqlCache.set(text, s);
    }
    return s;
  }

  /**
   * Runs one statement; `purpose` names it in errors (values never appear); `name` prepares
   * it once per connection; a failure inside a transaction is recorded in its `state`.
   */
  async query(
    purpose: string,
    text: string,
    params: readonly unknown[],
    on: Queryable = this.pool,
    name?: string,
    state?: TxState,
  ): Promise<pg.QueryResult<Raw>> {
    try {
      return name === undefined
        ? await on.query<Raw>(this.sql(text), params as unknown[])
        : await on.query<Raw>({ name: `${this.prefix}${name}`, text: this.sql(text), values: params as unknown[] });
    } catch (e) {
      const wrapped = this.wrap(e, purpose);
      throw state ? recordFailure(state, wrapped) : wrapped;
    }
  }

  /**
   * A statement of the hot path (the fast completions): on the connection held for them when
   * it is free, else on the pool (hot-connection.ts says why). `name` prepares it once per
   * connection, as in {@link query}.
   */
  hotRows(purpose: string, text: string, params: unknown[], name?: string): Promise<Raw[]> {
    this.assertOpen();
    return new Promise((resolve, reject) => {
      const sent = this.hot.send(name === undefined ? undefined : `${this.prefix}${name}`, this.sql(text), params, (error, rows) =>
        error ? reject(this.wrap(error, purpose)) : resolve(rows),
      );
      if (!sent) this.query(purpose, text, params, this.pool, name).then((r) => resolve(r.rows), reject);
    });
  }

  /** Statements on one connection (or on the pool); inside a transaction, they record its first failure in `state`. */
  session(on: Queryable, state?: TxState): MigrationSession {
    return {
      rows: async (purpose, text, params, name) => (await this.query(purpose, text, params, on, name, state)).rows,
      row: async (purpose, text, params) => (await this.query(purpose, text, params, on, undefined, state)).rows[0],
      exec: async (purpose, text, params) => (await this.query(purpose, text, params, on, undefined, state)).rowCount ?? 0,
      ddl: async (purpose, text) => {
        await this.query(purpose, text, [], on, undefined, state);
      },
    };
  }

  wrap(e: unknown, purpose: string): unknown {
    if (isStokerError(e)) return e;
    if (isUnreachable(e)) {
      return new StoreError(
        'STOKER_STORE_UNREACHABLE',
        `cannot connect to PostgreSQL at ${this.target} (${purpose}): ${describeCause(e)}`,
        {
          cause: e,
          details: { target: this.target, ...codeDetails(e) },
        },
      );
    }
    return new StoreError('STOKER_STORE_QUERY_FAILED', `PostgreSQL: ${purpose} failed: ${describeCause(e)}`, {
      cause: e,
      details: { purpose, ...codeDetails(e) },
    });
  }

  /** Runs `op` again (whole) on deadlocks and serialization failures, with a short jittered backoff. */
  retry<T>(op: () => Promise<T>): Promise<T> {
    return withRetries(this.maxAttempts, (e) => isRetryable(e, `${this.prefix}runs_active_key`), op);
  }

  async read<T>(_purpose: string, fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    this.assertOpen();
    return fn(this.poolSession);
  }

  write<T>(purpose: string, fn: (s: MigrationSession) => Promise<T>, options?: Pick<TxOptions, 'lazyCommit'>): Promise<T> {
    if (!options?.lazyCommit) return this.read(purpose, fn);
    this.assertOpen();
    return fn(this.session(this.lazyPool()));
  }

  /** Connections whose commits do not wait for the log flush (`synchronous_commit = off`). */
  private lazyPool(): pg.Pool {
    if (this.lazy === undefined) {
      this.lazy = new pg.Pool({
        ...this.clientConfig,
        application_name: `stoker-${this.role}-lazy`,
        options: `${this.clientConfig.options} -c synchronous_commit=off`,
        max: this.poolSize,
      });
      this.lazy.on('error', (e) => this.onError(e));
    }
    return this.lazy;
  }

  /**
   * BEGIN; fn; COMMIT on one pooled connection, ROLLBACK on any error; the whole transaction
   * runs again on a deadlock or serialization failure (so `fn` may run more than once).
   */
  transaction<T>(purpose: string, fn: (s: MigrationSession, state: TxState) => Promise<T>, options?: TxOptions): Promise<T> {
    this.assertOpen();
    const pool = options?.lazyCommit ? this.lazyPool() : this.pool;
    return this.retry(async () => {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (e) {
        throw this.wrap(e, purpose);
      }
      const state: TxState = { done: false, failure: undefined };
      let broken = false;
      // pg-pool listens for errors only on idle clients: a session ended by the server while
      // we hold the client (pg_terminate_backend, idle_in_transaction_session_timeout) would
      // otherwise be an unhandled 'error' event that kills the process
      // (docs/reliability.md C6). The pending or next query fails on its own; the client is
      // discarded.
      const onError = (e: Error): void => {
        broken = true;
        state.failure ??= this.wrap(e, purpose) as Error;
      };
      client.on('error', onError);
      const c = client;
      return inTransaction(
        {
          session: this.session(c, state),
          begin: async () => {
            await this.query(`${purpose}: begin`, 'BEGIN', [], c);
          },
          commit: async () => {
            // COMMIT of a transaction that already failed answers ROLLBACK instead of an error.
            if ((await this.query(`${purpose}: commit`, 'COMMIT', [], c)).command === 'ROLLBACK') {
              throw new StoreError('STOKER_STORE_QUERY_FAILED', `PostgreSQL: ${purpose} was rolled back by the server`, {
                details: { purpose },
              });
            }
          },
          rollback: () =>
            c.query('ROLLBACK').then(
              () => true,
              () => false,
            ),
          release: async (discard) => {
            c.removeListener('error', onError);
            c.release(discard || broken ? true : undefined);
          },
        },
        state,
        fn,
      );
    });
  }

  /** Transactional DDL: the advisory lock serialises concurrent migrators and a failed migration leaves nothing behind. */
  migrating<T>(fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    return this.transaction('migrate', async (s) => {
      await s.rows('take the migration lock', 'SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      if (this.schema !== undefined) await s.ddl('create the schema', `CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      return fn(s);
    });
  }

  /**
   * A connected client outside the pool, with the same session settings, named
   * `stoker-<role>-<purpose>`. `idle_session_timeout` (PostgreSQL 14+) is switched off on
   * it: it is idle by design. Errors before `connect` resolves are the caller's; install
   * the caller's own 'error' listener before relying on it afterwards (a watch connection
   * has one that ignores them: its wait's query rejects instead).
   */
  async dedicatedClient(purpose: 'lock' | 'listen' | 'watch' | 'hot'): Promise<pg.Client> {
    const client = new pg.Client({ ...this.clientConfig, application_name: `stoker-${this.role}-${purpose}` });
    // until the caller installs its own: an error of an idle client must not crash the process
    const early = (e: Error): void => this.onError(e);
    client.on('error', early);
    try {
      await client.connect();
      try {
        await client.query('SET idle_session_timeout = 0');
      } catch (e) {
        if (sqlState(e) !== '42704') throw e; // undefined parameter: before PostgreSQL 14
      }
    } catch (e) {
      client.removeListener('error', early);
      await client.end().catch(() => undefined);
      throw this.wrap(e, `open a ${purpose} connection`);
    }
    client.removeListener('error', early);
    if (purpose === 'watch') client.on('error', () => undefined); // the wait's query rejects instead
    return client;
  }

  /** Refuses further calls; the pool is ended by {@link end}, after the adapter let go of its dedicated connections. */
  markClosed(): void {
    this.isClosed = true;
  }

  async end(): Promise<void> {
    await this.hot.close();
    await Promise.all([this.pool.end(), this.lazy?.end()]);
  }
}
