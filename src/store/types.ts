/**
 * The values that cross the store ports (src/store/ports.ts): rows as the engine, the CLI
 * and the API read them, and the inputs of writes. Plain data: no behaviour, no SQL.
 */
import type { JsonObject, JsonValue } from '../core/json.js';
import type { FlowGraph } from '../flow/graph.js';
import type { FailureRecord } from '../flow/types.js';
import type { AtomState, RunStatus } from './states.js';

/** The dialects Stoker speaks. */
export type DialectName = 'sqlite' | 'postgres' | 'mysql';

/**
 * What a store can do. Statements branch on these, not on dialect names, and the engine
 * reads the last three to decide which of its parts to run; each of them is true exactly
 * when the matching optional port of the store is present (a store-contract test checks).
 */
export interface DialectCapabilities {
  name: DialectName;
  skipLocked: boolean;
  returning: boolean;
  advisoryLocks: boolean;
  listenNotify: boolean;
  transactionalDdl: boolean;
  /** one writer at a time (SQLite): engines in one process should share one store */
  singleWriter: boolean;
  /** {@link Store.fast}: one-statement completions (PostgreSQL) */
  fastCompletions: boolean;
  /** {@link Store.wakeups}: idle engines are pushed when work appears (PostgreSQL NOTIFY, SQLite's wake file, MySQL's KILL QUERY of a listener's sleep) */
  pushWakeups: boolean;
  /** {@link Store.supervisor}: a stopped process can stall every engine, so engines supervise their host (SQLite) */
  localSupervisor: boolean;
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

/** Options of a claim (protocol 2). */
export interface ClaimOptions {
  /**
   * Called with the claims once the database has made them, possibly before their commit
   * is durable (MySQL/MariaDB: ARCHITECTURE.md, "Claims seen before their commit"); the
   * claim's promise then resolves with the same claims once committed. If it rejects
   * after this was called, the claims may never have existed: the caller must stop what
   * it started for them and never write under their epochs (the engine fences itself).
   * Stores that have nothing to show before the commit never call it.
   */
  onVisible?: (claims: ClaimedAtom[]) => void;
  /**
   * A run whose start may still be committing (named by a wake-up sent before that commit,
   * `StartOptions.onInserted`): the claim first waits for whatever holds the run's row, at
   * most about a second, so that it sees the run's atoms once they are committed
   * (MySQL/MariaDB; the other stores' starts announce only after their commit, and ignore it).
   */
  after?: string;
}

/** Options of a start (protocol 1). */
export interface StartOptions {
  /**
   * Called once the run's rows are written, before their commit is confirmed (MySQL/MariaDB's
   * one-call start of a run without a key; never elsewhere): for a wake-up that names the run,
   * so that an engine's claim waits for the commit (`ClaimOptions.after`) instead of missing
   * the rows while they are uncommitted. The start may still fail after it.
   */
  onInserted?: () => void;
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
   * of the wake file after the commit; on MySQL/MariaDB a `KILL QUERY` of the listeners'
   * sleep after the commit (a keyless start: in the same call). Default `true`
   * for {@link RunProtocol.startRun} (a start should be picked up at once, not at the next poll)
   * and `false` for {@link RunTx.startRun} (the engine announces a whole commit once, with
   * {@link Wakeups.notify}). A NOTIFY serialises commits on PostgreSQL (measured: about
   * 3,100 commits/s with one in every transaction), so bulk starters pass `false` and call
   * `notifyWakeup()` once per batch.
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

/** What {@link Retention.pruneRuns} deleted (or, dry run, would delete). */
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
  /** as {@link FastBatchResult.runVersion}, when handled */
  runVersion?: number;
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
  /**
   * The run row's `row_version` as the statement found it once it held the run's lock
   * (PostgreSQL; absent elsewhere): the engine compares it with the version its own last
   * commit of the run left, to tell whether other engines commit to the run too.
   */
  runVersion?: number;
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

/** What {@link EngineLiveness.registerEngine} records about an engine. */
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
   * engine row dead (best effort) and from then on {@link EngineLiveness.heartbeat} returns false.
   * Never called after {@link EngineLiveness.deregisterEngine} or `close()`. SQLite has no session
   * lock and never calls it.
   */
  onSessionLost?: (cause: Error) => void;
}

/** Options of {@link EngineLiveness.watchEngine}. */
export interface WatchOptions {
  /** how long to wait for the lock before answering `'held'` (ms, at least 1) */
  maxWaitMs: number;
  /** ends the wait early (engine stopping): the call resolves `'aborted'` */
  signal: AbortSignal;
}

/** Options of {@link EngineLiveness.requeueExpired}. */
export interface RequeueOptions {
  /**
   * Fast crash detection (docs/reliability.md R11), PostgreSQL and MySQL: an engine that holds atoms,
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

/** Options of {@link LocalSupervisor.superviseLocalEngines}. */
export interface SuperviseOptions {
  /** the calling engine's current id (never a target) */
  selfId: string;
  /** X: only engines whose lease ran out more than this long ago (database clock) are targets */
  staleMs: number;
}

/** An engine process the local supervisor SIGKILLed (docs/reliability.md R12). */
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
  /** remote calls of this engine no worker has started yet, as of its last lease renewal (docs/amqp.md) */
  remoteQueued: number;
  /** how long the oldest of them had waited then (ms), or null */
  remoteOldestMs: number | null;
}

/** What an engine reports with its lease renewal (docs/amqp.md, "Remote tasks"). */
export interface EngineReport {
  remoteQueued: number;
  remoteOldestMs: number | null;
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

/**
 * Which events {@link RunQueries.listEvents} returns: one run's, or every run's, in id
 * order after `afterId`. Event ids grow with every insert, so `afterId` is a cursor: a
 * follower asks again with the last id it saw (what live updates need).
 */
export interface EventFilter {
  /** only this run's events; absent: every run's */
  runId?: string;
  /** events with a greater id (default 0: from the first) */
  afterId?: number;
  /** at most this many (default 10,000) */
  limit?: number;
}

/** What {@link LockStore.acquireLock} hands to the new holder. */
export interface AcquiredLock {
  /** the fencing token: greater than every token this lock name had before */
  token: number;
  /** when the lease runs out, by the database clock */
  expiresAt: Date;
}

/** A lock as {@link LockStore.getLock} and {@link LockStore.listLocks} show it. */
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

/** Filter of {@link LockStore.listLocks}. */
export interface LockFilter {
  /** only locks held now (by the database clock) */
  heldOnly?: boolean;
  /** names after this one (keyset pagination) */
  after?: string;
  /** at most this many rows, default 100 */
  limit?: number;
}
