/**
 * MySQL 8 / MariaDB 10.6+ adapter (mysql2/promise pool). Behaves like {@link SqliteStore};
 * what differs is only what the dialect needs:
 *
 * - no `UPDATE … RETURNING` (MariaDB has it only for INSERT/DELETE, MySQL not at all): the
 *   claim is `SELECT … FOR UPDATE SKIP LOCKED; UPDATE …; SELECT` the rows back inside one
 *   short transaction; the rows stay locked, so what is read back is what was written;
 * - sessions run READ COMMITTED: locking reads and UPDATEs always see the latest committed
 *   row (RULES.md R4: a plain REPEATABLE READ snapshot can be stale), and no gap locks;
 * - connections use the FOUND_ROWS flag, so `affectedRows` counts *matched* rows: a fenced
 *   update that matched but changed nothing still reports true, and 0 always means fenced;
 * - DDL is not transactional: migrations run under `GET_LOCK` and every statement is
 *   idempotent (`IF NOT EXISTS`);
 * - deadlocks (1213) and lock wait timeouts (1205) roll back and re-run the whole
 *   transaction;
 * - liveness (protocol 4, RULES.md R11): {@link MysqlStore.registerEngine} takes
 *   `GET_LOCK('stoker_engine_<40 hex digits of SHA-256(namespace, engine id)>', 0)` on a
 *   dedicated connection (program_name `stoker-<role>-lock`; lock names are server-wide and
 *   at most 64 characters, hence the hash with the database and prefix in it), held until
 *   deregistration, and records that session's `CONNECTION_ID()` in the engine's row
 *   (`lock_session`); {@link MysqlStore.requeueExpired} declares an engine dead when its
 *   lease expired, or when its heartbeat is overdue and `IS_USED_LOCK` says its lock is not
 *   held by that session (the server drops it as soon as the session ends; a watcher may
 *   hold it for a moment after). No LISTEN/NOTIFY: engines poll.
 *
 * Values are bound with mysql2's `query` placeholders (client-side escaping, every value
 * through `?`); server-side prepared statements are avoided because statements with
 * variable IN lists would fill the per-connection statement cache.
 *
 * @example
 * ```ts
 * const store = new MysqlStore({ uri: 'mysql://stoker:secret@db:3306/stoker' });
 * await store.migrate();
 * const claims = await store.claimAtoms('engine-1', 8);
 * ```
 */
import mysql from 'mysql2/promise';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../core/canonical-json.js';
import type { JsonValue } from '../../core/json.js';
import { ConflictError, StoreError, isStokerError } from '../../errors.js';
import type { FlowGraph } from '../../flow/graph.js';
import { graphDigest, KnownGraphs } from '../graphs.js';
import { TERMINAL_RUN_STATUSES, type RunStatus } from '../states.js';
import { checkPrefix, migrationChecksum, pendingMigrations, withPrefix, type AppliedMigration } from '../migration.js';
import {
  ATOM_PATCH_COLUMNS,
  atomFromRow,
  claimFromRow,
  requeueEventKind,
  requeueSql,
  engineFromRow,
  eventFromRow,
  jsonColumn,
  patchValue,
  checkPruneOptions,
  runFromRow,
  supersededAtomEvents,
  signalFromRow,
  toJsonText,
} from '../rows.js';
import type {
  AtomRow,
  AtomUpdate,
  ClaimedAtom,
  DialectCapabilities,
  EngineRegistration,
  EngineRow,
  EventInput,
  EventFilter,
  EventRow,
  NewRun,
  RunFilter,
  RequeueOptions,
  WatchOptions,
  RunPatch,
  RunRow,
  RunTx,
  SignalRow,
  StartResult,
  Store,
  PruneOptions,
  PruneResult,
} from '../store.js';
import { mysqlMigrations } from './migrations.js';
import { MysqlLockStatements, type MysqlLockQuery } from './locks.js';
import { closeWatchConnections, watchOnOwnConnection, type WatchAnswer, type WatchConnections } from '../watch-connections.js';
import type { AcquiredLock, LockFilter, LockRow } from '../store.js';

type Raw = Record<string, unknown>;
type Conn = mysql.PoolConnection;

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
  /** MariaDB `idle_transaction_timeout` (RULES R12: at most half the lease), default 15 000 */
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

const RUN_COLUMNS = `id, flow, version, \`key\`, status, args, result, failure, parent_run_id, parent_atom,
  pending_atoms, revert_pending, atom_count, graph_hash, created_at, updated_at, finished_at`;
const CLAIM_COLUMNS = 'run_id, idx, state, epoch, attempt, execution, journal, failure';
const MIGRATION_LOCK = 'stoker_migrate';
/** rows per multi-row INSERT and keys per `(run_id, idx)` list: keeps statements well inside the range optimizer's limits */
const CHUNK = 200;
/** A requeue: READY / REVERT_READY again, or CANCELLED when the run has ended (rows.ts requeueSql). */
const MYSQL_REQUEUE = requeueSql('state', '(SELECT r.status FROM {p}runs r WHERE r.id = {p}atoms.run_id)', 'NOW(6)');
/** errno of a deadlock and of a lock wait timeout: the whole transaction may run again */
const RETRYABLE_ERRNOS = new Set([1213, 1205]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_HOST_NOT_PRIVILEGED',
  'ER_HOST_IS_BLOCKED',
]);

interface TxState {
  done: boolean;
  failure: unknown;
}

/** SQL of an engine's GET_LOCK name (at most 54 characters); the first `?` is the lock namespace of this store. */
const ENGINE_LOCK_NAME = (id: string): string => `CONCAT('stoker_engine_', LEFT(SHA2(CONCAT(?, ${id}), 256), 40))`;
/** The GET_LOCK name that queues the supersedes of one key (at most 64 characters; lock names are server-wide). */
function supersedeLockName(namespace: string, key: string): string {
  return `stoker_supersede_${createHash('sha256').update(`${namespace}supersede:${key}`).digest('hex').slice(0, 40)}`;
}
/** the largest `wait_timeout`: the lock connection is idle by design and must not be closed for it */
const LOCK_SESSION_WAIT_TIMEOUT_S = 31_536_000;

/** An engine's session lock: the dedicated connection that holds it. */
interface SessionLock {
  conn: mysql.Connection;
  /** registerEngine has completed: a loss from now on is reported to the engine */
  registered: boolean;
  /** deregisterEngine/close ended it on purpose */
  released: boolean;
  /** why the session was lost, once it was */
  lost: Error | undefined;
}

interface Target {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/**
 * Reads a `mysql://` or `mariadb://` URL. Throws STOKER_STORE_URL_INVALID when it is not one
 * or names no database.
 */
export function parseMysqlUrl(uri: string): Target {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new StoreError('STOKER_STORE_URL_INVALID', 'the MySQL store URL is malformed; expected mysql://user:password@host:port/database');
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new StoreError('STOKER_STORE_URL_INVALID', `a MySQL store URL starts with mysql:// or mariadb://, not ${u.protocol}//`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!u.hostname || !database || database.includes('/')) {
    throw new StoreError(
      'STOKER_STORE_URL_INVALID',
      'a MySQL store URL must name a host and a database: mysql://user:password@host:port/database',
    );
  }
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    database,
  };
}

export class MysqlStore implements Store {
  readonly capabilities: DialectCapabilities = {
    name: 'mysql',
    skipLocked: true,
    returning: false,
    advisoryLocks: true,
    listenNotify: false,
    transactionalDdl: false,
    singleWriter: false,
    fastCompletions: false,
    pushWakeups: false,
    localSupervisor: false,
  };
  readonly fast = null;
  /** MySQL has no push: engines find new work by polling */
  readonly wakeups = null;
  readonly supervisor = null;
  private readonly pool: mysql.Pool;
  private readonly p: string;
  /** host:port/database, for messages (never the password) */
  readonly target: string;
  private readonly maxAttempts: number;
  private readonly lockWaitS: number;
  private readonly idleInTransactionS: number;
  private readonly statementTimeoutMs: number;
  /** core connections whose session settings are in place */
  private readonly prepared = new WeakSet<object>();
  private sessionSql: string[] | undefined;
  private readonly sqlCache = new Map<string, string>();
  private closed = false;
  private readonly graphs = new KnownGraphs();
  /** settings of every connection, pooled or dedicated */
  private readonly connectionOptions: mysql.ConnectionOptions;
  private readonly role: string;
  private readonly onError: (error: Error) => void;
  /** hashed with engine ids into GET_LOCK names: lock names are server-wide */
  private readonly lockNamespace: string;
  /** session locks of the engines registered through this store */
  private readonly sessionLocks = new Map<string, SessionLock>();
  /** connections of watchEngine (closed by close()) */
  private readonly watch: WatchConnections<mysql.Connection> = {
    busy: new Set(),
    idle: [],
    open: async () => {
      const conn = await this.lockConnection('watch');
      conn.on('error', () => undefined); // the wait's query rejects instead
      return conn;
    },
    close: (conn) => conn.destroy(),
    closed: () => this.closed,
  };

  constructor(options: MysqlStoreOptions) {
    this.p = checkPrefix(options.tablePrefix ?? 'stoker_');
    const t = parseMysqlUrl(options.uri);
    this.target = `${t.host}:${t.port}/${t.database}`;
    this.maxAttempts = Math.max(1, options.maxTransactionAttempts ?? 5);
    this.lockWaitS = Math.max(1, Math.ceil((options.lockTimeoutMs ?? 5_000) / 1000));
    this.idleInTransactionS = Math.max(1, Math.ceil((options.idleInTransactionTimeoutMs ?? 15_000) / 1000));
    this.statementTimeoutMs = Math.max(1, Math.round(options.statementTimeoutMs ?? 30_000));
    const role = options.role ?? 'store';
    if (!/^[a-z][a-z0-9_-]{0,40}$/.test(role))
      throw new StoreError('STOKER_CONFIG_INVALID', `role "${role}" must match [a-z][a-z0-9_-]{0,40}`);
    this.role = role;
    this.lockNamespace = `${t.database}.${this.p}engine:`;
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

  // ---------------------------------------------------------------- plumbing

  private sql(text: string): string {
    let s = this.sqlCache.get(text);
    if (s === undefined) {
      s = withPrefix(text, this.p);
      this.sqlCache.set(text, s);
    }
    return s;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('STOKER_STORE_CLOSED', 'the store is closed');
  }

  private wrap(e: unknown, purpose: string): unknown {
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

  private isRetryable(e: unknown): boolean {
    const err = driverError(e);
    if (!err) return false;
    if (err.errno !== undefined && RETRYABLE_ERRNOS.has(err.errno)) return true;
    // Two starts with the same new key raced: the loser runs again and finds the winner.
    return err.errno === 1062 && (err.message ?? '').includes(`${this.p}runs_active_key`);
  }

  private async withRetry<T>(op: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (e) {
        if (attempt >= this.maxAttempts || !this.isRetryable(e)) throw e;
        await sleep(Math.random() * 10 * 2 ** attempt);
      }
    }
  }

  /** A pooled connection with this store's session settings (R12) in place. */
  private async acquire(purpose: string): Promise<Conn> {
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
            ? // R12: a session frozen inside a transaction must not hold its row locks for
              // hours; MariaDB ends it after this (MySQL 8 has no such setting)
              `SESSION max_statement_time = ${this.statementTimeoutMs / 1000}, SESSION idle_transaction_timeout = ${this.idleInTransactionS}`
            : `SESSION max_execution_time = ${this.statementTimeoutMs}`),
        'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
      ];
    }
    return this.sessionSql;
  }

  private async rows(purpose: string, text: string, params: readonly unknown[], conn: mysql.Connection): Promise<Raw[]> {
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(this.sql(text), params as unknown[]);
      return rows as Raw[];
    } catch (e) {
      throw this.wrap(e, purpose);
    }
  }

  /** Runs a write; returns the number of *matched* rows (FOUND_ROWS). */
  private async exec(purpose: string, text: string, params: readonly unknown[], conn: Conn): Promise<number> {
    try {
      const [res] = await conn.query<mysql.ResultSetHeader>(this.sql(text), params as unknown[]);
      return res.affectedRows;
    } catch (e) {
      throw this.wrap(e, purpose);
    }
  }

  /** One statement outside any transaction, on a session with the right settings. */
  private async single<T>(purpose: string, fn: (conn: Conn) => Promise<T>): Promise<T> {
    const conn = await this.acquire(purpose);
    let discard = false;
    try {
      return await fn(conn);
    } catch (e) {
      if (isStokerError(e) && e.code === 'STOKER_STORE_UNREACHABLE') discard = true;
      throw e;
    } finally {
      if (discard) conn.destroy();
      else conn.release();
    }
  }

  /**
   * START TRANSACTION; fn; COMMIT on one pooled connection, ROLLBACK on any error; the whole
   * transaction runs again after a deadlock or lock wait timeout (so `fn` may run more than once).
   */
  private async transaction<T>(purpose: string, fn: (conn: Conn, state: TxState) => Promise<T>, queue?: { lockName: string }): Promise<T> {
    return this.withRetry(async () => {
      const conn = await this.acquire(purpose);
      const state: TxState = { done: false, failure: undefined };
      let discard = false;
      let queued = false;
      try {
        if (queue) {
          // a named lock of the session (MySQL has no transaction-scoped one), taken before
          // any row lock and let go after the commit: callers with the same name run one by one
          const got = await this.rows(`${purpose}: queue`, 'SELECT GET_LOCK(?, ?) AS ok', [queue.lockName, this.lockWaitS], conn);
          if (Number(got[0]?.ok) !== 1) {
            throw new StoreError(
              'STOKER_STORE_QUERY_FAILED',
              `MySQL: ${purpose} failed: waited ${this.lockWaitS} s for its turn (lock ${queue.lockName})`,
              {
                cause: Object.assign(new Error('Lock wait timeout exceeded'), { errno: 1205 }),
                details: { purpose },
              },
            );
          }
          queued = true;
        }
        await this.exec(`${purpose}: begin`, 'START TRANSACTION', [], conn);
        const out = await fn(conn, state);
        state.done = true;
        // InnoDB rolls the whole transaction back on a deadlock and continues in autocommit:
        // after any failed statement the only safe end is ROLLBACK.
        if (state.failure !== undefined) throw state.failure;
        await this.exec(`${purpose}: commit`, 'COMMIT', [], conn);
        return out;
      } catch (e) {
        state.done = true;
        try {
          await conn.query('ROLLBACK');
        } catch {
          discard = true;
        }
        if (isStokerError(e) && e.code === 'STOKER_STORE_UNREACHABLE') discard = true;
        throw e;
      } finally {
        if (queued && !discard) await conn.query('SELECT RELEASE_LOCK(?)', [queue!.lockName]).catch(() => (discard = true));
        if (discard) conn.destroy();
        else conn.release();
      }
    });
  }

  async migrate(): Promise<number[]> {
    return this.single('migrate', async (c) => {
      const got = await this.rows('take the migration lock', 'SELECT GET_LOCK(?, 30) AS ok', [MIGRATION_LOCK], c);
      if (Number(got[0]?.ok) !== 1) {
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `MySQL: another process held the migration lock "${MIGRATION_LOCK}" for 30 s`, {
          details: { purpose: 'migrate' },
        });
      }
      try {
        await this.exec(
          'create the migrations table',
          `CREATE TABLE IF NOT EXISTS {p}migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, checksum CHAR(64) NOT NULL, applied_at DATETIME(6) NOT NULL)
           ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
          [],
          c,
        );
        const applied = (await this.rows('read applied migrations', `SELECT version, name, checksum FROM {p}migrations`, [], c)).map(
          (r): AppliedMigration => ({ version: Number(r.version), name: String(r.name), checksum: String(r.checksum) }),
        );
        const todo = pendingMigrations(mysqlMigrations, applied);
        for (const m of todo) {
          for (const [i, s] of m.statements.entries()) await this.exec(`migration ${m.version} statement ${i + 1}`, s, [], c);
          await this.exec(
            'record a migration',
            `INSERT INTO {p}migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, NOW(6))`,
            [m.version, m.name, migrationChecksum(m)],
            c,
          );
        }
        return todo.map((m) => m.version);
      } finally {
        await c.query('SELECT RELEASE_LOCK(?)', [MIGRATION_LOCK]).catch(() => undefined);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Ending the lock sessions frees the engines' locks: others may take their atoms over.
    const locks = [...this.sessionLocks.values()];
    this.sessionLocks.clear();
    for (const l of locks) l.released = true;
    closeWatchConnections(this.watch);
    await Promise.allSettled(locks.map((l) => l.conn.end()));
    await this.pool.end();
  }

  /** Verifies that the database is reachable and accepts the credentials (`SELECT 1`). */
  async ping(): Promise<void> {
    await this.single('connect', (c) => this.rows('connect', 'SELECT 1', [], c));
  }

  async now(): Promise<Date> {
    return this.single('read the clock', async (c) => (await this.rows('read the clock', 'SELECT NOW(6) AS t', [], c))[0]!.t as Date);
  }

  // ---------------------------------------------------------------- runs

  private async startRunOn(c: Conn, run: NewRun): Promise<StartResult> {
    const argsText = canonicalJson(run.args);
    let superseded: string | undefined;
    if (run.key !== null) {
      const active = (
        await this.rows('find the active run of a key', `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE active_key = ? FOR UPDATE`, [run.key], c)
      )[0];
      if (active) {
        if (!run.supersede) {
          if (canonicalJson(jsonColumn(active.args) as JsonValue) === argsText && active.flow === run.flow) {
            return { run: runFromRow(active), created: false };
          }
          throw new ConflictError(
            'STOKER_RUN_KEY_CONFLICT',
            `run ${String(active.id)} with key "${run.key}" is still active with different arguments`,
            {
              details: { runId: String(active.id), key: run.key },
            },
          );
        }
        superseded = String(active.id);
        await this.supersedeOn(c, superseded);
      }
    }
    const atoms = run.graph.atoms;
    const graph = graphDigest(run.graph);
    if (!this.graphs.has(graph.hash)) {
      await this.exec(
        'store a flow graph',
        `INSERT IGNORE INTO {p}graphs (hash, graph, created_at) VALUES (?, ?, NOW(6))`,
        [graph.hash, graph.text],
        c,
      );
    }
    await this.exec(
      'insert a run',
      `INSERT INTO {p}runs (id, flow, version, \`key\`, active_key, status, args, graph_hash, parent_run_id, parent_atom, pending_atoms, atom_count, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, NOW(6), NOW(6))`,
      [
        run.id,
        run.flow,
        run.version,
        run.key,
        run.key,
        argsText,
        graph.hash,
        run.parentRunId ?? null,
        run.parentAtom ?? null,
        atoms.length,
        atoms.length,
      ],
      c,
    );
    for (let i = 0; i < atoms.length; i += CHUNK) {
      const chunk = atoms.slice(i, i + CHUNK);
      const params: unknown[] = [];
      for (const a of chunk) {
        const ready = a.predecessors.length === 0;
        params.push(run.id, a.index, a.name, ready ? 'READY' : 'PENDING', a.predecessors.length, ready ? 1 : 0);
      }
      await this.exec(
        'insert the atoms of a run',
        `INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, IF(?, NOW(6), NULL), NOW(6))').join(', ')}`,
        params,
        c,
      );
    }
    await this.insertEventsOn(c, [
      { runId: run.id, atom: null, kind: 'run.created', toState: 'PENDING', data: superseded ? { supersedes: superseded } : null },
    ]);
    const row = (await this.rows('read a new run', `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id = ?`, [run.id], c))[0]!;
    return { run: runFromRow(row), created: true, ...(superseded ? { superseded } : {}) };
  }

  private async supersedeOn(c: Conn, runId: string): Promise<void> {
    await this.exec(
      'supersede a run',
      `UPDATE {p}runs SET status = 'SUPERSEDED', active_key = NULL, finished_at = NOW(6), updated_at = NOW(6), row_version = row_version + 1 WHERE id = ?`,
      [runId],
      c,
    );
    // locked: a claim may take a READY atom meanwhile (it is then RUNNING and left alone)
    const open = await this.rows(
      'lock the open atoms of a superseded run',
      `SELECT idx, state FROM {p}atoms WHERE run_id = ? AND state IN ('PENDING', 'READY', 'WAITING', 'REVERT_PENDING', 'REVERT_READY') ORDER BY idx FOR UPDATE`,
      [runId],
      c,
    );
    if (open.length > 0) {
      await this.exec(
        'cancel the atoms of a superseded run',
        `UPDATE {p}atoms SET state = 'CANCELLED', ready_at = NULL, updated_at = NOW(6) WHERE run_id = ? AND idx IN (${open.map(() => '?').join(', ')})`,
        [runId, ...open.map((a) => a.idx)],
        c,
      );
    }
    await this.insertEventsOn(c, [
      ...supersededAtomEvents(runId, open),
      { runId, atom: null, kind: 'run.superseded', toState: 'SUPERSEDED', data: { cancelledAtoms: open.length } },
    ]);
  }

  async startRuns(runs: readonly NewRun[]): Promise<RunRow[]> {
    if (runs.some((r) => r.key !== null))
      throw new StoreError('STOKER_CONFIG_INVALID', 'startRuns takes runs without keys; start keyed runs one by one');
    if (runs.length === 0) return [];
    const rows = await this.transaction('start runs', async (c) => {
      const out: RunRow[] = [];
      for (const r of runs) out.push((await this.startRunOn(c, r)).run);
      return out;
    });
    for (const r of runs) this.graphs.committedHash(graphDigest(r.graph).hash);
    return rows;
  }

  async startRun(run: NewRun): Promise<StartResult> {
    // Supersedes of one key queue (as on PostgreSQL): a FOR UPDATE wait alone ends with no
    // row under READ COMMITTED (the row it waited for lost its key), so a back-to-back
    // superseder made the other one fail on the unique index until it ran out of attempts
    // (test/chaos/supersede-across-engines.test.ts, once in CI).
    const queue = run.key !== null && run.supersede ? { lockName: supersedeLockName(this.lockNamespace, run.key) } : undefined;
    const started = await this.transaction('start a run', (c) => this.startRunOn(c, run), queue);
    this.graphs.committedHash(graphDigest(run.graph).hash);
    return started;
  }

  async claimAtoms(engineId: string, limit: number): Promise<ClaimedAtom[]> {
    if (limit <= 0) return [];
    return this.transaction('claim atoms', async (c) => {
      // SKIP LOCKED (MariaDB 10.6+, MySQL 8): concurrent claimers take different rows.
      const picked = await this.rows(
        'pick claimable atoms',
        `SELECT run_id, idx FROM {p}atoms
         WHERE state IN ('READY', 'WAITING', 'REVERT_READY') AND ready_at <= NOW(6)
         ORDER BY ready_at LIMIT ? FOR UPDATE SKIP LOCKED`,
        [limit],
        c,
      );
      if (picked.length === 0) return [];
      const keys = picked.map((r) => ({ runId: String(r.run_id), index: Number(r.idx) }));
      const byKey = new Map<string, ClaimedAtom>();
      for (const chunk of chunks(keys)) {
        const where = keyList(chunk);
        // MySQL evaluates SET left to right, each seeing the new values of the ones before:
        // `execution` must read `state` before `state` changes.
        await this.exec(
          'claim the picked atoms',
          `UPDATE {p}atoms SET
             execution = CASE state WHEN 'REVERT_READY' THEN execution ELSE execution + 1 END,
             state = CASE state WHEN 'REVERT_READY' THEN 'REVERTING' ELSE 'RUNNING' END,
             claimed_by = ?, claimed_at = NOW(6), epoch = epoch + 1, ready_at = NULL, updated_at = NOW(6)
           WHERE ${where.text}`,
          [engineId, ...where.params],
          c,
        );
        for (const r of await this.rows(
          'read the claimed atoms',
          `SELECT ${CLAIM_COLUMNS} FROM {p}atoms WHERE ${where.text}`,
          where.params,
          c,
        )) {
          const claim = claimFromRow(r);
          byKey.set(`${claim.index}:${claim.runId}`, claim);
        }
      }
      const claims = keys.flatMap((k) => byKey.get(`${k.index}:${k.runId}`) ?? []);
      await this.insertEventsOn(
        c,
        claims.map((cl) => ({ runId: cl.runId, atom: cl.index, kind: 'atom.claimed', toState: cl.state, engineId, epoch: cl.epoch })),
      );
      return claims;
    });
  }

  /**
   * {@inheritDoc Store.runTransaction}
   *
   * On a deadlock or lock wait timeout the transaction is rolled back and `fn` runs again
   * from the start (up to `maxTransactionAttempts`).
   */
  async runTransaction<T>(runIds: readonly string[], fn: (tx: RunTx) => Promise<T>): Promise<T> {
    const ids = [...new Set(runIds)].sort();
    return this.transaction('run transaction', async (c, state) => {
      const runs = new Map<string, RunRow>();
      if (ids.length > 0) {
        for (const r of await this.rows(
          'lock runs',
          `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id IN (?) ORDER BY id FOR UPDATE`,
          [ids],
          c,
        )) {
          runs.set(String(r.id), runFromRow(r));
        }
      }
      try {
        return await fn(this.makeTx(c, runs, state));
      } finally {
        state.done = true;
      }
    });
  }

  private makeTx(c: Conn, runs: Map<string, RunRow>, state: TxState): RunTx {
    const store = this;
    async function guarded<R>(what: string, op: () => Promise<R>): Promise<R> {
      if (state.done)
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `MySQL: ${what} was called after its transaction ended`, {
          details: { purpose: what },
        });
      if (state.failure !== undefined) throw state.failure;
      try {
        return await op();
      } catch (e) {
        if (isStokerError(e) && (e.code === 'STOKER_STORE_QUERY_FAILED' || e.code === 'STOKER_STORE_UNREACHABLE')) state.failure ??= e;
        throw e;
      }
    }
    return {
      run(runId) {
        const r = runs.get(runId);
        if (!r) throw new StoreError('STOKER_RUN_NOT_FOUND', `run ${runId} is not locked by this transaction (or does not exist)`);
        return r;
      },
      getAtoms(runId, indexes) {
        return guarded('getAtoms', () => store.getAtomsOn(c, runId, indexes));
      },
      getAtomsInStates(runId, states) {
        return guarded('getAtomsInStates', async () => {
          if (states.length === 0) return [];
          return (
            await store.rows(
              'read atoms by state',
              `SELECT * FROM {p}atoms WHERE run_id = ? AND state IN (?) ORDER BY idx`,
              [runId, [...states]],
              c,
            )
          ).map(atomFromRow);
        });
      },
      updateAtoms(runId, updates) {
        return guarded('updateAtoms', async () => {
          const out: boolean[] = [];
          for (const u of updates) out.push(await store.updateAtomOn(c, runId, u));
          return out;
        });
      },
      decrementPending(runId, entries) {
        return guarded('decrementPending', () => store.decrementPendingOn(c, runId, entries));
      },
      claimAtom(runId, index, engineId) {
        return guarded('claimAtom', async () => {
          const matched = await store.exec(
            'claim an atom (local continuation)',
            `UPDATE {p}atoms SET execution = execution + 1, state = 'RUNNING', claimed_by = ?, claimed_at = NOW(6), epoch = epoch + 1, ready_at = NULL, updated_at = NOW(6)
             WHERE run_id = ? AND idx = ? AND state = 'READY'`,
            [engineId, runId, index],
            c,
          );
          if (matched !== 1) return null;
          const row = (
            await store.rows('read a claimed atom', `SELECT ${CLAIM_COLUMNS} FROM {p}atoms WHERE run_id = ? AND idx = ?`, [runId, index], c)
          )[0]!;
          return claimFromRow(row);
        });
      },
      updateRun(runId, patch) {
        return guarded('updateRun', async () => {
          const row = await store.updateRunOn(c, runId, patch);
          if (row) runs.set(runId, row);
        });
      },
      insertEvents(events) {
        return guarded('insertEvents', () => store.insertEventsOn(c, events));
      },
      startRun(run) {
        return guarded('startRun', () => store.startRunOn(c, run));
      },
      // Claims stay in their own transaction here: a claim inside the completion commit
      // would hold the runs' row locks while it looks for claimable atoms (MySQL locks the
      // index ranges it reads). The engine claims again right after the commit.
      async claimMore() {
        return [];
      },
      signalCount(runId, name) {
        return guarded('signalCount', async () => {
          const r = await store.rows(
            'count signals',
            `SELECT COUNT(*) AS n FROM {p}signals WHERE run_id = ? AND name = ?`,
            [runId, name],
            c,
          );
          return Number(r[0]!.n);
        });
      },
    };
  }

  private async getAtomsOn(c: Conn, runId: string, indexes: readonly number[]): Promise<AtomRow[]> {
    if (indexes.length === 0) return [];
    const out: AtomRow[] = [];
    for (let i = 0; i < indexes.length; i += 1000) {
      const chunk = indexes.slice(i, i + 1000);
      out.push(
        ...(await this.rows('read atoms', `SELECT * FROM {p}atoms WHERE run_id = ? AND idx IN (?) ORDER BY idx`, [runId, chunk], c)).map(
          atomFromRow,
        ),
      );
    }
    return out;
  }

  private async updateAtomOn(c: Conn, runId: string, u: AtomUpdate): Promise<boolean> {
    const sets: string[] = [];
    const params: unknown[] = [];
    // Every assignment is a bound value (none reads another column), so MySQL's
    // left-to-right SET evaluation cannot change the outcome.
    for (const [field, column] of Object.entries(ATOM_PATCH_COLUMNS) as [keyof typeof ATOM_PATCH_COLUMNS, string][]) {
      if (field in u.patch && u.patch[field] !== undefined) {
        sets.push(`${column} = ?`);
        params.push(patchValue(field, u.patch[field]));
      }
    }
    if (u.patch.readyAt !== undefined) {
      if (u.patch.readyAt === null) sets.push('ready_at = NULL');
      else {
        sets.push('ready_at = DATE_ADD(NOW(6), INTERVAL ? MICROSECOND)');
        params.push(Math.max(0, Math.round(u.patch.readyAt.delayMs)) * 1000);
      }
    }
    sets.push('updated_at = NOW(6)');
    const where = ['run_id = ?', 'idx = ?'];
    params.push(runId, u.index);
    if (u.epoch !== undefined) {
      where.push('epoch = ?');
      params.push(u.epoch);
    }
    if (u.expectRevertRequested !== undefined) {
      where.push('revert_requested = ?');
      params.push(u.expectRevertRequested ? 1 : 0);
    }
    if (u.expectStates && u.expectStates.length > 0) {
      where.push('state IN (?)');
      params.push([...u.expectStates]);
    }
    const matched = await this.exec(
      u.epoch !== undefined ? 'fenced atom update' : 'atom update',
      `UPDATE {p}atoms SET ${sets.join(', ')} WHERE ${where.join(' AND ')}`,
      params,
      c,
    );
    return matched === 1;
  }

  private async decrementPendingOn(c: Conn, runId: string, entries: readonly { index: number; disable: boolean }[]): Promise<AtomRow[]> {
    if (entries.length === 0) return [];
    const indexes = entries.map((e) => e.index);
    if (new Set(indexes).size !== indexes.length) {
      // The same atom twice: one statement per entry, so each returned row shows the state
      // after its own decrement, exactly as the SQLite adapter reports it.
      const out: AtomRow[] = [];
      for (const e of entries) out.push(...(await this.decrementPendingOn(c, runId, [e])));
      return out;
    }
    // No RETURNING: lock the rows that are still PENDING first, so that what is read back
    // afterwards is exactly the set this statement changed (SQLite returns only those).
    const pendingNow = new Set(
      (
        await this.rows(
          'lock pending successors',
          `SELECT idx FROM {p}atoms WHERE run_id = ? AND idx IN (?) AND state = 'PENDING' FOR UPDATE`,
          [runId, indexes],
          c,
        )
      ).map((r) => Number(r.idx)),
    );
    const todo = entries.filter((e) => pendingNow.has(e.index));
    if (todo.length === 0) return [];
    const targets = todo.map((e) => e.index);
    const disabled = todo.filter((e) => e.disable).map((e) => e.index);
    // Reaching 0 without `skip` makes the atom READY in the same statement. MySQL evaluates
    // SET left to right, each assignment seeing the ones before it: `ready_at` and `state`
    // come first so that they read the old `pending` and `skip`.
    const becomesReady = `pending = 1 AND skip = 0${disabled.length > 0 ? ' AND idx NOT IN (?)' : ''}`;
    await this.exec(
      'decrement pending counters',
      `UPDATE {p}atoms SET
         ready_at = CASE WHEN ${becomesReady} THEN NOW(6) ELSE ready_at END,
         state = CASE WHEN ${becomesReady} THEN 'READY' ELSE state END,
         pending = pending - 1,
         ${disabled.length > 0 ? 'skip = CASE WHEN idx IN (?) THEN 1 ELSE skip END,' : ''}
         updated_at = NOW(6)
       WHERE run_id = ? AND idx IN (?) AND state = 'PENDING'`,
      disabled.length > 0 ? [disabled, disabled, disabled, runId, targets] : [runId, targets],
      c,
    );
    const byIndex = new Map((await this.getAtomsOn(c, runId, targets)).map((a) => [a.index, a]));
    return todo.flatMap((e) => byIndex.get(e.index) ?? []);
  }

  private async updateRunOn(c: Conn, runId: string, patch: RunPatch): Promise<RunRow | undefined> {
    const sets: string[] = ['updated_at = NOW(6)', 'row_version = row_version + 1'];
    const params: unknown[] = [];
    if (patch.status !== undefined) {
      sets.push('status = ?');
      params.push(patch.status);
      if (TERMINAL_RUN_STATUSES.includes(patch.status)) sets.push('active_key = NULL', 'finished_at = NOW(6)');
    }
    if (patch.result !== undefined) {
      sets.push('result = ?');
      params.push(toJsonText(patch.result));
    }
    if (patch.failure !== undefined) {
      sets.push('failure = ?');
      params.push(toJsonText(patch.failure));
    }
    if (patch.pendingAtomsDelta) {
      sets.push('pending_atoms = pending_atoms + ?');
      params.push(patch.pendingAtomsDelta);
    }
    if (patch.revertPending !== undefined) {
      // set, then add the delta if both are given (one assignment: same in every dialect)
      sets.push('revert_pending = ?');
      params.push(patch.revertPending + (patch.revertPendingDelta ?? 0));
    } else if (patch.revertPendingDelta) {
      sets.push('revert_pending = revert_pending + ?');
      params.push(patch.revertPendingDelta);
    }
    const matched = await this.exec('update a run', `UPDATE {p}runs SET ${sets.join(', ')} WHERE id = ?`, [...params, runId], c);
    if (matched !== 1) return undefined;
    const row = (await this.rows('read an updated run', `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id = ?`, [runId], c))[0];
    return row ? runFromRow(row) : undefined;
  }

  private async insertEventsOn(c: Conn, events: readonly EventInput[]): Promise<void> {
    for (let i = 0; i < events.length; i += CHUNK) {
      const chunk = events.slice(i, i + CHUNK);
      const params: unknown[] = [];
      for (const e of chunk) {
        params.push(
          e.runId,
          e.atom,
          e.kind,
          e.fromState ?? null,
          e.toState ?? null,
          e.engineId ?? null,
          e.epoch ?? null,
          toJsonText(e.data ?? null),
        );
      }
      await this.exec(
        'insert events',
        `INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, NOW(6))').join(', ')}`,
        params,
        c,
      );
    }
  }

  // ---------------------------------------------------------------- reads

  async getRun(id: string): Promise<RunRow | null> {
    return this.single('read a run', async (c) => {
      const r = (await this.rows('read a run', `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id = ?`, [id], c))[0];
      return r ? runFromRow(r) : null;
    });
  }

  async getRuns(ids: readonly string[]): Promise<RunRow[]> {
    if (ids.length === 0) return [];
    return this.single('read runs', async (c) => {
      const out: RunRow[] = [];
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        const rows = await this.rows(
          'read runs',
          `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id IN (${chunk.map(() => '?').join(',')})`,
          chunk,
          c,
        );
        out.push(...rows.map(runFromRow));
      }
      return out;
    });
  }

  async getRunStatuses(ids: readonly string[]): Promise<Map<string, RunStatus>> {
    if (ids.length === 0) return new Map();
    return this.single('read run statuses', async (c) => {
      const out = new Map<string, RunStatus>();
      for (let i = 0; i < ids.length; i += 1000) {
        for (const r of await this.rows(
          'read run statuses',
          `SELECT id, status FROM {p}runs WHERE id IN (?)`,
          [ids.slice(i, i + 1000)],
          c,
        )) {
          out.set(String(r.id), r.status as RunStatus);
        }
      }
      return out;
    });
  }

  async getRunGraph(id: string): Promise<FlowGraph | null> {
    return this.single('read a run graph', async (c) => {
      const r = (await this.rows('read a run graph', `SELECT graph_hash FROM {p}runs WHERE id = ?`, [id], c))[0];
      if (!r) return null;
      const hash = String(r.graph_hash);
      const known = this.graphs.get(hash);
      if (known) return known;
      const g = (await this.rows('read a flow graph', `SELECT graph FROM {p}graphs WHERE hash = ?`, [hash], c))[0];
      if (!g)
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `run ${id} refers to graph ${hash}, which is not stored`, {
          details: { runId: id, hash },
        });
      const graph = jsonColumn<FlowGraph>(g.graph)!;
      this.graphs.remember(hash, graph);
      return graph;
    });
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.status && filter.status.length > 0) {
      where.push('status IN (?)');
      params.push([...filter.status]);
    }
    if (filter.flow !== undefined) {
      where.push('flow = ?');
      params.push(filter.flow);
    }
    if (filter.key !== undefined) {
      where.push('`key` = ?');
      params.push(filter.key);
    }
    if (filter.parentRunId !== undefined) {
      where.push('parent_run_id = ?');
      params.push(filter.parentRunId);
    }
    if (filter.before !== undefined) {
      where.push(`(created_at, id) < (SELECT created_at, id FROM {p}runs WHERE id = ?)`);
      params.push(filter.before);
    }
    params.push(filter.limit ?? 100);
    const text = `SELECT ${RUN_COLUMNS} FROM {p}runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.single('list runs', async (c) => (await this.rows('list runs', text, params, c)).map(runFromRow));
  }

  async getAtoms(runId: string): Promise<AtomRow[]> {
    return this.single('read the atoms of a run', async (c) =>
      (await this.rows('read the atoms of a run', `SELECT * FROM {p}atoms WHERE run_id = ? ORDER BY idx`, [runId], c)).map(atomFromRow),
    );
  }

  async getAtomResults(runId: string, indexes: readonly number[]): Promise<Map<number, JsonValue | null>> {
    if (indexes.length === 0) return new Map();
    return this.single(
      'read atom results',
      async (c) => new Map((await this.getAtomsOn(c, runId, indexes)).map((a) => [a.index, a.result])),
    );
  }

  async listEvents(filter: EventFilter = {}): Promise<EventRow[]> {
    const afterId = filter.afterId ?? 0;
    const limit = filter.limit ?? 10_000;
    return this.single('list events', async (c) =>
      (filter.runId === undefined
        ? await this.rows('list events', `SELECT * FROM {p}events WHERE id > ? ORDER BY id LIMIT ?`, [afterId, limit], c)
        : await this.rows(
            'list events',
            `SELECT * FROM {p}events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?`,
            [filter.runId, afterId, limit],
            c,
          )
      ).map(eventFromRow),
    );
  }

  /** {@inheritDoc Store.pruneRuns} One transaction; the runs it takes are locked (SKIP LOCKED: two pruners take different runs). */
  async pruneRuns(options: PruneOptions): Promise<PruneResult> {
    this.assertOpen();
    const { olderThanMs, limit } = checkPruneOptions(options);
    const terminal = [...TERMINAL_RUN_STATUSES];
    const cutoff = `DATE_SUB(NOW(6), INTERVAL ${Math.round(olderThanMs) * 1000} MICROSECOND)`;
    const victims = `SELECT r.id FROM {p}runs r
      WHERE r.status IN (?) AND r.finished_at < ${cutoff}
        AND NOT EXISTS (SELECT 1 FROM {p}runs p WHERE p.id = r.parent_run_id AND p.status NOT IN (?))
        AND NOT EXISTS (SELECT 1 FROM {p}runs c WHERE c.parent_run_id = r.id AND c.status NOT IN (?))
      LIMIT ?`;
    const engines = `{p}engines WHERE lease_expires_at < ${cutoff}
        AND NOT EXISTS (SELECT 1 FROM {p}atoms a WHERE a.claimed_by = {p}engines.id AND a.state IN ('RUNNING', 'REVERTING'))`;
    const params = [terminal, terminal, terminal, limit];
    if (options.dryRun) {
      return this.single('count runs to prune', async (c) => {
        const ids = (await this.rows('count runs to prune', victims, params, c)).map((r) => String(r.id));
        const count = async (table: string) =>
          ids.length === 0
            ? 0
            : Number(
                (await this.rows(`count ${table} to prune`, `SELECT count(*) AS n FROM {p}${table} WHERE run_id IN (?)`, [ids], c))[0]!.n,
              );
        const [row] = await this.rows('count engines to prune', `SELECT count(*) AS n FROM ${engines}`, [], c);
        return {
          runs: ids.length,
          atoms: await count('atoms'),
          events: await count('events'),
          signals: await count('signals'),
          engines: Number(row!.n),
        };
      });
    }
    return this.transaction('prune runs', async (c) => {
      const ids = (await this.rows('lock runs to prune', `${victims} FOR UPDATE SKIP LOCKED`, params, c)).map((r) => String(r.id));
      const del = async (table: string, column = 'run_id') =>
        ids.length === 0 ? 0 : this.exec(`prune ${table}`, `DELETE FROM {p}${table} WHERE ${column} IN (?)`, [ids], c);
      const events = await del('events');
      const atoms = await del('atoms');
      const signals = await del('signals');
      const runs = await del('runs', 'id');
      return { runs, atoms, events, signals, engines: await this.exec('prune engines', `DELETE FROM ${engines}`, [], c) };
    });
  }

  // ---------------------------------------------------------------- signals and waits

  async sendSignal(runId: string, name: string, payload: JsonValue): Promise<number> {
    return this.transaction('send a signal', async (c) => {
      // Locking the run row serialises with the run's own transactions: an atom being parked
      // on this signal right now is either seen WAITING here, or its transaction (which locks
      // the run first) sees the stored signal. No lost wake-up.
      const run = (await this.rows('lock the run of a signal', `SELECT status FROM {p}runs WHERE id = ? FOR UPDATE`, [runId], c))[0];
      if (!run) throw new StoreError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
      await this.exec(
        'store a signal',
        `INSERT INTO {p}signals (run_id, name, payload, at) VALUES (?, ?, ?, NOW(6))`,
        [runId, name, JSON.stringify(payload)],
        c,
      );
      const woke = await this.exec(
        'wake atoms waiting for a signal',
        `UPDATE {p}atoms SET ready_at = NOW(6), updated_at = NOW(6) WHERE run_id = ? AND state = 'WAITING' AND wait_kind = 'signal' AND wait_ref = ?`,
        [runId, name],
        c,
      );
      await this.insertEventsOn(c, [{ runId, atom: null, kind: 'run.signal', data: { name, woke } }]);
      return woke;
    });
  }

  async getSignals(runId: string): Promise<SignalRow[]> {
    return this.single('read signals', async (c) =>
      (await this.rows('read signals', `SELECT * FROM {p}signals WHERE run_id = ? ORDER BY id`, [runId], c)).map(signalFromRow),
    );
  }

  async wakeAtom(runId: string, index: number): Promise<void> {
    await this.transaction('wake an atom', async (c) => {
      // Lock the run first (see sendSignal): the parent may be parking this atom right now.
      await this.rows('lock the run of a waiting atom', `SELECT 1 FROM {p}runs WHERE id = ? FOR UPDATE`, [runId], c);
      await this.exec(
        'wake an atom',
        `UPDATE {p}atoms SET ready_at = NOW(6), updated_at = NOW(6) WHERE run_id = ? AND idx = ? AND state = 'WAITING'`,
        [runId, index],
        c,
      );
    });
  }

  // ---------------------------------------------------------------- engines

  /**
   * A connection outside the pool, with the session settings of the pooled ones, named
   * `stoker-<role>-<purpose>`, whose `wait_timeout` is the largest the server allows: it is
   * idle by design.
   */
  private async lockConnection(purpose: 'lock' | 'watch' = 'lock'): Promise<mysql.Connection> {
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
    return conn;
  }

  async registerEngine(e: EngineRegistration): Promise<void> {
    this.assertOpen();
    // Lock first, row second (and the reverse on deregistration): while the row exists its
    // lock is held, unless the session was lost.
    const conn = await this.lockConnection();
    const lock: SessionLock = { conn, registered: false, released: false, lost: undefined };
    const onLost = (cause: Error): void => {
      if (lock.released || lock.lost !== undefined) return;
      lock.lost = cause;
      conn.destroy();
      if (!lock.registered) return; // registerEngine fails instead
      this.onError(cause);
      // Best effort: others requeue a dead engine's atoms without waiting for a lock check,
      // and its next heartbeat fails. If the server is down this fails too; heartbeat retries.
      this.markDead(e.id).catch(() => undefined);
      try {
        e.onSessionLost?.(cause);
      } catch (err) {
        this.onError(err instanceof Error ? err : new Error(String(err)));
      }
    };
    conn.on('error', (err: Error) => onLost(err));
    conn.on('end', () => onLost(new StoreError('STOKER_STORE_UNREACHABLE', `MySQL: the session lock connection of engine ${e.id} ended`)));
    try {
      const got = await this.rows(
        'take the engine session lock',
        `SELECT GET_LOCK(${ENGINE_LOCK_NAME('?')}, 0) AS ok, CONNECTION_ID() AS session`,
        [this.lockNamespace, e.id],
        conn,
      );
      if (Number(got[0]?.ok) !== 1) {
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `MySQL: engine ${e.id} is already registered (its session lock is held)`, {
          details: { purpose: 'take the engine session lock', engineId: e.id },
        });
      }
      await this.single('register an engine', (c) =>
        this.exec(
          'register an engine',
          `INSERT INTO {p}engines (id, host, pid, version, state, started_at, heartbeat_at, lease_expires_at, lock_session)
           VALUES (?, ?, ?, ?, 'alive', NOW(6), NOW(6), DATE_ADD(NOW(6), INTERVAL ? MICROSECOND), ?)`,
          [e.id, e.host, e.pid, e.version, Math.round(e.leaseMs) * 1000, Number(got[0]!.session)],
          c,
        ),
      );
      if (lock.lost !== undefined || this.closed) {
        if (!this.closed) await this.markDead(e.id).catch(() => undefined);
        if (this.closed) throw new StoreError('STOKER_STORE_CLOSED', 'the store was closed while an engine registered');
        throw this.wrap(lock.lost, 'keep the engine session lock');
      }
    } catch (err) {
      lock.released = true;
      conn.destroy();
      throw err;
    }
    lock.registered = true;
    this.sessionLocks.set(e.id, lock);
  }

  private async markDead(engineId: string): Promise<void> {
    await this.single('mark an engine dead (session lost)', (c) =>
      this.exec('mark an engine dead (session lost)', `UPDATE {p}engines SET state = 'dead' WHERE id = ?`, [engineId], c),
    );
  }

  async heartbeat(engineId: string, leaseMs: number): Promise<boolean> {
    if (this.sessionLocks.get(engineId)?.lost !== undefined) {
      // Others may already treat it as dead: it must not renew, whatever the row says.
      await this.markDead(engineId).catch(() => undefined);
      return false;
    }
    const matched = await this.single('renew an engine lease', (c) =>
      this.exec(
        'renew an engine lease',
        `UPDATE {p}engines SET heartbeat_at = NOW(6), lease_expires_at = DATE_ADD(NOW(6), INTERVAL ? MICROSECOND) WHERE id = ? AND state <> 'dead'`,
        [Math.round(leaseMs) * 1000, engineId],
        c,
      ),
    );
    return matched === 1;
  }

  async setEngineState(engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void> {
    await this.single('set an engine state', (c) =>
      this.exec('set an engine state', `UPDATE {p}engines SET state = ? WHERE id = ?`, [state, engineId], c),
    );
  }

  async deregisterEngine(engineId: string): Promise<void> {
    await this.single('deregister an engine', (c) =>
      this.exec('deregister an engine', `DELETE FROM {p}engines WHERE id = ?`, [engineId], c),
    );
    const lock = this.sessionLocks.get(engineId);
    if (lock) {
      this.sessionLocks.delete(engineId);
      lock.released = true;
      // ending the session releases the lock
      await lock.conn.end().catch(() => lock.conn.destroy());
    }
  }

  async listEngines(): Promise<EngineRow[]> {
    return this.single('list engines', async (c) =>
      (
        await this.rows(
          'list engines',
          `SELECT e.id, e.host, e.pid, e.version, e.started_at, e.heartbeat_at, e.lease_expires_at,
             TIMESTAMPDIFF(MICROSECOND, e.heartbeat_at, NOW(6)) DIV 1000 AS lease_age_ms,
             CASE WHEN e.state <> 'dead' AND e.lease_expires_at < NOW(6) THEN 'dead' ELSE e.state END AS state,
             (SELECT COUNT(*) FROM {p}atoms a WHERE a.claimed_by = e.id AND a.state IN ('RUNNING', 'REVERTING')) AS atoms_held
           FROM {p}engines e ORDER BY e.started_at, e.id`,
          [],
          c,
        )
      ).map(engineFromRow),
    );
  }

  /** Requeues the given locked atoms and records `atom.requeued` events; returns them in order. */
  private async requeueLocked(
    c: Conn,
    held: readonly { runId: string; index: number; engineId: string }[],
  ): Promise<{ runId: string; index: number; engineId: string }[]> {
    const after = new Map<string, Raw>();
    for (const chunk of chunks(held)) {
      const where = keyList(chunk);
      await this.exec(
        'requeue atoms',
        `UPDATE {p}atoms SET state = ${MYSQL_REQUEUE.state}, claimed_by = NULL, ready_at = ${MYSQL_REQUEUE.readyAt}, updated_at = NOW(6)
         WHERE ${where.text}`,
        where.params,
        c,
      );
      for (const r of await this.rows(
        'read requeued atoms',
        `SELECT run_id, idx, state, epoch FROM {p}atoms WHERE ${where.text}`,
        where.params,
        c,
      )) {
        after.set(`${Number(r.idx)}:${String(r.run_id)}`, r);
      }
    }
    const events: EventInput[] = [];
    for (const h of held) {
      const r = after.get(`${h.index}:${h.runId}`);
      if (r)
        events.push({
          runId: h.runId,
          atom: h.index,
          kind: requeueEventKind(String(r.state)),
          fromState: null,
          toState: String(r.state),
          engineId: h.engineId,
          epoch: Number(r.epoch),
        });
    }
    await this.insertEventsOn(c, events);
    return [...held];
  }

  async requeueExpired(options: RequeueOptions = {}): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    const after = options.liveCheckAfterMs;
    // null: a third of each engine's own lease; -1: no lock check at all
    const checkAfterUs = after === undefined ? null : Number.isFinite(after) ? Math.max(0, Math.round(after)) * 1000 : -1;
    return this.transaction('requeue the atoms of expired engines', async (c) => {
      // Engines whose lease ran out are marked dead: their next heartbeat fails and they stop.
      await this.exec(
        'mark expired engines dead',
        `UPDATE {p}engines SET state = 'dead' WHERE state <> 'dead' AND lease_expires_at < NOW(6)`,
        [],
        c,
      );
      if (checkAfterUs !== -1) {
        // R11: engines that hold atoms, whose heartbeat is overdue (a database restart frees
        // every lock) and whose session lock is not held by their own session, are dead too:
        // free, or held by another session (a watcher that took it as the engine died and is
        // frozen before it could let go). IS_USED_LOCK only looks.
        const lost = (
          await this.rows(
            'find engines whose session is gone',
            `SELECT e.id FROM {p}engines e
             WHERE e.state <> 'dead' AND e.lease_expires_at >= NOW(6)
               AND (? = 0 OR TIMESTAMPDIFF(MICROSECOND, e.heartbeat_at, NOW(6)) >= COALESCE(?, TIMESTAMPDIFF(MICROSECOND, e.heartbeat_at, e.lease_expires_at) DIV 3))
               AND EXISTS (SELECT 1 FROM {p}atoms a WHERE a.state IN ('RUNNING', 'REVERTING') AND a.claimed_by = e.id)
               AND COALESCE(IS_USED_LOCK(${ENGINE_LOCK_NAME('e.id')}) <> e.lock_session, IS_FREE_LOCK(${ENGINE_LOCK_NAME('e.id')}) = 1)`,
            [checkAfterUs ?? -1, checkAfterUs, this.lockNamespace, this.lockNamespace],
            c,
          )
        ).map((r) => String(r.id));
        if (lost.length > 0) {
          await this.exec(
            'mark engines without a session dead',
            `UPDATE {p}engines SET state = 'dead' WHERE id IN (?) AND state <> 'dead'`,
            [lost],
            c,
          );
        }
      }
      // A plain (non-locking) read of the live engines: a locking read with SKIP LOCKED here
      // would treat an engine busy renewing its lease as absent.
      const live = (
        await this.rows('read live engines', `SELECT id FROM {p}engines WHERE state <> 'dead' AND lease_expires_at >= NOW(6)`, [], c)
      ).map((r) => String(r.id));
      // SKIP LOCKED: an atom being completed right now is left to that transaction.
      const held = (
        await this.rows(
          'pick atoms held by dead engines',
          `SELECT run_id, idx, claimed_by FROM {p}atoms
           WHERE state IN ('RUNNING', 'REVERTING') AND claimed_by IS NOT NULL${live.length > 0 ? ' AND claimed_by NOT IN (?)' : ''}
           ORDER BY run_id, idx FOR UPDATE SKIP LOCKED`,
          live.length > 0 ? [live] : [],
          c,
        )
      ).map((r) => ({ runId: String(r.run_id), index: Number(r.idx), engineId: String(r.claimed_by) }));
      if (held.length === 0) return [];
      const out = await this.requeueLocked(c, held);
      return out.sort((a, b) => cmp(a.engineId, b.engineId) || cmp(a.runId, b.runId) || a.index - b.index);
    });
  }

  /**
   * {@inheritDoc Store.watchEngine}
   *
   * `GET_LOCK` on the engine's lock name with the wait as its timeout (whole seconds, below
   * the session's statement time limit), on a connection of its own, then `RELEASE_LOCK` at
   * once. A watcher frozen before it lets go does not make the engine look alive: the sweep
   * compares the lock's holder with the session the engine registered from (`lock_session`).
   * The connection is kept for the next call; an aborted or failed one is closed.
   */
  async watchEngine(engineId: string, options: WatchOptions): Promise<WatchAnswer> {
    this.assertOpen();
    const waitS = Math.max(1, Math.min(Math.ceil(options.maxWaitMs / 1000), Math.floor(this.statementTimeoutMs / 1000) - 1));
    return watchOnOwnConnection(this.watch, options.signal, async (conn) => {
      const got = await this.rows(
        'wait for an engine session lock',
        `SELECT GET_LOCK(${ENGINE_LOCK_NAME('?')}, ?) AS ok`,
        [this.lockNamespace, engineId, waitS],
        conn,
      );
      const ok = got[0]?.ok;
      // 0: the wait ran out, the engine lives; NULL: an error (the connection is not trusted again)
      if (Number(ok) !== 1) return { answer: 'held', reusable: ok !== null && ok !== undefined };
      await this.rows(
        'let an engine session lock go',
        `SELECT RELEASE_LOCK(${ENGINE_LOCK_NAME('?')}) AS ok`,
        [this.lockNamespace, engineId],
        conn,
      );
      return { answer: 'free', reusable: true };
    });
  }

  async requeueEngine(engineId: string): Promise<number> {
    return this.transaction('requeue the atoms of an engine', async (c) => {
      const held = (
        await this.rows(
          'lock the atoms of an engine',
          `SELECT run_id, idx FROM {p}atoms WHERE state IN ('RUNNING', 'REVERTING') AND claimed_by = ? ORDER BY run_id, idx FOR UPDATE`,
          [engineId],
          c,
        )
      ).map((r) => ({ runId: String(r.run_id), index: Number(r.idx), engineId }));
      if (held.length === 0) return 0;
      return (await this.requeueLocked(c, held)).length;
    });
  }

  // ---------------------------------------------------------------- locks (protocol 10; statements in ./locks.ts)

  private lockQuery(c: Conn): MysqlLockQuery {
    return {
      rows: (purpose, text, params) => this.rows(purpose, text, params, c),
      exec: (purpose, text, params) => this.exec(purpose, text, params, c),
    };
  }

  private readonly lockStatements = new MysqlLockStatements({
    single: (purpose, fn) => this.single(purpose, (c) => fn(this.lockQuery(c))),
    transaction: (purpose, fn) => this.transaction(purpose, (c) => fn(this.lockQuery(c))),
  });

  acquireLock(name: string, holder: string, ttlMs: number): Promise<AcquiredLock | null> {
    return this.lockStatements.acquire(name, holder, ttlMs);
  }

  extendLock(name: string, token: number, ttlMs: number): Promise<boolean> {
    return this.lockStatements.extend(name, token, ttlMs);
  }

  releaseLock(name: string, token: number): Promise<boolean> {
    return this.lockStatements.release(name, token);
  }

  getLock(name: string): Promise<LockRow | null> {
    return this.lockStatements.get(name);
  }

  listLocks(filter?: LockFilter): Promise<LockRow[]> {
    return this.lockStatements.list(filter);
  }
}

// ---------------------------------------------------------------- helpers

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** `(run_id = ? AND idx = ?) OR …`: a list of primary keys the range optimizer reads as point lookups. */
function keyList(keys: readonly { runId: string; index: number }[]): { text: string; params: unknown[] } {
  return {
    text: keys.map(() => '(run_id = ? AND idx = ?)').join(' OR '),
    params: keys.flatMap((k) => [k.runId, k.index]),
  };
}

interface DriverError {
  code?: string;
  errno?: number;
  sqlState?: string;
  message?: string;
  fatal?: boolean;
}

function driverError(e: unknown): DriverError | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (isStokerError(cur)) continue;
    if (typeof cur === 'object' && cur !== null && ('errno' in cur || 'sqlState' in cur || 'code' in cur)) return cur as DriverError;
  }
  return undefined;
}

function isUnreachable(e: unknown): boolean {
  const err = driverError(e);
  if (!err) return false;
  if (err.code !== undefined && UNREACHABLE_CODES.has(err.code)) return true;
  // a fatal error leaves the connection unusable: the server or the network went away
  return err.fatal === true && err.errno === undefined;
}

function codeDetails(e: unknown): Record<string, string | number> {
  const err = driverError(e);
  const out: Record<string, string | number> = {};
  if (err?.code) out.errorCode = err.code;
  if (err?.errno !== undefined) out.errno = err.errno;
  return out;
}

/** A cause as one readable line (Node's AggregateError for ECONNREFUSED has an empty message). */
function describeCause(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) {
    return [...new Set(e.errors.map((x: unknown) => (x instanceof Error ? x.message : String(x))))].join('; ');
  }
  if (e instanceof Error) {
    const err = e as Error & DriverError;
    return err.message || err.code || err.name;
  }
  return String(e);
}
