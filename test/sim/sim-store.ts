/**
 * SimStore: the Store port (src/store/store.ts) in memory, with the semantics of the SQL
 * adapters (reference: src/store/sqlite/sqlite-store.ts; claim/requeue shapes of
 * src/store/postgres/postgres-store.ts) and a database clock equal to virtual time.
 *
 * Concurrency model (PostgreSQL READ COMMITTED, row locks):
 * - every call is one "statement" that runs atomically (JS is single-threaded) after an
 *   optional virtual network delay;
 * - `runTransaction` locks its runs in id order (a FIFO async lock per run id, like
 *   `SELECT … FOR UPDATE`), then works on a private overlay: rows it writes are row-locked
 *   until commit and invisible to other sessions (they read the committed image);
 * - claims and `requeueExpired` skip row-locked atoms (`SKIP LOCKED`); `requeueEngine`,
 *   `sendSignal` and `wakeAtom` wait for the locks (`FOR UPDATE`);
 * - commit applies the overlay atomically; a throw, a crash of the session, a store restart
 *   or the idle-in-transaction timeout (for a paused session) rolls it back.
 *
 * Sessions: one per engine (`connect(proc)`), so a crashed engine's open transaction is
 * rolled back and its in-flight calls never return; a paused engine's calls hang until it
 * resumes.
 *
 * Fault knobs (seeded by the world's fault stream): `reject` (connection error before the
 * statement), `delay` (virtual ms), `ambiguous` (the statement or commit is applied, then the
 * caller gets a connection error: Temporal's ExecuteAndTimeout), `txRetry` (serialization
 * failure: roll back and run the callback again, which the port allows), `restart` (drop every
 * session's open transaction and refuse calls for a while).
 *
 * History: an append-only list of every committed write, with the writing session's engine,
 * the epoch a fenced write was conditioned on, and the virtual time. The checker judges the
 * run from it, never from the engine's own view.
 *
 * Mutants (test-only flags, docs/reliability.md, "The simulation") are listed in {@link SimMutants}.
 */
import { canonicalJson } from '../../src/core/canonical-json.js';
import type { Rng } from '../../src/core/clock.js';
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { TERMINAL_RUN_STATUSES, type AtomState, type RunStatus } from '../../src/store/states.js';
import { ConflictError, StoreError } from '../../src/errors.js';
import type { FlowGraph } from '../../src/flow/graph.js';
import { graphDigest } from '../../src/store/graphs.js';
import { requeueEventKind } from '../../src/store/rows.js';
import type { MigrationRecord, SchemaModule } from '../../src/store/migration.js';
import type { FailureRecord } from '../../src/flow/types.js';
import type {
  AtomPatch,
  AtomRow,
  AtomUpdate,
  ClaimOptions,
  ClaimedAtom,
  PruneResult,
  DialectCapabilities,
  EngineRegistration,
  EngineRow,
  EventFilter,
  EventInput,
  EventRow,
  FastCompletions,
  FastSuccess,
  FastSuccessResult,
  JournalEntry,
  NewRun,
  RequeueOptions,
  RunFilter,
  RunPatch,
  RunRow,
  RunTx,
  SignalRow,
  StartResult,
  Store,
  Wakeups,
} from '../../src/store/store.js';
import { SIM_EPOCH_MS, type Scheduler, type SimProc } from './sim-clock.js';
import type { AcquiredLock, LockRow } from '../../src/store/store.js';

// ------------------------------------------------------------------------------ knobs

export interface SimFaults {
  /** per statement: connection error before it runs */
  rejectP: number;
  /** per statement: a network delay of 1..delayMaxMs virtual ms before it runs */
  delayP: number;
  delayMaxMs: number;
  /** per writing statement or commit: applied, then the caller gets a connection error */
  ambiguousP: number;
  /** per transaction: serialization failure after the callback: roll back and call it again */
  txRetryP: number;
  /** when set, `reject` and `ambiguous` hit only these statements (e.g. 'claimAtoms', 'commit', 'getRunGraph') */
  ops?: readonly string[];
}

export const NO_FAULTS: SimFaults = { rejectP: 0, delayP: 0, delayMaxMs: 0, ambiguousP: 0, txRetryP: 0 };

/** Planted bugs. Each must be caught by the checker (docs/reliability.md, "The simulation"). */
export interface SimMutants {
  /** M1: fenced atom writes ignore `epoch` (the `AND epoch = $n` predicate is dropped) */
  ignoreEpoch?: boolean;
  /** M2: lease expiry written and compared with the *calling engine's* skewed clock instead of the DB clock */
  engineClockLease?: boolean;
  /** M3: requeue without the liveness check: a claim older than the lease is requeued even if its engine renews (a per-claim lease, no fencing of the release) */
  requeueLive?: boolean;
  /** M4: conditional atom writes ignore `expectStates` (the `AND state IN (…)` predicate is dropped) */
  ignoreExpectStates?: boolean;
}

export interface SimStoreOptions {
  sched: Scheduler;
  /** the fault stream */
  rng: Rng;
  faults?: SimFaults;
  mutants?: SimMutants;
  /** idle_in_transaction_session_timeout: a paused session's open transaction is rolled back after this */
  idleTxTimeoutMs?: number;
  /**
   * R11 / DESIGN protocol 4 (PostgreSQL, MySQL): each engine holds a session lock from
   * `registerEngine` on; a crashed process frees it at once (so `requeueExpired` may treat the
   * engine as dead before its lease runs out), a store restart frees every lock and calls
   * `onSessionLost`. Off: leases only.
   */
  sessionLocks?: boolean;
  /** offer `completeSuccessFast` (PostgreSQL's one-statement completion) */
  fastPath?: boolean;
  /** offer `subscribeWakeups` / `notifyWakeup` (PostgreSQL LISTEN/NOTIFY) */
  listenNotify?: boolean;
  /**
   * show a claim's claims to `onVisible` before its reply (MySQL/MariaDB: ARCHITECTURE.md,
   * "Claims seen before their commit"): the engine starts them before it knows whether the
   * reply comes, and an ambiguous claim then fails after its tasks started
   */
  visibleClaims?: boolean;
}

// ------------------------------------------------------------------------------ history

/** One change inside a committed unit. Fields are what the checker needs, nothing more. */
export type Change =
  | {
      k: 'claim';
      run: string;
      idx: number;
      epoch: number;
      engine: string;
      from: AtomState;
      to: AtomState;
      attempt: number;
      execution: number;
      local: boolean;
    }
  | {
      k: 'atom';
      run: string;
      idx: number;
      from: AtomState;
      to: AtomState;
      /** the epoch the write was conditioned on (a fenced write for a claim), else null */
      writerEpoch: number | null;
      attemptFrom: number;
      attemptTo: number;
      /** canonical JSON of the result after the write (null = SQL NULL) */
      result: string | null;
      resultChanged: boolean;
      claimedBy: string | null;
    }
  | { k: 'pending'; run: string; idx: number; from: AtomState; to: AtomState; pending: number }
  | { k: 'run'; run: string; from: RunStatus; to: RunStatus }
  | { k: 'runInsert'; run: string; flow: string; parent: string | null; status: RunStatus; atoms: AtomState[] }
  | { k: 'requeue'; run: string; idx: number; holder: string; epoch: number; from: AtomState; to: AtomState; reason: 'expired' | 'engine' }
  | { k: 'engine'; engine: string; what: 'register' | 'heartbeat' | 'state' | 'deregister' | 'markDead'; leaseMs?: number; state?: string }
  | { k: 'event'; run: string; atom: number | null; kind: string; engine: string | null; epoch: number | null }
  | { k: 'signal'; run: string; name: string };

export interface Commit {
  seq: number;
  /** virtual (DB) time of the commit */
  t: number;
  /** the engine of the writing session ('client' for the workload) */
  by: string;
  op: string;
  changes: Change[];
}

/** Things the store noticed that are not commits (crashes, rollbacks, faults), for reports. */
export interface StoreNote {
  t: number;
  what: 'session-crash' | 'rollback' | 'restart' | 'reject' | 'ambiguous' | 'tx-retry' | 'idle-timeout' | 'session-lost';
  by: string;
  detail?: string;
}

// ------------------------------------------------------------------------------ rows

interface RunRec {
  id: string;
  flow: string;
  version: string;
  key: string | null;
  activeKey: string | null;
  status: RunStatus;
  args: string;
  graph: FlowGraph;
  graphHash: string;
  result: string | null;
  failure: string | null;
  parentRunId: string | null;
  parentAtom: number | null;
  pendingAtoms: number;
  revertPending: number;
  atomCount: number;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

interface AtomRec {
  runId: string;
  index: number;
  name: string;
  state: AtomState;
  pending: number;
  revertPending: number;
  skip: boolean;
  revertRequested: boolean;
  epoch: number;
  claimedBy: string | null;
  claimedAt: number | null;
  attempt: number;
  execution: number;
  result: string | null;
  failure: string | null;
  journal: string | null;
  waitKind: string | null;
  waitRef: string | null;
  readyAt: number | null;
  updatedAt: number;
}

interface EngineRec {
  id: string;
  host: string;
  pid: number;
  version: string;
  state: 'alive' | 'draining' | 'dead';
  startedAt: number;
  heartbeatAt: number;
  leaseExpiresAt: number;
  leaseMs: number;
}

interface EventRec {
  id: number;
  runId: string;
  atom: number | null;
  kind: string;
  fromState: string | null;
  toState: string | null;
  engineId: string | null;
  epoch: number | null;
  data: string | null;
  at: number;
}

interface SignalRec {
  id: number;
  runId: string;
  name: string;
  payload: string;
  at: number;
}

const CLAIMABLE: readonly AtomState[] = ['READY', 'WAITING', 'REVERT_READY'];
const HELD: readonly AtomState[] = ['RUNNING', 'REVERTING'];

const akey = (runId: string, index: number): string => `${runId}#${index}`;
const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));
const parse = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));
const date = (t: number): Date => new Date(SIM_EPOCH_MS + t);

// ------------------------------------------------------------------------------ sessions and transactions

export class Session {
  crashed = false;
  readonly openTxs = new Set<TxState>();
  constructor(
    readonly id: number,
    /** engine id (or 'client') */
    public name: string,
    readonly proc: SimProc | null,
    /** whether store faults apply (engine sessions) */
    readonly faulty: boolean,
    /** this engine's wall-clock offset (only the M2 mutant looks at it) */
    public clockOffsetMs = 0,
  ) {}
}

class TxState {
  /** locked run rows: working copies */
  readonly runs = new Map<string, RunRec>();
  /** written atom rows: working copies (row-locked) */
  readonly atoms = new Map<string, AtomRec>();
  /** runs inserted by this transaction */
  readonly inserted = new Map<string, RunRec>();
  readonly events: Omit<EventRec, 'id'>[] = [];
  readonly changes: Change[] = [];
  readonly heldRuns: string[] = [];
  aborted: string | null = null;
  finished = false;
  readonly done: Promise<void>;
  resolveDone!: () => void;
  constructor(
    readonly id: number,
    readonly session: Session,
  ) {
    this.done = new Promise<void>((r) => (this.resolveDone = r));
  }
}

interface RunLock {
  holder: TxState | null;
  queue: { tx: TxState; grant: () => void; fail: (e: Error) => void }[];
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

// ------------------------------------------------------------------------------ the store

export class SimStore {
  readonly sched: Scheduler;
  private readonly rng: Rng;
  faults: SimFaults;
  readonly mutants: SimMutants;
  readonly idleTxTimeoutMs: number;
  readonly sessionLocks: boolean;
  readonly fastPath: boolean;
  readonly listenNotify: boolean;
  readonly visibleClaims: boolean;

  private readonly runs = new Map<string, RunRec>();
  private readonly atoms = new Map<string, AtomRec[]>();
  private readonly events: EventRec[] = [];
  private readonly signals: SignalRec[] = [];
  private readonly engines = new Map<string, EngineRec>();
  /** committed atoms in a claimable state with ready_at set */
  private readonly claimable = new Map<string, AtomRec>();
  /** committed atoms RUNNING/REVERTING with a holder */
  private readonly held = new Map<string, AtomRec>();
  private readonly rowLocks = new Map<string, TxState>();
  private readonly runLocks = new Map<string, RunLock>();
  private readonly sessions: Session[] = [];
  /** engine id → its session lock (when `sessionLocks`) */
  private readonly locks = new Map<string, { session: Session; lost: boolean; onLost: ((cause: Error) => void) | undefined }>();
  private readonly wakeSubscribers = new Set<{ session: Session; fn: () => void }>();
  private nextTx = 1;
  private nextEvent = 1;
  private nextSignal = 1;
  private outageUntil = -1;

  readonly history: Commit[] = [];
  readonly notes: StoreNote[] = [];
  readonly counters = { statements: 0, rejected: 0, ambiguous: 0, txRetries: 0, rollbacks: 0, delayed: 0 };

  constructor(options: SimStoreOptions) {
    this.sched = options.sched;
    this.rng = options.rng;
    this.faults = options.faults ?? NO_FAULTS;
    this.mutants = options.mutants ?? {};
    this.idleTxTimeoutMs = options.idleTxTimeoutMs ?? 1500;
    this.sessionLocks = options.sessionLocks ?? false;
    this.fastPath = options.fastPath ?? false;
    this.listenNotify = options.listenNotify ?? false;
    this.visibleClaims = options.visibleClaims ?? false;
  }

  get now(): number {
    return this.sched.now;
  }

  /** A connection (a Store) for one process. Engine sessions get the fault knobs. */
  connect(name: string, proc: SimProc | null, options: { faulty?: boolean; clockOffsetMs?: number } = {}): SimConnection {
    const s = new Session(this.sessions.length + 1, name, proc, options.faulty ?? proc !== null, options.clockOffsetMs ?? 0);
    this.sessions.push(s);
    const fast: FastCompletions | null = this.fastPath
      ? {
          completeSuccess: (input) => this.completeSuccessFast(s, input),
          // not modelled: they write nothing and say so, which the port allows (the engine
          // then takes the general transaction), and cost no simulated round trip
          completeSuccesses: async () => ({ written: [], continuations: [], claimedMore: 0, madeReady: 0 }),
          finishRuns: async () => ({ finished: [], continuations: [] }),
        }
      : null;
    const wakeups: Wakeups | null = this.listenNotify
      ? { subscribe: (onWake) => this.subscribeWakeups(s, onWake), notify: () => this.notifyWakeup(s) }
      : null;
    return new SimConnection(this, s, fast, wakeups);
  }

  // ---------------------------------------------------------------- nemesis hooks

  /** The process of this session died: its open transactions roll back at once (the server sees the socket close). */
  crashSession(s: Session): void {
    if (s.crashed) return;
    s.crashed = true;
    this.notes.push({ t: this.now, what: 'session-crash', by: s.name });
    for (const tx of [...s.openTxs]) this.rollback(tx, 'session crashed');
  }

  /** The process of this session was paused: after the idle-in-transaction timeout its open transactions are rolled back. */
  sessionPaused(s: Session): void {
    this.sched.after(this.idleTxTimeoutMs, () => {
      if (s.proc?.state !== 'paused') return;
      for (const tx of [...s.openTxs]) {
        this.notes.push({ t: this.now, what: 'idle-timeout', by: s.name });
        this.rollback(tx, 'terminating connection due to idle-in-transaction timeout');
      }
    });
  }

  /**
   * A database restart: every engine session's open transaction is rolled back, every
   * session lock is lost (its engine is told through `onSessionLost`); calls fail until
   * `now + downMs`.
   */
  restart(downMs: number): void {
    this.notes.push({ t: this.now, what: 'restart', by: 'nemesis', detail: `${downMs} ms` });
    for (const s of this.sessions) if (s.faulty) for (const tx of [...s.openTxs]) this.rollback(tx, 'server restart');
    this.outageUntil = Math.max(this.outageUntil, this.now + downMs);
    for (const [engineId, lock] of this.locks) {
      if (lock.lost || lock.session.crashed || !lock.session.faulty) continue;
      lock.lost = true;
      this.notes.push({ t: this.now, what: 'session-lost', by: lock.session.name, detail: engineId });
      const cause = new StoreError('STOKER_STORE_UNREACHABLE', `sim: the session lock connection of engine ${engineId} ended`);
      // the client notices the closed socket at once (a paused process when it resumes)
      this.sched.after(0, () => lock.onLost?.(cause), lock.session.proc);
    }
  }

  /** Whether the engine's session lock is free (crashed process, lost session, never taken). */
  private lockFree(engineId: string): boolean {
    const l = this.locks.get(engineId);
    return l === undefined || l.lost || l.session.crashed;
  }

  // ---------------------------------------------------------------- gates

  private draw(p: number): boolean {
    return p > 0 && this.rng.next() < p;
  }

  /** The request half of a statement: pause/crash gate, delay, outage, reject. */
  async request(s: Session, op: string): Promise<void> {
    this.counters.statements += 1;
    let g = s.proc?.gate();
    if (g) await g;
    if (!s.faulty) return;
    const f = this.faults;
    if (this.draw(f.delayP)) {
      this.counters.delayed += 1;
      await this.sched.sleep(1 + Math.floor(this.rng.next() * Math.max(1, f.delayMaxMs)));
      g = s.proc?.gate();
      if (g) await g;
    }
    if (s.crashed) return never();
    if (this.now < this.outageUntil) {
      this.counters.rejected += 1;
      throw new StoreError('STOKER_STORE_UNREACHABLE', `sim: the database is restarting (${op})`);
    }
    if ((f.ops === undefined || f.ops.includes(op)) && this.draw(f.rejectP)) {
      this.counters.rejected += 1;
      this.notes.push({ t: this.now, what: 'reject', by: s.name, detail: op });
      throw new StoreError('STOKER_STORE_UNREACHABLE', `sim: connection refused (${op})`);
    }
  }

  /** The response half: an applied write may still be reported as a connection error; a paused process receives nothing. */
  async response(s: Session, op: string, ambiguousEligible: boolean): Promise<void> {
    const f = this.faults;
    if (s.faulty && ambiguousEligible && (f.ops === undefined || f.ops.includes(op)) && this.draw(f.ambiguousP)) {
      this.counters.ambiguous += 1;
      this.notes.push({ t: this.now, what: 'ambiguous', by: s.name, detail: op });
      const g = s.proc?.gate();
      if (g) await g;
      throw new StoreError('STOKER_STORE_UNREACHABLE', `sim: connection lost after ${op} was applied (ambiguous)`);
    }
    const g = s.proc?.gate();
    if (g) await g;
  }

  private record(s: Session | null, op: string, changes: Change[]): void {
    if (changes.length === 0) return;
    this.history.push({ seq: this.history.length + 1, t: this.now, by: s?.name ?? 'store', op, changes });
  }

  // ---------------------------------------------------------------- committed rows

  private putAtom(a: AtomRec): void {
    let list = this.atoms.get(a.runId);
    if (!list) this.atoms.set(a.runId, (list = []));
    list[a.index] = a;
    const k = akey(a.runId, a.index);
    if (CLAIMABLE.includes(a.state) && a.readyAt !== null) this.claimable.set(k, a);
    else this.claimable.delete(k);
    if (HELD.includes(a.state) && a.claimedBy !== null) this.held.set(k, a);
    else this.held.delete(k);
  }

  private committedAtom(runId: string, index: number): AtomRec | undefined {
    return this.atoms.get(runId)?.[index];
  }

  private addEvents(events: readonly Omit<EventRec, 'id'>[], changes: Change[]): void {
    for (const e of events) {
      this.events.push({ ...e, id: this.nextEvent++ });
      changes.push({ k: 'event', run: e.runId, atom: e.atom, kind: e.kind, engine: e.engineId, epoch: e.epoch });
    }
  }

  private eventRec(e: EventInput): Omit<EventRec, 'id'> {
    return {
      runId: e.runId,
      atom: e.atom,
      kind: e.kind,
      fromState: e.fromState ?? null,
      toState: e.toState ?? null,
      engineId: e.engineId ?? null,
      epoch: e.epoch ?? null,
      data: json(e.data ?? null),
      at: this.now,
    };
  }

  // ---------------------------------------------------------------- run locks

  private async lockRun(tx: TxState, runId: string): Promise<void> {
    this.alive(tx);
    let l = this.runLocks.get(runId);
    if (!l) this.runLocks.set(runId, (l = { holder: null, queue: [] }));
    if (l.holder === tx) return;
    if (l.holder === null) {
      l.holder = tx;
      tx.heldRuns.push(runId);
    } else {
      // the releaser records the hold when it grants (releaseRuns): were it recorded here,
      // after the await, a transaction rolled back between the grant and this continuation
      // (a store restart ends every transaction in one go) would keep the lock for ever
      const lock = l;
      await new Promise<void>((grant, fail) => lock.queue.push({ tx, grant, fail }));
    }
  }

  private releaseRuns(tx: TxState): void {
    for (const id of tx.heldRuns) {
      const l = this.runLocks.get(id);
      if (!l || l.holder !== tx) continue;
      // skip waiters whose transaction was rolled back while queued
      let next = l.queue.shift();
      while (next && next.tx.finished) next = l.queue.shift();
      l.holder = next ? next.tx : null;
      if (next) {
        next.tx.heldRuns.push(id);
        next.grant();
      } else this.runLocks.delete(id);
    }
    tx.heldRuns.length = 0;
  }

  private begin(s: Session): TxState {
    // a crashed process's code may still run a few microtasks: it never opens a transaction again
    if (s.crashed) throw new StoreError('STOKER_STORE_UNREACHABLE', 'sim: the session is gone');
    const tx = new TxState(this.nextTx++, s);
    s.openTxs.add(tx);
    return tx;
  }

  private finish(tx: TxState): void {
    tx.finished = true;
    tx.session.openTxs.delete(tx);
    for (const k of tx.atoms.keys()) if (this.rowLocks.get(k) === tx) this.rowLocks.delete(k);
    this.releaseRuns(tx);
    // this tx was rolled back while queued for a run lock: leave the queue and fail the wait
    // (a crashed session's wait just never returns)
    for (const l of this.runLocks.values()) {
      const i = l.queue.findIndex((q) => q.tx === tx);
      if (i < 0) continue;
      const [q] = l.queue.splice(i, 1);
      if (!tx.session.crashed) q!.fail(new StoreError('STOKER_STORE_QUERY_FAILED', `sim: transaction aborted: ${tx.aborted ?? 'ended'}`));
    }
    tx.resolveDone();
  }

  private rollback(tx: TxState, reason: string): void {
    if (tx.finished) return;
    tx.aborted = reason;
    this.counters.rollbacks += 1;
    this.notes.push({ t: this.now, what: 'rollback', by: tx.session.name, detail: reason });
    this.finish(tx);
  }

  private commit(tx: TxState, op: string): void {
    const changes = tx.changes;
    for (const r of tx.inserted.values()) this.runs.set(r.id, r);
    for (const [id, r] of tx.runs) if (!tx.inserted.has(id)) this.runs.set(id, r);
    for (const a of tx.atoms.values()) this.putAtom(a);
    this.addEvents(tx.events, changes);
    this.record(tx.session, op, changes);
    this.finish(tx);
  }

  private alive(tx: TxState): void {
    if (tx.aborted !== null) throw new StoreError('STOKER_STORE_QUERY_FAILED', `sim: transaction aborted: ${tx.aborted}`);
    if (tx.finished) throw new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: transaction already ended');
  }

  /** A statement inside a transaction: gates, then checks that the transaction still lives. */
  private async txStatement(tx: TxState, op: string): Promise<void> {
    this.alive(tx);
    await this.request(tx.session, op);
    this.alive(tx);
  }

  /** The row as this transaction sees it (own writes, else committed). */
  private txAtom(tx: TxState, runId: string, index: number): AtomRec | undefined {
    return tx.atoms.get(akey(runId, index)) ?? this.committedAtom(runId, index);
  }

  /** Waits until no *other* transaction holds the row lock of this atom (FOR UPDATE without SKIP LOCKED). */
  private async waitRow(tx: TxState | null, k: string): Promise<void> {
    for (;;) {
      const holder = this.rowLocks.get(k);
      if (!holder || holder === tx) return;
      await holder.done;
      if (tx) this.alive(tx);
    }
  }

  private txWriteAtom(tx: TxState, next: AtomRec): void {
    // A transaction that ended (a store restart, a timeout) while its code awaited writes
    // nothing: a row lock taken for it now would never be released (found by seed 2662).
    this.alive(tx);
    const k = akey(next.runId, next.index);
    tx.atoms.set(k, next);
    this.rowLocks.set(k, tx);
  }

  // ---------------------------------------------------------------- Store: runs

  async runTransaction<T>(s: Session, runIds: readonly string[], fn: (tx: RunTx) => Promise<T>): Promise<T> {
    await this.request(s, 'begin');
    const ids = [...new Set(runIds)].sort();
    for (let attempt = 1; ; attempt++) {
      const tx = this.begin(s);
      try {
        for (const id of ids) {
          await this.lockRun(tx, id);
          this.alive(tx);
          const r = this.runs.get(id);
          if (r) tx.runs.set(id, { ...r });
        }
        const out = await fn(this.txApi(tx));
        await this.txStatement(tx, 'commit');
        if (this.draw(s.faulty ? this.faults.txRetryP : 0) && attempt < 3) {
          this.counters.txRetries += 1;
          this.notes.push({ t: this.now, what: 'tx-retry', by: s.name });
          this.rollback(tx, 'serialization failure (retried)');
          continue;
        }
        this.commit(tx, 'tx');
        await this.response(s, 'commit', true);
        return out;
      } catch (e) {
        if (!tx.finished) this.rollback(tx, `error: ${(e as Error).message}`);
        throw e;
      }
    }
  }

  private txApi(tx: TxState): RunTx {
    const store = this;
    return {
      run(runId) {
        store.alive(tx);
        const r = tx.runs.get(runId);
        if (!r) throw new StoreError('STOKER_RUN_NOT_FOUND', `run ${runId} is not locked by this transaction (or does not exist)`);
        return runRow(r);
      },
      async getAtoms(runId, indexes) {
        await store.txStatement(tx, 'getAtoms');
        return [...new Set(indexes)]
          .sort((a, b) => a - b)
          .flatMap((i) => {
            const a = store.txAtom(tx, runId, i);
            return a ? [atomRow(a)] : [];
          });
      },
      async getAtomsInStates(runId, states) {
        await store.txStatement(tx, 'getAtomsInStates');
        const n = (tx.runs.get(runId) ?? tx.inserted.get(runId) ?? store.runs.get(runId))?.atomCount ?? 0;
        const out: AtomRow[] = [];
        for (let i = 0; i < n; i++) {
          const a = store.txAtom(tx, runId, i);
          if (a && states.includes(a.state)) out.push(atomRow(a));
        }
        return out;
      },
      async updateAtoms(runId, updates) {
        await store.txStatement(tx, 'updateAtoms');
        const out: boolean[] = [];
        for (const u of updates) out.push(await store.updateAtom(tx, runId, u));
        return out;
      },
      async decrementPending(runId, entries) {
        await store.txStatement(tx, 'decrementPending');
        const out: AtomRow[] = [];
        for (const e of entries) {
          const k = akey(runId, e.index);
          await store.waitRow(tx, k);
          const cur = store.txAtom(tx, runId, e.index);
          if (!cur || cur.state !== 'PENDING') continue;
          const ready = cur.pending === 1 && !cur.skip && !e.disable;
          const next: AtomRec = {
            ...cur,
            pending: cur.pending - 1,
            skip: cur.skip || e.disable,
            state: ready ? 'READY' : cur.state,
            readyAt: ready ? store.now : cur.readyAt,
            updatedAt: store.now,
          };
          store.txWriteAtom(tx, next);
          tx.changes.push({ k: 'pending', run: runId, idx: e.index, from: cur.state, to: next.state, pending: next.pending });
          out.push(atomRow(next));
        }
        return out;
      },
      async claimAtom(runId, index, engineId) {
        await store.txStatement(tx, 'claimAtom');
        const k = akey(runId, index);
        await store.waitRow(tx, k);
        const cur = store.txAtom(tx, runId, index);
        if (!cur || cur.state !== 'READY') return null;
        const next: AtomRec = {
          ...cur,
          state: 'RUNNING',
          execution: cur.execution + 1,
          claimedBy: engineId,
          claimedAt: store.now,
          epoch: cur.epoch + 1,
          readyAt: null,
          updatedAt: store.now,
        };
        store.txWriteAtom(tx, next);
        tx.changes.push({
          k: 'claim',
          run: runId,
          idx: index,
          epoch: next.epoch,
          engine: engineId,
          from: cur.state,
          to: next.state,
          attempt: next.attempt,
          execution: next.execution,
          local: true,
        });
        return claimOf(next);
      },
      async updateRun(runId, patch) {
        await store.txStatement(tx, 'updateRun');
        if (!tx.runs.has(runId) && !tx.inserted.has(runId)) {
          await store.lockRun(tx, runId);
          store.alive(tx);
          const r = store.runs.get(runId);
          if (!r) return;
          tx.runs.set(runId, { ...r });
        }
        const cur = tx.inserted.get(runId) ?? tx.runs.get(runId)!;
        const next = store.patchRun(cur, patch);
        if (tx.inserted.has(runId)) tx.inserted.set(runId, next);
        else tx.runs.set(runId, next);
        if (next.status !== cur.status) tx.changes.push({ k: 'run', run: runId, from: cur.status, to: next.status });
      },
      async insertEvents(events) {
        await store.txStatement(tx, 'insertEvents');
        for (const e of events) tx.events.push(store.eventRec(e));
      },
      async startRun(run) {
        await store.txStatement(tx, 'startRun');
        if (run.key !== null) throw new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: keyed starts inside a transaction are not modelled');
        if (store.runs.has(run.id) || tx.inserted.has(run.id))
          throw new ConflictError('STOKER_RUN_KEY_CONFLICT', `sim: duplicate run id ${run.id}`);
        const { rec, atoms } = store.newRun(run);
        tx.inserted.set(rec.id, rec);
        for (const a of atoms) store.txWriteAtom(tx, a);
        tx.events.push(store.eventRec({ runId: run.id, atom: null, kind: 'run.created', toState: 'PENDING', data: null }));
        tx.changes.push({
          k: 'runInsert',
          run: rec.id,
          flow: rec.flow,
          parent: rec.parentRunId,
          status: rec.status,
          atoms: atoms.map((a) => a.state),
        });
        return { run: runRow(rec), created: true };
      },
      // In-commit claims are not modelled: the simulated engines claim in their own statement.
      async claimMore() {
        return [];
      },
      async signalCount(runId, name) {
        await store.txStatement(tx, 'signalCount');
        return store.signals.filter((x) => x.runId === runId && x.name === name).length;
      },
    };
  }

  private async updateAtom(tx: TxState, runId: string, u: AtomUpdate): Promise<boolean> {
    const k = akey(runId, u.index);
    await this.waitRow(tx, k);
    const cur = this.txAtom(tx, runId, u.index);
    if (!cur) return false;
    const m = this.mutants;
    if (u.epoch !== undefined && !m.ignoreEpoch && cur.epoch !== u.epoch) return false;
    if (u.expectRevertRequested !== undefined && cur.revertRequested !== u.expectRevertRequested) return false;
    if (u.expectStates && u.expectStates.length > 0 && !m.ignoreExpectStates && !u.expectStates.includes(cur.state)) return false;
    const next = this.patchAtom(cur, u.patch);
    this.txWriteAtom(tx, next);
    const result = next.result;
    tx.changes.push({
      k: 'atom',
      run: runId,
      idx: u.index,
      from: cur.state,
      to: next.state,
      writerEpoch: u.epoch ?? null,
      attemptFrom: cur.attempt,
      attemptTo: next.attempt,
      result: result === null ? null : canonicalJson(JSON.parse(result) as JsonValue),
      resultChanged: result !== cur.result,
      claimedBy: next.claimedBy,
    });
    return true;
  }

  private patchAtom(cur: AtomRec, p: AtomPatch): AtomRec {
    const next: AtomRec = { ...cur, updatedAt: this.now };
    if (p.state !== undefined) next.state = p.state;
    if (p.pending !== undefined) next.pending = p.pending;
    if (p.revertPending !== undefined) next.revertPending = p.revertPending;
    if (p.skip !== undefined) next.skip = p.skip;
    if (p.revertRequested !== undefined) next.revertRequested = p.revertRequested;
    if (p.attempt !== undefined) next.attempt = p.attempt;
    if (p.execution !== undefined) next.execution = p.execution;
    if (p.result !== undefined) next.result = json(p.result);
    if (p.failure !== undefined) next.failure = json(p.failure);
    if (p.journal !== undefined) next.journal = json(p.journal);
    if (p.waitKind !== undefined) next.waitKind = p.waitKind;
    if (p.waitRef !== undefined) next.waitRef = p.waitRef;
    if (p.claimedBy !== undefined) next.claimedBy = p.claimedBy;
    if (p.readyAt !== undefined) next.readyAt = p.readyAt === null ? null : this.now + Math.max(0, Math.round(p.readyAt.delayMs));
    return next;
  }

  private patchRun(cur: RunRec, patch: RunPatch): RunRec {
    const next: RunRec = { ...cur, updatedAt: this.now };
    if (patch.status !== undefined) {
      next.status = patch.status;
      if (TERMINAL_RUN_STATUSES.includes(patch.status)) {
        next.activeKey = null;
        next.finishedAt = this.now;
      }
    }
    if (patch.result !== undefined) next.result = json(patch.result);
    if (patch.failure !== undefined) next.failure = json(patch.failure);
    if (patch.pendingAtomsDelta) next.pendingAtoms += patch.pendingAtomsDelta;
    if (patch.revertPending !== undefined) next.revertPending = patch.revertPending + (patch.revertPendingDelta ?? 0);
    else if (patch.revertPendingDelta) next.revertPending += patch.revertPendingDelta;
    return next;
  }

  private newRun(run: NewRun): { rec: RunRec; atoms: AtomRec[] } {
    const now = this.now;
    const rec: RunRec = {
      id: run.id,
      flow: run.flow,
      version: run.version,
      key: run.key,
      activeKey: run.key,
      status: 'PENDING',
      args: canonicalJson(run.args),
      graph: JSON.parse(JSON.stringify(run.graph)) as FlowGraph,
      graphHash: graphDigest(run.graph).hash,
      result: null,
      failure: null,
      parentRunId: run.parentRunId ?? null,
      parentAtom: run.parentAtom ?? null,
      pendingAtoms: run.graph.atoms.length,
      revertPending: 0,
      atomCount: run.graph.atoms.length,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
    };
    const atoms = run.graph.atoms.map((a): AtomRec => {
      const ready = a.predecessors.length === 0;
      return {
        runId: run.id,
        index: a.index,
        name: a.name,
        state: ready ? 'READY' : 'PENDING',
        pending: a.predecessors.length,
        revertPending: 0,
        skip: false,
        revertRequested: false,
        epoch: 0,
        claimedBy: null,
        claimedAt: null,
        attempt: 1,
        execution: 0,
        result: null,
        failure: null,
        journal: null,
        waitKind: null,
        waitRef: null,
        readyAt: ready ? now : null,
        updatedAt: now,
      };
    });
    return { rec, atoms };
  }

  async startRun(s: Session, run: NewRun): Promise<StartResult> {
    await this.request(s, 'startRun');
    const changes: Change[] = [];
    let superseded: string | undefined;
    if (run.key !== null) {
      const active = [...this.runs.values()].find((r) => r.activeKey === run.key);
      if (active) {
        if (!run.supersede) {
          if (active.args === canonicalJson(run.args) && active.flow === run.flow) {
            await this.response(s, 'startRun', false);
            return { run: runRow(active), created: false };
          }
          throw new ConflictError(
            'STOKER_RUN_KEY_CONFLICT',
            `run ${active.id} with key "${run.key}" is still active with different arguments`,
          );
        }
        throw new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: supersede is not modelled');
      }
    }
    if (this.runs.has(run.id)) throw new ConflictError('STOKER_RUN_KEY_CONFLICT', `sim: duplicate run id ${run.id}`);
    const { rec, atoms } = this.newRun(run);
    this.runs.set(rec.id, rec);
    for (const a of atoms) this.putAtom(a);
    changes.push({
      k: 'runInsert',
      run: rec.id,
      flow: rec.flow,
      parent: rec.parentRunId,
      status: rec.status,
      atoms: atoms.map((a) => a.state),
    });
    this.addEvents(
      [
        this.eventRec({
          runId: run.id,
          atom: null,
          kind: 'run.created',
          toState: 'PENDING',
          data: superseded ? { supersedes: superseded } : null,
        }),
      ],
      changes,
    );
    this.record(s, 'startRun', changes);
    if (this.listenNotify && run.wakeup !== false) this.broadcastWakeup();
    await this.response(s, 'startRun', true);
    return { run: runRow(rec), created: true };
  }

  async claimAtoms(s: Session, engineId: string, limit: number, options?: ClaimOptions): Promise<ClaimedAtom[]> {
    if (limit <= 0) return [];
    await this.request(s, 'claimAtoms');
    const now = this.now;
    const candidates = [...this.claimable.entries()]
      .filter(([k, a]) => a.readyAt !== null && a.readyAt <= now && !this.rowLocks.has(k))
      .map(([, a]) => a)
      .sort((a, b) => a.readyAt! - b.readyAt! || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : a.index - b.index))
      .slice(0, limit);
    const changes: Change[] = [];
    const claims: ClaimedAtom[] = [];
    const events: Omit<EventRec, 'id'>[] = [];
    for (const cur of candidates) {
      const revert = cur.state === 'REVERT_READY';
      const next: AtomRec = {
        ...cur,
        state: revert ? 'REVERTING' : 'RUNNING',
        execution: revert ? cur.execution : cur.execution + 1,
        claimedBy: engineId,
        claimedAt: now,
        epoch: cur.epoch + 1,
        readyAt: null,
        updatedAt: now,
      };
      this.putAtom(next);
      changes.push({
        k: 'claim',
        run: cur.runId,
        idx: cur.index,
        epoch: next.epoch,
        engine: engineId,
        from: cur.state,
        to: next.state,
        attempt: next.attempt,
        execution: next.execution,
        local: false,
      });
      events.push(
        this.eventRec({
          runId: cur.runId,
          atom: cur.index,
          kind: 'atom.claimed',
          fromState: cur.state,
          toState: next.state,
          engineId,
          epoch: next.epoch,
        }),
      );
      claims.push(claimOf(next));
    }
    this.addEvents(events, changes);
    this.record(s, 'claimAtoms', changes);
    if (this.visibleClaims) options?.onVisible?.(claims.map((c) => ({ ...c })));
    await this.response(s, 'claimAtoms', claims.length > 0);
    return claims;
  }

  /**
   * PostgreSQL's one-statement completion (src/store/postgres/fast-success.ts), same
   * semantics: lock the run (PENDING or RUNNING, more than one atom pending), fenced write
   * of the atom, decrement the successors (the one named in `claim` is claimed for this
   * engine when it becomes ready), count the run down (a PENDING run becomes RUNNING, its
   * `run.running` event first). Writes nothing and returns `handled: false` otherwise.
   */
  async completeSuccessFast(s: Session, input: FastSuccess): Promise<FastSuccessResult> {
    await this.request(s, 'completeSuccessFast');
    const tx = this.begin(s);
    let out: FastSuccessResult = { handled: false, claimed: null, madeReady: 0 };
    try {
      await this.lockRun(tx, input.runId);
      this.alive(tx);
      const run = this.runs.get(input.runId);
      const cur = this.committedAtom(input.runId, input.index);
      const m = this.mutants;
      const fenceOk =
        cur !== undefined &&
        (m.ignoreEpoch || cur.epoch === input.epoch) &&
        (m.ignoreExpectStates || cur.state === 'RUNNING') &&
        !cur.revertRequested;
      if (run && (run.status === 'PENDING' || run.status === 'RUNNING') && run.pendingAtoms > 1 && fenceOk) {
        const now = this.now;
        const changes: Change[] = [];
        const events: Omit<EventRec, 'id'>[] = [];
        // a run's first completion also moves it PENDING → RUNNING, its event first
        if (run.status === 'PENDING') {
          changes.push({ k: 'run', run: run.id, from: 'PENDING', to: 'RUNNING' });
          events.push(
            this.eventRec({
              runId: run.id,
              atom: null,
              kind: 'run.running',
              fromState: 'PENDING',
              toState: 'RUNNING',
              engineId: input.engineId,
            }),
          );
        }
        const done: AtomRec = {
          ...cur,
          state: 'SUCCESS',
          result: json(input.result),
          journal: json(input.journal),
          claimedBy: null,
          waitKind: null,
          waitRef: null,
          updatedAt: now,
        };
        this.putAtom(done);
        changes.push({
          k: 'atom',
          run: input.runId,
          idx: input.index,
          from: cur.state,
          to: 'SUCCESS',
          writerEpoch: input.epoch,
          attemptFrom: cur.attempt,
          attemptTo: done.attempt,
          result: canonicalJson(input.result),
          resultChanged: done.result !== cur.result,
          claimedBy: null,
        });
        events.push(
          this.eventRec({
            runId: input.runId,
            atom: input.index,
            kind: 'atom.success',
            fromState: 'RUNNING',
            toState: 'SUCCESS',
            engineId: input.engineId,
            epoch: input.epoch,
          }),
        );
        let claimed: ClaimedAtom | null = null;
        let madeReady = 0;
        for (const idx of [...new Set(input.successors)]) {
          const a = this.committedAtom(input.runId, idx);
          if (!a || a.state !== 'PENDING') continue;
          if (a.pending !== 1) {
            this.putAtom({ ...a, pending: a.pending - 1, updatedAt: now });
            changes.push({ k: 'pending', run: input.runId, idx, from: 'PENDING', to: 'PENDING', pending: a.pending - 1 });
            continue;
          }
          changes.push({ k: 'pending', run: input.runId, idx, from: 'PENDING', to: 'READY', pending: 0 });
          if (idx === input.claim) {
            const next: AtomRec = {
              ...a,
              pending: 0,
              state: 'RUNNING',
              claimedBy: input.engineId,
              claimedAt: now,
              epoch: a.epoch + 1,
              execution: a.execution + 1,
              readyAt: null,
              updatedAt: now,
            };
            this.putAtom(next);
            changes.push({
              k: 'claim',
              run: input.runId,
              idx,
              epoch: next.epoch,
              engine: input.engineId,
              from: 'READY',
              to: 'RUNNING',
              attempt: next.attempt,
              execution: next.execution,
              local: true,
            });
            events.push(
              this.eventRec({
                runId: input.runId,
                atom: idx,
                kind: 'atom.claimed',
                fromState: 'PENDING',
                toState: 'RUNNING',
                engineId: input.engineId,
                epoch: next.epoch,
                data: { local: true },
              }),
            );
            claimed = claimOf(next);
          } else {
            this.putAtom({ ...a, pending: 0, state: 'READY', readyAt: now, updatedAt: now });
            events.push(
              this.eventRec({
                runId: input.runId,
                atom: idx,
                kind: 'atom.ready',
                fromState: 'PENDING',
                toState: 'READY',
                engineId: input.engineId,
              }),
            );
            madeReady += 1;
          }
        }
        this.runs.set(run.id, { ...run, status: 'RUNNING', pendingAtoms: run.pendingAtoms - 1, updatedAt: now });
        this.addEvents(events, changes);
        this.record(s, 'completeSuccessFast', changes);
        out = { handled: true, claimed, madeReady };
      }
      this.finish(tx);
    } catch (e) {
      if (!tx.finished) this.rollback(tx, `error: ${(e as Error).message}`);
      throw e;
    }
    await this.response(s, 'completeSuccessFast', out.handled);
    return out;
  }

  async subscribeWakeups(s: Session, onWake: () => void): Promise<() => Promise<void>> {
    await this.request(s, 'listen');
    const sub = { session: s, fn: onWake };
    this.wakeSubscribers.add(sub);
    await this.response(s, 'listen', false);
    return async () => void this.wakeSubscribers.delete(sub);
  }

  async notifyWakeup(s: Session): Promise<void> {
    await this.request(s, 'notify');
    this.broadcastWakeup();
    await this.response(s, 'notify', false);
  }

  /** NOTIFY: every listening session hears it a moment later (a paused one when it resumes, a dead one never). */
  private broadcastWakeup(): void {
    for (const sub of this.wakeSubscribers) {
      if (sub.session.crashed) continue;
      this.sched.after(1, sub.fn, sub.session.proc);
    }
  }

  // ---------------------------------------------------------------- Store: reads

  async read<T>(s: Session, op: string, fn: () => T): Promise<T> {
    await this.request(s, op);
    const out = fn();
    await this.response(s, op, false);
    return out;
  }

  getRun(id: string): RunRow | null {
    const r = this.runs.get(id);
    return r ? runRow(r) : null;
  }

  getRunStatuses(ids: readonly string[]): Map<string, RunStatus> {
    const out = new Map<string, RunStatus>();
    for (const id of ids) {
      const r = this.runs.get(id);
      if (r) out.set(id, r.status);
    }
    return out;
  }

  getRunGraph(id: string): FlowGraph | null {
    const r = this.runs.get(id);
    return r ? (JSON.parse(JSON.stringify(r.graph)) as FlowGraph) : null;
  }

  listRuns(filter: RunFilter = {}): RunRow[] {
    let rows = [...this.runs.values()];
    if (filter.status && filter.status.length > 0) rows = rows.filter((r) => filter.status!.includes(r.status));
    if (filter.flow !== undefined) rows = rows.filter((r) => r.flow === filter.flow);
    if (filter.key !== undefined) rows = rows.filter((r) => r.key === filter.key);
    if (filter.parentRunId !== undefined) rows = rows.filter((r) => r.parentRunId === filter.parentRunId);
    rows.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    if (filter.before !== undefined) {
      const ref = this.runs.get(filter.before);
      if (ref) rows = rows.filter((r) => r.createdAt < ref.createdAt || (r.createdAt === ref.createdAt && r.id < ref.id));
    }
    return rows.slice(0, filter.limit ?? 100).map(runRow);
  }

  getAtoms(runId: string): AtomRow[] {
    return (this.atoms.get(runId) ?? []).map(atomRow);
  }

  getAtomResults(runId: string, indexes: readonly number[]): Map<number, JsonValue | null> {
    const out = new Map<number, JsonValue | null>();
    for (const i of [...indexes].sort((a, b) => a - b)) {
      const a = this.committedAtom(runId, i);
      if (a) out.set(i, parse<JsonValue>(a.result));
    }
    return out;
  }

  listEvents(filter: EventFilter): EventRow[] {
    return this.events
      .filter((e) => (filter.runId === undefined || e.runId === filter.runId) && e.id > (filter.afterId ?? 0))
      .slice(0, filter.limit ?? 10_000)
      .map(eventRow);
  }

  getSignals(runId: string): SignalRow[] {
    return this.signals
      .filter((x) => x.runId === runId)
      .map((x) => ({ runId: x.runId, name: x.name, payload: parse<JsonValue>(x.payload), at: date(x.at) }));
  }

  // ---------------------------------------------------------------- Store: signals and waits

  /** A short statement that locks one run row first (sendSignal, wakeAtom). */
  private async withRunLock<T>(s: Session, runId: string, op: string, fn: (changes: Change[]) => T): Promise<T> {
    await this.request(s, op);
    const tx = this.begin(s);
    try {
      await this.lockRun(tx, runId);
      this.alive(tx);
      const changes: Change[] = [];
      const out = fn(changes);
      this.record(s, op, changes);
      this.finish(tx);
      await this.response(s, op, true);
      return out;
    } catch (e) {
      if (!tx.finished) this.rollback(tx, `error: ${(e as Error).message}`);
      throw e;
    }
  }

  async sendSignal(s: Session, runId: string, name: string, payload: JsonValue): Promise<number> {
    // the run lock serialises with an atom parking on the signal; wait for row locks of its waiting atoms
    return this.withRunLock(s, runId, 'sendSignal', (changes) => {
      const run = this.runs.get(runId);
      if (!run) throw new StoreError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
      if (TERMINAL_RUN_STATUSES.includes(run.status)) {
        throw new ConflictError('STOKER_RUN_NOT_ACTIVE', `run ${runId} already ended ${run.status}: it takes no more signals`, {
          details: { runId, status: run.status },
        });
      }
      this.signals.push({ id: this.nextSignal++, runId, name, payload: JSON.stringify(payload), at: this.now });
      changes.push({ k: 'signal', run: runId, name });
      let woke = 0;
      for (const a of this.atoms.get(runId) ?? []) {
        if (a.state === 'WAITING' && a.waitKind === 'signal' && a.waitRef === name && !this.rowLocks.has(akey(runId, a.index))) {
          this.putAtom({ ...a, readyAt: this.now, updatedAt: this.now });
          woke += 1;
        }
      }
      this.addEvents([this.eventRec({ runId, atom: null, kind: 'run.signal', data: { name, woke } })], changes);
      return woke;
    });
  }

  async wakeAtom(s: Session, runId: string, index: number): Promise<void> {
    await this.withRunLock(s, runId, 'wakeAtom', () => {
      const a = this.committedAtom(runId, index);
      if (a && a.state === 'WAITING' && !this.rowLocks.has(akey(runId, index)))
        this.putAtom({ ...a, readyAt: this.now, updatedAt: this.now });
    });
  }

  // ---------------------------------------------------------------- Store: engines

  private leaseBase(s: Session): number {
    return this.mutants.engineClockLease ? this.now + s.clockOffsetMs : this.now;
  }

  async registerEngine(s: Session, e: EngineRegistration): Promise<void> {
    await this.request(s, 'registerEngine');
    if (this.engines.has(e.id)) throw new StoreError('STOKER_STORE_QUERY_FAILED', `sim: engine ${e.id} already registered`);
    if (this.sessionLocks) {
      if (!this.lockFree(e.id))
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `sim: engine ${e.id} is already registered (its session lock is held)`);
      this.locks.set(e.id, { session: s, lost: false, onLost: e.onSessionLost });
    }
    this.engines.set(e.id, {
      id: e.id,
      host: e.host,
      pid: e.pid,
      version: e.version,
      state: 'alive',
      startedAt: this.now,
      heartbeatAt: this.now,
      leaseExpiresAt: this.leaseBase(s) + e.leaseMs,
      leaseMs: e.leaseMs,
    });
    this.record(s, 'registerEngine', [{ k: 'engine', engine: e.id, what: 'register', leaseMs: e.leaseMs }]);
    await this.response(s, 'registerEngine', true);
  }

  async heartbeat(s: Session, engineId: string, leaseMs: number): Promise<boolean> {
    if (this.sessionLocks && this.locks.get(engineId)?.lost) {
      // others may already treat it as dead: never renew; mark the row dead (best effort)
      try {
        await this.request(s, 'markDead');
        const e = this.engines.get(engineId);
        if (e && e.state !== 'dead') {
          e.state = 'dead';
          this.record(s, 'markDead', [{ k: 'engine', engine: engineId, what: 'markDead' }]);
        }
        await this.response(s, 'markDead', false);
      } catch {
        // the server is down: the next heartbeat tries again
      }
      return false;
    }
    await this.request(s, 'heartbeat');
    const e = this.engines.get(engineId);
    const ok = e !== undefined && e.state !== 'dead';
    if (ok) {
      e.heartbeatAt = this.now;
      e.leaseExpiresAt = this.leaseBase(s) + leaseMs;
      e.leaseMs = leaseMs;
      this.record(s, 'heartbeat', [{ k: 'engine', engine: engineId, what: 'heartbeat', leaseMs }]);
    }
    await this.response(s, 'heartbeat', true);
    return ok;
  }

  async setEngineState(s: Session, engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void> {
    await this.request(s, 'setEngineState');
    const e = this.engines.get(engineId);
    if (e) {
      e.state = state;
      this.record(s, 'setEngineState', [{ k: 'engine', engine: engineId, what: 'state', state }]);
    }
    await this.response(s, 'setEngineState', true);
  }

  async deregisterEngine(s: Session, engineId: string): Promise<void> {
    await this.request(s, 'deregisterEngine');
    if (this.engines.delete(engineId)) this.record(s, 'deregisterEngine', [{ k: 'engine', engine: engineId, what: 'deregister' }]);
    if (this.locks.get(engineId)?.session === s) this.locks.delete(engineId);
    await this.response(s, 'deregisterEngine', true);
  }

  listEngines(): EngineRow[] {
    const now = this.now;
    return [...this.engines.values()]
      .sort((a, b) => a.startedAt - b.startedAt)
      .map((e) => ({
        id: e.id,
        host: e.host,
        pid: e.pid,
        version: e.version,
        state: e.state !== 'dead' && e.leaseExpiresAt < now ? 'dead' : e.state,
        startedAt: date(e.startedAt),
        heartbeatAt: date(e.heartbeatAt),
        leaseExpiresAt: date(e.leaseExpiresAt),
        leaseAgeMs: now - e.heartbeatAt,
        atomsHeld: [...this.held.values()].filter((a) => a.claimedBy === e.id).length,
        remoteQueued: 0,
        remoteOldestMs: null,
      }));
  }

  async requeueExpired(s: Session, options: RequeueOptions = {}): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    await this.request(s, 'requeueExpired');
    const cmpNow = this.leaseBase(s);
    const after = options.liveCheckAfterMs;
    // null: a third of each engine's own lease; -1: no lock check (as in postgres-store.ts)
    const checkAfter = after === undefined ? null : Number.isFinite(after) ? Math.max(0, Math.round(after)) : -1;
    const holders = new Set([...this.held.values()].map((a) => a.claimedBy!));
    const lost = new Set<string>();
    if (this.sessionLocks && checkAfter !== -1) {
      for (const e of this.engines.values()) {
        if (e.state === 'dead' || e.leaseExpiresAt < cmpNow || !holders.has(e.id)) continue;
        const overdue = checkAfter === 0 || this.now - e.heartbeatAt >= (checkAfter ?? e.leaseMs / 3);
        if (overdue && this.lockFree(e.id)) lost.add(e.id);
      }
    }
    const changes: Change[] = [];
    for (const e of this.engines.values()) {
      if (e.state !== 'dead' && (e.leaseExpiresAt < cmpNow || lost.has(e.id))) {
        e.state = 'dead';
        changes.push({ k: 'engine', engine: e.id, what: 'markDead' });
      }
    }
    const live = (id: string, a: AtomRec): boolean => {
      if (lost.has(id)) return false;
      const e = this.engines.get(id);
      const ok = e !== undefined && e.state !== 'dead' && e.leaseExpiresAt >= cmpNow;
      if (ok && this.mutants.requeueLive && a.claimedAt !== null && a.claimedAt + e.leaseMs < this.now) return false;
      return ok;
    };
    const out: { runId: string; index: number; engineId: string | null }[] = [];
    const events: Omit<EventRec, 'id'>[] = [];
    const targets = [...this.held.entries()]
      .filter(([k, a]) => !this.rowLocks.has(k) && !live(a.claimedBy!, a))
      .map(([, a]) => a)
      .sort(
        (a, b) =>
          (a.claimedBy! < b.claimedBy! ? -1 : a.claimedBy! > b.claimedBy! ? 1 : 0) ||
          (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : a.index - b.index),
      );
    for (const a of targets) {
      const to = this.requeueTo(a);
      this.putAtom({ ...a, state: to, claimedBy: null, readyAt: to === 'CANCELLED' ? null : this.now, updatedAt: this.now });
      changes.push({
        k: 'requeue',
        run: a.runId,
        idx: a.index,
        holder: a.claimedBy!,
        epoch: a.epoch,
        from: a.state,
        to,
        reason: 'expired',
      });
      events.push(
        this.eventRec({ runId: a.runId, atom: a.index, kind: requeueEventKind(to), toState: to, engineId: a.claimedBy, epoch: a.epoch }),
      );
      out.push({ runId: a.runId, index: a.index, engineId: a.claimedBy });
    }
    this.addEvents(events, changes);
    this.record(s, 'requeueExpired', changes);
    await this.response(s, 'requeueExpired', changes.length > 0);
    return out;
  }

  /** As the stores' requeueSql: READY / REVERT_READY again, or CANCELLED when the run has ended. */
  private requeueTo(a: AtomRec): AtomState {
    const run = this.runs.get(a.runId);
    if (run && TERMINAL_RUN_STATUSES.includes(run.status)) return 'CANCELLED';
    return a.state === 'REVERTING' ? 'REVERT_READY' : 'READY';
  }

  async requeueEngine(s: Session, engineId: string): Promise<number> {
    await this.request(s, 'requeueEngine');
    // FOR UPDATE: wait for transactions that hold rows of this engine
    for (;;) {
      const locked = [...this.held.entries()].find(([k, a]) => a.claimedBy === engineId && this.rowLocks.has(k));
      if (!locked) break;
      await this.waitRow(null, locked[0]);
    }
    const changes: Change[] = [];
    const events: Omit<EventRec, 'id'>[] = [];
    const targets = [...this.held.values()]
      .filter((a) => a.claimedBy === engineId)
      .sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : a.index - b.index));
    for (const a of targets) {
      const to = this.requeueTo(a);
      this.putAtom({ ...a, state: to, claimedBy: null, readyAt: to === 'CANCELLED' ? null : this.now, updatedAt: this.now });
      changes.push({ k: 'requeue', run: a.runId, idx: a.index, holder: engineId, epoch: a.epoch, from: a.state, to, reason: 'engine' });
      events.push(this.eventRec({ runId: a.runId, atom: a.index, kind: requeueEventKind(to), toState: to, engineId, epoch: a.epoch }));
    }
    this.addEvents(events, changes);
    this.record(s, 'requeueEngine', changes);
    await this.response(s, 'requeueEngine', targets.length > 0);
    return targets.length;
  }

  // ---------------------------------------------------------------- for the checker

  /** The committed tables (not through a session). */
  snapshot(): { runs: RunRow[]; atoms: Map<string, AtomRow[]>; events: EventRow[]; engines: EngineRow[] } {
    const runs = [...this.runs.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(runRow);
    const atoms = new Map<string, AtomRow[]>();
    for (const r of runs) atoms.set(r.id, this.getAtoms(r.id));
    return { runs, atoms, events: this.events.map(eventRow), engines: this.listEngines() };
  }

  openTransactions(): number {
    return this.sessions.reduce((n, s) => n + s.openTxs.size, 0);
  }
}

// ------------------------------------------------------------------------------ row conversion

function runRow(r: RunRec): RunRow {
  return {
    id: r.id,
    flow: r.flow,
    version: r.version,
    key: r.key,
    status: r.status,
    args: parse<JsonObject>(r.args) ?? {},
    result: parse<JsonValue>(r.result),
    failure: parse<FailureRecord>(r.failure),
    parentRunId: r.parentRunId,
    parentAtom: r.parentAtom,
    pendingAtoms: r.pendingAtoms,
    revertPending: r.revertPending,
    atomCount: r.atomCount,
    graphHash: r.graphHash,
    createdAt: date(r.createdAt),
    updatedAt: date(r.updatedAt),
    finishedAt: r.finishedAt === null ? null : date(r.finishedAt),
  };
}

function atomRow(a: AtomRec): AtomRow {
  return {
    runId: a.runId,
    index: a.index,
    name: a.name,
    state: a.state,
    pending: a.pending,
    revertPending: a.revertPending,
    skip: a.skip,
    revertRequested: a.revertRequested,
    epoch: a.epoch,
    claimedBy: a.claimedBy,
    attempt: a.attempt,
    execution: a.execution,
    result: parse<JsonValue>(a.result),
    failure: parse<FailureRecord>(a.failure),
    journal: parse<JournalEntry[]>(a.journal) ?? [],
    waitKind: a.waitKind,
    waitRef: a.waitRef,
    readyAt: a.readyAt === null ? null : date(a.readyAt),
    updatedAt: date(a.updatedAt),
  };
}

function claimOf(a: AtomRec): ClaimedAtom {
  return {
    runId: a.runId,
    index: a.index,
    state: a.state as ClaimedAtom['state'],
    epoch: a.epoch,
    attempt: a.attempt,
    execution: a.execution,
    journal: parse<JournalEntry[]>(a.journal) ?? [],
    failure: parse<FailureRecord>(a.failure),
  };
}

function eventRow(e: EventRec): EventRow {
  return {
    id: e.id,
    runId: e.runId,
    atom: e.atom,
    kind: e.kind,
    fromState: e.fromState,
    toState: e.toState,
    engineId: e.engineId,
    epoch: e.epoch,
    data: parse<JsonValue>(e.data),
    at: date(e.at),
  };
}

// ------------------------------------------------------------------------------ the port

/** One session's view of the SimStore, as the Store port the engine uses. */
export class SimConnection implements Store {
  readonly capabilities: DialectCapabilities = {
    name: 'postgres',
    skipLocked: true,
    returning: true,
    advisoryLocks: false,
    listenNotify: false,
    transactionalDdl: true,
    singleWriter: false,
    fastCompletions: false,
    pushWakeups: false,
    localSupervisor: false,
  };
  /**
   * None: the simulation models PostgreSQL, where a stopped engine's session (and its
   * locks) ends by timeout; the local supervisor is for SQLite's single write lock (C12).
   */
  readonly supervisor = null;
  readonly moduleSql = null;

  /**
   * `fast` and `wakeups` are given by `SimStore.connect` when the store offers them
   * (PostgreSQL profile). Of the fast paths only the single success is modelled; the batch
   * ones write nothing, so batches take the general transaction.
   */
  constructor(
    readonly sim: SimStore,
    readonly session: Session,
    readonly fast: FastCompletions | null,
    readonly wakeups: Wakeups | null,
  ) {
    this.capabilities.fastCompletions = fast !== null;
    this.capabilities.pushWakeups = wakeups !== null;
  }

  /** the tables of every module are always there */
  async checkSchema(_options?: { modules?: readonly SchemaModule[] }): Promise<void> {}

  /** nothing to migrate in memory: the tables of every module are always there */
  async migrate(_options?: { modules?: readonly SchemaModule[] }): Promise<MigrationRecord[]> {
    return [];
  }
  async close(): Promise<void> {}
  async now(): Promise<Date> {
    return this.sim.read(this.session, 'now', () => date(this.sim.now));
  }
  startRun(run: NewRun): Promise<StartResult> {
    return this.sim.startRun(this.session, run);
  }
  /** not atomic here (one start after the other): the simulated engines never start runs in bulk */
  async startRuns(runs: readonly NewRun[]): Promise<RunRow[]> {
    const out: RunRow[] = [];
    for (const r of runs) out.push((await this.sim.startRun(this.session, r)).run);
    return out;
  }
  claimAtoms(engineId: string, limit: number, options?: ClaimOptions): Promise<ClaimedAtom[]> {
    return this.sim.claimAtoms(this.session, engineId, limit, options);
  }
  runTransaction<T>(runIds: readonly string[], fn: (tx: RunTx) => Promise<T>): Promise<T> {
    return this.sim.runTransaction(this.session, runIds, fn);
  }
  getRun(id: string): Promise<RunRow | null> {
    return this.sim.read(this.session, 'getRun', () => this.sim.getRun(id));
  }
  getRuns(ids: readonly string[]): Promise<RunRow[]> {
    return this.sim.read(this.session, 'getRun', () => ids.flatMap((id) => this.sim.getRun(id) ?? []));
  }
  getRunStatuses(ids: readonly string[]): Promise<Map<string, RunStatus>> {
    return this.sim.read(this.session, 'getRunStatuses', () => this.sim.getRunStatuses(ids));
  }
  getRunGraph(id: string): Promise<FlowGraph | null> {
    return this.sim.read(this.session, 'getRunGraph', () => this.sim.getRunGraph(id));
  }
  listRuns(filter?: RunFilter): Promise<RunRow[]> {
    return this.sim.read(this.session, 'listRuns', () => this.sim.listRuns(filter));
  }
  getAtoms(runId: string): Promise<AtomRow[]> {
    return this.sim.read(this.session, 'getAtoms', () => this.sim.getAtoms(runId));
  }
  getAtomResults(runId: string, indexes: readonly number[]): Promise<Map<number, JsonValue | null>> {
    return this.sim.read(this.session, 'getAtomResults', () => this.sim.getAtomResults(runId, indexes));
  }
  listEvents(filter: EventFilter = {}): Promise<EventRow[]> {
    return this.sim.read(this.session, 'listEvents', () => this.sim.listEvents(filter));
  }
  sendSignal(runId: string, name: string, payload: JsonValue): Promise<number> {
    return this.sim.sendSignal(this.session, runId, name, payload);
  }
  getSignals(runId: string): Promise<SignalRow[]> {
    return this.sim.read(this.session, 'getSignals', () => this.sim.getSignals(runId));
  }
  wakeAtom(runId: string, index: number): Promise<void> {
    return this.sim.wakeAtom(this.session, runId, index);
  }
  registerEngine(engine: EngineRegistration): Promise<void> {
    return this.sim.registerEngine(this.session, engine);
  }
  heartbeat(engineId: string, leaseMs: number): Promise<boolean> {
    return this.sim.heartbeat(this.session, engineId, leaseMs);
  }
  appendEvents(): Promise<void> {
    // only remote tasks (RabbitMQ) write these; the simulation has none
    return Promise.reject(new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: engine events (remote tasks) are not modelled'));
  }
  setEngineState(engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void> {
    return this.sim.setEngineState(this.session, engineId, state);
  }
  deregisterEngine(engineId: string): Promise<void> {
    return this.sim.deregisterEngine(this.session, engineId);
  }
  listEngines(): Promise<EngineRow[]> {
    return this.sim.read(this.session, 'listEngines', () => this.sim.listEngines());
  }
  requeueExpired(options?: RequeueOptions): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    return this.sim.requeueExpired(this.session, options);
  }
  requeueEngine(engineId: string): Promise<number> {
    return this.sim.requeueEngine(this.session, engineId);
  }
  /** The peer watch is not modelled: simulated engines run with `watchPeers: false`, and their reapers find crashes. */
  watchEngine(): Promise<'free' | 'held' | 'aborted'> {
    return Promise.reject(new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: the peer watch is not modelled'));
  }

  // Retention is an operator's call (CLI, or the engine's retention timer, off in the
  // simulated engines): not modelled.
  pruneRuns(): Promise<PruneResult> {
    return Promise.reject(new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: retention is not modelled'));
  }

  // Locks (protocol 10) are a band-aid API for users; the engine never takes one, so the
  // simulation does not model them.
  acquireLock(): Promise<AcquiredLock | null> {
    return Promise.reject(new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: locks are not modelled'));
  }
  extendLock(): Promise<boolean> {
    return Promise.reject(new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: locks are not modelled'));
  }
  releaseLock(): Promise<boolean> {
    return Promise.reject(new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: locks are not modelled'));
  }
  getLock(): Promise<LockRow | null> {
    return Promise.reject(new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: locks are not modelled'));
  }
  listLocks(): Promise<LockRow[]> {
    return Promise.reject(new StoreError('STOKER_STORE_QUERY_FAILED', 'sim: locks are not modelled'));
  }
}
