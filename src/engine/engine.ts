/**
 * The engine: claims ready atoms, executes them, and records each outcome with a fenced
 * write (DESIGN.md protocols 1–3, 8, 9). It keeps nothing that matters in memory: any
 * engine can continue any other engine's work from the store.
 *
 * @example
 * ```ts
 * const engine = new Engine({ store, flows: registry, concurrency: 8 });
 * await engine.start();
 * const { run } = await engine.startRun('order', { orderId: 42 });
 * const done = await engine.waitForRun(run.id);
 * await engine.stop();
 * ```
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { checkJson } from '../core/canonical-json.js';
import { systemClock, systemRng, type Clock, type Rng, type TimerHandle } from '../core/clock.js';
import { randomId, type IdGenerator } from '../core/ids.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { ConflictError, NotFoundError, StokerError, ValidationError, isStokerError } from '../errors.js';
import type { InputSource, RetryControllerSpec } from '../flow/graph.js';
import type { CompiledFlow, FailureRecord, TaskContext } from '../flow/types.js';
import { graphDigest } from '../store/graphs.js';
import type {
  ClaimedAtom,
  FastBatchResult,
  FastFinishResult,
  JournalEntry,
  NewRun,
  RunRow,
  SignalRow,
  StartResult,
  Store,
} from '../store/store.js';
import { ChildRunFailedError, Suspension, toFailureRecord, type WaitRequest } from './failure.js';
import { isTerminalRun, RunStatus } from '../store/states.js';
import {
  RunTransition,
  emptyResult,
  resolveInput,
  type Completion,
  type Outcome,
  type RunContext,
  type TransitionResult,
} from './transitions.js';
import { WakeHub } from './wake-hub.js';
import { WATCH_WAIT_MS, watchTarget } from './peers.js';
import { pruneInBatches } from '../store/prune.js';

/** Where the engine finds flows by name (a FlowRegistry). */
export interface FlowLookup {
  get(name: string, version?: string): CompiledFlow;
}

export interface EngineOptions {
  store: Store;
  flows: FlowLookup;
  /** atoms executed at once (default 10) */
  concurrency?: number;
  /** claim poll interval when idle, jittered ±20 % (default 1000 ms) */
  pollMs?: number;
  /** engine lease (default 30 s) and its renewal interval (default lease/3) */
  leaseMs?: number;
  heartbeatMs?: number;
  /**
   * How often this engine looks for dead engines' atoms (default 500 ms, jittered). Where the
   * store has session locks (PostgreSQL, MySQL) a crashed engine is found by its free lock at
   * the next look, well under a second after `kill -9`; frozen or cut-off engines by their lease.
   */
  reapMs?: number;
  /**
   * Watch a peer (default true; used where the store offers {@link Store.watchEngine}: all
   * three). The engine processes form a ring in id order and one engine of each watches the
   * next process's engine: on PostgreSQL and MySQL it waits, on one connection of its own,
   * for that engine's session lock, which the database hands over the moment the peer's
   * session ends; on SQLite it looks at the peer's pid every 20 ms. Then it sweeps at once.
   * A `kill -9` is taken over in milliseconds instead of at the next look of a reaper; the
   * reapers stay the safety net. `false` leaves detection to the reapers alone.
   */
  watchPeers?: boolean;
  /**
   * The local supervisor (RULES.md R12, TEST-PLAN C12; default true). Acts only where the
   * store offers {@link Store.superviseLocalEngines} (SQLite): when this engine has been
   * unable to write (no lease renewal or registration succeeded) for longer than X = 2 ×
   * `leaseMs`, by its own monotonic clock, it SIGKILLs the engine processes on this host
   * that are stopped (SIGSTOP, a debugger) and whose lease ran out more than X ago: one of
   * them holds SQLite's write lock and stalls every engine. Never a running process, another
   * host's, or its own. Checked from the reaper and heartbeat timers, between write attempts.
   * `false` turns it off.
   */
  localSupervisor?: boolean;
  /** how many completions one transaction may carry (group commit; default 128) */
  maxBatch?: number;
  /**
   * Retention (DESIGN.md, Storage): when set, this engine deletes runs that ended more than
   * this long ago (ms, database clock), with their atoms, events and signals, plus engine
   * rows whose lease ran out that long ago ({@link Store.pruneRuns}), every
   * `retentionEveryMs`, in batches of 1,000 runs. Off by default: nothing is deleted unless
   * asked. Several engines may prune at once (they take different runs).
   */
  retentionMs?: number;
  /** how often to prune when `retentionMs` is set (default 10 minutes, jittered ±20 %) */
  retentionEveryMs?: number;
  engineId?: string;
  clock?: Clock;
  rng?: Rng;
  ids?: IdGenerator;
  logger?: Logger;
  /** shared by the engines and clients of one process for instant wake-ups */
  wakeHub?: WakeHub;
  host?: string;
  pid?: number;
  version?: string;
  /** limits on arguments and results (bytes) */
  maxResultBytes?: number;
  maxArgsBytes?: number;
  /**
   * Test hook at named points (TEST-PLAN §2), a no-op in production: `after-claim-commit`,
   * `before-execute`, `after-side-effect-before-result`, `inside-fenced-tx` (in the
   * completion transaction, before commit), `before-release` (graceful stop). Chaos tests
   * use it to SIGKILL or SIGSTOP the process exactly there.
   */
  faultPoint?: (name: string, info: { runId: string; atom: number }) => void;
}

export interface StartRunOptions {
  key?: string;
  supersede?: boolean;
  version?: string;
}

/** Typed lifecycle events (also for metrics). */
export interface EngineEvents {
  error: [Error];
  fenced: [ClaimedAtom];
  'run.finished': [{ runId: string; status: RunStatus }];
  /** the local supervisor SIGKILLed a stopped engine process of this host (see {@link EngineOptions.localSupervisor}) */
  'supervisor.killed': [{ engineId: string; pid: number; overdueMs: number }];
}

/**
 * `finalAtom`: the graph's only sink, or null. Every other atom is its ancestor, so without
 * deciders its success ends the run.
 */
type EngineRunContext = RunContext & { flow: CompiledFlow | null; hasDeciders: boolean; finalAtom: number | null };

interface InFlight {
  claim: ClaimedAtom;
  abort: AbortController;
}

const DEFAULTS = {
  concurrency: 10,
  pollMs: 1000,
  leaseMs: 30_000,
  maxBatch: 128,
  maxResultBytes: 256 * 1024,
  maxArgsBytes: 64 * 1024 * 16,
};

export class Engine extends EventEmitter<EngineEvents> {
  /** this engine's current id: a new one after it fenced itself and registered again */
  get id(): string {
    return this.currentId;
  }
  private currentId: string;
  private readonly store: Store;
  private readonly flows: FlowLookup;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly ids: IdGenerator;
  private log: Logger;
  private readonly baseLog: Logger;
  private readonly hub: WakeHub;
  private readonly opts: Required<
    Pick<EngineOptions, 'concurrency' | 'pollMs' | 'leaseMs' | 'heartbeatMs' | 'reapMs' | 'maxBatch' | 'maxResultBytes' | 'maxArgsBytes'>
  >;
  private readonly faultPoint: NonNullable<EngineOptions['faultPoint']>;
  private readonly localSupervisor: boolean;
  private readonly identity: { host: string; pid: number; version: string };

  private running = false;
  private stopping = false;
  private readonly inflight = new Map<string, InFlight>();
  private readonly queue: Completion[] = [];
  private flushing: Promise<void> | null = null;
  private readonly runs = new Map<string, EngineRunContext>();
  private readonly loadingRuns = new Map<string, Promise<EngineRunContext>>();
  private readonly results = new Map<string, Map<number, JsonValue | null>>();
  private wakeResolve: (() => void) | null = null;
  private wakePending = false;
  private loopDone: Promise<void> | null = null;
  private heartbeatTimer: TimerHandle | null = null;
  /** set by stop() once draining is over: no timer is armed again */
  private timersStopped = false;
  /** fires when the local lease estimate runs out (R9), even while a renewal hangs */
  private leaseTimer: TimerHandle | null = null;
  private reaperTimer: TimerHandle | null = null;
  /** the peer watch (protocol 4): aborted, then awaited, by stop() */
  private watching: { abort: AbortController; done: Promise<void> } | null = null;
  private readonly watchPeers: boolean;
  private retentionTimer: TimerHandle | null = null;
  private readonly retention: { olderThanMs: number; everyMs: number } | null;
  private unlisten: (() => Promise<void>) | null = null;
  /** set when the lease or the session lock was lost: register again under a new id */
  private fencedOut = false;
  private unsubscribe: (() => void) | null = null;
  private lastRenewMono = 0;
  private readonly waiters = new Map<string, Set<() => void>>();
  /** counters for metrics and tests */
  readonly stats = { claimed: 0, executed: 0, fencedWrites: 0, commits: 0, claimCommits: 0, continuations: 0, supervisorKills: 0 };

  constructor(options: EngineOptions) {
    super();
    const concurrency = options.concurrency ?? DEFAULTS.concurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
      throw new ValidationError(
        'STOKER_CONFIG_INVALID',
        `concurrency must be an integer from 1 to 10000, got ${String(options.concurrency)}`,
      );
    }
    const leaseMs = options.leaseMs ?? DEFAULTS.leaseMs;
    this.opts = {
      concurrency,
      pollMs: options.pollMs ?? DEFAULTS.pollMs,
      leaseMs,
      heartbeatMs: options.heartbeatMs ?? Math.max(10, Math.floor(leaseMs / 3)),
      reapMs: options.reapMs ?? 500,
      maxBatch: options.maxBatch ?? DEFAULTS.maxBatch,
      maxResultBytes: options.maxResultBytes ?? DEFAULTS.maxResultBytes,
      maxArgsBytes: options.maxArgsBytes ?? DEFAULTS.maxArgsBytes,
    };
    this.store = options.store;
    this.flows = options.flows;
    this.clock = options.clock ?? systemClock;
    this.rng = options.rng ?? systemRng;
    this.ids = options.ids ?? randomId;
    this.currentId = options.engineId ?? this.ids();
    this.baseLog = options.logger ?? silentLogger;
    this.log = this.baseLog.child({ engineId: this.currentId });
    this.hub = options.wakeHub ?? new WakeHub();
    this.faultPoint = options.faultPoint ?? (() => {});
    this.localSupervisor = options.localSupervisor ?? true;
    this.watchPeers = options.watchPeers ?? true;
    const checkMs = (name: string, v: number | undefined, min: number): void => {
      if (v !== undefined && (!Number.isFinite(v) || v < min)) {
        throw new ValidationError('STOKER_CONFIG_INVALID', `${name} must be a number of milliseconds, at least ${min}; got ${String(v)}`);
      }
    };
    checkMs('retentionMs', options.retentionMs, 0);
    checkMs('retentionEveryMs', options.retentionEveryMs, 1000);
    this.retention =
      options.retentionMs === undefined ? null : { olderThanMs: options.retentionMs, everyMs: options.retentionEveryMs ?? 600_000 };
    this.identity = { host: options.host ?? hostname(), pid: options.pid ?? process.pid, version: options.version ?? '0.1.0' };
    // an unhandled 'error' event would crash the host process: default to logging
    this.on('error', (e) => this.log.error({ err: e }, 'engine error'));
  }

  // ---------------------------------------------------------------- client API

  /** Starts a run of a registered flow (protocol 1). Idempotent by `key`. */
  async startRun(flow: string, args: JsonObject = {}, options: StartRunOptions = {}): Promise<StartResult> {
    const run = this.prepareRun(flow, args, options.version, options.key ?? null);
    if (options.supersede) run.supersede = true;
    const res = await this.store.startRun(run);
    if (res.created) this.hub.wake();
    return res;
  }

  /**
   * Starts many runs of one flow at once, without keys: all of them or none, in one
   * statement on PostgreSQL and one transaction elsewhere. For bulk producers (imports,
   * fan-out from another system); `startRun` remains the call for keyed, idempotent starts.
   */
  async startRuns(flow: string, argsList: readonly JsonObject[], options: { version?: string } = {}): Promise<RunRow[]> {
    if (argsList.length > MAX_BULK_START) {
      throw new ValidationError(
        'STOKER_CONFIG_INVALID',
        `startRuns takes at most ${MAX_BULK_START} runs at a time, got ${argsList.length}: split the list`,
      );
    }
    const runs = argsList.map((args) => this.prepareRun(flow, args, options.version, null));
    if (runs.length === 0) return [];
    const rows = await this.store.startRuns(runs);
    this.hub.wake();
    return rows;
  }

  private prepareRun(
    flowName: string,
    args: JsonObject,
    version: string | undefined,
    key: string | null,
    parent?: { runId: string; atom: number },
  ): NewRun {
    const flow = this.flows.get(flowName, version);
    checkJson(args, `arguments of flow ${flowName}`, { maxBytes: this.opts.maxArgsBytes, maxDepth: 64 });
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new ValidationError('STOKER_FLOW_INVALID', `arguments of flow ${flowName} must be a JSON object`);
    }
    const missing = flow.graph.arguments.filter((a) => !(a in args));
    if (missing.length > 0) {
      throw new ValidationError(
        'STOKER_RUN_MISSING_ARGUMENT',
        `flow ${flowName} needs argument${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
        {
          details: { flow: flowName, missing },
        },
      );
    }
    if (key !== null && (key.length === 0 || key.length > 255)) {
      throw new ValidationError('STOKER_CONFIG_INVALID', `a run key must be 1 to 255 characters long`);
    }
    return {
      id: this.ids(),
      flow: flow.name,
      version: flow.version,
      key,
      args,
      graph: flow.graph,
      parentRunId: parent?.runId ?? null,
      parentAtom: parent?.atom ?? null,
    };
  }

  /** Cancels a run: no new atoms start; in-flight ones see `ctx.signal` aborted. Child runs are cancelled too. */
  async cancel(runId: string, reason = 'cancelled by request'): Promise<RunRow> {
    const row = await this.store.getRun(runId);
    if (!row) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
    if (isTerminalRun(row.status))
      throw new ConflictError('STOKER_RUN_NOT_ACTIVE', `run ${runId} already ended ${row.status}`, {
        details: { runId, status: row.status },
      });
    const ctx = await this.runContext(runId);
    await this.store.runTransaction(this.lockSet(ctx), async (tx) => {
      const result = emptyResult();
      const t = new RunTransition(tx, ctx, this.transitionDeps(), result, 0);
      await t.cancel(reason);
      await t.flush();
      await tx.insertEvents(result.events);
    });
    this.abortRun(runId, reason);
    for (const child of await this.store.listRuns({ parentRunId: runId, status: ['PENDING', 'RUNNING', 'REVERTING'] })) {
      await this.cancel(child.id, `parent run ${runId} cancelled`).catch(() => undefined);
    }
    this.notifyFinished(runId);
    return (await this.store.getRun(runId))!;
  }

  /** Sends a named signal with a JSON payload to a run (stored; wakes atoms waiting for it). */
  async signal(runId: string, name: string, payload: JsonValue = null): Promise<number> {
    if (!/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/.test(name)) {
      throw new ValidationError('STOKER_CONFIG_INVALID', `signal name "${name}" must match [A-Za-z][A-Za-z0-9_.-]{0,127}`);
    }
    checkJson(payload, `payload of signal ${name}`, { maxBytes: this.opts.maxResultBytes, maxDepth: 64 });
    const woke = await this.store.sendSignal(runId, name, payload);
    if (woke > 0) this.hub.wake();
    return woke;
  }

  /** Resolves when the run has reached a terminal status. */
  async waitForRun(runId: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<RunRow> {
    const deadline = this.clock.monotonicMs() + (options.timeoutMs ?? Number.POSITIVE_INFINITY);
    for (;;) {
      const row = await this.store.getRun(runId);
      if (!row) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
      if (isTerminalRun(row.status)) return row;
      const left = deadline - this.clock.monotonicMs();
      if (left <= 0) throw new StokerError('STOKER_RUN_NOT_ACTIVE', `run ${runId} is still ${row.status} after ${options.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        let set = this.waiters.get(runId);
        if (!set) this.waiters.set(runId, (set = new Set()));
        const done = (): void => {
          set.delete(finish);
          timer.cancel();
          resolve();
        };
        const finish = done;
        set.add(finish);
        const timer = this.clock.setTimer(Math.min(left, options.pollMs ?? 250), done);
      });
    }
  }

  private notifyFinished(runId: string): void {
    const set = this.waiters.get(runId);
    if (!set) return;
    this.waiters.delete(runId);
    for (const fn of set) fn();
  }

  // ---------------------------------------------------------------- lifecycle

  /** Registers the engine and starts claiming. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    this.timersStopped = false;
    try {
      await this.register();
    } catch (e) {
      this.running = false;
      throw e;
    }
    this.unsubscribe = this.hub.subscribe(() => this.wake());
    if (this.store.wakeups) {
      try {
        this.unlisten = await this.store.wakeups.subscribe(() => this.wake());
      } catch (e) {
        // polling still finds the work; only latency suffers
        this.emitError(e);
      }
    }
    this.scheduleHeartbeat(0);
    this.scheduleReaper();
    this.scheduleRetention();
    if (this.watchPeers) {
      const abort = new AbortController();
      this.watching = { abort, done: this.watchLoop(abort.signal) };
    }
    this.loopDone = this.claimLoop();
    this.log.info({ concurrency: this.opts.concurrency }, 'engine started');
  }

  /**
   * Stops claiming. With `drain` (default) in-flight atoms finish and are recorded, up to
   * `timeoutMs`; what is still running then is aborted and handed back at once (no lease wait).
   */
  async stop(options: { drain?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.wake();
    await this.store.setEngineState(this.id, 'draining').catch((e) => this.emitError(e));
    await this.loopDone;
    const drainUntil = this.clock.monotonicMs() + (options.drain === false ? 0 : (options.timeoutMs ?? 30_000));
    while (this.inflight.size > 0 && this.clock.monotonicMs() < drainUntil) await this.clock.sleep(5);
    for (const f of this.inflight.values()) f.abort.abort(new StokerError('STOKER_ENGINE_STOPPED', 'engine stopping'));
    await this.flushing;
    this.faultPoint('before-release', { runId: '', atom: -1 });
    this.timersStopped = true;
    this.heartbeatTimer?.cancel();
    this.leaseTimer?.cancel();
    this.reaperTimer?.cancel();
    this.retentionTimer?.cancel();
    this.watching?.abort.abort();
    await this.watching?.done;
    this.watching = null;
    this.unsubscribe?.();
    await this.unlisten?.().catch((e: unknown) => this.emitError(e));
    await this.store.requeueEngine(this.id).catch((e) => this.emitError(e));
    await this.store.deregisterEngine(this.id).catch((e) => this.emitError(e));
    this.running = false;
    this.log.info({}, 'engine stopped');
  }

  private wake(): void {
    const r = this.wakeResolve;
    this.wakeResolve = null;
    // a wake-up while the loop is busy claiming is remembered, not lost
    if (r) r();
    else this.wakePending = true;
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const free = this.opts.concurrency - this.inflight.size;
      let claimed = 0;
      if (free > 0 && this.leaseValid()) {
        try {
          const claims = await this.store.claimAtoms(this.id, free);
          for (const c of claims) this.faultPoint('after-claim-commit', { runId: c.runId, atom: c.index });
          failures = 0;
          if (claims.length > 0) this.stats.claimCommits += 1;
          claimed = claims.length;
          this.stats.claimed += claims.length;
          for (const c of claims) this.launch(c);
        } catch (e) {
          failures += 1;
          this.emitError(e);
          // The claim may have committed although we got no answer (an ambiguous commit):
          // atoms could now be held under our id that nobody runs. Give the id up; the
          // reapers requeue whatever it holds (found by the simulation, TEST-PLAN C11).
          this.fenceSelf('claim outcome unknown');
        }
      }
      if (claimed > 0 && claimed === free) continue;
      if (this.wakePending || this.stopping) {
        this.wakePending = false;
        continue;
      }
      // idle: wait for a wake-up, a free slot or the jittered poll
      const jitter = 0.8 + this.rng.next() * 0.4;
      const waitMs = failures > 0 ? Math.min(5000, 100 * 2 ** failures) : this.opts.pollMs * jitter;
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimer(waitMs, () => {
          this.wakeResolve = null;
          resolve();
        });
        this.wakeResolve = () => {
          timer.cancel();
          resolve();
        };
      });
    }
  }

  private leaseValid(): boolean {
    if (this.fencedOut) return false;
    // Self-fencing (R9): without a renewal for most of the lease, stop starting work.
    return this.clock.monotonicMs() - this.lastRenewMono < this.opts.leaseMs * 0.9;
  }

  private scheduleHeartbeat(ms: number): void {
    this.heartbeatTimer = this.clock.setTimer(ms, () => {
      const started = this.clock.monotonicMs();
      void this.heartbeat().finally(() => {
        // Renew every heartbeatMs from the start of the last renewal, not from its end: with
        // slow round trips (renewal + cancellation check) the lease must not lapse (chaos C9).
        const next = Math.max(0, this.opts.heartbeatMs - (this.clock.monotonicMs() - started));
        // a draining engine renews too: a drain may outlast the lease (stop() ends the timer)
        if (this.running && !this.timersStopped) this.scheduleHeartbeat(next);
      });
    });
  }

  /** Registers this engine (a row with a lease, and a session lock where the store has one). */
  private async register(): Promise<void> {
    const id = this.currentId;
    await this.store.registerEngine({
      id,
      ...this.identity,
      leaseMs: this.opts.leaseMs,
      onSessionLost: (cause) => {
        if (this.currentId !== id) return;
        this.log.warn({ err: cause }, 'session lock lost: fencing myself');
        this.fenceSelf('session lock lost');
      },
    });
    this.lastRenewMono = this.clock.monotonicMs();
    this.fencedOut = false;
    this.armLeaseTimer();
  }

  /**
   * Self-fencing (R9, R14): others may now take our atoms, so abort them and write nothing
   * more for them; the next heartbeat registers this engine again under a new id (R3).
   */
  private fenceSelf(reason: string): void {
    this.fencedOut = true;
    this.abortAll(reason);
    this.wake();
  }

  /**
   * R9: fence ourselves once the local lease estimate runs out, even if the renewal never
   * answers (a partition holds it: chaos C9). Otherwise only the heartbeat's own check does,
   * after its store call returns, and a hung call let tasks run on after a takeover.
   */
  private armLeaseTimer(): void {
    this.leaseTimer?.cancel();
    if (this.timersStopped) return;
    const left = this.lastRenewMono + this.opts.leaseMs * 0.9 - this.clock.monotonicMs();
    this.leaseTimer = this.clock.setTimer(Math.max(0, left) + 1, () => {
      this.leaseTimer = null;
      if (!this.running || this.fencedOut) return;
      // A timer may fire a little early by the monotonic clock (Node computes due times
      // from a loop time cached at the start of an iteration, so more so under load): the
      // lease then still holds, and the timer must be armed again, not dropped. Dropped, it
      // left only the hung renewal to fence the engine, seconds late (chaos C9, in CI).
      if (this.leaseValid()) this.armLeaseTimer();
      else this.fenceSelf('engine lease expired locally (renewal overdue)');
    });
  }

  private async heartbeat(): Promise<void> {
    await this.superviseLocal();
    if (this.fencedOut && !this.stopping) {
      const old = this.currentId;
      this.currentId = this.ids();
      this.log = this.baseLog.child({ engineId: this.currentId });
      // the old id is dead for everyone: let the store forget it (and its session lock)
      await this.store.deregisterEngine(old).catch((e: unknown) => this.emitError(e));
      // between two writes that may each have waited busy_timeout for a stuck lock
      await this.superviseLocal();
      try {
        await this.register();
        this.log.info({ previousId: old }, 'registered again after fencing');
      } catch (e) {
        this.currentId = old;
        this.emitError(e);
      }
      return;
    }
    const t0 = this.clock.monotonicMs();
    try {
      const ok = await this.store.heartbeat(this.currentId, this.opts.leaseMs);
      if (ok) {
        this.lastRenewMono = t0;
        this.armLeaseTimer();
      } else {
        this.log.warn({}, 'engine row gone or marked dead: fencing myself');
        this.fenceSelf('engine lease lost');
      }
    } catch (e) {
      this.emitError(e);
    }
    if (!this.leaseValid()) this.fenceSelf('engine lease expired locally');
    try {
      await this.checkCancelled();
    } catch (e) {
      this.emitError(e);
    }
  }

  private scheduleRetention(): void {
    const retention = this.retention;
    if (!retention) return;
    const ms = retention.everyMs * (0.8 + this.rng.next() * 0.4);
    this.retentionTimer = this.clock.setTimer(ms, () => {
      void this.prune(retention.olderThanMs).finally(() => {
        if (this.running && !this.stopping) this.scheduleRetention();
      });
    });
  }

  /** One retention round: batches of 1,000 runs until fewer are left (at most 100 batches a round). */
  private async prune(olderThanMs: number): Promise<void> {
    try {
      const total = await pruneInBatches(this.store, {
        olderThanMs,
        batch: 1000,
        maxBatches: 100,
        keepGoing: () => this.running && !this.stopping,
      });
      if (total.runs > 0 || total.engines > 0) this.log.info({ ...total, olderThanMs }, 'retention: pruned runs that ended long ago');
    } catch (e) {
      this.emitError(e);
    }
  }

  private scheduleReaper(): void {
    const ms = this.opts.reapMs * (0.8 + this.rng.next() * 0.4);
    this.reaperTimer = this.clock.setTimer(ms, () => {
      void this.reap().finally(() => {
        if (this.running && !this.stopping) this.scheduleReaper();
      });
    });
  }

  /** Requeues the atoms of dead engines (lease expired, session lock free, or pid gone). */
  private async reap(): Promise<void> {
    await this.superviseLocal();
    if (this.fencedOut) return;
    try {
      // A crashed engine's session lock is free at once; check it on every look (R11).
      const requeued = await this.store.requeueExpired({ liveCheckAfterMs: 0 });
      if (requeued.length > 0) {
        this.log.info({ count: requeued.length, engines: [...new Set(requeued.map((r) => r.engineId))] }, 'requeued atoms of dead engines');
        this.wake();
        await this.store.wakeups?.notify();
      }
    } catch (e) {
      this.emitError(e);
    }
  }

  /**
   * Protocol 4, the immediate half ({@link EngineOptions.watchPeers}): watches the next live
   * process's engine in id order (peers.ts: one watcher per process) through
   * {@link Store.watchEngine}, and sweeps the moment it is gone. Each wait lasts at most
   * {@link WATCH_WAIT_MS}, so engines that joined or left are seen at the next look. A peer
   * found gone is not watched again (it deregistered, or it died holding nothing and its
   * row stays until its lease ends).
   */
  private async watchLoop(signal: AbortSignal): Promise<void> {
    const freed = new Set<string>();
    const look = Math.max(this.opts.reapMs * 2, WATCH_WAIT_MS);
    let failures = 0;
    while (!signal.aborted) {
      let outcome: 'free' | 'held' | 'aborted' | 'alone' | 'follower' = 'alone';
      try {
        const live = (await this.store.listEngines()).filter((e) => e.state !== 'dead' && !freed.has(e.id));
        for (const id of freed) if (!live.some((e) => e.id === id)) freed.delete(id);
        const self = { id: this.id, host: this.identity.host, pid: this.identity.pid };
        const ring = this.fencedOut ? { role: 'alone' as const } : watchTarget(self, live);
        if (ring.role === 'follower') outcome = 'follower';
        else if (ring.role === 'watch' && !signal.aborted) {
          outcome = await this.store.watchEngine(ring.peer, { maxWaitMs: WATCH_WAIT_MS, signal });
          if (outcome === 'free') {
            freed.add(ring.peer);
            this.log.info({ peer: ring.peer }, 'watched engine session ended: sweeping');
            await this.reap();
          }
        }
        failures = 0;
      } catch (e) {
        failures += 1;
        this.emitError(e);
      }
      if (outcome === 'free' || outcome === 'held') continue;
      // alone, or another engine of this process watches (it changes only when that one
      // stops), or a failure: look again later
      await this.pause(signal, Math.min(30_000, (outcome === 'follower' ? 5 * look : look) * 2 ** Math.min(failures, 4)));
    }
  }

  /** Sleeps `ms` on the injected clock, or until `signal` aborts. */
  private pause(signal: AbortSignal, ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        signal.removeEventListener('abort', done);
        timer.cancel();
        resolve();
      };
      const timer = this.clock.setTimer(ms, done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * The local supervisor (RULES.md R12; {@link EngineOptions.localSupervisor}). Does nothing
   * unless this engine has been unable to write for longer than X = 2 × lease: its last
   * successful renewal or registration (`lastRenewMono`) is older than that by its own
   * monotonic clock. Then the store (reads only) SIGKILLs this host's stopped engines whose
   * lease ran out more than X ago. Runs from the timers, between write attempts: a blocked
   * SQLite write holds this whole process for up to busy_timeout.
   */
  private async superviseLocal(): Promise<void> {
    if (!this.localSupervisor || !this.store.supervisor || !this.running || this.stopping) return;
    const staleMs = 2 * this.opts.leaseMs;
    const unableMs = this.clock.monotonicMs() - this.lastRenewMono;
    if (unableMs <= staleMs) return;
    try {
      const killed = await this.store.supervisor.superviseLocalEngines({ selfId: this.currentId, staleMs });
      for (const k of killed) {
        this.stats.supervisorKills += 1;
        this.log.warn(
          { killedEngineId: k.engineId, pid: k.pid, leaseOverdueMs: k.overdueMs, unableToWriteMs: Math.round(unableMs) },
          `local supervisor: SIGKILLed engine ${k.engineId} (pid ${k.pid}): stopped with its lease over for ${k.overdueMs} ms while this engine could not write for ${Math.round(unableMs)} ms (a stopped process holding SQLite's write lock stalls every engine)`,
        );
        this.emit('supervisor.killed', k);
      }
    } catch (e) {
      this.emitError(e);
    }
  }

  private async checkCancelled(): Promise<void> {
    const ids = [...new Set([...this.inflight.values()].map((f) => f.claim.runId))];
    if (ids.length === 0) return;
    const statuses = await this.store.getRunStatuses(ids);
    // A superseded run's running atoms may finish and record their effects (protocol 7): not aborted.
    for (const [id, status] of statuses) if (isTerminalRun(status) && status !== RunStatus.SUPERSEDED) this.abortRun(id, `run ${status}`);
  }

  private abortRun(runId: string, reason: string): void {
    for (const f of this.inflight.values()) {
      if (f.claim.runId === runId) f.abort.abort(new StokerError('STOKER_RUN_NOT_ACTIVE', reason));
    }
  }

  private abortAll(reason: string): void {
    for (const f of this.inflight.values()) f.abort.abort(new StokerError('STOKER_ENGINE_FENCED', reason));
  }

  private emitError(e: unknown): void {
    this.emit('error', e instanceof Error ? e : new Error(String(e)));
  }

  // ---------------------------------------------------------------- execution

  private launch(claim: ClaimedAtom): void {
    const key = `${claim.runId}/${claim.index}`;
    const abort = new AbortController();
    this.inflight.set(key, { claim, abort });
    const finish = (outcome: Outcome): void => {
      // Stopped or fenced engines write nothing for the atom: it is handed back (requeued)
      // or taken over by another engine with a new epoch.
      const reason: unknown = abort.signal.reason;
      if (
        abort.signal.aborted &&
        isStokerError(reason) &&
        (reason.code === 'STOKER_ENGINE_STOPPED' || reason.code === 'STOKER_ENGINE_FENCED')
      ) {
        this.inflight.delete(key);
        this.wake();
        return;
      }
      this.enqueue({ claim, outcome });
    };
    void this.execute(claim, abort.signal).then(finish, (e) =>
      finish({ kind: 'failure', failure: toFailureRecord(e), journal: claim.journal }),
    );
  }

  /** `row`: the run's row when the caller has it already (a claim that read it), else it is read. */
  private async runContext(runId: string, row?: RunRow): Promise<EngineRunContext> {
    const cached = this.runs.get(runId);
    if (cached) return cached;
    // many atoms of one run claimed together share one load of its (possibly large) graph
    let loading = this.loadingRuns.get(runId);
    if (!loading) {
      loading = this.loadRunContext(runId, row).finally(() => this.loadingRuns.delete(runId));
      this.loadingRuns.set(runId, loading);
    }
    return loading;
  }

  /**
   * Run rows asked for in the same tick (a claim batch preparing its atoms, a commit
   * loading its runs) are read together, in one round trip.
   */
  private readRunRow(runId: string): Promise<RunRow | null> {
    let batch = this.rowBatch;
    if (!batch) {
      const ids = new Set<string>();
      const rows = Promise.resolve().then(async () => {
        this.rowBatch = null;
        return new Map((await this.store.getRuns([...ids])).map((r) => [r.id, r]));
      });
      batch = this.rowBatch = { ids, rows };
    }
    batch.ids.add(runId);
    return batch.rows.then((m) => m.get(runId) ?? null);
  }

  private rowBatch: { ids: Set<string>; rows: Promise<Map<string, RunRow>> } | null = null;

  private async loadRunContext(runId: string, known?: RunRow): Promise<EngineRunContext> {
    const row = known ?? (await this.readRunRow(runId));
    if (!row) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
    let flow: CompiledFlow | null = null;
    try {
      flow = this.flows.get(row.flow, row.version);
    } catch {
      flow = null;
    }
    // The run keeps the graph it started with. When this engine's code compiles to the same
    // graph (same content hash) there is nothing to read; otherwise the stored one rules.
    const graph = flow && graphDigest(flow.graph).hash === row.graphHash ? flow.graph : await this.store.getRunGraph(runId);
    if (!graph) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no graph for run ${runId}`, { details: { runId } });
    const hasDeciders = graph.atoms.some((a) => a.deciders !== undefined && Object.keys(a.deciders).length > 0);
    const sinks = graph.atoms.filter((a) => a.successors.length === 0);
    const finalAtom = sinks.length === 1 ? sinks[0]!.index : null;
    const ctx = {
      id: runId,
      graph,
      args: row.args,
      parentRunId: row.parentRunId,
      parentAtom: row.parentAtom,
      deciders: flow?.deciders ?? null,
      flow,
      hasDeciders,
      finalAtom,
    };
    this.runs.set(runId, ctx);
    return ctx;
  }

  private async execute(claim: ClaimedAtom, signal: AbortSignal): Promise<Outcome> {
    let prepared: Awaited<ReturnType<Engine['prepare']>>;
    try {
      prepared = await this.prepare(claim);
    } catch (e) {
      // The store failed before the task started: that is not the task's failure. Hand
      // the atom back (found by the simulation: such errors used to revert whole runs).
      if (isStokerError(e) && e.code.startsWith('STOKER_STORE_')) {
        this.emitError(e);
        return { kind: 'release', delayMs: this.opts.pollMs };
      }
      throw e;
    }
    if (!this.leaseValid()) {
      // R9: never start a side effect once our lease may have run out (a resumed zombie),
      // and claim nothing more under this id: without fencing, a lease that is stale while
      // the claims still pass could make a tight claim-and-release loop.
      if (!this.fencedOut) this.fenceSelf('lease ran out before a task could start');
      return { kind: 'release', delayMs: 0 };
    }
    return this.executePrepared(claim, signal, prepared);
  }

  /** Everything an execution needs from the store, loaded before the task starts. */
  private async prepare(claim: ClaimedAtom) {
    const run = await this.runContext(claim.runId, claim.run);
    const spec = run.graph.atoms[claim.index];
    if (!spec) throw new StokerError('STOKER_TASK_NOT_FOUND', `run ${claim.runId} has no atom ${claim.index}`);
    const inputs = await this.inputs(run, spec.inputs);

    const controllerValue = spec.kind === 'retry' ? await this.controllerValue(spec.controller!, claim.attempt, run) : null;
    return { run, spec, inputs, controllerValue };
  }

  private async executePrepared(
    claim: ClaimedAtom,
    signal: AbortSignal,
    { run, spec, inputs, controllerValue }: Awaited<ReturnType<Engine['prepare']>>,
  ): Promise<Outcome> {
    this.stats.executed += 1;
    if (spec.kind === 'retry') return { kind: 'success', result: controllerValue, journal: [] };

    if (run.flow === null) {
      // Another engine (with this flow registered) should run it: hand it back, and look
      // again later in case the flow gets registered here.
      this.runs.delete(claim.runId);
      return { kind: 'release', delayMs: this.opts.pollMs };
    }
    const task = run.flow.tasks.get(spec.name);
    if (!task) {
      const failure: FailureRecord = {
        type: 'StokerError',
        code: 'STOKER_TASK_NOT_FOUND',
        message: `flow ${run.flow.name}@${run.flow.version} has no task ${spec.name}`,
        retryable: false,
      };
      return claim.state === 'REVERTING' ? { kind: 'revertFailed', failure } : { kind: 'failure', failure, journal: claim.journal };
    }
    const journal = claim.journal.map((j) => ({ ...j }));
    const parked: { suspension: Suspension | null } = { suspension: null };
    let ctx: TaskContext;
    try {
      ctx = await this.taskContext(claim, spec.name, journal, signal, run, parked);
    } catch (e) {
      if (isStokerError(e) && e.code.startsWith('STOKER_STORE_')) {
        this.emitError(e);
        return { kind: 'release', delayMs: this.opts.pollMs };
      }
      throw e;
    }
    this.faultPoint('before-execute', { runId: claim.runId, atom: claim.index });

    if (claim.state === 'REVERTING') {
      try {
        await this.withTimeout(() => task.revert!(inputs.values, ctx), spec.timeoutMs, signal);
        return { kind: 'reverted' };
      } catch (e) {
        return { kind: 'revertFailed', failure: toFailureRecord(e) };
      }
    }
    if (inputs.missing.length > 0) {
      return {
        kind: 'failure',
        failure: { type: 'MissingInput', message: `atom ${spec.name} has no value for ${inputs.missing.join(', ')}`, retryable: false },
        journal,
      };
    }
    try {
      const value = await this.withTimeout(() => task.execute(inputs.values, ctx), spec.timeoutMs, signal);
      // A wait parks the atom even if the task caught the suspension and carried on.
      if (parked.suspension) return { kind: 'suspend', wait: parked.suspension.wait, journal: journal.slice(0, parked.suspension.seq) };
      const result: JsonValue = value === undefined ? null : (value as JsonValue);
      try {
        checkJson(result, `result of ${spec.name}`, { maxBytes: this.opts.maxResultBytes, maxDepth: 64 });
      } catch (e) {
        return { kind: 'failure', failure: { ...toFailureRecord(e), retryable: false }, journal };
      }
      this.faultPoint('after-side-effect-before-result', { runId: claim.runId, atom: claim.index });
      return { kind: 'success', result, journal };
    } catch (e) {
      const s = parked.suspension ?? (e instanceof Suspension ? e : null);
      if (s) return { kind: 'suspend', wait: s.wait, journal: journal.slice(0, s.seq) };
      return { kind: 'failure', failure: toFailureRecord(e), journal };
    }
  }

  private async withTimeout<T>(fn: () => T | Promise<T>, timeoutMs: number | undefined, signal: AbortSignal): Promise<T> {
    const work = Promise.resolve().then(fn);
    if (timeoutMs === undefined && !signal.aborted) {
      // still stop waiting when the engine aborts (cancel, lease loss)
      return Promise.race([work, abortPromise(signal)]);
    }
    let timer: TimerHandle | null = null;
    const timeout = new Promise<never>((_, reject) => {
      if (timeoutMs === undefined) return;
      timer = this.clock.setTimer(timeoutMs, () => {
        const err = new StokerError('STOKER_TASK_TIMEOUT', `task ran longer than ${timeoutMs} ms`);
        (err as StokerError & { retryable: boolean }).retryable = true;
        reject(err);
      });
    });
    try {
      return await Promise.race([work, timeout, abortPromise(signal)]);
    } finally {
      (timer as TimerHandle | null)?.cancel();
    }
  }

  /** What a retry controller provides on its n-th attempt: the for-each item, or the attempt number. */
  private async controllerValue(ctl: RetryControllerSpec, attempt: number, run: RunContext): Promise<JsonValue> {
    switch (ctl.kind) {
      case 'forEach': {
        if (ctl.values.length === 0) throw new ValidationError('STOKER_FLOW_INVALID', 'forEach retry controller has no values');
        return ctl.values[Math.min(attempt, ctl.values.length) - 1] ?? null;
      }
      case 'parameterizedForEach': {
        const { values } = await this.inputs(run, { list: ctl.valuesFrom });
        const list = values.list;
        if (!Array.isArray(list) || list.length === 0) {
          throw new ValidationError('STOKER_FLOW_INVALID', 'parameterizedForEach needs a non-empty list of values');
        }
        return list[Math.min(attempt, list.length) - 1] ?? null;
      }
      default:
        return attempt;
    }
  }

  /** Resolves an atom's inputs from run arguments, cached results and, when needed, the store. */
  private async inputs(
    run: RunContext,
    sources: Record<string, InputSource>,
  ): Promise<{ values: Record<string, JsonValue>; missing: string[] }> {
    const cache = this.results.get(run.id) ?? new Map<number, JsonValue | null>();
    const need = [...new Set(Object.values(sources).flatMap((s) => (s.from === 'atom' && !cache.has(s.atom) ? [s.atom] : [])))];
    if (need.length > 0) {
      for (const [i, v] of await this.store.getAtomResults(run.id, need)) cache.set(i, v);
      this.results.set(run.id, cache);
    }
    const values: Record<string, JsonValue> = {};
    const missing: string[] = [];
    for (const [name, src] of Object.entries(sources)) {
      const v = resolveInput(src, run.graph, run.args, cache);
      if (v === undefined) missing.push(name);
      else values[name] = v;
    }
    return { values, missing };
  }

  private async taskContext(
    claim: ClaimedAtom,
    atomName: string,
    journal: JournalEntry[],
    signal: AbortSignal,
    run: RunContext,
    parked: { suspension: Suspension | null },
  ): Promise<TaskContext> {
    const park = (s: Suspension): never => {
      parked.suspension ??= s;
      throw s;
    };
    const store = this.store;
    // The wait that parked this atom (the last entry, not done) is satisfied now that it was claimed again.
    const last = journal.at(-1);
    let signals: SignalRow[] | null = null;
    const loadSignals = async (): Promise<SignalRow[]> => (signals ??= await store.getSignals(claim.runId));
    if (last && !last.done) {
      if (last.kind === 'signal') {
        const nth = journal.filter((j) => j.kind === 'signal' && j.ref === last.ref).length - 1;
        last.value = (await loadSignals()).filter((s) => s.name === last.ref)[nth]?.payload ?? null;
      } else if (last.kind === 'child' && last.ref) {
        const child = await store.getRun(last.ref);
        last.value = child
          ? { status: child.status, result: child.result, failure: child.failure as unknown as JsonValue }
          : { status: 'MISSING', result: null, failure: null };
      }
      last.done = true;
    }
    let seq = 0;
    const retryValue = await this.scopeValue(run, claim.index);
    return {
      runId: claim.runId,
      atomName,
      idempotencyKey: `${claim.runId}/${atomName}/${claim.attempt}`,
      fencingToken: `${claim.runId}/${atomName}/${claim.epoch}.${claim.attempt}`,
      attempt: claim.attempt,
      execution: claim.execution,
      signal,
      retryValue,
      failure: claim.state === 'REVERTING' ? (claim.failure ?? undefined) : undefined,
      async sleep(ms: number): Promise<void> {
        if (!Number.isFinite(ms) || ms < 0)
          throw new ValidationError('STOKER_CONFIG_INVALID', `ctx.sleep needs a non-negative number of ms, got ${ms}`);
        const k = seq++;
        if (journal[k]) return;
        return park(new Suspension(k, { kind: 'sleep', ms }));
      },
      async waitForSignal(name: string): Promise<JsonValue> {
        const k = seq++;
        const e = journal[k];
        if (e) return e.value ?? null;
        const consumed = journal.filter((j) => j.kind === 'signal' && j.ref === name).length;
        const available = (await loadSignals()).filter((s) => s.name === name)[consumed];
        if (available) {
          journal.push({ seq: k, kind: 'signal', ref: name, done: true, value: available.payload });
          return available.payload;
        }
        return park(new Suspension(k, { kind: 'signal', name }));
      },
      async runChild(flow: string, args: Record<string, JsonValue>, options?: { version?: string }): Promise<JsonValue> {
        const k = seq++;
        const e = journal[k];
        if (e) {
          const v = (e.value ?? {}) as { status?: string; result?: JsonValue; failure?: FailureRecord | null };
          if (v.status === RunStatus.SUCCESS) return v.result ?? null;
          throw new ChildRunFailedError(e.ref ?? '?', v.status ?? 'UNKNOWN', v.failure ?? null);
        }
        const wait: WaitRequest = { kind: 'child', flow, args };
        if (options?.version !== undefined) wait.version = options.version;
        return park(new Suspension(k, wait));
      },
    };
  }

  /** The current value of the nearest retry controller around an atom (for-each item, attempt). */
  private async scopeValue(run: RunContext, index: number): Promise<JsonValue | undefined> {
    const spec = run.graph.atoms[index]!;
    let scope: number | null = spec.kind === 'retry' ? (run.graph.scopes[spec.scope]?.parent ?? null) : spec.scope;
    while (scope !== null) {
      const sc = run.graph.scopes[scope]!;
      if (sc.controller !== null) {
        const r = await this.inputs(run, { v: { from: 'atom', atom: sc.controller } });
        return r.values.v;
      }
      scope = sc.parent;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- completion (group commit)

  private enqueue(c: Completion): void {
    this.queue.push(c);
    if (this.flushing) return;
    // Group commit: while other atoms are still executing, wait one turn of the event loop
    // for those finishing in the same turn (no-op tasks at concurrency 16: 16 atoms per
    // commit instead of about 5). A lone completion (a linear flow) is sent at once.
    const others = this.inflight.size > this.queue.length;
    const ready = others ? new Promise<void>((resolve) => this.clock.defer(resolve)) : Promise.resolve();
    this.flushing = ready.then(() => this.flushLoop()).finally(() => (this.flushing = null));
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      let result: TransitionResult | null = null;
      // Keep trying while our claims can still be valid: dropping a completion would leave
      // its atom RUNNING under our (live) lease. Once the lease is gone, others take over.
      let ambiguous = false;
      for (let attempt = 1; result === null; attempt++) {
        try {
          result = await this.commit(batch);
        } catch (e) {
          ambiguous = true;
          this.emitError(e);
          if (!this.leaseValid() || (this.stopping && attempt >= 5)) break;
          await this.clock.sleep(Math.min(5000, 50 * 2 ** attempt));
        }
      }
      for (const c of batch) this.inflight.delete(`${c.claim.runId}/${c.claim.index}`);
      // A failed attempt may have committed (with claims of its own) before the error, or
      // the batch was given up and its atoms stay RUNNING under our id: either way, give
      // the id up so that the reapers requeue what it holds (simulation findings B1, B2).
      if (ambiguous || result === null)
        this.fenceSelf(result === null ? 'completions could not be recorded' : 'commit outcome was unknown');
      if (result) {
        this.stats.commits += 1;
        for (const f of result.fenced) {
          this.stats.fencedWrites += 1;
          this.log.warn({ runId: f.runId, atom: f.index, epoch: f.epoch }, 'fenced write: claim lost, result dropped');
          this.emit('fenced', f);
        }
        for (const r of result.finishedRuns) {
          this.runs.delete(r.runId);
          this.results.delete(r.runId);
          this.emit('run.finished', r);
          this.notifyFinished(r.runId);
        }
        this.stats.continuations += result.continuations.length;
        for (const c of result.continuations) {
          if (this.stopping) continue;
          this.stats.claimed += 1;
          this.launch(c);
        }
        if (result.madeReady > 0) {
          this.hub.wake();
          // other processes: one NOTIFY per commit batch, never inside the transaction
          this.store.wakeups?.notify().catch((e: unknown) => this.emitError(e));
        }
      }
      this.wake();
    }
  }

  private lockSet(run: RunContext): string[] {
    return run.parentRunId ? [run.id, run.parentRunId] : [run.id];
  }

  private async commit(batch: Completion[]): Promise<TransitionResult> {
    for (const c of batch) {
      // keep successful results for local continuation inputs
      if (c.outcome.kind === 'success') {
        let m = this.results.get(c.claim.runId);
        if (!m) this.results.set(c.claim.runId, (m = new Map()));
        m.set(c.claim.index, c.outcome.result);
      }
    }
    const fast = await this.tryFastSuccess(batch);
    if (fast) return fast;
    const fastBatch = (await this.tryFastBatch(batch)) ?? (await this.tryFastFinish(batch)) ?? (await this.tryFastPerRun(batch));
    if (!fastBatch) return this.commitGeneral(batch);
    if (fastBatch.rest.length === 0) return fastBatch.result;
    // some claims of the batch were lost meanwhile: the general path records why
    this.stats.commits += 1;
    return mergeResults(fastBatch.result, await this.commitGeneral(fastBatch.rest));
  }

  /** The general completion: one transaction that locks the batch's runs and applies the transition rules. */
  private async commitGeneral(batch: Completion[]): Promise<TransitionResult> {
    const byRun = new Map<string, Completion[]>();
    for (const c of batch) {
      const list = byRun.get(c.claim.runId);
      if (list) list.push(c);
      else byRun.set(c.claim.runId, [c]);
    }
    const contexts = await Promise.all([...byRun.keys()].map((id) => this.runContext(id)));
    const locks = [...new Set(contexts.flatMap((c) => this.lockSet(c)))];
    // a fenced engine records what it finished but takes nothing new under its old id
    const stopping = this.stopping || this.fencedOut;
    return this.store.runTransaction(locks, async (tx) => {
      const result = emptyResult();
      let free = stopping ? 0 : batch.length;
      for (const ctx of contexts) {
        const t = new RunTransition(tx, ctx, this.transitionDeps(), result, free);
        await t.applyAll(byRun.get(ctx.id)!);
        await t.flush();
        free = Math.max(0, batch.length - result.continuations.length);
      }
      if (result.events.length > 0) await tx.insertEvents(result.events);
      // slots this batch frees and no continuation took: claim for them in the same commit
      if (free > 0 && !stopping) {
        const more = await tx.claimMore(this.id, free);
        result.continuations.push(...more);
        result.claimedMore = more.length;
      }
      const first = batch[0]!.claim;
      this.faultPoint('inside-fenced-tx', { runId: first.runId, atom: first.index });
      return result;
    });
  }

  /**
   * A lone success in a run without deciders goes through the store's one-statement fast
   * path when it has one (PostgreSQL); null = use the general transaction.
   */
  private async tryFastSuccess(batch: Completion[]): Promise<TransitionResult | null> {
    const only = batch.length === 1 ? batch[0] : undefined;
    if (!only || !this.store.fast || only.outcome.kind !== 'success' || only.claim.state !== 'RUNNING') return null;
    const ctx = await this.runContext(only.claim.runId);
    // The final atom (a run of one atom, the last of a linear flow) ends its run: that is
    // tryFastFinish's case, or the general path's for a child run. This statement would
    // change nothing, at the cost of a round trip.
    if (ctx.hasDeciders || ctx.finalAtom === only.claim.index) return null;
    const successors = ctx.graph.atoms[only.claim.index]?.successors ?? [];
    const r = await this.store.fast
      .completeSuccess({
        runId: only.claim.runId,
        index: only.claim.index,
        epoch: only.claim.epoch,
        result: only.outcome.result,
        journal: only.outcome.journal,
        successors,
        claim: this.stopping || this.fencedOut ? null : (successors[0] ?? null),
        engineId: this.id,
      })
      // The statement may have committed (with a claim) although we got no answer: give the
      // id up after this batch; the general path then finds the fence moved or completes it.
      .catch((e: unknown) => {
        this.emitError(e);
        this.fenceSelf('fast completion outcome unknown');
        return { handled: false, claimed: null, madeReady: 0 };
      });
    if (!r.handled) return null;
    return { ...emptyResult(), continuations: r.claimed ? [r.claimed] : [], madeReady: r.madeReady };
  }

  /**
   * Several successes of one run without deciders go through the store's one-statement
   * batch path when it has one (PostgreSQL). null = use the general transaction for all;
   * otherwise `rest` holds the completions the statement did not write.
   */
  private async tryFastBatch(batch: Completion[]): Promise<{ result: TransitionResult; rest: Completion[] } | null> {
    const first = batch[0];
    if (!first || batch.length < 2 || !this.store.fast) return null;
    const runId = first.claim.runId;
    if (!batch.every((c) => c.claim.runId === runId && c.outcome.kind === 'success' && c.claim.state === 'RUNNING')) return null;
    const ctx = await this.runContext(runId);
    if (ctx.hasDeciders) return null;
    const stopping = this.stopping || this.fencedOut;
    const inBatch = new Set(batch.map((c) => c.claim.index));
    const successes = batch.map((c) => {
      const outcome = c.outcome as Extract<Outcome, { kind: 'success' }>;
      return {
        index: c.claim.index,
        epoch: c.claim.epoch,
        result: outcome.result,
        journal: outcome.journal,
        successors: ctx.graph.atoms[c.claim.index]?.successors ?? [],
      };
    });
    const claim = stopping
      ? []
      : [...new Set(successes.flatMap((s) => s.successors))].filter((i) => !inBatch.has(i)).slice(0, batch.length);
    let r: FastBatchResult;
    try {
      r = await this.store.fast.completeSuccesses({
        runId,
        successes,
        claim,
        claimMore: stopping ? 0 : batch.length - claim.length,
        engineId: this.id,
      });
    } catch (e) {
      // It may have committed (with claims) although we got no answer: as in tryFastSuccess.
      this.emitError(e);
      this.fenceSelf('fast completion outcome unknown');
      return null;
    }
    if (r.written.length === 0) return null;
    const written = new Set(r.written);
    const result: TransitionResult = {
      ...emptyResult(),
      continuations: r.continuations,
      madeReady: r.madeReady,
      claimedMore: r.claimedMore,
    };
    return { result, rest: batch.filter((c) => !written.has(c.claim.index)) };
  }

  /**
   * Successes that each finish their run (the run's last open atom; runs without deciders
   * and without a parent to wake, one completion per run) go through the store's
   * one-statement finish when it has one (PostgreSQL). The outputs are computed here, from
   * the results this engine holds; a run whose outputs need results it does not hold takes
   * the general path. null = use the general transaction for all.
   */
  private async tryFastFinish(batch: Completion[]): Promise<{ result: TransitionResult; rest: Completion[] } | null> {
    if (batch.length === 0 || !this.store.fast) return null;
    if (new Set(batch.map((c) => c.claim.runId)).size !== batch.length) return null;
    const finishes = [];
    for (const c of batch) {
      if (c.outcome.kind !== 'success' || c.claim.state !== 'RUNNING') return null;
      const ctx = await this.runContext(c.claim.runId);
      const spec = ctx.graph.atoms[c.claim.index];
      if (ctx.hasDeciders || ctx.parentRunId !== null || !spec || spec.successors.length > 0) return null;
      const results = new Map(this.results.get(c.claim.runId) ?? []);
      results.set(c.claim.index, c.outcome.result);
      const outputs: Record<string, JsonValue> = {};
      for (const [name, src] of Object.entries(ctx.graph.outputs)) {
        if (src.from === 'atom' && !results.has(src.atom)) return null;
        const v = resolveInput(src, ctx.graph, ctx.args, results);
        if (v !== undefined) outputs[name] = v;
      }
      finishes.push({
        runId: c.claim.runId,
        index: c.claim.index,
        epoch: c.claim.epoch,
        result: c.outcome.result,
        journal: c.outcome.journal,
        outputs,
      });
    }
    const stopping = this.stopping || this.fencedOut;
    let r: FastFinishResult;
    try {
      r = await this.store.fast.finishRuns({ finishes, claimMore: stopping ? 0 : batch.length, engineId: this.id });
    } catch (e) {
      this.emitError(e);
      this.fenceSelf('fast completion outcome unknown');
      return null;
    }
    if (r.finished.length === 0) return null;
    const done = new Set(r.finished.map((f) => `${f.runId}/${f.index}`));
    const result: TransitionResult = {
      ...emptyResult(),
      continuations: r.continuations,
      claimedMore: r.continuations.length,
      finishedRuns: r.finished.map((f) => ({ runId: f.runId, status: RunStatus.SUCCESS })),
    };
    return { result, rest: batch.filter((c) => !done.has(`${c.claim.runId}/${c.claim.index}`)) };
  }

  /**
   * A batch of several runs that no single fast statement takes (graphs of many runs in
   * flight): one fast statement per run, sent at once on separate connections (different
   * runs share no row, so they do not wait for each other, and the database flushes their
   * commits together). The runs each of them finish go in one finish statement. What no
   * statement wrote is returned in `rest` for the general transaction. null: nothing to
   * gain (one run, or a store without the statements).
   */
  private async tryFastPerRun(batch: Completion[]): Promise<{ result: TransitionResult; rest: Completion[] } | null> {
    if (!this.store.fast) return null;
    const byRun = new Map<string, Completion[]>();
    for (const c of batch) byRun.set(c.claim.runId, [...(byRun.get(c.claim.runId) ?? []), c]);
    if (byRun.size < 2) return null;
    // a lone sink success may finish its run: those go together through the finish statement
    const finishing: Completion[] = [];
    const groups: Completion[][] = [];
    for (const group of byRun.values()) {
      const only = group.length === 1 ? group[0]! : null;
      const ctx = only ? await this.runContext(only.claim.runId) : null;
      if (only && ctx && (ctx.graph.atoms.length === 1 || (ctx.graph.atoms[only.claim.index]?.successors.length ?? 1) === 0))
        finishing.push(only);
      else groups.push(group);
    }
    const unwritten = (input: Completion[]) => ({ result: emptyResult(), rest: input, wrote: false });
    const wrote = (input: Completion[], r: { result: TransitionResult; rest: Completion[] }) => ({
      ...r,
      wrote: r.rest.length < input.length,
    });
    const outcomes = await Promise.all([
      ...(finishing.length > 0 ? [this.tryFastFinish(finishing).then((r) => (r ? wrote(finishing, r) : unwritten(finishing)))] : []),
      ...groups.map((g) =>
        g.length === 1
          ? this.tryFastSuccess(g).then((r) => (r ? wrote(g, { result: r, rest: [] }) : unwritten(g)))
          : this.tryFastBatch(g).then((r) => (r ? wrote(g, r) : unwritten(g))),
      ),
    ]);
    const rest = outcomes.flatMap((o) => o.rest);
    if (rest.length === batch.length) return null;
    // each statement that wrote something was a commit of its own (the flush counts one)
    this.stats.commits += outcomes.filter((o) => o.wrote).length - 1;
    return { result: outcomes.map((o) => o.result).reduce(mergeResults, emptyResult()), rest };
  }

  private transitionDeps() {
    return {
      engineId: this.id,
      rng: this.rng,
      prepareChild: (flow: string, version: string | undefined, args: Record<string, JsonValue>, parent: { runId: string; atom: number }) =>
        this.prepareRun(flow, args, version, null, parent),
    };
  }
}

/** The results of two commits of one flush: `b`'s fields after `a`'s (fenced, events and children too). */
function mergeResults(a: TransitionResult, b: TransitionResult): TransitionResult {
  return {
    ...b,
    continuations: [...a.continuations, ...b.continuations],
    finishedRuns: [...a.finishedRuns, ...b.finishedRuns],
    fenced: [...a.fenced, ...b.fenced],
    startedChildren: [...a.startedChildren, ...b.startedChildren],
    events: [...a.events, ...b.events],
    madeReady: a.madeReady + b.madeReady,
    claimedMore: (a.claimedMore ?? 0) + (b.claimedMore ?? 0),
  };
}

/** Runs per `startRuns` call: one statement's worth of parameters, and a bounded transaction. */
const MAX_BULK_START = 10_000;

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')), { once: true });
  });
}
