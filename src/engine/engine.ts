/**
 * The engine: claims ready atoms, executes them, and records each outcome with a fenced
 * write (protocols 1–9 of ARCHITECTURE.md). It keeps nothing that matters in memory: any
 * engine can continue any other engine's work from the store.
 *
 * This file is the composition and the lifecycle; each job is a part of its own, sharing
 * one {@link EngineCore}:
 * - {@link ClaimLoop} (claim-loop.ts): claims ready atoms for the free slots;
 * - {@link Executor} (executor.ts, task-context.ts, step-resolver.ts): runs an atom's code
 *   with its inputs, context, durable waits, timeout and abort signal;
 * - {@link Committer} (committer.ts, fast-commits.ts, transitions.ts): records outcomes in
 *   groups, through the store's fast paths where it has them;
 * - liveness/: {@link LeaseKeeper} (registration, heartbeat, self-fencing), {@link Reaper},
 *   {@link PeerWatch}, {@link LocalSupervision};
 * - {@link RetentionTimer} (retention.ts);
 * - {@link RunClient} (run-client.ts): starting, cancelling, signalling and waiting for
 *   runs, which needs no engine at all; the engine's own methods for these delegate to it.
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
import { systemClock, systemRng, type Clock, type Rng } from '../core/clock.js';
import { systemHostProcess, type HostProcess, type StopSignal } from '../core/host-process.js';
import { randomId, type IdGenerator } from '../core/ids.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { ValidationError, isStokerError } from '../errors.js';
import type { FlowGraph } from '../flow/graph.js';
import type { StepTypeRegistry } from '../flow/step-type.js';
import type { ClaimedAtom, RunRow, StartResult, Store } from '../store/store.js';
import { ClaimLoop } from './claim-loop.js';
import { Committer } from './committer.js';
import { EngineCore, type EngineSettings, type EngineStats, type FaultPoint } from './engine-core.js';
import type { EngineEvents, EngineListener } from './engine-events.js';
import { Executor } from './executor.js';
import { toFailureRecord } from './failure.js';
import { InFlight } from './in-flight.js';
import { LeaseKeeper } from './liveness/lease-keeper.js';
import { LocalSupervision } from './liveness/local-supervisor.js';
import { PeerWatch } from './liveness/peer-watch.js';
import { Reaper } from './liveness/reaper.js';
import { RetentionTimer } from './retention.js';
import { RunCache, type FlowLookup } from './run-cache.js';
import { RUN_LIMITS, RunClient, type StartRunOptions } from './run-client.js';
import { DefaultStepResolver, type StepResolver } from './step-resolver.js';
import type { Outcome } from './transitions.js';
import { RemoteWaits, type RemoteExecutor } from './remote-tasks.js';
import { WakeHub, type WakeRelay } from './wake-hub.js';

export type { EngineEvents, EngineListener } from './engine-events.js';
export type { FlowLookup } from './run-cache.js';
export type { StartRunOptions } from './run-client.js';

export interface EngineOptions {
  store: Store;
  /** registered flows: the code of runs started from a flow (omit for an engine that runs only step types) */
  flows?: FlowLookup;
  /** step types: the code of atoms of graphs built at run time (src/flow/build-graph.ts) */
  steps?: StepTypeRegistry;
  /** how atoms find their code (default: `steps` for step atoms, the run's flow for the others) */
  resolver?: StepResolver;
  /**
   * atoms executed at once (default 64: a slot is a pending promise, not a thread; most
   * atoms wait on I/O, and a stack's resource steps each wait on a few database round trips:
   * docs/orchestration.md, "Performance"). Lower it for CPU-bound tasks or rate-limited services.
   */
  concurrency?: number;
  /**
   * Remote atoms (docs/amqp.md, "Performance") out with workers at once, on top of
   * `concurrency` (default 256): once an atom is handed to a worker it holds no local slot,
   * since the engine only waits for its reply.
   */
  remoteConcurrency?: number;
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
   * Watch a peer (default true). The engine processes form a ring in id order and one
   * engine of each watches the next process's engine: on PostgreSQL and MySQL it waits, on
   * one connection of its own, for that engine's session lock, which the database hands
   * over the moment the peer's session ends; on SQLite it looks at the peer's pid every
   * 20 ms. Then it sweeps at once. A `kill -9` is taken over in milliseconds instead of at
   * the next look of a reaper; the reapers stay the safety net. `false` leaves detection to
   * the reapers alone.
   */
  watchPeers?: boolean;
  /**
   * The local supervisor (docs/reliability.md R12, C12; default true). Acts only where the
   * store has one (`capabilities.localSupervisor`: SQLite): when this engine has been
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
   * Retention: when set, this engine deletes runs that ended more than this long ago (ms,
   * database clock), with their atoms, events and signals, plus engine rows whose lease ran
   * out that long ago (`Store.pruneRuns`), every `retentionEveryMs`, in batches of 1,000
   * runs. Off by default: nothing is deleted unless asked. Several engines may prune at
   * once (they take different runs).
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
  /**
   * RabbitMQ (docs/amqp.md), from `openAmqp`: announcements of claimable work reach the
   * idle engines of other processes at once, on every database (MySQL has no other push).
   * Hints only: the poll stays the safety net. The caller closes it after stopping the engine.
   */
  amqp?: { readonly wakeups: WakeRelay; readonly remote?: RemoteExecutor | null };
  /**
   * Task names executed by remote workers although their definition is not marked `remote`
   * (docs/amqp.md, "Remote tasks"). Needs `amqp` opened with a signing key; without it every
   * task runs in the engine.
   */
  remoteTasks?: readonly string[];
  host?: string;
  pid?: number;
  /** the process {@link Engine.run} watches for stop signals and keeps alive (default: this Node process) */
  hostProcess?: HostProcess;
  version?: string;
  /**
   * Largest task result (and signal payload) this engine accepts, in bytes (default 256 KiB):
   * a bigger result fails its task with `STOKER_INPUT_TOO_LARGE`. Every value is stored in a
   * row and read back with its run, so send references to big data rather than the data.
   */
  maxResultBytes?: number;
  /** Largest run arguments accepted, in bytes (default 1 MiB). */
  maxArgsBytes?: number;
  /**
   * Test hook at named points (docs/reliability.md, the simulation), a no-op in
   * production: `after-claim-commit`, `before-execute`, `after-side-effect-before-result`,
   * `inside-fenced-tx` (in the completion transaction, before commit), `before-release`
   * (graceful stop). Chaos tests use it to SIGKILL or SIGSTOP the process exactly there.
   * On MySQL/MariaDB a claim's tasks start before its commit returns, so they may already
   * be running at `after-claim-commit`.
   */
  faultPoint?: FaultPoint;
}

/**
 * Defaults. The lease is 10 s (it was 30 s): a frozen engine's atoms move on after about that
 * long, and the price is one renewal statement per engine every T/3 (3.3 s), whatever the
 * number of atoms; a database that stalls longer than ~9 s makes an engine fence itself and
 * its atoms run again elsewhere, every write fenced (docs/reliability.md, Defaults and trade-offs).
 */
const DEFAULTS = { concurrency: 64, remoteConcurrency: 256, pollMs: 1000, leaseMs: 10_000, maxBatch: 128 };

export class Engine {
  /** starts, cancels, signals and waits for runs (what the engine's own methods for these use) */
  readonly client: RunClient;
  /** counters for metrics and tests */
  readonly stats: EngineStats = {
    claimed: 0,
    executed: 0,
    fencedWrites: 0,
    commits: 0,
    claimCommits: 0,
    claims: 0,
    emptyClaims: 0,
    wakeups: 0,
    continuations: 0,
    supervisorKills: 0,
  };
  /** the engine's events (on/once/off below); private so that its node:events type stays out of the published declarations */
  private readonly emitter = new EventEmitter();
  private readonly core: EngineCore;
  private readonly executor: Executor;
  private readonly committer: Committer;
  private readonly claims: ClaimLoop;
  private readonly lease: LeaseKeeper;
  private readonly reaper: Reaper;
  private readonly peers: PeerWatch | null;
  private readonly retention: RetentionTimer | null;
  private unsubscribe: (() => void)[] = [];
  private unlisten: (() => Promise<void>) | null = null;
  private readonly amqp: { readonly wakeups: WakeRelay; readonly remote?: RemoteExecutor | null } | null;
  private readonly hostProcess: HostProcess;
  /** resolves when the current start has been stopped (what run() waits for) */
  private stopped: Promise<void> = Promise.resolve();
  private markStopped: () => void = () => undefined;

  constructor(options: EngineOptions) {
    const settings = engineSettings(options);
    this.hostProcess = options.hostProcess ?? systemHostProcess;
    const clock = options.clock ?? systemClock;
    const rng = options.rng ?? systemRng;
    const ids = options.ids ?? randomId;
    const hub = options.wakeHub ?? new WakeHub();
    const flows = options.flows ?? null;
    this.amqp = options.amqp ?? null;
    if ((options.remoteTasks?.length ?? 0) > 0 && !this.amqp?.remote) {
      throw new ValidationError(
        'STOKER_CONFIG_INVALID',
        'remoteTasks needs RabbitMQ with a signing key (the amqp option opened with a key: --amqp and --amqp-key)',
      );
    }
    const checkMs = (name: string, v: number | undefined, min: number): void => {
      if (v !== undefined && (!Number.isFinite(v) || v < min)) {
        throw new ValidationError('STOKER_CONFIG_INVALID', `${name} must be a number of milliseconds, at least ${min}; got ${String(v)}`);
      }
    };
    checkMs('retentionMs', options.retentionMs, 0);
    checkMs('retentionEveryMs', options.retentionEveryMs, 1000);
    this.core = new EngineCore(
      options.store,
      clock,
      rng,
      ids,
      settings,
      this.stats,
      hub,
      new InFlight(),
      new RunCache(options.store, flows),
      options.resolver ?? new DefaultStepResolver(options.steps ?? null),
      options.faultPoint ?? (() => {}),
      { host: options.host ?? hostname(), pid: options.pid ?? process.pid, version: options.version ?? '0.1.0' },
      options.logger ?? silentLogger,
      this.emitter,
      options.engineId ?? ids(),
    );
    this.core.remote = options.amqp?.remote ?? null;
    this.core.remoteWaits = this.core.remote ? new RemoteWaits(this.core) : null;
    this.client = new RunClient({
      store: options.store,
      ...(flows ? { flows } : {}),
      wakeHub: hub,
      clock,
      rng,
      ids,
      maxArgsBytes: settings.maxArgsBytes,
      maxPayloadBytes: settings.maxResultBytes,
      actor: () => this.core.id,
      hostProcess: this.hostProcess,
    });
    const supervision = new LocalSupervision(this.core, options.localSupervisor ?? true);
    this.executor = new Executor(this.core, (wait, parent) => this.client.prepareChild(wait, parent));
    this.committer = new Committer(this.core, (claim) => this.launch(claim));
    this.claims = new ClaimLoop(this.core, (claim) => this.launch(claim));
    this.lease = new LeaseKeeper(this.core, supervision);
    this.reaper = new Reaper(this.core, supervision);
    this.peers = (options.watchPeers ?? true) ? new PeerWatch(this.core, this.reaper) : null;
    this.retention =
      options.retentionMs === undefined
        ? null
        : new RetentionTimer(this.core, { olderThanMs: options.retentionMs, everyMs: options.retentionEveryMs ?? 600_000 });
    // an unhandled 'error' event would crash the host process: default to logging
    this.on('error', (e) => this.core.log.error({ err: e }, 'engine error'));
  }

  /**
   * Adds a listener of an engine event (`error`, `fenced`, `run.finished`,
   * `supervisor.killed`; see EngineEvents). Errors of background work are logged by default.
   *
   * @example
   * ```ts
   * engine.on('run.finished', ({ runId, status }) => metrics.count(status));
   * ```
   */
  on<K extends keyof EngineEvents>(event: K, listener: EngineListener<K>): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Adds a listener called at the next `event` only. */
  once<K extends keyof EngineEvents>(event: K, listener: EngineListener<K>): this {
    this.emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener added by {@link Engine.on} or {@link Engine.once}. */
  off<K extends keyof EngineEvents>(event: K, listener: EngineListener<K>): this {
    this.emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** this engine's current id: a new one after it fenced itself and registered again */
  get id(): string {
    return this.core.id;
  }

  // ---------------------------------------------------------------- the client API (delegated)

  /** Starts a run of a registered flow (protocol 1). Idempotent by `key`. See {@link RunClient.startRun}. */
  startRun(flow: string, args: JsonObject = {}, options: StartRunOptions = {}): Promise<StartResult> {
    return this.client.startRun(flow, args, options);
  }

  /** Starts a run of a graph built at run time. See {@link RunClient.startGraph}. */
  startGraph(graph: FlowGraph, args: JsonObject = {}, options: Omit<StartRunOptions, 'version'> = {}): Promise<StartResult> {
    return this.client.startGraph(graph, args, options);
  }

  /** Starts many keyless runs of one flow at once, all or none. See {@link RunClient.startRuns}. */
  startRuns(flow: string, argsList: readonly JsonObject[], options: { version?: string } = {}): Promise<RunRow[]> {
    return this.client.startRuns(flow, argsList, options);
  }

  /** Cancels a run: no new atoms start; in-flight ones see `ctx.signal` aborted. Child runs are cancelled too. */
  cancel(runId: string, reason = 'cancelled by request'): Promise<RunRow> {
    return this.client.cancel(runId, reason);
  }

  /** Sends a named signal with a JSON payload to a run (stored; wakes atoms waiting for it). */
  signal(runId: string, name: string, payload: JsonValue = null): Promise<number> {
    return this.client.signal(runId, name, payload);
  }

  /** Resolves when the run has reached a terminal status. See {@link RunClient.waitForRun}. */
  waitForRun(runId: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<RunRow> {
    return this.client.waitForRun(runId, options);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Registers the engine and starts claiming. */
  async start(): Promise<void> {
    const core = this.core;
    if (core.running) return;
    core.running = true;
    core.stopping = false;
    core.timersStopped = false;
    try {
      await this.lease.register();
    } catch (e) {
      core.running = false;
      throw e;
    }
    this.stopped = new Promise<void>((resolve) => (this.markStopped = resolve));
    this.unsubscribe = [
      core.hub.subscribe((hint) => core.wake(hint)),
      core.hub.onRunCancelled((runId, reason) => core.inflight.abortRun(runId, reason)),
    ];
    if (this.amqp) this.unsubscribe.push(core.hub.attach(this.amqp.wakeups));
    if (core.store.wakeups) {
      try {
        this.unlisten = await core.store.wakeups.subscribe(() => {
          core.stats.wakeups += 1;
          core.wake();
        });
      } catch (e) {
        // polling still finds the work; only latency suffers
        core.emitError(e);
      }
    }
    this.lease.start();
    this.reaper.start();
    this.retention?.start();
    this.peers?.start();
    this.claims.start();
    core.log.info({ concurrency: core.settings.concurrency }, 'engine started');
  }

  /**
   * Stops claiming. With `drain` (default) in-flight atoms finish and are recorded, up to
   * `timeoutMs`; what is still running then is aborted and handed back at once (no lease wait).
   */
  async stop(options: { drain?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const core = this.core;
    if (!core.running) return;
    core.stopping = true;
    await core.store.setEngineState(core.id, 'draining').catch((e) => core.emitError(e));
    await this.claims.stopped();
    const drainUntil = core.clock.monotonicMs() + (options.drain === false ? 0 : (options.timeoutMs ?? 30_000));
    while (core.inflight.size > 0 && core.clock.monotonicMs() < drainUntil) await core.clock.sleep(5);
    core.inflight.abortAll('STOKER_ENGINE_STOPPED', 'engine stopping');
    await this.committer.idle;
    core.faultPoint('before-release', { runId: '', atom: -1 });
    // handed back before the rest stops (the peer watch's end can take a round trip or
    // more): what it held is claimable by the others at once
    await core.store.requeueEngine(core.id).catch((e) => core.emitError(e));
    // a store wake-up its starts (child runs) left waiting goes out before the store closes
    await this.client.flush();
    core.timersStopped = true;
    this.lease.stop();
    core.remoteWaits?.stop();
    core.dueWakeups.stop();
    this.reaper.stop();
    this.retention?.stop();
    await this.peers?.stop();
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    await this.unlisten?.().catch((e: unknown) => core.emitError(e));
    this.unlisten = null;
    await core.store.deregisterEngine(core.id).catch((e) => core.emitError(e));
    core.running = false;
    core.log.info({}, 'engine stopped');
    this.markStopped();
  }

  /**
   * Runs the engine as a service: starts it (unless started) and resolves once it has
   * stopped, keeping the Node process alive meanwhile (the engine's own timers do not). On
   * SIGTERM or SIGINT it stops as `stoker engine` does: in-flight atoms drain for up to
   * `drainMs` (default 30 s), the rest is handed back, the engine's row is removed; a second
   * signal exits the process at once (128 + the signal's number). `signals: false` leaves
   * the signals to the caller: it then resolves after `stop()`.
   *
   * @example
   * ```ts
   * const engine = new Engine({ store, flows });
   * await engine.run(); // until SIGTERM / SIGINT (or engine.stop() elsewhere)
   * await store.close();
   * ```
   */
  async run(options: { signals?: boolean; drainMs?: number } = {}): Promise<void> {
    const host = this.hostProcess;
    const release = host.keepAlive();
    const stopping: { done: Promise<void> | null } = { done: null };
    const off =
      options.signals === false
        ? () => undefined
        : host.onStopSignal((signal: StopSignal, nth: number) => {
            if (nth > 1) {
              this.core.log.warn({ signal }, 'second stop signal: exiting at once');
              host.exitForSignal(signal);
            }
            this.core.log.info({ signal }, 'stop signal: draining in-flight atoms');
            stopping.done = this.stop({ timeoutMs: options.drainMs ?? 30_000 }).catch((e: unknown) => this.core.emitError(e));
          });
    try {
      await this.start();
      await this.stopped;
      await stopping.done;
    } finally {
      off();
      release();
    }
  }

  /** Executes a claimed atom and queues its outcome for the committer. */
  private launch(claim: ClaimedAtom): void {
    const core = this.core;
    const { abort } = core.inflight.add(claim);
    const finish = (outcome: Outcome): void => {
      // Stopped or fenced engines write nothing for the atom: it is handed back (requeued)
      // or taken over by another engine with a new epoch.
      const reason: unknown = abort.reason;
      if (abort.aborted && isStokerError(reason) && (reason.code === 'STOKER_ENGINE_STOPPED' || reason.code === 'STOKER_ENGINE_FENCED')) {
        core.inflight.delete(claim.runId, claim.index);
        core.slotFreed();
        return;
      }
      this.committer.enqueue({ claim, outcome });
    };
    void this.executor
      .execute(claim, abort)
      .then(finish, (e) => finish({ kind: 'failure', failure: toFailureRecord(e), journal: claim.journal }));
  }
}

function engineSettings(options: EngineOptions): EngineSettings {
  const concurrency = options.concurrency ?? DEFAULTS.concurrency;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new ValidationError(
      'STOKER_CONFIG_INVALID',
      `concurrency must be an integer from 1 to 10000, got ${String(options.concurrency)}`,
    );
  }
  const remoteConcurrency = options.remoteConcurrency ?? DEFAULTS.remoteConcurrency;
  if (!Number.isInteger(remoteConcurrency) || remoteConcurrency < 0 || remoteConcurrency > 100_000) {
    throw new ValidationError(
      'STOKER_CONFIG_INVALID',
      `remoteConcurrency must be an integer from 0 to 100000, got ${String(options.remoteConcurrency)}`,
    );
  }
  const leaseMs = options.leaseMs ?? DEFAULTS.leaseMs;
  return {
    concurrency,
    remoteConcurrency,
    pollMs: options.pollMs ?? DEFAULTS.pollMs,
    leaseMs,
    heartbeatMs: options.heartbeatMs ?? Math.max(10, Math.floor(leaseMs / 3)),
    reapMs: options.reapMs ?? 500,
    maxBatch: options.maxBatch ?? DEFAULTS.maxBatch,
    maxResultBytes: byteLimit('maxResultBytes', options.maxResultBytes ?? RUN_LIMITS.maxPayloadBytes),
    maxArgsBytes: byteLimit('maxArgsBytes', options.maxArgsBytes ?? RUN_LIMITS.maxArgsBytes),
    remoteTasks: new Set(options.remoteTasks ?? []),
  };
}

/** Largest accepted size limit: MariaDB's default max_allowed_packet is 16 MiB, MySQL's 64 MiB. */
export const MAX_BYTE_LIMIT = 64 * 1024 * 1024;

function byteLimit(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1024 || value > MAX_BYTE_LIMIT) {
    throw new ValidationError(
      'STOKER_CONFIG_INVALID',
      `${name} must be a whole number of bytes from 1024 to ${MAX_BYTE_LIMIT}, got ${String(value)}`,
    );
  }
  return value;
}
