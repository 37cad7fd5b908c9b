/**
 * The Store port: everything the engine, CLI and API need from the database, and nothing
 * about scheduling. Adapters: SqliteStore, PostgresStore, MysqlStore.
 *
 * Rules every adapter keeps (see DESIGN.md and reliability/RULES.md):
 * - all times are computed and compared by the database clock (`now()` in SQL); callers
 *   pass *durations*, never timestamps;
 * - every atom write made for a claim is conditional on `(epoch, state)` and reports
 *   whether it matched (fencing); a miss is never retried;
 * - a {@link RunTx} first locks the run rows it was opened for (in id order), so that all
 *   transitions of one run are serialised while different runs proceed in parallel;
 * - no transaction stays open across task code: a RunTx callback must not await anything
 *   but its own `tx` methods.
 */
import type { JsonObject, JsonValue } from '../core/json.js';
import type { FlowGraph } from '../flow/graph.js';
import type { FailureRecord } from '../flow/types.js';
import type { AtomState, RunStatus } from '../engine/states.js';

/** What a dialect can do; statements branch on these, not on dialect names. */
export interface DialectCapabilities {
  name: 'sqlite' | 'postgres' | 'mysql';
  skipLocked: boolean;
  returning: boolean;
  advisoryLocks: boolean;
  listenNotify: boolean;
  transactionalDdl: boolean;
  /** one writer at a time (SQLite): engines in one process should share one store */
  singleWriter: boolean;
}

export interface RunRow {
  id: string;
  flow: string;
  version: string;
  key: string | null;
  status: RunStatus;
  args: JsonObject;
  result: JsonValue | null;
  failure: FailureRecord | null;
  parentRunId: string | null;
  parentAtom: number | null;
  /** atoms not yet in a terminal state on the forward path */
  pendingAtoms: number;
  /** atoms still to revert while the run is REVERTING */
  revertPending: number;
  atomCount: number;
  /** the content hash of the run's compiled graph (src/store/graphs.ts): equal to the registry's when the code is unchanged */
  graphHash: string;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

/** A durable wait recorded in an atom's journal (sleep, signal, child run). */
export interface JournalEntry {
  seq: number;
  kind: 'sleep' | 'signal' | 'child';
  /** signal name or child run id */
  ref?: string;
  done: boolean;
  value?: JsonValue;
}

export interface AtomRow {
  runId: string;
  index: number;
  name: string;
  state: AtomState;
  /** unfinished predecessors (forward) */
  pending: number;
  /** successors still to revert (revert path) */
  revertPending: number;
  /** an incoming link was disabled by a decider or a skipped predecessor */
  skip: boolean;
  /** the scope reverts: when this RUNNING atom finishes it goes to the revert path */
  revertRequested: boolean;
  epoch: number;
  claimedBy: string | null;
  attempt: number;
  execution: number;
  result: JsonValue | null;
  failure: FailureRecord | null;
  journal: JournalEntry[];
  waitKind: string | null;
  waitRef: string | null;
  readyAt: Date | null;
  updatedAt: Date;
}

/** A claim handed to an engine (protocol 2). */
export interface ClaimedAtom {
  runId: string;
  index: number;
  /** RUNNING (execute) or REVERTING (revert) */
  state: 'RUNNING' | 'REVERTING';
  epoch: number;
  attempt: number;
  execution: number;
  journal: JournalEntry[];
  failure: FailureRecord | null;
  /**
   * The run's row as the claim read it, on one claimed atom of each run (stores that read
   * it in the claim's own statement: PostgreSQL). Saves the engine a round trip before a
   * run's first task starts.
   */
  run?: RunRow;
}

export interface NewRun {
  id: string;
  flow: string;
  version: string;
  key: string | null;
  args: JsonObject;
  graph: FlowGraph;
  parentRunId?: string | null;
  parentAtom?: number | null;
  /** mark the active run with the same key SUPERSEDED instead of returning it */
  supersede?: boolean;
  /**
   * Wake idle engines (protocol 6) when this start creates claimable atoms: on PostgreSQL a
   * `NOTIFY` inside the start's own transaction, delivered at its commit; on SQLite a touch
   * of the wake file after the commit. Default `true`
   * for {@link Store.startRun} (a start should be picked up at once, not at the next poll)
   * and `false` for {@link RunTx.startRun} (the engine announces a whole commit once, with
   * {@link Store.notifyWakeup}). A NOTIFY serialises commits on PostgreSQL (measured: about
   * 3,100 commits/s with one in every transaction), so bulk starters pass `false` and call
   * `notifyWakeup()` once per batch. Ignored where the dialect has no push (MySQL).
   */
  wakeup?: boolean;
}

export interface StartResult {
  run: RunRow;
  /** false when an active run with the same key and arguments was returned */
  created: boolean;
  /** id of the run this start superseded */
  superseded?: string;
}

/** When an atom becomes claimable, relative to the database clock. */
export type ReadyAt = { delayMs: number } | null;

/** Fields an atom write may set. Absent = unchanged. */
export interface AtomPatch {
  state?: AtomState;
  pending?: number;
  revertPending?: number;
  skip?: boolean;
  revertRequested?: boolean;
  attempt?: number;
  execution?: number;
  result?: JsonValue | null;
  failure?: FailureRecord | null;
  journal?: JournalEntry[];
  waitKind?: string | null;
  waitRef?: string | null;
  readyAt?: ReadyAt;
  /** null releases the claim */
  claimedBy?: string | null;
}

/** A conditional atom write. `epoch` set = fenced write for a claim. */
export interface AtomUpdate {
  index: number;
  expectStates?: readonly AtomState[];
  epoch?: number;
  /** match only when `revert_requested` has this value */
  expectRevertRequested?: boolean;
  patch: AtomPatch;
}

export interface RunPatch {
  status?: RunStatus;
  result?: JsonValue | null;
  failure?: FailureRecord | null;
  pendingAtomsDelta?: number;
  revertPending?: number;
  revertPendingDelta?: number;
  finished?: boolean;
}

export interface EventInput {
  runId: string;
  atom: number | null;
  kind: string;
  fromState?: string | null;
  toState?: string | null;
  engineId?: string | null;
  epoch?: number | null;
  data?: JsonValue;
}

export interface PruneOptions {
  /** runs that ended more than this long ago (ms, database clock); at least 0 */
  olderThanMs: number;
  /** at most this many runs in one call (one transaction) */
  limit: number;
  /** count only */
  dryRun?: boolean;
}

/** What {@link Store.pruneRuns} deleted (or, dry run, would delete). */
export interface PruneResult {
  runs: number;
  atoms: number;
  events: number;
  signals: number;
  engines: number;
}

export interface EventRow extends Required<Omit<EventInput, 'data'>> {
  id: number;
  data: JsonValue | null;
  at: Date;
}

export interface SignalRow {
  runId: string;
  name: string;
  payload: JsonValue;
  at: Date;
}

/** The common completion (an atom succeeded, its run goes on), for stores with a one-statement fast path. */
export interface FastSuccess {
  runId: string;
  index: number;
  epoch: number;
  result: JsonValue;
  journal: JournalEntry[];
  successors: readonly number[];
  /** a successor to claim for this engine if it becomes ready (local continuation), or null */
  claim: number | null;
  engineId: string;
}

export interface FastSuccessResult {
  /** false: nothing was written; take the general path (run ends, not RUNNING, fence missed) */
  handled: boolean;
  claimed: ClaimedAtom | null;
  madeReady: number;
}

/** Several successes of one run committed together, for stores with a one-statement batch path. */
export interface FastSuccessBatch {
  runId: string;
  successes: readonly { index: number; epoch: number; result: JsonValue; journal: JournalEntry[]; successors: readonly number[] }[];
  /** successors to claim for this engine if they become ready (local continuation) */
  claim: readonly number[];
  /** how many READY atoms of any run to claim as well, for the slots the batch frees */
  claimMore: number;
  engineId: string;
}

export interface FastBatchResult {
  /** indexes of the successes that were written; the others go through the general path */
  written: number[];
  /** successors claimed locally, then atoms claimed from any run */
  continuations: ClaimedAtom[];
  /** of `continuations`, how many were claimed from any run (not successors) */
  claimedMore: number;
  madeReady: number;
}

/** Successes that finish their runs, one per run, for stores with a one-statement path. */
export interface FastFinish {
  finishes: readonly { runId: string; index: number; epoch: number; result: JsonValue; journal: JournalEntry[]; outputs: JsonValue }[];
  /** how many READY atoms of any run to claim as well, for the slots the batch frees */
  claimMore: number;
  engineId: string;
}

export interface FastFinishResult {
  /** the successes written; their runs are SUCCESS now. The others go through the general path. */
  finished: { runId: string; index: number }[];
  /** atoms claimed from any run for the freed slots */
  continuations: ClaimedAtom[];
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
   * Optional: claims up to `limit` claimable atoms of ANY run inside this transaction, as
   * {@link Store.claimAtoms} would (protocol 2), so that a completion batch and the next
   * claims share one commit.
   */
  claimMore?(engineId: string, limit: number): Promise<ClaimedAtom[]>;
  /** how many signals with this name the run has received */
  signalCount(runId: string, name: string): Promise<number>;
}

/** What {@link Store.registerEngine} records about an engine. */
export interface EngineRegistration {
  id: string;
  host: string;
  pid: number;
  version: string;
  leaseMs: number;
  /**
   * Called once if the engine's session lock (PostgreSQL advisory lock, MySQL `GET_LOCK`,
   * on a connection of its own) is lost while it is registered: the server restarted or
   * failed over, the session was killed, the network broke. Other engines may requeue its
   * atoms from now on, so the engine must fence itself (abort its tasks, stop writing) and
   * register again under a NEW id. The store does not re-acquire the lock; it marks the
   * engine row dead (best effort) and from then on {@link Store.heartbeat} returns false.
   * Never called after {@link Store.deregisterEngine} or `close()`. SQLite has no session
   * lock and never calls it.
   */
  onSessionLost?: (cause: Error) => void;
}

/** Options of {@link Store.requeueExpired}. */
export interface WatchOptions {
  /** how long to wait for the lock before answering `'held'` (ms, at least 1) */
  maxWaitMs: number;
  /** ends the wait early (engine stopping): the call resolves `'aborted'` */
  signal: AbortSignal;
}

export interface RequeueOptions {
  /**
   * Fast crash detection (RULES.md R11), PostgreSQL and MySQL: an engine that holds atoms,
   * whose last heartbeat is at least this old (by the database clock) and whose session
   * lock is free is dead, although its lease has not run out. Default: a third of that
   * engine's own lease (one missed heartbeat at the usual renew interval). `0` checks the
   * lock of every engine that holds atoms on every call (sub-second takeover; one
   * `pg_try_advisory_xact_lock` / `IS_FREE_LOCK` per such engine per call, fine for tens of
   * engines). `Infinity` turns the check off (lease only). Beware `0` after a database
   * restart: every session, and so every lock, is gone, and every engine looks dead until
   * it has registered again. SQLite ignores it: there the pid is always checked.
   */
  liveCheckAfterMs?: number;
}

/** Options of {@link Store.superviseLocalEngines}. */
export interface SuperviseOptions {
  /** the calling engine's current id (never a target) */
  selfId: string;
  /** X: only engines whose lease ran out more than this long ago (database clock) are targets */
  staleMs: number;
}

/** An engine process the local supervisor SIGKILLed (RULES.md R12). */
export interface LocalEngineKill {
  engineId: string;
  pid: number;
  /** how long its lease had been over, by the database clock */
  overdueMs: number;
}

export interface EngineRow {
  id: string;
  host: string;
  pid: number;
  version: string;
  state: 'alive' | 'draining' | 'dead';
  startedAt: Date;
  heartbeatAt: Date;
  leaseExpiresAt: Date;
  /** seconds since the last renewal, by the database clock */
  leaseAgeMs: number;
  atomsHeld: number;
}

export interface RunFilter {
  status?: RunStatus[];
  flow?: string;
  key?: string;
  parentRunId?: string;
  limit?: number;
  /** runs created before this id's creation (keyset pagination) */
  before?: string;
}

export interface Store {
  readonly capabilities: DialectCapabilities;
  /** applies pending migrations (idempotent; takes a lock) and returns the versions applied now */
  migrate(): Promise<number[]>;
  close(): Promise<void>;
  /** the database clock */
  now(): Promise<Date>;

  /** protocol 1: inserts the run and all its atoms in one transaction (or returns the active run with the same key) */
  startRun(run: NewRun): Promise<StartResult>;
  /** protocol 2: claims up to `limit` claimable atoms whose ready_at has passed */
  /**
   * Starts many runs without keys at once (protocol 1 for each): all of them or none.
   * One statement on PostgreSQL, one transaction elsewhere. Returns the run rows, in order.
   */
  startRuns(runs: readonly NewRun[]): Promise<RunRow[]>;
  claimAtoms(engineId: string, limit: number): Promise<ClaimedAtom[]>;
  /**
   * Optional fast path for {@link FastSuccess}: the whole forward step in one statement.
   * Must write nothing and return `handled: false` whenever it cannot apply the step exactly
   * as the general path would. Not used for graphs with deciders.
   */
  completeSuccessFast?(input: FastSuccess): Promise<FastSuccessResult>;
  /**
   * Optional: several successes of one RUNNING run that do not finish it, written in one
   * statement with their successors, local claims and claims for the freed slots. Writes
   * only the successes whose fence holds (the others are left for the general path) and
   * nothing at all when the run is not RUNNING or would finish. Not used for graphs with
   * deciders.
   */
  completeSuccessesFast?(input: FastSuccessBatch): Promise<FastBatchResult>;
  /**
   * Optional: successes that finish their runs (the last open atom of each, runs without a
   * parent), for several runs in one statement, with claims for the freed slots. Writes
   * only those whose run is PENDING or RUNNING with that one atom left and whose fence
   * holds; the caller computed each run's outputs. Not used for graphs with deciders.
   */
  finishRunsFast?(input: FastFinish): Promise<FastFinishResult>;
  /**
   * Opens a transaction that locks the given runs, in id order, and runs `fn` in it.
   * Commits when `fn` resolves; rolls back and rethrows (the same error) when it rejects.
   * On PostgreSQL and MySQL a deadlock or serialization failure rolls back and runs the
   * WHOLE transaction again, so `fn` may be called more than once: it must have no effect
   * outside `tx` (collect in-memory results from its return value, not from side effects).
   * `tx` must not be used after `fn` has settled.
   */
  runTransaction<T>(runIds: readonly string[], fn: (tx: RunTx) => Promise<T>): Promise<T>;

  getRun(id: string): Promise<RunRow | null>;
  /** the runs with these ids (missing ids are absent, order is not kept): one round trip for many */
  getRuns(ids: readonly string[]): Promise<RunRow[]>;
  /** statuses of the given runs (missing ids are absent); used to notice cancels of in-flight runs */
  getRunStatuses(ids: readonly string[]): Promise<Map<string, RunStatus>>;
  getRunGraph(id: string): Promise<FlowGraph | null>;
  listRuns(filter?: RunFilter): Promise<RunRow[]>;
  getAtoms(runId: string): Promise<AtomRow[]>;
  getAtomResults(runId: string, indexes: readonly number[]): Promise<Map<number, JsonValue | null>>;
  listEvents(runId: string, options?: { afterId?: number; limit?: number }): Promise<EventRow[]>;
  /**
   * Retention (DESIGN.md, Storage): deletes up to `limit` runs that ended (a terminal
   * status) more than `olderThanMs` ago by the database clock, with their atoms, events and
   * signals, in one transaction; never a run whose parent or a child is still active (it
   * is taken on a later call). Also deletes engine rows whose lease ran out more than
   * `olderThanMs` ago and that hold no atom (crashed engines leave them behind). Call again
   * while it returns `limit` runs. `dryRun` deletes nothing and counts what one call would.
   */
  pruneRuns(options: PruneOptions): Promise<PruneResult>;

  /**
   * Stores a signal and makes atoms waiting for it claimable; returns how many atoms woke.
   * Locks the run row first, so it is serialised with an atom parking on that signal.
   * When atoms woke, subscribed engines are woken at commit (PostgreSQL NOTIFY, protocol 6).
   */
  sendSignal(runId: string, name: string, payload: JsonValue): Promise<number>;
  getSignals(runId: string): Promise<SignalRow[]>;

  /**
   * makes the given waiting atom claimable now (a child run finished); sends no wake-up:
   * the engine that calls it announces its batch with {@link notifyWakeup}
   */
  wakeAtom(runId: string, index: number): Promise<void>;

  // --- engines and liveness (protocol 4) ---
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
  heartbeat(engineId: string, leaseMs: number): Promise<boolean>;
  setEngineState(engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void>;
  /** deletes the engine row, then releases its session lock and closes that connection */
  deregisterEngine(engineId: string): Promise<void>;
  listEngines(): Promise<EngineRow[]>;
  /**
   * Requeues RUNNING/REVERTING atoms held by engines whose lease expired, whose row is gone
   * or marked dead, or that are found dead by their session lock (PostgreSQL, MySQL: see
   * {@link RequeueOptions.liveCheckAfterMs}) or their pid (SQLite): back to
   * READY/REVERT_READY, claim released. Engines found dead are marked dead. Returns the
   * requeued atoms.
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
  watchEngine?(engineId: string, options: WatchOptions): Promise<'free' | 'held' | 'aborted'>;
  /**
   * The local supervisor (RULES.md R12, TEST-PLAN C12), single-writer stores on one host
   * only (SQLite): a process stopped while it holds the one write lock stalls every engine,
   * and no lease can end that. The engine calls this when it has been unable to write for
   * longer than X ({@link SuperviseOptions.staleMs}). With reads only (it never needs the
   * write lock, nor waits behind this store's queued writes), it finds the engines on this
   * host, other than the caller and its process, whose lease ran out more than X ago and
   * whose process is stopped (SIGSTOP, a debugger) and is still the one that registered (not
   * a reused pid), and SIGKILLs them: the OS drops the dead process's file locks and SQLite
   * rolls its transaction back. Running processes are never touched. Returns the kills.
   * Absent on PostgreSQL and MySQL, where a session's locks end with its session.
   */
  superviseLocalEngines?(options: SuperviseOptions): Promise<LocalEngineKill[]>;

  // --- wake-ups (protocol 6): present where engines can be pushed (PostgreSQL; SQLite, one host) ---
  /**
   * Calls `onWake` whenever some store announces claimable work ({@link notifyWakeup}, or a
   * start with {@link NewRun.wakeup}), including this store's own announcements.
   * PostgreSQL: one dedicated LISTEN connection per store, shared by its subscribers; if it
   * drops, it is reconnected with backoff. SQLite: a watch on the deployment's wake file
   * next to the database; if the file is removed, it is made and watched again. Either way
   * `onWake` is called once after such a recovery (wake-ups may have been lost meanwhile).
   * Resolves once listening; rejects if the first connection (or watch) fails. Returns the
   * unsubscribe function. A lost wake-up costs a poll interval, never correctness: engines
   * keep polling.
   */
  subscribeWakeups?(onWake: () => void): Promise<() => Promise<void>>;
  /**
   * Announces claimable work to subscribed engines. Not part of any transaction (on
   * PostgreSQL a separate short statement; on SQLite a touch of the wake file): call it
   * after a commit that made atoms claimable for others, at most once per commit batch.
   * PostgreSQL: calls made while one is in flight share one follow-up.
   */
  notifyWakeup?(): Promise<void>;

  // --- locks (protocol 10): a band-aid for callers, never how Stoker coordinates (docs/locks.md) ---
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
   * never frees the next holder's lock (RULES.md R5).
   */
  releaseLock(name: string, token: number): Promise<boolean>;
  /** the lock's row with its state by the database clock, or null if it was never acquired */
  getLock(name: string): Promise<LockRow | null>;
  /** locks in name order (keyset pagination by `after`) */
  listLocks(filter?: LockFilter): Promise<LockRow[]>;
}

/** What {@link Store.acquireLock} hands to the new holder. */
export interface AcquiredLock {
  /** the fencing token: greater than every token this lock name had before */
  token: number;
  /** when the lease runs out, by the database clock */
  expiresAt: Date;
}

/** A lock as {@link Store.getLock} and {@link Store.listLocks} show it. */
export interface LockRow {
  name: string;
  /** the current or last holder (kept after release and expiry, for inspection) */
  holder: string;
  /** the token of the last acquire */
  token: number;
  acquiredAt: Date;
  expiresAt: Date;
  /** set by a release; null while held or after an expiry without release */
  releasedAt: Date | null;
  /** held now: not released and not expired, by the database clock */
  held: boolean;
  /** milliseconds the lease has left by the database clock; 0 when not held */
  remainingMs: number;
}

/** Filter of {@link Store.listLocks}. */
export interface LockFilter {
  /** only locks held now (by the database clock) */
  heldOnly?: boolean;
  /** names after this one (keyset pagination) */
  after?: string;
  /** at most this many rows, default 100 */
  limit?: number;
}
