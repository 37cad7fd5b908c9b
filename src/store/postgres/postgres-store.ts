/**
 * PostgreSQL adapter (node-postgres Pool). Behaves like {@link SqliteStore} statement for
 * statement; what differs is only what the dialect needs:
 *
 * - the claim (protocol 2) is one statement: a `FOR UPDATE SKIP LOCKED` CTE picks the
 *   atoms, an UPDATE bumps their epochs and a third CTE writes the `atom.claimed` events,
 *   so concurrent claimers never wait for each other and never get the same atom;
 * - {@link PostgresStore.runTransaction} locks its run rows with `SELECT … ORDER BY id FOR
 *   UPDATE` (ids are `COLLATE "C"`, so every engine uses the same order) and retries the
 *   whole transaction on serialization failures and deadlocks (SQLSTATE 40001/40P01);
 * - every pooled session gets the R12 settings as startup parameters (no extra round trip):
 *   `statement_timeout`, `lock_timeout`, `idle_in_transaction_session_timeout`, server-side
 *   TCP keepalives, `application_name = stoker-<role>`, and `search_path` for a schema;
 * - liveness (protocol 4, RULES.md R11): {@link PostgresStore.registerEngine} takes a session
 *   advisory lock on `hashtextextended('<namespace>' || engine id, 0)` on a dedicated
 *   connection (`stoker-<role>-lock`), held until deregistration; {@link
 *   PostgresStore.requeueExpired} declares an engine dead when its lease expired, or when its
 *   heartbeat is overdue and `pg_try_advisory_xact_lock_shared` on its key succeeds (the
 *   session that held it exclusively is gone: measured free within milliseconds of `kill
 *   -9`); {@link PostgresStore.watchEngine} waits for the same shared lock;
 * - wake-ups (protocol 6): LISTEN on a dedicated connection (`stoker-<role>-listen`) on the
 *   channel `<schema>.<prefix>wake`, `pg_notify` from {@link PostgresStore.notifyWakeup}
 *   and from the start transaction.
 *
 * @example
 * ```ts
 * const store = new PostgresStore({ connectionString: 'postgres://stoker@db/stoker', schema: 'jobs' });
 * await store.migrate();
 * const claims = await store.claimAtoms('engine-1', 8);
 * ```
 */
import pg from 'pg';
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
  requeueSql,
  engineFromRow,
  eventFromRow,
  jsonColumn,
  patchValue,
  checkPruneOptions,
  pruneResult,
  runFromRow,
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
  FastCompletions,
  Wakeups,
  FastBatchResult,
  FastFinish,
  FastFinishResult,
  FastSuccess,
  FastSuccessBatch,
  FastSuccessResult,
  NewRun,
  RunFilter,
  RunPatch,
  RunRow,
  RequeueOptions,
  WatchOptions,
  RunTx,
  SignalRow,
  StartResult,
  Store,
  PruneOptions,
  PruneResult,
} from '../store.js';
import { postgresMigrations } from './migrations.js';
import {
  FAST_BATCH_SQL,
  FAST_FINISH_SQL,
  FAST_SUCCESS_SQL,
  FAST_FINISH_ONE_SQL,
  fastBatchParams,
  fastBatchResult,
  fastFinishParams,
  fastFinishResult,
  fastSuccessParams,
  fastSuccessResult,
} from './fast-success.js';
import { PostgresLockStatements } from './locks.js';
import { closeWatchConnections, watchOnOwnConnection, type WatchAnswer, type WatchConnections } from '../watch-connections.js';
import type { AcquiredLock, LockFilter, LockRow } from '../store.js';

type Raw = Record<string, unknown>;
type Queryable = pg.Pool | pg.PoolClient | pg.Client;

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
  /** default 30 000 (RULES.md R12) */
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

const RUN_COLUMNS = `id, flow, version, key, status, args, result, failure, parent_run_id, parent_atom,
  pending_atoms, revert_pending, atom_count, graph_hash, created_at, updated_at, finished_at`;
const CLAIM_COLUMNS = 'run_id, idx, state, epoch, attempt, execution, journal, failure';
/** pg_advisory_xact_lock key of the migration runner ("STOKER" in ASCII). */
const MIGRATION_LOCK_KEY = '91754623788370';
const JSON_OID = 114;
const JSONB_OID = 3802;
const JSON_FIELDS = new Set(['result', 'failure', 'journal']);
const BOOLEAN_FIELDS = new Set(['skip', 'revertRequested']);

/** SQLSTATEs after which the whole transaction may simply run again. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);
/** SQLSTATEs that mean "the database cannot be used from here" rather than "this statement failed". */
const UNREACHABLE_SQLSTATES = new Set(['28P01', '28000', '3D000', '57P01', '57P02', '57P03', '53300']);
const UNREACHABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
]);

/** SQL of an engine's advisory lock key; `$1` is the lock namespace of this store. */
const ENGINE_LOCK_KEY = (id: string): string => `hashtextextended(($1::text || ${id}) COLLATE "C", 0)`;
/** Backoff of the wake-up listener's reconnects: first delay and cap, in ms. */
const LISTEN_RETRY_MS = 100;
const LISTEN_RETRY_MAX_MS = 5_000;

/** An engine's session lock: the dedicated connection that holds it. */
interface SessionLock {
  client: pg.Client;
  /** registerEngine has completed: a loss from now on is reported to the engine */
  registered: boolean;
  /** deregisterEngine/close ended it on purpose */
  released: boolean;
  /** why the session was lost, once it was */
  lost: Error | undefined;
}

/** Per-attempt bookkeeping of one transaction. */
interface TxState {
  done: boolean;
  /** the first database error inside the transaction: it can only roll back now */
  failure: unknown;
}

export class PostgresStore implements Store {
  readonly capabilities: DialectCapabilities = {
    name: 'postgres',
    skipLocked: true,
    returning: true,
    advisoryLocks: true,
    listenNotify: true,
    transactionalDdl: true,
    singleWriter: false,
    fastCompletions: true,
    pushWakeups: true,
    localSupervisor: false,
  };
  /** one-statement completions (see fast-success.ts) */
  readonly fast: FastCompletions = {
    completeSuccess: (input) => this.completeSuccessFast(input),
    completeSuccesses: (input) => this.completeSuccessesFast(input),
    finishRuns: (input) => this.finishRunsFast(input),
  };
  /** protocol 6: LISTEN on a dedicated connection, NOTIFY after commits */
  readonly wakeups: Wakeups = {
    subscribe: (onWake) => this.subscribeWakeups(onWake),
    notify: () => this.notifyWakeup(),
  };
  readonly supervisor = null;
  private readonly pool: pg.Pool;
  private readonly p: string;
  private readonly schema: string | undefined;
  /** host:port/database, for messages (never the password) */
  readonly target: string;
  private readonly maxAttempts: number;
  private readonly sqlCache = new Map<string, string>();
  private closed = false;
  private readonly graphs = new KnownGraphs();
  /** settings of every session, pooled or dedicated */
  private readonly clientConfig: pg.ClientConfig;
  private readonly role: string;
  private readonly onError: (error: Error) => void;
  /** namespace hashed with engine ids into advisory lock keys: two deployments in one database never collide */
  private readonly lockNamespace: string;
  /** session locks of the engines registered through this store */
  private readonly sessionLocks = new Map<string, SessionLock>();
  /** connections of watchEngine (closed by close()) */
  private readonly watch: WatchConnections<pg.Client> = {
    busy: new Set(),
    idle: [],
    open: async () => {
      const client = await this.dedicatedClient('watch');
      client.on('error', () => undefined); // the wait's query rejects instead
      return client;
    },
    close: (client) => void client.end().catch(() => undefined),
    closed: () => this.closed,
  };
  /** the lock_timeout each watch connection has (ms) */
  private readonly watchWaits = new WeakMap<pg.Client, number>();
  /** the NOTIFY channel of this deployment */
  readonly wakeChannel: string;
  private listener: WakeListener | undefined;
  private listenerStarting: Promise<WakeListener> | undefined;
  private notifyRunning: Promise<void> | undefined;
  private notifyQueued: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    this.p = checkPrefix(options.tablePrefix ?? 'stoker_');
    this.schema = options.schema === undefined ? undefined : checkIdentifier(options.schema, 'schema');
    const role = checkIdentifier(options.role ?? 'store', 'role', /^[a-z][a-z0-9_-]{0,40}$/);
    this.role = role;
    this.lockNamespace = `stoker:${this.schema ?? ''}.${this.p}engine:`;
    this.wakeChannel = `${this.schema === undefined ? '' : this.schema + '.'}${this.p}wake`;
    this.target = describeTarget(options.connectionString);
    this.maxAttempts = Math.max(1, options.maxTransactionAttempts ?? 5);
    // Server-side keepalives end a partitioned engine's session (and its row locks) in
    // about 25 s instead of the kernel default of 2 h 11 min (RULES.md R12, measured).
    const startup = ['-c tcp_keepalives_idle=10', '-c tcp_keepalives_interval=5', '-c tcp_keepalives_count=3'];
    if (this.schema !== undefined) startup.push(`-c search_path=${this.schema}`);
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
    this.pool = new pg.Pool({ ...this.clientConfig, max: options.poolSize ?? 10 });
    const onError = options.onError ?? (() => undefined);
    this.onError = onError;
    // Without a listener an idle client's error (server restart, pg_terminate_backend)
    // would crash the process; the pool already discards that client.
    this.pool.on('error', (e) => onError(e));
  }

  /**
   * A connected client outside the pool, with the same session settings, named
   * `stoker-<role>-<purpose>`. `idle_session_timeout` (PostgreSQL 14+) is switched off on
   * it: it is idle by design. Errors before `connect` resolves are the caller's; install
   * the caller's own 'error' listener before relying on it afterwards.
   */
  private async dedicatedClient(purpose: 'lock' | 'listen' | 'watch'): Promise<pg.Client> {
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
    return client;
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

  /** Runs one statement; `purpose` names it in errors (values never appear). */
  private async q(purpose: string, text: string, params: readonly unknown[], on: Queryable = this.pool): Promise<pg.QueryResult<Raw>> {
    try {
      return await on.query<Raw>(this.sql(text), params as unknown[]);
    } catch (e) {
      throw this.wrap(e, purpose);
    }
  }

  private wrap(e: unknown, purpose: string): unknown {
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

  private isRetryable(e: unknown): boolean {
    const code = sqlState(e);
    if (code !== undefined && RETRYABLE_SQLSTATES.has(code)) return true;
    // Two starts with the same new key raced: the loser runs again and finds the winner.
    return code === '23505' && constraintOf(e) === `${this.p}runs_active_key`;
  }

  /** Runs `op` again (whole) on deadlocks and serialization failures, with a short jittered backoff. */
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

  /**
   * BEGIN; fn; COMMIT on one pooled connection, ROLLBACK on any error; the whole transaction
   * runs again on a deadlock or serialization failure (so `fn` may run more than once).
   */
  private async transaction<T>(purpose: string, fn: (client: pg.PoolClient, state: TxState) => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.withRetry(async () => {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (e) {
        throw this.wrap(e, purpose);
      }
      const state: TxState = { done: false, failure: undefined };
      let discard = false;
      // pg-pool listens for errors only on idle clients: a session ended by the server while
      // we hold the client (pg_terminate_backend, idle_in_transaction_session_timeout) would
      // otherwise be an unhandled 'error' event that kills the process (chaos C6). The
      // pending or next query fails on its own; the client is discarded.
      const onError = (e: Error): void => {
        discard = true;
        state.failure ??= this.wrap(e, purpose) as Error;
      };
      client.on('error', onError);
      try {
        await this.q(`${purpose}: begin`, 'BEGIN', [], client);
        const out = await fn(client, state);
        state.done = true;
        if (state.failure !== undefined) throw state.failure;
        const res = await this.q(`${purpose}: commit`, 'COMMIT', [], client);
        // COMMIT of a transaction that already failed answers ROLLBACK instead of an error.
        if (res.command === 'ROLLBACK') {
          throw new StoreError('STOKER_STORE_QUERY_FAILED', `PostgreSQL: ${purpose} was rolled back by the server`, {
            details: { purpose },
          });
        }
        return out;
      } catch (e) {
        state.done = true;
        try {
          await client.query('ROLLBACK');
        } catch {
          discard = true;
        }
        if (isStokerError(e) && e.code === 'STOKER_STORE_UNREACHABLE') discard = true;
        throw e;
      } finally {
        client.removeListener('error', onError);
        client.release(discard ? true : undefined);
      }
    });
  }

  async migrate(): Promise<number[]> {
    return this.transaction('migrate', async (c) => {
      // Transactional DDL: the advisory lock serialises concurrent migrators and a failed
      // migration leaves nothing behind.
      await this.q('take the migration lock', 'SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY], c);
      if (this.schema !== undefined) await this.q('create the schema', `CREATE SCHEMA IF NOT EXISTS ${this.schema}`, [], c);
      await this.q(
        'create the migrations table',
        `CREATE TABLE IF NOT EXISTS {p}migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL)`,
        [],
        c,
      );
      const applied = (await this.q('read applied migrations', `SELECT version, name, checksum FROM {p}migrations`, [], c)).rows.map(
        (r): AppliedMigration => ({ version: Number(r.version), name: String(r.name), checksum: String(r.checksum) }),
      );
      const todo = pendingMigrations(postgresMigrations, applied);
      for (const m of todo) {
        for (const [i, s] of m.statements.entries()) await this.q(`migration ${m.version} statement ${i + 1}`, s, [], c);
        await this.q(
          'record a migration',
          `INSERT INTO {p}migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, now())`,
          [m.version, m.name, migrationChecksum(m)],
          c,
        );
      }
      return todo.map((m) => m.version);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Ending the lock sessions frees the engines' locks: others may take their atoms over.
    const locks = [...this.sessionLocks.values()];
    this.sessionLocks.clear();
    for (const l of locks) l.released = true;
    const listener = this.listener;
    this.listener = undefined;
    closeWatchConnections(this.watch);
    await Promise.allSettled([...locks.map((l) => l.client.end()), ...(listener ? [listener.stop()] : [])]);
    await this.pool.end();
  }

  /** Verifies that the database is reachable and accepts the credentials (`SELECT 1`). */
  async ping(): Promise<void> {
    this.assertOpen();
    await this.q('connect', 'SELECT 1', []);
  }

  async now(): Promise<Date> {
    this.assertOpen();
    const r = await this.q('read the clock', 'SELECT now() AS t', []);
    return r.rows[0]!.t as Date;
  }

  // ---------------------------------------------------------------- runs

  private async startRunOn(c: pg.PoolClient, run: NewRun, wakeupByDefault: boolean): Promise<StartResult> {
    const argsText = canonicalJson(run.args);
    let superseded: string | undefined;
    if (run.key !== null) {
      if (run.supersede) {
        // Supersedes of one key queue here, so the next one sees the run this one starts. A
        // FOR UPDATE wait alone ends with no row under READ COMMITTED (the row it waited for
        // lost its key), so a back-to-back superseder made the other one fail on the unique
        // index until it ran out of attempts (test/chaos/supersede-across-engines.test.ts).
        await this.q(
          'queue supersedes of a key',
          'SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))',
          [`stoker:${this.schema ?? ''}.${this.p}supersede:${run.key}`],
          c,
        );
      }
      const active = (
        await this.q('find the active run of a key', `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE active_key = $1 FOR UPDATE`, [run.key], c)
      ).rows[0];
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
      await this.q(
        'store a flow graph',
        `INSERT INTO {p}graphs (hash, graph, created_at) VALUES ($1, $2::jsonb, now()) ON CONFLICT (hash) DO NOTHING`,
        [graph.hash, graph.text],
        c,
      );
    }
    const row = (
      await this.q(
        'insert a run',
        `INSERT INTO {p}runs (id, flow, version, key, active_key, status, args, graph_hash, parent_run_id, parent_atom, pending_atoms, atom_count, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4, 'PENDING', $5::jsonb, $6, $7, $8, $9, $9, now(), now())
         RETURNING ${RUN_COLUMNS}`,
        [run.id, run.flow, run.version, run.key, argsText, graph.hash, run.parentRunId ?? null, run.parentAtom ?? null, atoms.length],
        c,
      )
    ).rows[0]!;
    if (atoms.length > 0) {
      await this.q(
        'insert the atoms of a run',
        `INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at)
         SELECT $1, t.idx, t.name, CASE WHEN t.pending = 0 THEN 'READY' ELSE 'PENDING' END, t.pending,
                CASE WHEN t.pending = 0 THEN now() END, now()
         FROM unnest($2::integer[], $3::text[], $4::integer[]) AS t(idx, name, pending)`,
        [run.id, atoms.map((a) => a.index), atoms.map((a) => a.name), atoms.map((a) => a.predecessors.length)],
        c,
      );
    }
    await this.insertEventsOn(c, [
      { runId: run.id, atom: null, kind: 'run.created', toState: 'PENDING', data: superseded ? { supersedes: superseded } : null },
    ]);
    // Delivered at commit (and once per transaction however many starts ask for it).
    if ((run.wakeup ?? wakeupByDefault) && atoms.some((a) => a.predecessors.length === 0)) {
      await this.q('announce a start', `SELECT pg_notify($1, '')`, [this.wakeChannel], c);
    }
    return { run: runFromRow(row), created: true, ...(superseded ? { superseded } : {}) };
  }

  private async supersedeOn(c: pg.PoolClient, runId: string): Promise<void> {
    await this.q(
      'supersede a run',
      `UPDATE {p}runs SET status = 'SUPERSEDED', active_key = NULL, finished_at = now(), updated_at = now(), row_version = row_version + 1 WHERE id = $1`,
      [runId],
      c,
    );
    // one write and one event per atom, like any other transition; locked first, so the
    // event names the state each atom was really in (a claim may take a READY atom meanwhile:
    // it is then RUNNING and left alone)
    const cancelled = await this.q(
      'cancel the atoms of a superseded run',
      `WITH o AS (
         SELECT idx, state FROM {p}atoms
         WHERE run_id = $1 AND state IN ('PENDING', 'READY', 'WAITING', 'REVERT_PENDING', 'REVERT_READY') ORDER BY idx FOR UPDATE
       ), u AS (
         UPDATE {p}atoms t SET state = 'CANCELLED', ready_at = NULL, updated_at = now()
         FROM o WHERE t.run_id = $1 AND t.idx = o.idx
         RETURNING t.idx, o.state
       )
       INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, at)
       SELECT $1, idx, 'atom.cancelled', state, 'CANCELLED', now() FROM u ORDER BY idx`,
      [runId],
      c,
    );
    await this.insertEventsOn(c, [
      { runId, atom: null, kind: 'run.superseded', toState: 'SUPERSEDED', data: { cancelledAtoms: cancelled.rowCount ?? 0 } },
    ]);
  }

  async startRun(run: NewRun): Promise<StartResult> {
    // Without a key there is nothing to look up first: the whole start is one statement
    // (one round trip instead of six), which is what bulk starters spend their time on.
    const started =
      run.key === null ? await this.startRunOneStatement(run) : await this.transaction('start a run', (c) => this.startRunOn(c, run, true));
    this.graphs.committedHash(graphDigest(run.graph).hash);
    return started;
  }

  async startRuns(runs: readonly NewRun[]): Promise<RunRow[]> {
    this.assertOpen();
    if (runs.some((r) => r.key !== null))
      throw new StoreError('STOKER_CONFIG_INVALID', 'startRuns takes runs without keys; start keyed runs one by one');
    if (runs.length === 0) return [];
    // graphs this store has not seen committed yet, once each
    const newGraphs = new Map<string, string>();
    for (const r of runs) {
      const g = graphDigest(r.graph);
      if (!this.graphs.has(g.hash)) newGraphs.set(g.hash, g.text);
    }
    const atomRun: string[] = [];
    const atomIdx: number[] = [];
    const atomName: string[] = [];
    const atomPending: number[] = [];
    for (const r of runs) {
      for (const a of r.graph.atoms) {
        atomRun.push(r.id);
        atomIdx.push(a.index);
        atomName.push(a.name);
        atomPending.push(a.predecessors.length);
      }
    }
    const wake = runs.some((r) => (r.wakeup ?? true) && r.graph.atoms.some((a) => a.predecessors.length === 0));
    const text = this.sql(`WITH g AS (
        INSERT INTO {p}graphs (hash, graph, created_at) SELECT h, t::jsonb, now() FROM unnest($1::text[], $2::text[]) AS x(h, t)
        ON CONFLICT (hash) DO NOTHING),
      r AS (
        INSERT INTO {p}runs (id, flow, version, key, active_key, status, args, graph_hash, parent_run_id, parent_atom, pending_atoms, atom_count, created_at, updated_at)
        SELECT id, flow, version, NULL, NULL, 'PENDING', args::jsonb, hash, parent_run_id, parent_atom, n, n, now(), now()
        FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::int[])
             AS x(id, flow, version, args, hash, parent_run_id, parent_atom, n)
        RETURNING ${RUN_COLUMNS}),
      a AS (
        INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at)
        SELECT run_id, idx, name, CASE WHEN pending = 0 THEN 'READY' ELSE 'PENDING' END, pending,
               CASE WHEN pending = 0 THEN now() END, now()
        FROM unnest($11::text[], $12::int[], $13::text[], $14::int[]) AS x(run_id, idx, name, pending)),
      e AS (
        INSERT INTO {p}events (run_id, atom, kind, to_state, at)
        SELECT id, NULL, 'run.created', 'PENDING', now() FROM unnest($3::text[]) WITH ORDINALITY AS x(id, ord) ORDER BY ord),
      w AS (SELECT pg_notify($15, '') AS sent WHERE $16::boolean)
      SELECT r.*, (SELECT count(*) FROM w) AS notified FROM r`);
    const params = [
      [...newGraphs.keys()],
      [...newGraphs.values()],
      runs.map((r) => r.id),
      runs.map((r) => r.flow),
      runs.map((r) => r.version),
      runs.map((r) => canonicalJson(r.args)),
      runs.map((r) => graphDigest(r.graph).hash),
      runs.map((r) => r.parentRunId ?? null),
      runs.map((r) => r.parentAtom ?? null),
      runs.map((r) => r.graph.atoms.length),
      atomRun,
      atomIdx,
      atomName,
      atomPending,
      this.wakeChannel,
      wake,
    ];
    let res: pg.QueryResult<Raw>;
    try {
      res = await this.withRetry(() => this.pool.query<Raw>(text, params));
    } catch (e) {
      throw this.wrap(e, 'start runs');
    }
    for (const h of newGraphs.keys()) this.graphs.committedHash(h);
    const byId = new Map(res.rows.map((row) => [String(row.id), runFromRow(row)]));
    return runs.map((r) => byId.get(r.id)!);
  }

  private async startRunOneStatement(run: NewRun): Promise<StartResult> {
    this.assertOpen();
    const atoms = run.graph.atoms;
    const wake = (run.wakeup ?? true) && atoms.some((a) => a.predecessors.length === 0);
    const graph = graphDigest(run.graph);
    const text = this.sql(`WITH g AS (
        INSERT INTO {p}graphs (hash, graph, created_at) SELECT $5, $14::text::jsonb, now() WHERE $14::text IS NOT NULL
        ON CONFLICT (hash) DO NOTHING),
      r AS (
        INSERT INTO {p}runs (id, flow, version, key, active_key, status, args, graph_hash, parent_run_id, parent_atom, pending_atoms, atom_count, created_at, updated_at)
        VALUES ($1, $2, $3, NULL, NULL, 'PENDING', $4::jsonb, $5, $6, $7, $8, $8, now(), now())
        RETURNING ${RUN_COLUMNS}),
      a AS (
        INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at)
        SELECT $1, t.idx, t.name, CASE WHEN t.pending = 0 THEN 'READY' ELSE 'PENDING' END, t.pending,
               CASE WHEN t.pending = 0 THEN now() END, now()
        FROM unnest($9::integer[], $10::text[], $11::integer[]) AS t(idx, name, pending)),
      e AS (
        INSERT INTO {p}events (run_id, atom, kind, to_state, at) VALUES ($1, NULL, 'run.created', 'PENDING', now())),
      n AS (SELECT pg_notify($12, '') AS sent WHERE $13::boolean)
      SELECT r.*, (SELECT count(*) FROM n) AS notified FROM r`);
    const params = [
      run.id,
      run.flow,
      run.version,
      canonicalJson(run.args),
      graph.hash,
      run.parentRunId ?? null,
      run.parentAtom ?? null,
      atoms.length,
      atoms.map((a) => a.index),
      atoms.map((a) => a.name),
      atoms.map((a) => a.predecessors.length),
      this.wakeChannel,
      wake,
      // the graph's text only until this store has seen it committed
      this.graphs.has(graph.hash) ? null : graph.text,
    ];
    try {
      const res = await this.withRetry(() => this.pool.query<Raw>({ name: `${this.p}start_run`, text, values: params }));
      return { run: runFromRow(res.rows[0]!), created: true };
    } catch (e) {
      throw this.wrap(e, 'start a run');
    }
  }

  async claimAtoms(engineId: string, limit: number): Promise<ClaimedAtom[]> {
    if (limit <= 0) return [];
    this.assertOpen();
    // One statement, one round trip (protocol 2). SKIP LOCKED: concurrent claimers take
    // different rows instead of queueing behind each other; a row that changed while we
    // waited is re-checked by PostgreSQL before it is locked.
    const res = await this.withRetry(() => this.claimOn(this.pool, engineId, limit));
    return res.rows.map(claimWithRun);
  }

  /** The claim statement, named so it is planned once per connection. */
  private async claimOn(on: Queryable, engineId: string, limit: number): Promise<pg.QueryResult<Raw>> {
    try {
      return await on.query<Raw>({ name: `${this.p}claim`, text: this.sql(CLAIM_SQL), values: [engineId, limit] });
    } catch (e) {
      throw this.wrap(e, 'claim atoms');
    }
  }

  /** {@inheritDoc Store.completeSuccessFast} (see fast-success.ts for why and how) */
  async completeSuccessFast(input: FastSuccess): Promise<FastSuccessResult> {
    this.assertOpen();
    // a named statement: parsed and planned once per connection, not on every atom
    let res: pg.QueryResult<Raw>;
    try {
      res = await this.pool.query<Raw>({
        name: `${this.p}fast_success`,
        text: this.sql(FAST_SUCCESS_SQL),
        values: fastSuccessParams(input),
      });
    } catch (e) {
      throw this.wrap(e, 'complete an atom (fast path)');
    }
    return fastSuccessResult(res.rows);
  }

  /** {@inheritDoc Store.completeSuccessesFast} (see fast-success.ts) */
  async completeSuccessesFast(input: FastSuccessBatch): Promise<FastBatchResult> {
    this.assertOpen();
    let res: pg.QueryResult<Raw>;
    try {
      res = await this.pool.query<Raw>({ name: `${this.p}fast_batch`, text: this.sql(FAST_BATCH_SQL), values: fastBatchParams(input) });
    } catch (e) {
      throw this.wrap(e, 'complete atoms (fast path)');
    }
    return fastBatchResult(res.rows);
  }

  /** {@inheritDoc Store.finishRunsFast} (see fast-success.ts) */
  async finishRunsFast(input: FastFinish): Promise<FastFinishResult> {
    this.assertOpen();
    let res: pg.QueryResult<Raw>;
    try {
      res =
        input.finishes.length === 1
          ? await this.pool.query<Raw>({
              name: `${this.p}fast_finish_one`,
              text: this.sql(FAST_FINISH_ONE_SQL),
              values: fastFinishParams(input),
            })
          : await this.pool.query<Raw>(this.sql(FAST_FINISH_SQL), fastFinishParams(input));
    } catch (e) {
      throw this.wrap(e, 'finish runs (fast path)');
    }
    return fastFinishResult(res.rows);
  }

  /**
   * {@inheritDoc Store.runTransaction}
   *
   * On a deadlock or serialization failure the transaction is rolled back and `fn` runs
   * again from the start (up to `maxTransactionAttempts`).
   */
  async runTransaction<T>(runIds: readonly string[], fn: (tx: RunTx) => Promise<T>): Promise<T> {
    const ids = [...new Set(runIds)].sort();
    return this.transaction('run transaction', async (c, state) => {
      const runs = new Map<string, RunRow>();
      if (ids.length > 0) {
        const rows = (
          await this.q('lock runs', `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`, [ids], c)
        ).rows;
        for (const r of rows) runs.set(String(r.id), runFromRow(r));
      }
      try {
        return await fn(this.makeTx(c, runs, state));
      } finally {
        state.done = true;
      }
    });
  }

  private makeTx(c: pg.PoolClient, runs: Map<string, RunRow>, state: TxState): RunTx {
    const store = this;
    /** Refuses calls after the transaction ended or failed; remembers the first database error. */
    async function guarded<R>(what: string, op: () => Promise<R>): Promise<R> {
      if (state.done)
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `PostgreSQL: ${what} was called after its transaction ended`, {
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
          const r = await store.q(
            'read atoms by state',
            `SELECT * FROM {p}atoms WHERE run_id = $1 AND state = ANY($2::text[]) ORDER BY idx`,
            [runId, [...states]],
            c,
          );
          return r.rows.map(atomFromRow);
        });
      },
      updateAtoms(runId, updates) {
        return guarded('updateAtoms', async () => {
          if (sameShape(updates)) return store.updateAtomsBatchOn(c, runId, updates);
          const out: boolean[] = [];
          for (const u of updates) out.push(await store.updateAtomOn(c, runId, u));
          return out;
        });
      },
      claimMore(engineId, limit) {
        return guarded('claimMore', async () => (limit > 0 ? (await store.claimOn(c, engineId, limit)).rows.map(claimWithRun) : []));
      },
      decrementPending(runId, entries) {
        return guarded('decrementPending', () => store.decrementPendingOn(c, runId, entries));
      },
      claimAtom(runId, index, engineId) {
        return guarded('claimAtom', async () => {
          const row = (
            await store.q(
              'claim an atom (local continuation)',
              `UPDATE {p}atoms SET state = 'RUNNING', execution = execution + 1, claimed_by = $3, claimed_at = now(), epoch = epoch + 1, ready_at = NULL, updated_at = now()
               WHERE run_id = $1 AND idx = $2 AND state = 'READY' RETURNING ${CLAIM_COLUMNS}`,
              [runId, index, engineId],
              c,
            )
          ).rows[0];
          return row ? claimFromRow(row) : null;
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
        return guarded('startRun', () => store.startRunOn(c, run, false));
      },
      signalCount(runId, name) {
        return guarded('signalCount', async () => {
          const r = await store.q(
            'count signals',
            `SELECT count(*) AS n FROM {p}signals WHERE run_id = $1 AND name = $2`,
            [runId, name],
            c,
          );
          return Number(r.rows[0]!.n);
        });
      },
    };
  }

  private async getAtomsOn(on: Queryable, runId: string, indexes: readonly number[]): Promise<AtomRow[]> {
    if (indexes.length === 0) return [];
    const r = await this.q(
      'read atoms',
      `SELECT * FROM {p}atoms WHERE run_id = $1 AND idx = ANY($2::integer[]) ORDER BY idx`,
      [runId, [...indexes]],
      on,
    );
    return r.rows.map(atomFromRow);
  }

  private async updateAtomOn(c: pg.PoolClient, runId: string, u: AtomUpdate): Promise<boolean> {
    const sets: string[] = [];
    const params: unknown[] = [];
    const bind = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    for (const [field, column] of Object.entries(ATOM_PATCH_COLUMNS) as [keyof typeof ATOM_PATCH_COLUMNS, string][]) {
      if (field in u.patch && u.patch[field] !== undefined) {
        const v = u.patch[field];
        if (JSON_FIELDS.has(field)) sets.push(`${column} = ${bind(patchValue(field, v))}::jsonb`);
        else if (BOOLEAN_FIELDS.has(field)) sets.push(`${column} = ${bind(Boolean(v))}`);
        else sets.push(`${column} = ${bind(v)}`);
      }
    }
    if (u.patch.readyAt !== undefined) {
      if (u.patch.readyAt === null) sets.push('ready_at = NULL');
      else sets.push(`ready_at = now() + ${bind(Math.max(0, Math.round(u.patch.readyAt.delayMs)))}::bigint * interval '1 millisecond'`);
    }
    sets.push('updated_at = now()');
    const where = [`run_id = ${bind(runId)}`, `idx = ${bind(u.index)}`];
    if (u.epoch !== undefined) where.push(`epoch = ${bind(u.epoch)}`);
    if (u.expectRevertRequested !== undefined) where.push(`revert_requested = ${bind(u.expectRevertRequested)}`);
    if (u.expectStates && u.expectStates.length > 0) where.push(`state = ANY(${bind([...u.expectStates])}::text[])`);
    const r = await this.q(
      u.epoch !== undefined ? 'fenced atom update' : 'atom update',
      `UPDATE {p}atoms SET ${sets.join(', ')} WHERE ${where.join(' AND ')}`,
      params,
      c,
    );
    return r.rowCount === 1;
  }

  /**
   * Many conditional atom writes of one shape (a group commit's successes) in one statement:
   * the values arrive as parallel arrays, each row keeps its own epoch fence.
   */
  private async updateAtomsBatchOn(c: pg.PoolClient, runId: string, updates: readonly AtomUpdate[]): Promise<boolean[]> {
    const first = updates[0]!;
    const fields = patchFields(first);
    const params: unknown[] = [runId, updates.map((u) => u.index), updates.map((u) => u.epoch ?? null)];
    const columns = ['idx', 'epoch'];
    const arrays = ['$2::integer[]', '$3::bigint[]'];
    const sets: string[] = [];
    for (const field of fields) {
      const column = ATOM_PATCH_COLUMNS[field];
      params.push(updates.map((u) => (BOOLEAN_FIELDS.has(field) ? Boolean(u.patch[field]) : patchValue(field, u.patch[field]))));
      const type = JSON_FIELDS.has(field) ? 'text' : BOOLEAN_FIELDS.has(field) ? 'boolean' : INTEGER_FIELDS.has(field) ? 'bigint' : 'text';
      arrays.push(`$${params.length}::${type}[]`);
      columns.push(`v_${column}`);
      sets.push(`${column} = v.v_${column}${JSON_FIELDS.has(field) ? '::jsonb' : ''}`);
    }
    if (first.patch.readyAt === null) sets.push('ready_at = NULL');
    sets.push('updated_at = now()');
    const where = ['a.run_id = $1', 'a.idx = v.idx'];
    if (first.epoch !== undefined) where.push('a.epoch = v.epoch');
    if (first.expectRevertRequested !== undefined) {
      params.push(first.expectRevertRequested);
      where.push(`a.revert_requested = $${params.length}`);
    }
    if (first.expectStates && first.expectStates.length > 0) {
      params.push([...first.expectStates]);
      where.push(`a.state = ANY($${params.length}::text[])`);
    }
    const r = await this.q(
      first.epoch !== undefined ? 'fenced atom updates (batch)' : 'atom updates (batch)',
      `UPDATE {p}atoms a SET ${sets.join(', ')}
       FROM unnest(${arrays.join(', ')}) AS v(${columns.join(', ')})
       WHERE ${where.join(' AND ')}
       RETURNING a.idx`,
      params,
      c,
    );
    const matched = new Set(r.rows.map((row) => Number(row.idx)));
    return updates.map((u) => matched.has(u.index));
  }

  private async decrementPendingOn(
    c: pg.PoolClient,
    runId: string,
    entries: readonly { index: number; disable: boolean }[],
  ): Promise<AtomRow[]> {
    if (entries.length === 0) return [];
    const distinct = new Set(entries.map((e) => e.index)).size === entries.length;
    if (!distinct) {
      // The same atom twice: one statement per entry, so each returned row shows the state
      // after its own decrement, exactly as the SQLite adapter reports it.
      const out: AtomRow[] = [];
      for (const e of entries) out.push(...(await this.decrementPendingOn(c, runId, [e])));
      return out;
    }
    // Reaching 0 without `skip` makes the atom READY in the same statement (SET expressions
    // read the old row, so `a.pending = 1` means "reaches 0 now").
    const r = await this.q(
      'decrement pending counters',
      `UPDATE {p}atoms a SET pending = a.pending - 1, skip = a.skip OR d.disable,
         state = CASE WHEN a.pending = 1 AND NOT a.skip AND NOT d.disable THEN 'READY' ELSE a.state END,
         ready_at = CASE WHEN a.pending = 1 AND NOT a.skip AND NOT d.disable THEN now() ELSE a.ready_at END,
         updated_at = now()
       FROM unnest($2::integer[], $3::boolean[]) AS d(idx, disable)
       WHERE a.run_id = $1 AND a.idx = d.idx AND a.state = 'PENDING'
       RETURNING a.*`,
      [runId, entries.map((e) => e.index), entries.map((e) => e.disable)],
      c,
    );
    const byIndex = new Map(r.rows.map((row) => [Number(row.idx), atomFromRow(row)]));
    return entries.flatMap((e) => byIndex.get(e.index) ?? []);
  }

  private async updateRunOn(c: pg.PoolClient, runId: string, patch: RunPatch): Promise<RunRow | undefined> {
    const sets: string[] = ['updated_at = now()', 'row_version = row_version + 1'];
    const params: unknown[] = [];
    const bind = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    if (patch.status !== undefined) {
      sets.push(`status = ${bind(patch.status)}`);
      if (TERMINAL_RUN_STATUSES.includes(patch.status)) sets.push('active_key = NULL', 'finished_at = now()');
    }
    if (patch.result !== undefined) sets.push(`result = ${bind(toJsonText(patch.result))}::jsonb`);
    if (patch.failure !== undefined) sets.push(`failure = ${bind(toJsonText(patch.failure))}::jsonb`);
    if (patch.pendingAtomsDelta) sets.push(`pending_atoms = pending_atoms + ${bind(patch.pendingAtomsDelta)}::integer`);
    // both given: set, then add (one assignment; PostgreSQL refuses two to one column)
    if (patch.revertPending !== undefined)
      sets.push(`revert_pending = ${bind(patch.revertPending + (patch.revertPendingDelta ?? 0))}::integer`);
    else if (patch.revertPendingDelta) sets.push(`revert_pending = revert_pending + ${bind(patch.revertPendingDelta)}::integer`);
    const row = (
      await this.q('update a run', `UPDATE {p}runs SET ${sets.join(', ')} WHERE id = ${bind(runId)} RETURNING ${RUN_COLUMNS}`, params, c)
    ).rows[0];
    return row ? runFromRow(row) : undefined;
  }

  private async insertEventsOn(c: Queryable, events: readonly EventInput[]): Promise<void> {
    if (events.length === 0) return;
    // WITH ORDINALITY keeps the ids in the order the events were given.
    await this.q(
      'insert events',
      `INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
       SELECT t.run_id, t.atom, t.kind, t.from_state, t.to_state, t.engine_id, t.epoch, t.data::jsonb, now()
       FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])
            WITH ORDINALITY AS t(run_id, atom, kind, from_state, to_state, engine_id, epoch, data, ord)
       ORDER BY t.ord`,
      [
        events.map((e) => e.runId),
        events.map((e) => e.atom),
        events.map((e) => e.kind),
        events.map((e) => e.fromState ?? null),
        events.map((e) => e.toState ?? null),
        events.map((e) => e.engineId ?? null),
        events.map((e) => e.epoch ?? null),
        events.map((e) => toJsonText(e.data ?? null)),
      ],
      c,
    );
  }

  // ---------------------------------------------------------------- reads

  async getRun(id: string): Promise<RunRow | null> {
    this.assertOpen();
    const r = (await this.q('read a run', `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id = $1`, [id])).rows[0];
    return r ? runFromRow(r) : null;
  }

  async getRuns(ids: readonly string[]): Promise<RunRow[]> {
    this.assertOpen();
    if (ids.length === 0) return [];
    const r = await this.q('read runs', `SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id = ANY($1::text[])`, [[...ids]]);
    return r.rows.map(runFromRow);
  }

  async getRunStatuses(ids: readonly string[]): Promise<Map<string, RunStatus>> {
    this.assertOpen();
    if (ids.length === 0) return new Map();
    const r = await this.q('read run statuses', `SELECT id, status FROM {p}runs WHERE id = ANY($1::text[])`, [[...ids]]);
    return new Map(r.rows.map((row) => [String(row.id), row.status as RunStatus]));
  }

  async getRunGraph(id: string): Promise<FlowGraph | null> {
    this.assertOpen();
    const r = (await this.q('read a run graph', `SELECT graph_hash FROM {p}runs WHERE id = $1`, [id])).rows[0];
    if (!r) return null;
    const hash = String(r.graph_hash);
    const known = this.graphs.get(hash);
    if (known) return known;
    const g = (await this.q('read a flow graph', `SELECT graph FROM {p}graphs WHERE hash = $1`, [hash])).rows[0];
    if (!g)
      throw new StoreError('STOKER_STORE_QUERY_FAILED', `run ${id} refers to graph ${hash}, which is not stored`, {
        details: { runId: id, hash },
      });
    const graph = jsonColumn<FlowGraph>(g.graph)!;
    this.graphs.remember(hash, graph);
    return graph;
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRow[]> {
    this.assertOpen();
    const where: string[] = [];
    const params: unknown[] = [];
    const bind = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    if (filter.status && filter.status.length > 0) where.push(`status = ANY(${bind([...filter.status])}::text[])`);
    if (filter.flow !== undefined) where.push(`flow = ${bind(filter.flow)}`);
    if (filter.key !== undefined) where.push(`key = ${bind(filter.key)}`);
    if (filter.parentRunId !== undefined) where.push(`parent_run_id = ${bind(filter.parentRunId)}`);
    if (filter.before !== undefined)
      where.push(`(created_at, id) < (SELECT created_at, id FROM {p}runs WHERE id = ${bind(filter.before)})`);
    const text = `SELECT ${RUN_COLUMNS} FROM {p}runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT ${bind(filter.limit ?? 100)}`;
    return (await this.q('list runs', text, params)).rows.map(runFromRow);
  }

  async getAtoms(runId: string): Promise<AtomRow[]> {
    this.assertOpen();
    return (await this.q('read the atoms of a run', `SELECT * FROM {p}atoms WHERE run_id = $1 ORDER BY idx`, [runId])).rows.map(
      atomFromRow,
    );
  }

  async getAtomResults(runId: string, indexes: readonly number[]): Promise<Map<number, JsonValue | null>> {
    this.assertOpen();
    if (indexes.length === 0) return new Map();
    const r = await this.q(
      'read atom results',
      `SELECT idx, result FROM {p}atoms WHERE run_id = $1 AND idx = ANY($2::integer[]) ORDER BY idx`,
      [runId, [...indexes]],
    );
    return new Map(r.rows.map((row) => [Number(row.idx), jsonColumn(row.result)]));
  }

  async listEvents(filter: EventFilter = {}): Promise<EventRow[]> {
    this.assertOpen();
    const afterId = filter.afterId ?? 0;
    const limit = filter.limit ?? 10_000;
    const r =
      filter.runId === undefined
        ? await this.q('list events', `SELECT * FROM {p}events WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit])
        : await this.q('list events', `SELECT * FROM {p}events WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3`, [
            filter.runId,
            afterId,
            limit,
          ]);
    return r.rows.map(eventFromRow);
  }

  /** {@inheritDoc Store.pruneRuns} One statement; the runs it takes are locked (SKIP LOCKED: two pruners take different runs). */
  async pruneRuns(options: PruneOptions): Promise<PruneResult> {
    this.assertOpen();
    const { olderThanMs, limit } = checkPruneOptions(options);
    const params = [olderThanMs, limit, [...TERMINAL_RUN_STATUSES]];
    const victims = `SELECT r.id FROM {p}runs r
      WHERE r.status = ANY($3::text[]) AND r.finished_at < now() - $1::bigint * interval '1 millisecond'
        AND NOT EXISTS (SELECT 1 FROM {p}runs p WHERE p.id = r.parent_run_id AND NOT (p.status = ANY($3::text[])))
        AND NOT EXISTS (SELECT 1 FROM {p}runs c WHERE c.parent_run_id = r.id AND NOT (c.status = ANY($3::text[])))
      LIMIT $2`;
    const engines = `{p}engines e WHERE e.lease_expires_at < now() - $1::bigint * interval '1 millisecond'
        AND NOT EXISTS (SELECT 1 FROM {p}atoms a WHERE a.claimed_by = e.id AND a.state IN ('RUNNING', 'REVERTING'))`;
    const text = options.dryRun
      ? `WITH v AS (${victims})
         SELECT (SELECT count(*) FROM v) AS runs,
                (SELECT count(*) FROM {p}atoms WHERE run_id IN (SELECT id FROM v)) AS atoms,
                (SELECT count(*) FROM {p}events WHERE run_id IN (SELECT id FROM v)) AS events,
                (SELECT count(*) FROM {p}signals WHERE run_id IN (SELECT id FROM v)) AS signals,
                (SELECT count(*) FROM ${engines}) AS engines`
      : `WITH v AS (${victims} FOR UPDATE OF r SKIP LOCKED),
           de AS (DELETE FROM {p}events WHERE run_id IN (SELECT id FROM v) RETURNING 1),
           da AS (DELETE FROM {p}atoms WHERE run_id IN (SELECT id FROM v) RETURNING 1),
           ds AS (DELETE FROM {p}signals WHERE run_id IN (SELECT id FROM v) RETURNING 1),
           dr AS (DELETE FROM {p}runs WHERE id IN (SELECT id FROM v) RETURNING 1),
           dg AS (DELETE FROM ${engines} RETURNING 1)
         SELECT (SELECT count(*) FROM dr) AS runs, (SELECT count(*) FROM da) AS atoms, (SELECT count(*) FROM de) AS events,
                (SELECT count(*) FROM ds) AS signals, (SELECT count(*) FROM dg) AS engines`;
    const r = await this.q(options.dryRun ? 'count runs to prune' : 'prune runs', text, params);
    return pruneResult(r.rows[0]!);
  }

  // ---------------------------------------------------------------- signals and waits

  async sendSignal(runId: string, name: string, payload: JsonValue): Promise<number> {
    return this.transaction('send a signal', async (c) => {
      // Locking the run row serialises with the run's own transactions: an atom that is
      // being parked on this signal right now is either seen WAITING here, or its
      // transaction (which locks the run first) sees the stored signal. No lost wake-up.
      const run = (await this.q('lock the run of a signal', `SELECT status FROM {p}runs WHERE id = $1 FOR UPDATE`, [runId], c)).rows[0];
      if (!run) throw new StoreError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
      await this.q(
        'store a signal',
        `INSERT INTO {p}signals (run_id, name, payload, at) VALUES ($1, $2, $3::jsonb, now())`,
        [runId, name, JSON.stringify(payload)],
        c,
      );
      const woke =
        (
          await this.q(
            'wake atoms waiting for a signal',
            `UPDATE {p}atoms SET ready_at = now(), updated_at = now() WHERE run_id = $1 AND state = 'WAITING' AND wait_kind = 'signal' AND wait_ref = $2`,
            [runId, name],
            c,
          )
        ).rowCount ?? 0;
      await this.insertEventsOn(c, [{ runId, atom: null, kind: 'run.signal', data: { name, woke } }]);
      // like a start, a signal comes from outside: wake idle engines at commit (protocol 6)
      if (woke > 0) await this.q('announce woken atoms', `SELECT pg_notify($1, '')`, [this.wakeChannel], c);
      return woke;
    });
  }

  async getSignals(runId: string): Promise<SignalRow[]> {
    this.assertOpen();
    return (await this.q('read signals', `SELECT * FROM {p}signals WHERE run_id = $1 ORDER BY id`, [runId])).rows.map(signalFromRow);
  }

  async wakeAtom(runId: string, index: number): Promise<void> {
    await this.transaction('wake an atom', async (c) => {
      // Lock the run first (see sendSignal): the parent may be parking this atom right now.
      await this.q('lock the run of a waiting atom', `SELECT 1 FROM {p}runs WHERE id = $1 FOR UPDATE`, [runId], c);
      await this.q(
        'wake an atom',
        `UPDATE {p}atoms SET ready_at = now(), updated_at = now() WHERE run_id = $1 AND idx = $2 AND state = 'WAITING'`,
        [runId, index],
        c,
      );
    });
  }

  // ---------------------------------------------------------------- engines

  async registerEngine(e: EngineRegistration): Promise<void> {
    this.assertOpen();
    // Lock first, row second (and the reverse on deregistration): while the row exists its
    // lock is held, unless the session was lost.
    const client = await this.dedicatedClient('lock');
    const lock: SessionLock = { client, registered: false, released: false, lost: undefined };
    const onLost = (cause: Error): void => {
      if (lock.released || lock.lost !== undefined) return;
      lock.lost = cause;
      client.end().catch(() => undefined);
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
    client.on('error', (err) => onLost(err));
    client.on('end', () =>
      onLost(new StoreError('STOKER_STORE_UNREACHABLE', `PostgreSQL: the session lock connection of engine ${e.id} ended`)),
    );
    try {
      const got = await this.q(
        'take the engine session lock',
        `SELECT pg_try_advisory_lock(${ENGINE_LOCK_KEY('$2::text')}) AS ok`,
        [this.lockNamespace, e.id],
        client,
      );
      if (got.rows[0]?.ok !== true) {
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `PostgreSQL: engine ${e.id} is already registered (its session lock is held)`, {
          details: { purpose: 'take the engine session lock', engineId: e.id },
        });
      }
      await this.q(
        'register an engine',
        `INSERT INTO {p}engines (id, host, pid, version, state, started_at, heartbeat_at, lease_expires_at)
         VALUES ($1, $2, $3, $4, 'alive', now(), now(), now() + $5::bigint * interval '1 millisecond')`,
        [e.id, e.host, e.pid, e.version, Math.round(e.leaseMs)],
      );
      if (lock.lost !== undefined || this.closed) {
        if (!this.closed) await this.markDead(e.id).catch(() => undefined);
        if (this.closed) throw new StoreError('STOKER_STORE_CLOSED', 'the store was closed while an engine registered');
        throw this.wrap(lock.lost, 'keep the engine session lock');
      }
    } catch (err) {
      lock.released = true;
      await client.end().catch(() => undefined);
      throw err;
    }
    lock.registered = true;
    this.sessionLocks.set(e.id, lock);
  }

  private async markDead(engineId: string): Promise<void> {
    await this.q('mark an engine dead (session lost)', `UPDATE {p}engines SET state = 'dead' WHERE id = $1`, [engineId]);
  }

  async heartbeat(engineId: string, leaseMs: number): Promise<boolean> {
    this.assertOpen();
    if (this.sessionLocks.get(engineId)?.lost !== undefined) {
      // Others may already treat it as dead: it must not renew, whatever the row says.
      await this.markDead(engineId).catch(() => undefined);
      return false;
    }
    const r = await this.q(
      'renew an engine lease',
      `UPDATE {p}engines SET heartbeat_at = now(), lease_expires_at = now() + $1::bigint * interval '1 millisecond' WHERE id = $2 AND state <> 'dead'`,
      [Math.round(leaseMs), engineId],
    );
    return r.rowCount === 1;
  }

  async setEngineState(engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void> {
    this.assertOpen();
    await this.q('set an engine state', `UPDATE {p}engines SET state = $1 WHERE id = $2`, [state, engineId]);
  }

  async deregisterEngine(engineId: string): Promise<void> {
    this.assertOpen();
    await this.q('deregister an engine', `DELETE FROM {p}engines WHERE id = $1`, [engineId]);
    const lock = this.sessionLocks.get(engineId);
    if (lock) {
      this.sessionLocks.delete(engineId);
      lock.released = true;
      // ending the session releases the lock
      await lock.client.end().catch(() => undefined);
    }
  }

  async listEngines(): Promise<EngineRow[]> {
    this.assertOpen();
    const r = await this.q(
      'list engines',
      `SELECT e.id, e.host, e.pid, e.version, e.started_at, e.heartbeat_at, e.lease_expires_at,
         floor(extract(epoch FROM now() - e.heartbeat_at) * 1000)::bigint AS lease_age_ms,
         CASE WHEN e.state <> 'dead' AND e.lease_expires_at < now() THEN 'dead' ELSE e.state END AS state,
         (SELECT count(*) FROM {p}atoms a WHERE a.claimed_by = e.id AND a.state IN ('RUNNING', 'REVERTING')) AS atoms_held
       FROM {p}engines e ORDER BY e.started_at, e.id`,
      [],
    );
    return r.rows.map(engineFromRow);
  }

  async requeueExpired(options: RequeueOptions = {}): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    this.assertOpen();
    const after = options.liveCheckAfterMs;
    // null: a third of each engine's own lease; -1: no lock check at all
    const checkAfterMs = after === undefined ? null : Number.isFinite(after) ? Math.max(0, Math.round(after)) : -1;
    // One statement: find the engines whose session is gone (lost), mark them and the ones
    // whose lease ran out dead (their next heartbeat then fails and they stop writing), and
    // requeue every held atom whose holder is not a live engine (expired, dead, lost, or
    // without a row). `lost` checks only engines that are live by lease, hold atoms and
    // whose heartbeat is overdue (R11: a database restart frees every lock); the CASE keeps
    // the lock attempt last. pg_try_advisory_xact_lock_shared succeeds only when no session
    // holds the engine's lock exclusively (the engine's own; watchers hold it shared, if at
    // all), and is released when this statement's transaction ends. SKIP LOCKED:
    // an atom being completed right now is left to that transaction; the next sweep sees its
    // outcome. (All CTEs see one snapshot, so `t` excludes `lost` explicitly; a
    // data-modifying CTE runs to completion whether or not the main query reads it.)
    const r = await this.withRetry(() =>
      this.q(
        'requeue the atoms of expired engines',
        `WITH lost AS (
           SELECT e.id FROM {p}engines e
           WHERE CASE WHEN ($2::bigint IS NULL OR $2::bigint >= 0) AND e.state <> 'dead' AND e.lease_expires_at >= now()
               AND ($2::bigint = 0 OR now() - e.heartbeat_at >= COALESCE($2::bigint * interval '1 millisecond', (e.lease_expires_at - e.heartbeat_at) / 3))
               AND EXISTS (SELECT 1 FROM {p}atoms a WHERE a.claimed_by = e.id AND a.state IN ('RUNNING', 'REVERTING'))
             THEN pg_try_advisory_xact_lock_shared(${ENGINE_LOCK_KEY('e.id')}) ELSE false END),
         d AS (
           UPDATE {p}engines SET state = 'dead'
           WHERE state <> 'dead' AND (lease_expires_at < now() OR id IN (SELECT id FROM lost)) RETURNING id),
         t AS (
           SELECT a.run_id, a.idx, a.claimed_by FROM {p}atoms a
           WHERE a.state IN ('RUNNING', 'REVERTING') AND a.claimed_by IS NOT NULL
             AND (a.claimed_by IN (SELECT id FROM lost)
               OR NOT EXISTS (SELECT 1 FROM {p}engines e WHERE e.id = a.claimed_by AND e.state <> 'dead' AND e.lease_expires_at >= now()))
           ORDER BY a.run_id, a.idx
           FOR UPDATE OF a SKIP LOCKED),
         u AS (
           UPDATE {p}atoms a SET state = ${REQUEUE.state}, claimed_by = NULL, ready_at = ${REQUEUE.readyAt}, updated_at = now()
           FROM t JOIN {p}runs r ON r.id = t.run_id WHERE a.run_id = t.run_id AND a.idx = t.idx
           RETURNING a.run_id, a.idx, a.state, a.epoch, t.claimed_by AS engine_id),
         e AS (
           INSERT INTO {p}events (run_id, atom, kind, to_state, engine_id, epoch, at)
           SELECT run_id, idx, ${REQUEUE_EVENT}, state, engine_id, epoch, now() FROM u)
         SELECT u.run_id, u.idx, u.engine_id FROM u ORDER BY u.engine_id, u.run_id, u.idx`,
        [this.lockNamespace, checkAfterMs],
      ),
    );
    return r.rows.map((row) => ({
      runId: String(row.run_id),
      index: Number(row.idx),
      engineId: row.engine_id === null ? null : String(row.engine_id),
    }));
  }

  async requeueEngine(engineId: string): Promise<number> {
    this.assertOpen();
    const r = await this.withRetry(() =>
      this.q(
        'requeue the atoms of an engine',
        `WITH t AS (
           SELECT run_id, idx FROM {p}atoms WHERE claimed_by = $1 AND state IN ('RUNNING', 'REVERTING')
           ORDER BY run_id, idx FOR UPDATE),
         u AS (
           UPDATE {p}atoms a SET state = ${REQUEUE.state}, claimed_by = NULL, ready_at = ${REQUEUE.readyAt}, updated_at = now()
           FROM t JOIN {p}runs r ON r.id = t.run_id WHERE a.run_id = t.run_id AND a.idx = t.idx
           RETURNING a.run_id, a.idx, a.state, a.epoch),
         e AS (
           INSERT INTO {p}events (run_id, atom, kind, to_state, engine_id, epoch, at)
           SELECT run_id, idx, ${REQUEUE_EVENT}, state, $1, epoch, now() FROM u)
         SELECT count(*) AS n FROM u`,
        [engineId],
      ),
    );
    return Number(r.rows[0]!.n);
  }

  /**
   * {@inheritDoc Store.watchEngine}
   *
   * `pg_advisory_lock_shared` on the engine's key, on a connection of its own whose
   * `lock_timeout` is the wait (so the server also ends a wait whose client went away), then
   * `pg_advisory_unlock_shared` at once. Shared, like the sweep's own check
   * (`pg_try_advisory_xact_lock_shared`): the engine holds its lock exclusively, so both
   * conflict with the engine only, and a watcher that is frozen right after the grant (it
   * holds the lock until it runs again) never makes a dead engine look alive. The
   * connection is kept for the next call (the ring is looked at every few seconds); an
   * aborted or failed one is closed.
   */
  async watchEngine(engineId: string, options: WatchOptions): Promise<WatchAnswer> {
    this.assertOpen();
    const waitMs = Math.max(1, Math.round(options.maxWaitMs));
    return watchOnOwnConnection(this.watch, options.signal, async (client) => {
      if (this.watchWaits.get(client) !== waitMs) {
        await this.q('prepare a watch connection', `SET lock_timeout = ${waitMs}; SET statement_timeout = ${waitMs + 5_000}`, [], client);
        this.watchWaits.set(client, waitMs);
      }
      try {
        await this.q(
          'wait for an engine session lock',
          `SELECT pg_advisory_lock_shared(${ENGINE_LOCK_KEY('$2::text')})`,
          [this.lockNamespace, engineId],
          client,
        );
      } catch (e) {
        // lock_not_available: lock_timeout ran out, the engine lives
        if (sqlState(e) === '55P03') return { answer: 'held', reusable: true };
        throw e;
      }
      await this.q(
        'let an engine session lock go',
        `SELECT pg_advisory_unlock_shared(${ENGINE_LOCK_KEY('$2::text')})`,
        [this.lockNamespace, engineId],
        client,
      );
      return { answer: 'free', reusable: true };
    });
  }

  // ---------------------------------------------------------------- wake-ups

  async subscribeWakeups(onWake: () => void): Promise<() => Promise<void>> {
    this.assertOpen();
    let listener = this.listener;
    if (!listener) {
      // concurrent first subscribers share one connection attempt
      this.listenerStarting ??= (async () => {
        const l = new WakeListener(() => this.dedicatedClient('listen'), this.wakeChannel, this.onError);
        try {
          await l.start();
        } finally {
          this.listenerStarting = undefined;
        }
        if (this.closed) {
          await l.stop();
          throw new StoreError('STOKER_STORE_CLOSED', 'the store is closed');
        }
        this.listener = l;
        return l;
      })();
      listener = await this.listenerStarting;
    }
    const l = listener;
    const entry = { onWake };
    l.subscribers.add(entry);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      l.subscribers.delete(entry);
      if (l.subscribers.size === 0 && this.listener === l) {
        this.listener = undefined;
        await l.stop();
      }
    };
  }

  async notifyWakeup(): Promise<void> {
    this.assertOpen();
    // One NOTIFY in flight at a time; calls meanwhile share one more, sent after it (their
    // commits may postdate the one in flight).
    if (this.notifyQueued) return this.notifyQueued;
    const running = this.notifyRunning;
    if (running) {
      this.notifyQueued = running
        .catch(() => undefined)
        .then(() => {
          this.notifyQueued = undefined;
          return this.sendNotify();
        });
      return this.notifyQueued;
    }
    return this.sendNotify();
  }

  private sendNotify(): Promise<void> {
    const p = this.q('announce claimable atoms', `SELECT pg_notify($1, '')`, [this.wakeChannel]).then(() => undefined);
    this.notifyRunning = p;
    const clear = (): void => {
      if (this.notifyRunning === p) this.notifyRunning = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  // ---------------------------------------------------------------- locks (protocol 10; statements in ./locks.ts)

  private readonly lockStatements = new PostgresLockStatements(async (purpose, text, params) => {
    this.assertOpen();
    return (await this.q(purpose, text, params)).rows;
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

/**
 * The LISTEN side of protocol 6: one dedicated connection, reconnected with jittered
 * exponential backoff when it drops; subscribers are called once after every reconnect,
 * since notifications sent while it was down are lost.
 */
class WakeListener {
  readonly subscribers = new Set<{ onWake: () => void }>();
  private client: pg.Client | undefined;
  private stopped = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connect: () => Promise<pg.Client>,
    private readonly channel: string,
    private readonly onError: (error: Error) => void,
  ) {}

  async start(): Promise<void> {
    await this.open();
  }

  private async open(): Promise<void> {
    const client = await this.connect();
    let dropped = false;
    /** listening: a drop from now on is reconnected (before, the caller gets the error) */
    let ready = false;
    const drop = (e?: Error): void => {
      if (dropped) return;
      dropped = true;
      if (this.client === client) this.client = undefined;
      client.end().catch(() => undefined);
      if (this.stopped || !ready) return;
      if (e) this.onError(e);
      this.schedule();
    };
    client.on('error', (e) => drop(e));
    client.on('end', () => drop());
    client.on('notification', () => this.wakeAll());
    try {
      await client.query(`LISTEN ${quoteIdentifier(this.channel)}`);
    } catch (e) {
      dropped = true;
      await client.end().catch(() => undefined);
      throw e;
    }
    if (this.stopped || dropped) {
      dropped = true;
      await client.end().catch(() => undefined);
      if (!this.stopped)
        throw new StoreError('STOKER_STORE_UNREACHABLE', 'PostgreSQL: the wake-up connection ended while it started to listen');
      return;
    }
    ready = true;
    this.client = client;
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const delay = Math.min(LISTEN_RETRY_MAX_MS, LISTEN_RETRY_MS * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.open().then(
        () => {
          this.failures = 0;
          if (!this.stopped) this.wakeAll();
        },
        (e: unknown) => {
          this.failures = Math.min(this.failures + 1, 10);
          this.onError(e instanceof Error ? e : new Error(String(e)));
          this.schedule();
        },
      );
    }, delay);
    this.timer.unref();
  }

  private wakeAll(): void {
    for (const s of [...this.subscribers]) {
      try {
        s.onWake();
      } catch (e) {
        this.onError(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    if (c) await c.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- helpers

/** A PostgreSQL quoted identifier. */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Schema and role names are spliced into SQL and startup options: validated once, here. */
function checkIdentifier(value: string, what: string, pattern = /^[a-z][a-z0-9_]{0,62}$/): string {
  if (!pattern.test(value)) throw new StoreError('STOKER_CONFIG_INVALID', `${what} "${value}" must match ${pattern.source}`);
  return value;
}

/** `host:port/database` of a connection string, without credentials. */
export function describeTarget(connectionString: string): string {
  try {
    const u = new URL(connectionString);
    const host = u.hostname || 'localhost';
    const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
    return `${host}:${u.port || '5432'}/${db}`;
  } catch {
    return '(unparsable connection string)';
  }
}

function sqlState(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (cur instanceof pg.DatabaseError) return cur.code;
  }
  return undefined;
}

function constraintOf(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (cur instanceof pg.DatabaseError) return cur.constraint;
  }
  return undefined;
}

function nodeCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isUnreachable(e: unknown): boolean {
  if (e instanceof pg.DatabaseError) return e.code !== undefined && (UNREACHABLE_SQLSTATES.has(e.code) || e.code.startsWith('08'));
  const code = nodeCode(e);
  if (code !== undefined && UNREACHABLE_NODE_CODES.has(code)) return true;
  const message = e instanceof Error ? e.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended/i.test(
    message,
  );
}

function codeDetails(e: unknown): Record<string, string> {
  if (e instanceof pg.DatabaseError && e.code) return { sqlState: e.code };
  const code = nodeCode(e);
  return code ? { errorCode: code } : {};
}

/** A cause as one readable line (Node's AggregateError for ECONNREFUSED has an empty message). */
function describeCause(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) {
    const parts = [...new Set(e.errors.map((x: unknown) => (x instanceof Error ? x.message : String(x))))];
    return parts.join('; ');
  }
  if (e instanceof pg.DatabaseError) return `${e.message} (SQLSTATE ${e.code ?? '?'})`;
  if (e instanceof Error) return e.message || nodeCode(e) || e.name;
  return String(e);
}

const INTEGER_FIELDS: ReadonlySet<string> = new Set(['pending', 'revertPending', 'attempt', 'execution']);

/** The patch fields an update sets (readyAt excluded). */
function patchFields(u: AtomUpdate): (keyof typeof ATOM_PATCH_COLUMNS)[] {
  return (Object.keys(ATOM_PATCH_COLUMNS) as (keyof typeof ATOM_PATCH_COLUMNS)[]).filter((f) => f in u.patch && u.patch[f] !== undefined);
}

/**
 * Whether updates can share one statement: 2+ distinct atoms, same fields, fences and
 * expectations, and no ready_at delay (a delay is computed per atom in SQL; clearing
 * ready_at, `readyAt: null`, batches).
 */
function sameShape(updates: readonly AtomUpdate[]): boolean {
  if (updates.length < 2) return false;
  const first = updates[0]!;
  const readyAt = (u: AtomUpdate): string => (u.patch.readyAt === undefined ? 'keep' : u.patch.readyAt === null ? 'clear' : 'delay');
  const key = (u: AtomUpdate): string =>
    JSON.stringify([
      patchFields(u),
      u.epoch === undefined,
      u.expectRevertRequested ?? null,
      [...(u.expectStates ?? [])].sort(),
      readyAt(u),
    ]);
  const k0 = key(first);
  if (readyAt(first) === 'delay') return false;
  return new Set(updates.map((u) => u.index)).size === updates.length && updates.every((u) => key(u) === k0);
}

/** A row of {@link CLAIM_SQL}: the claimed atom, and its run's row (`run_*` columns) on the first atom of each run. */
function claimWithRun(row: Raw): ClaimedAtom {
  if (row.run_flow === null || row.run_flow === undefined) return claimFromRow(row);
  const run: Raw = { id: row.run_id };
  for (const [k, v] of Object.entries(row)) if (k.startsWith('run_') && k !== 'run_id') run[k.slice(4)] = v;
  return claimFromRow(row, runFromRow(run));
}

/** A requeue: READY / REVERT_READY again, or CANCELLED when the run has ended (rows.ts requeueSql). */
const REQUEUE = requeueSql('a.state', 'r.status', 'now()');
const REQUEUE_EVENT = `CASE state WHEN 'CANCELLED' THEN 'atom.cancelled' ELSE 'atom.requeued' END`;

/**
 * Protocol 2 in one statement: SKIP LOCKED lets concurrent claimers take different rows
 * instead of queueing behind each other (a row that changed while we waited is re-checked
 * before it is locked); the UPDATE bumps epoch and execution; the events are written too.
 */
const CLAIM_SQL = `WITH c AS (
  SELECT run_id, idx FROM {p}atoms
  WHERE state IN ('READY', 'WAITING', 'REVERT_READY') AND ready_at <= now()
  ORDER BY ready_at LIMIT $2
  FOR UPDATE SKIP LOCKED),
u AS (
  UPDATE {p}atoms a SET
    state = CASE a.state WHEN 'REVERT_READY' THEN 'REVERTING' ELSE 'RUNNING' END,
    execution = CASE a.state WHEN 'REVERT_READY' THEN a.execution ELSE a.execution + 1 END,
    claimed_by = $1, claimed_at = now(), epoch = a.epoch + 1, ready_at = NULL, updated_at = now()
  FROM c WHERE a.run_id = c.run_id AND a.idx = c.idx
  RETURNING a.run_id, a.idx, a.state, a.epoch, a.attempt, a.execution, a.journal, a.failure),
e AS (
  INSERT INTO {p}events (run_id, atom, kind, to_state, engine_id, epoch, at)
  SELECT run_id, idx, 'atom.claimed', state, $1, epoch, now() FROM u),
n AS (SELECT u.*, row_number() OVER (PARTITION BY u.run_id ORDER BY u.idx) AS nth FROM u)
SELECT n.*, ${RUN_COLUMNS.split(',')
  .map((c) => c.trim())
  .filter((c) => c !== 'id')
  .map((c) => `r.${c} AS run_${c}`)
  .join(', ')}
FROM n LEFT JOIN {p}runs r ON n.nth = 1 AND r.id = n.run_id`;
