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
  /** how many signals with this name the run has received */
  signalCount(runId: string, name: string): Promise<number>;
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
  claimAtoms(engineId: string, limit: number): Promise<ClaimedAtom[]>;
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
  /** statuses of the given runs (missing ids are absent); used to notice cancels of in-flight runs */
  getRunStatuses(ids: readonly string[]): Promise<Map<string, RunStatus>>;
  getRunGraph(id: string): Promise<FlowGraph | null>;
  listRuns(filter?: RunFilter): Promise<RunRow[]>;
  getAtoms(runId: string): Promise<AtomRow[]>;
  getAtomResults(runId: string, indexes: readonly number[]): Promise<Map<number, JsonValue | null>>;
  listEvents(runId: string, options?: { afterId?: number; limit?: number }): Promise<EventRow[]>;

  /**
   * Stores a signal and makes atoms waiting for it claimable; returns how many atoms woke.
   * Locks the run row first, so it is serialised with an atom parking on that signal.
   */
  sendSignal(runId: string, name: string, payload: JsonValue): Promise<number>;
  getSignals(runId: string): Promise<SignalRow[]>;

  /** makes the given waiting atom claimable now (a child run finished) */
  wakeAtom(runId: string, index: number): Promise<void>;

  // --- engines and liveness (protocol 4) ---
  registerEngine(engine: { id: string; host: string; pid: number; version: string; leaseMs: number }): Promise<void>;
  /** renews the lease; false if the row is gone or marked dead (the engine must stop writing) */
  heartbeat(engineId: string, leaseMs: number): Promise<boolean>;
  setEngineState(engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void>;
  deregisterEngine(engineId: string): Promise<void>;
  listEngines(): Promise<EngineRow[]>;
  /**
   * Requeues RUNNING/REVERTING atoms held by engines whose lease expired (or whose row is
   * gone, or that `isDead` reports dead): back to READY/REVERT_READY, claim released.
   * Returns the requeued atoms.
   */
  requeueExpired(): Promise<{ runId: string; index: number; engineId: string | null }[]>;
  /** requeues the atoms of one engine at once (graceful drain, or a detected crash) */
  requeueEngine(engineId: string): Promise<number>;
}
