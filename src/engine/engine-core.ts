/**
 * The state an engine's parts share, in one place: the store and the injected clock, RNG
 * and ids; the resolved settings; the atoms in flight and the run cache; and the few flags
 * that every part must agree on (the engine's current id, whether it is stopping, whether
 * it fenced itself). Each part (claim loop, executor, committer, lease keeper, reaper, peer
 * watch, local supervisor, retention) is given this core and owns one job; only the lease
 * keeper changes the id and the fencing flag, only the engine's lifecycle the others.
 */
import { DueWakeups } from './due-wakeups.js';
import type { RemoteExecutor, RemoteWaits } from './remote-tasks.js';
import type { Clock, Rng } from '../core/clock.js';
import type { IdGenerator } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Store } from '../store/store.js';
import type { EngineEventSink } from './engine-events.js';
import type { InFlight } from './in-flight.js';
import type { RunCache } from './run-cache.js';
import type { StepResolver } from './step-resolver.js';
import type { WakeHint, WakeHub } from './wake-hub.js';

/** The engine's options after defaults (see EngineOptions). */
export interface EngineSettings {
  concurrency: number;
  /** remote atoms out with workers at once, on top of `concurrency` (docs/amqp.md, "Performance") */
  remoteConcurrency: number;
  pollMs: number;
  leaseMs: number;
  heartbeatMs: number;
  reapMs: number;
  maxBatch: number;
  maxResultBytes: number;
  maxArgsBytes: number;
  /** task names executed by remote workers although not marked `remote` (docs/amqp.md) */
  remoteTasks: ReadonlySet<string>;
}

/** Counters for metrics and tests. */
export interface EngineStats {
  claimed: number;
  executed: number;
  fencedWrites: number;
  commits: number;
  claimCommits: number;
  /** claim statements the claim loop sent, of which `emptyClaims` claimed nothing */
  claims: number;
  emptyClaims: number;
  /** wake-ups heard from the store (PostgreSQL's NOTIFY, the SQLite wake file, MariaDB's listener), this engine's own included */
  wakeups: number;
  continuations: number;
  supervisorKills: number;
}

/** Named points where chaos tests kill or stop the process (a no-op in production). */
export type FaultPoint = (name: string, info: { runId: string; atom: number }) => void;

export class EngineCore {
  /** this engine's current id: a new one after it fenced itself and registered again */
  id: string;
  log: Logger;
  /** started and not yet stopped */
  running = false;
  /** draining: claims nothing new, finishes what it holds */
  stopping = false;
  /** set by stop() once draining is over: no timer is armed again */
  timersStopped = false;
  /** the lease or the session lock was lost: nothing more is written under this id */
  fencedOut = false;
  /** monotonic time of the last successful renewal (or registration) */
  lastRenewMono = 0;
  /** wakes the claim loop (set by the claim loop) */
  wake: (hint?: WakeHint) => void = () => undefined;
  /**
   * A slot was freed (an outcome committed, a task given up): wakes the claim loop only if
   * its last claim may have left ready work behind (set by the claim loop).
   */
  slotFreed: () => void = () => undefined;
  /** where remote tasks go (docs/amqp.md); null: every task runs here, `remote` or not */
  remote: RemoteExecutor | null = null;
  /** announces atoms parked until a due time within the poll interval, when due (protocol 6) */
  readonly dueWakeups: DueWakeups;
  /** remote calls waiting for a worker: events after a threshold, and the heartbeat's report (docs/amqp.md) */
  remoteWaits: RemoteWaits | null = null;

  constructor(
    readonly store: Store,
    readonly clock: Clock,
    readonly rng: Rng,
    readonly ids: IdGenerator,
    readonly settings: EngineSettings,
    readonly stats: EngineStats,
    readonly hub: WakeHub,
    readonly inflight: InFlight,
    readonly runs: RunCache,
    readonly resolver: StepResolver,
    readonly faultPoint: FaultPoint,
    readonly identity: { host: string; pid: number; version: string },
    readonly baseLog: Logger,
    readonly events: EngineEventSink,
    id: string,
  ) {
    this.id = id;
    this.log = baseLog.child({ engineId: id });
    this.dueWakeups = new DueWakeups(clock, () => {
      if (!this.running || this.stopping) return;
      hub.announce();
      store.wakeups?.notify().catch((e: unknown) => this.emitError(e));
    });
  }

  /** Self-fencing (docs/reliability.md R9): without a renewal for most of the lease, start no work. */
  leaseValid(): boolean {
    if (this.fencedOut) return false;
    return this.clock.monotonicMs() - this.lastRenewMono < this.settings.leaseMs * 0.9;
  }

  /**
   * Self-fencing (docs/reliability.md R9, R14): others may now take our atoms, so abort
   * them and write nothing more for them; the next heartbeat registers this engine again
   * under a new id (R3).
   */
  fenceSelf(reason: string): void {
    this.fencedOut = true;
    this.inflight.abortAll('STOKER_ENGINE_FENCED', reason);
    this.wake();
  }

  /** Background work never throws into the void: errors become `error` events (logged by default). */
  emitError(e: unknown): void {
    this.events.emit('error', e instanceof Error ? e : new Error(String(e)));
  }

  /** Sleeps `ms` on the injected clock, or until `signal` aborts. */
  pause(signal: AbortSignal, ms: number): Promise<void> {
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
}
