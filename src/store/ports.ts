/**
 * The store's ports: what the layers above need from the database, one interface per job,
 * so that each part of the engine (and the CLI, the API) names only what it uses. A
 * {@link Store} (src/store/store.ts) is all of them, plus the optional ports that only
 * some dialects have, declared by {@link DialectCapabilities}.
 *
 * Rules every implementation keeps (docs/reliability.md):
 * - all times are computed and compared by the database clock (`now()` in SQL); callers
 *   pass *durations*, never timestamps;
 * - every atom write made for a claim is conditional on `(epoch, state)` and reports
 *   whether it matched (fencing); a miss is never retried;
 * - a {@link RunTx} first locks the run rows it was opened for (in id order), so that all
 *   transitions of one run are serialised while different runs proceed in parallel;
 * - no transaction stays open across task code: a RunTx callback must not await anything
 *   but its own `tx` methods.
 */
import type { JsonValue } from '../core/json.js';
import type { FlowGraph } from '../flow/graph.js';
import type { RunStatus } from './states.js';
import type {
  AcquiredLock,
  AtomRow,
  AtomUpdate,
  ClaimOptions,
  ClaimedAtom,
  EngineRegistration,
  EngineRow,
  EventFilter,
  EngineReport,
  EventInput,
  EventRow,
  FastBatchResult,
  FastFinish,
  FastFinishResult,
  FastSuccess,
  FastSuccessBatch,
  FastSuccessResult,
  LocalEngineKill,
  LockFilter,
  LockRow,
  NewRun,
  PruneOptions,
  PruneResult,
  RequeueOptions,
  RunFilter,
  RunPatch,
  StartOptions,
  RunRow,
  SignalRow,
  StartResult,
  SuperviseOptions,
  WatchOptions,
} from './types.js';
import type { AtomState } from './states.js';

/** Protocols 1–3 and 7: starting runs, claiming atoms, and the transactions that record what happened. */
export interface RunProtocol {
  /** protocol 1: inserts the run and all its atoms in one transaction (or returns the active run with the same key) */
  startRun(run: NewRun, options?: StartOptions): Promise<StartResult>;
  /**
   * Starts many runs without keys at once (protocol 1 for each): all of them or none.
   * One statement on PostgreSQL, one transaction elsewhere. Returns the run rows, in order.
   */
  startRuns(runs: readonly NewRun[]): Promise<RunRow[]>;
  /** protocol 2: claims up to `limit` claimable atoms whose ready_at has passed */
  claimAtoms(engineId: string, limit: number, options?: ClaimOptions): Promise<ClaimedAtom[]>;
  /**
   * Opens a transaction that locks the given runs, in id order, and runs `fn` in it.
   * Commits when `fn` resolves; rolls back and rethrows (the same error) when it rejects.
   * On PostgreSQL and MySQL a deadlock or serialization failure rolls back and runs the
   * WHOLE transaction again, so `fn` may be called more than once: it must have no effect
   * outside `tx` (collect in-memory results from its return value, not from side effects).
   * `tx` must not be used after `fn` has settled.
   */
  runTransaction<T>(runIds: readonly string[], fn: (tx: RunTx) => Promise<T>): Promise<T>;
  /**
   * Stores a signal and makes atoms waiting for it claimable; returns how many atoms woke.
   * Locks the run row first, so it is serialised with an atom parking on that signal.
   * When atoms woke, subscribed engines are woken at commit (protocol 6). A run that has
   * ended takes no signal: `STOKER_RUN_NOT_ACTIVE`, nothing stored (`STOKER_RUN_NOT_FOUND`
   * when there is no such run).
   */
  sendSignal(runId: string, name: string, payload: JsonValue): Promise<number>;
  /**
   * makes the given waiting atom claimable now (a child run finished); sends no wake-up:
   * the engine that calls it announces its batch with {@link Wakeups.notify}
   */
  wakeAtom(runId: string, index: number): Promise<void>;
}

/** Operations inside one transaction that holds the locks of some runs. */
export interface RunTx {
  /** the locked run rows, as they are now */
  run(runId: string): RunRow;
  getAtoms(runId: string, indexes: readonly number[]): Promise<AtomRow[]>;
  /** atoms of the run in any of the given states */
  getAtomsInStates(runId: string, states: readonly AtomState[]): Promise<AtomRow[]>;
  /** applies each update; returns whether each matched (false = fenced or state moved) */
  updateAtoms(runId: string, updates: readonly AtomUpdate[]): Promise<boolean[]>;
  /**
   * Decrements `pending` of the given PENDING atoms (once per entry; `disable` ORs into
   * `skip`). An atom whose count reaches 0 without `skip` becomes READY (ready_at = now) in
   * the same statement; one that reaches 0 with `skip` stays PENDING for the caller to skip.
   * Returns the rows after the update.
   */
  decrementPending(runId: string, entries: readonly { index: number; disable: boolean }[]): Promise<AtomRow[]>;
  /**
   * Claims one READY atom for this engine in this transaction (local continuation); null if
   * it was not READY. Writes no event: the caller records the transition with its others.
   */
  claimAtom(runId: string, index: number, engineId: string): Promise<ClaimedAtom | null>;
  updateRun(runId: string, patch: RunPatch): Promise<void>;
  insertEvents(events: readonly EventInput[]): Promise<void>;
  startRun(run: NewRun): Promise<StartResult>;
  /**
   * Claims up to `limit` claimable atoms of ANY run inside this transaction, as
   * {@link RunProtocol.claimAtoms} would (protocol 2), so that a completion batch and the
   * next claims share one commit.
   */
  claimMore(engineId: string, limit: number): Promise<ClaimedAtom[]>;
  /** how many signals with this name the run has received */
  signalCount(runId: string, name: string): Promise<number>;
}

/** Reads for engines, the CLI and the API: never a write, never a lock. */
export interface RunQueries {
  getRun(id: string): Promise<RunRow | null>;
  /** the runs with these ids (missing ids are absent, order is not kept): one round trip for many */
  getRuns(ids: readonly string[]): Promise<RunRow[]>;
  /** statuses of the given runs (missing ids are absent); used to notice cancels of in-flight runs */
  getRunStatuses(ids: readonly string[]): Promise<Map<string, RunStatus>>;
  getRunGraph(id: string): Promise<FlowGraph | null>;
  listRuns(filter?: RunFilter): Promise<RunRow[]>;
  getAtoms(runId: string): Promise<AtomRow[]>;
  getAtomResults(runId: string, indexes: readonly number[]): Promise<Map<number, JsonValue | null>>;
  /** events in id order: one run's, or every run's after a cursor ({@link EventFilter}) */
  listEvents(filter?: EventFilter): Promise<EventRow[]>;
  getSignals(runId: string): Promise<SignalRow[]>;
}

/** Retention (old runs are deleted by a retention setting). */
export interface Retention {
  /**
   * Deletes up to `limit` runs that ended (a terminal status) more than `olderThanMs` ago
   * by the database clock, with their atoms, events and signals, in one transaction; never
   * a run whose parent or a child is still active (it is taken on a later call). Also
   * deletes engine rows whose lease ran out more than `olderThanMs` ago and that hold no
   * atom (crashed engines leave them behind). Call again while it returns `limit` runs.
   * `dryRun` deletes nothing and counts what one call would.
   */
  pruneRuns(options: PruneOptions): Promise<PruneResult>;
}

/** Protocol 4: engine rows, leases, session locks, and taking over the atoms of dead engines. */
export interface EngineLiveness {
  /**
   * Inserts the engine row. On PostgreSQL and MySQL it first takes the engine's session
   * lock on a dedicated connection (not from the pool), held until
   * {@link deregisterEngine} or `close()`; an id whose lock is held elsewhere is refused
   * (STOKER_STORE_QUERY_FAILED), like an id whose row exists.
   */
  registerEngine(engine: EngineRegistration): Promise<void>;
  /**
   * Renews the lease; false if the row is gone or marked dead, or the engine's session lock
   * was lost (see {@link EngineRegistration.onSessionLost}): the engine must stop writing.
   */
  heartbeat(engineId: string, leaseMs: number, report?: EngineReport): Promise<boolean>;
  /**
   * Appends events outside any run transaction: what an engine observes rather than a
   * transition (a remote call waiting for a worker: docs/amqp.md). One INSERT.
   */
  appendEvents(events: readonly EventInput[]): Promise<void>;
  setEngineState(engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void>;
  /** deletes the engine row, then releases its session lock and closes that connection */
  deregisterEngine(engineId: string): Promise<void>;
  listEngines(): Promise<EngineRow[]>;
  /**
   * Requeues RUNNING/REVERTING atoms held by engines whose lease expired, whose row is gone
   * or marked dead, or that are found dead by their session lock (PostgreSQL, MySQL: see
   * {@link RequeueOptions.liveCheckAfterMs}) or their pid (SQLite): back to
   * READY/REVERT_READY, claim released; CANCELLED instead when the atom's run has ended.
   * Engines found dead are marked dead. Returns the requeued atoms.
   */
  requeueExpired(options?: RequeueOptions): Promise<{ runId: string; index: number; engineId: string | null }[]>;
  /** requeues the atoms of one engine at once (graceful drain, or a detected crash) */
  requeueEngine(engineId: string): Promise<number>;
  /**
   * Crash detection the moment it happens (protocol 4): waits, for up to `maxWaitMs`, until
   * engine `engineId` is gone. PostgreSQL and MySQL/MariaDB wait on a connection of their
   * own to take its session lock, which the database hands over as soon as that engine's
   * session ends (`kill -9`, a lost connection) or it deregisters, and let it go again at
   * once; SQLite (one host) looks at its pid every few ms. `'free'`: gone, or already gone;
   * the caller then sweeps with {@link requeueExpired}, which decides whether the engine is
   * dead (a free lock alone is not proof: it may have deregistered). `'held'`: the wait ran
   * out (the engine is alive). `'aborted'`: `signal` ended the wait. Rejects when the
   * connection fails.
   */
  watchEngine(engineId: string, options: WatchOptions): Promise<'free' | 'held' | 'aborted'>;
}

/** Protocol 10: named locks for callers, never how Stoker coordinates (docs/locks.md). */
export interface LockStore {
  /**
   * Acquires the lock `name` for `ttlMs` (by the database clock) in one conditional write:
   * it succeeds when the lock is new, released, or expired, and then bumps the lock's token
   * (the fencing token: it never decreases and is never handed out twice, because the row
   * is kept after release). Returns null while anyone holds it unexpired, the same holder
   * included: a holder name grants nothing, only the token does.
   */
  acquireLock(name: string, holder: string, ttlMs: number): Promise<AcquiredLock | null>;
  /**
   * Moves the expiry of a lock still held under `token` to `now + ttlMs` (database clock);
   * false when the token is no longer current (taken over), or the lock was released or has
   * expired: the caller must stop acting as its holder. Never revives an expired lease.
   */
  extendLock(name: string, token: number, ttlMs: number): Promise<boolean>;
  /**
   * Releases a lock held under `token` (the row and its token stay); false when it was
   * already released or another acquire has taken it since (a newer token): a late release
   * never frees the next holder's lock.
   */
  releaseLock(name: string, token: number): Promise<boolean>;
  /** the lock's row with its state by the database clock, or null if it was never acquired */
  getLock(name: string): Promise<LockRow | null>;
  /** locks in name order (keyset pagination by `after`) */
  listLocks(filter?: LockFilter): Promise<LockRow[]>;
}

/**
 * Protocol 6, where engines can be pushed (PostgreSQL LISTEN/NOTIFY; SQLite, one host: a
 * watched wake file). Elsewhere engines poll. A lost wake-up costs a poll interval, never
 * correctness.
 */
export interface Wakeups {
  /**
   * Calls `onWake` whenever some store announces claimable work ({@link notify}, or a
   * start with {@link NewRun.wakeup}), including this store's own announcements.
   * PostgreSQL: one dedicated LISTEN connection per store, shared by its subscribers; if it
   * drops, it is reconnected with backoff. SQLite: a watch on the deployment's wake file
   * next to the database; if the file is removed, it is made and watched again. MySQL: one
   * dedicated connection per store sleeping in a statement that a wake-up ends with
   * `KILL QUERY`; if it drops, it is opened again with backoff. In every case
   * `onWake` is called once after such a recovery (wake-ups may have been lost meanwhile).
   * Resolves once listening; rejects if the first connection (or watch) fails. Returns the
   * unsubscribe function.
   */
  subscribe(onWake: () => void): Promise<() => Promise<void>>;
  /**
   * Announces claimable work to subscribed engines. Not part of any transaction (on
   * PostgreSQL a separate short statement; on SQLite a touch of the wake file; on MySQL a
   * `CALL` of `wake_engines`): call it after a commit that made atoms claimable for others,
   * at most once per commit batch. PostgreSQL and MySQL: calls made while one is in flight
   * share one follow-up.
   */
  notify(): Promise<void>;
  /**
   * True where the wake-up a start makes is slow enough to send after a relay's (MySQL/MariaDB:
   * a scan of the server's process list and a `KILL QUERY` per listener, inside the start's
   * own call). A run client with a relay (AMQP, docs/amqp.md "Wake-ups") then starts without
   * it, announces over the relay, and calls {@link notify} after. Absent: false.
   */
  readonly deferInStarts?: boolean;
}

/**
 * One-statement completions (PostgreSQL, src/store/postgres/fast-success.ts). Each must
 * write nothing, and say so, whenever it cannot apply the step exactly as the general
 * transaction would; none is used for graphs with deciders.
 */
export interface FastCompletions {
  /** one success whose run goes on: the whole forward step in one statement */
  completeSuccess(input: FastSuccess): Promise<FastSuccessResult>;
  /**
   * Several successes of one RUNNING run that do not finish it, written in one statement
   * with their successors, local claims and claims for the freed slots. Writes only the
   * successes whose fence holds (the others are left for the general path) and nothing at
   * all when the run is not RUNNING or would finish.
   */
  completeSuccesses(input: FastSuccessBatch): Promise<FastBatchResult>;
  /**
   * Successes that finish their runs (the last open atom of each, runs without a parent),
   * for several runs in one statement, with claims for the freed slots. Writes only those
   * whose run is PENDING or RUNNING with that one atom left and whose fence holds; the
   * caller computed each run's outputs.
   */
  finishRuns(input: FastFinish): Promise<FastFinishResult>;
}

/**
 * The local supervisor, single-writer stores on one host only (SQLite): a process stopped
 * while it holds the one write lock stalls every engine, and no lease can end that
 * (docs/reliability.md R12, C12).
 */
export interface LocalSupervisor {
  /**
   * The engine calls this when it has been unable to write for longer than X
   * ({@link SuperviseOptions.staleMs}). With reads only (it never needs the write lock, nor
   * waits behind this store's queued writes), it finds the engines on this host, other
   * than the caller and its process, whose lease ran out more than X ago and whose process
   * is stopped (SIGSTOP, a debugger) and is still the one that registered (not a reused
   * pid), and SIGKILLs them: the OS drops the dead process's file locks and SQLite rolls
   * its transaction back. Running processes are never touched. Returns the kills.
   */
  superviseLocalEngines(options: SuperviseOptions): Promise<LocalEngineKill[]>;
}

/**
 * SQL for a layer that brings a schema module of its own (orchestration's stacks): its
 * statements are written once, with `?` placeholders (never inside string literals) and
 * `{p}` for the table prefix; the store numbers the placeholders where its dialect wants
 * (`$1`…). Rows come back with ids and strings as JS strings (MySQL's binary columns are
 * decoded) and integers as numbers. Nothing here touches the core tables: those stay
 * behind the other ports.
 */
export interface ModuleSql {
  readonly dialect: 'sqlite' | 'postgres' | 'mysql';
  /** reads; each statement may use another pooled connection */
  read<T>(purpose: string, fn: (s: ModuleSession) => Promise<T>): Promise<T>;
  /** one transaction on one connection (run again whole after a deadlock on PostgreSQL/MySQL) */
  transaction<T>(purpose: string, fn: (s: ModuleSession) => Promise<T>, options?: ModuleWriteOptions): Promise<T>;
  /** writes that need no transaction of their own: one statement each, committed alone (SQLite: one write lock) */
  write<T>(purpose: string, fn: (s: ModuleSession) => Promise<T>, options?: ModuleWriteOptions): Promise<T>;
}

export interface ModuleWriteOptions {
  /**
   * Commit without waiting for the log flush (PostgreSQL's `synchronous_commit = off`; the
   * other dialects commit as usual). Only for writes that a later ordinary commit of the
   * store always follows before anything relies on them, such as a resource step's writes
   * before its atom's completion: PostgreSQL flushes its log in order, so that commit makes
   * them durable too (docs/orchestration.md, "Durability of resource writes").
   */
  lazyCommit?: boolean;
}

/** Statements on one session of {@link ModuleSql}. */
export interface ModuleSession {
  /**
   * A statement that returns rows. With `prepared`, PostgreSQL parses and plans it once per
   * connection (a named statement, named after its text), for hot statements whose plan the
   * parameters do not change and whose result columns are fixed (no `*`: PostgreSQL refuses
   * a prepared statement whose result type a migration changed); the other dialects ignore it.
   */
  rows(purpose: string, text: string, params: readonly unknown[], options?: { prepared?: boolean }): Promise<Record<string, unknown>[]>;
  /** a write; resolves to the number of rows it matched */
  exec(purpose: string, text: string, params: readonly unknown[]): Promise<number>;
}
