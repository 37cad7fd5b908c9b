/**
 * The engine's lease (protocols 4 and 5): registers the engine (a row with a lease, and a
 * session lock where the store has one), renews the lease every `heartbeatMs` with one
 * statement per engine (not per atom), and fences the engine the moment it can no longer
 * be sure of its lease: the renewal was refused, the session lock was lost, or 90 % of the
 * lease passed without a renewal by its own monotonic clock, even while a renewal hangs
 * (docs/reliability.md R9). A fenced engine aborts its tasks, writes nothing more for
 * them, and registers again under a new id at the next heartbeat (R3). The heartbeat also
 * notices runs cancelled elsewhere whose atoms run here.
 */
import type { TimerHandle } from '../../core/clock.js';
import { RunStatus, isTerminalRun } from '../../store/states.js';
import type { EngineCore } from '../engine-core.js';
import type { LocalSupervision } from './local-supervisor.js';

export class LeaseKeeper {
  private heartbeatTimer: TimerHandle | null = null;
  /** fires when the local lease estimate runs out, even while a renewal hangs */
  private leaseTimer: TimerHandle | null = null;

  constructor(
    private readonly core: EngineCore,
    private readonly supervision: LocalSupervision,
  ) {}

  /**
   * Registers this engine under `id` (its current id by default) and arms the lease timer.
   * The engine takes the id only once its row is committed: until then nothing may name it,
   * since a claim under an id with no engine row has no lease behind it (seed 21909).
   */
  async register(id = this.core.id): Promise<void> {
    const core = this.core;
    const t0 = core.clock.monotonicMs();
    let lost = false;
    await core.store.registerEngine({
      id,
      ...core.identity,
      leaseMs: core.settings.leaseMs,
      onSessionLost: (cause) => {
        lost = true;
        if (core.id !== id) return;
        core.log.warn({ err: cause }, 'session lock lost: fencing myself');
        core.fenceSelf('session lock lost');
      },
    });
    if (core.id !== id) {
      core.id = id;
      core.log = core.baseLog.child({ engineId: id });
    }
    core.lastRenewMono = t0;
    // a lock lost while the registration was answered leaves the engine fenced
    core.fencedOut = lost;
    this.armLeaseTimer();
  }

  /** Starts renewing: the first heartbeat at once. */
  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.heartbeatTimer?.cancel();
    this.leaseTimer?.cancel();
  }

  private schedule(ms: number): void {
    const core = this.core;
    this.heartbeatTimer = core.clock.setTimer(ms, () => {
      const started = core.clock.monotonicMs();
      void this.heartbeat().finally(() => {
        // Renew every heartbeatMs from the start of the last renewal, not from its end: with
        // slow round trips (renewal + cancellation check) the lease must not lapse (C9).
        const next = Math.max(0, core.settings.heartbeatMs - (core.clock.monotonicMs() - started));
        // a draining engine renews too: a drain may outlast the lease (stop() ends the timer)
        if (core.running && !core.timersStopped) this.schedule(next);
      });
    });
  }

  /**
   * R9: fence ourselves once the local lease estimate runs out, even if the renewal never
   * answers (a partition holds it: C9). Otherwise only the heartbeat's own check does,
   * after its store call returns, and a hung call let tasks run on after a takeover.
   */
  private armLeaseTimer(): void {
    const core = this.core;
    this.leaseTimer?.cancel();
    if (core.timersStopped) return;
    const left = core.lastRenewMono + core.settings.leaseMs * 0.9 - core.clock.monotonicMs();
    this.leaseTimer = core.clock.setTimer(Math.max(0, left) + 1, () => {
      this.leaseTimer = null;
      if (!core.running || core.fencedOut) return;
      // A timer may fire a little early by the monotonic clock (Node computes due times
      // from a loop time cached at the start of an iteration, so more so under load): the
      // lease then still holds, and the timer must be armed again, not dropped. Dropped, it
      // left only the hung renewal to fence the engine, seconds late (C9, in CI).
      if (core.leaseValid()) this.armLeaseTimer();
      else core.fenceSelf('engine lease expired locally (renewal overdue)');
    });
  }

  private async heartbeat(): Promise<void> {
    const core = this.core;
    await this.supervision.check();
    if (core.fencedOut && !core.stopping) {
      const old = core.id;
      // the old id is dead for everyone: let the store forget it (and its session lock)
      await core.store.deregisterEngine(old).catch((e: unknown) => core.emitError(e));
      // between two writes that may each have waited busy_timeout for a stuck lock
      await this.supervision.check();
      try {
        await this.register(core.ids());
        core.log.info({ previousId: old }, 'registered again after fencing');
      } catch (e) {
        core.emitError(e);
      }
      return;
    }
    const t0 = core.clock.monotonicMs();
    try {
      const report = core.remoteWaits?.summary();
      const ok = await (report
        ? core.store.heartbeat(core.id, core.settings.leaseMs, report)
        : core.store.heartbeat(core.id, core.settings.leaseMs));
      if (ok) {
        core.lastRenewMono = t0;
        this.armLeaseTimer();
      } else {
        core.log.warn({}, 'engine row gone or marked dead: fencing myself');
        core.fenceSelf('engine lease lost');
      }
    } catch (e) {
      core.emitError(e);
    }
    if (!core.leaseValid()) core.fenceSelf('engine lease expired locally');
    try {
      await this.checkCancelled();
    } catch (e) {
      core.emitError(e);
    }
  }

  /**
   * Runs cancelled (or failed) elsewhere: abort their atoms running here, a cancelled run's
   * with the reason its cancel stored (the same message whichever engine runs the atom, and
   * whether this check or the cancelling client's own notice comes first).
   */
  private async checkCancelled(): Promise<void> {
    const core = this.core;
    const ids = core.inflight.runIds();
    if (ids.length === 0) return;
    const statuses = await core.store.getRunStatuses(ids);
    // A superseded run's running atoms may finish and record their effects (protocol 7): not aborted.
    const cancelled: string[] = [];
    for (const [id, status] of statuses) {
      if (status === RunStatus.CANCELLED) cancelled.push(id);
      else if (isTerminalRun(status) && status !== RunStatus.SUPERSEDED) core.inflight.abortRun(id, `run ${status}`);
    }
    // Only a cancel has a reason to read: the next renewal waits for this check, so the
    // common ends (a run finished elsewhere after a takeover) cost it no second round trip.
    if (cancelled.length === 0) return;
    for (const run of await core.store.getRuns(cancelled)) core.inflight.abortRun(run.id, run.failure?.message ?? `run ${run.status}`);
  }
}
