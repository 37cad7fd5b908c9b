/**
 * The reaper (protocol 4, the safety net): every `reapMs` (jittered ±20 %) one sweep
 * requeues the atoms of dead engines: lease run out, row gone or marked dead, session lock
 * free (PostgreSQL, MySQL), pid gone (SQLite). The peer watch calls the same sweep the
 * moment it sees a watched engine go; the reaper covers what the ring misses (several
 * engines dead at once, one that joined since the ring was last looked at) and frozen or
 * cut-off engines, found by their lease.
 */
import type { TimerHandle } from '../../core/clock.js';
import type { EngineCore } from '../engine-core.js';
import type { LocalSupervision } from './local-supervisor.js';

export class Reaper {
  private timer: TimerHandle | null = null;

  constructor(
    private readonly core: EngineCore,
    private readonly supervision: LocalSupervision,
  ) {}

  start(): void {
    const core = this.core;
    const ms = core.settings.reapMs * (0.8 + core.rng.next() * 0.4);
    this.timer = core.clock.setTimer(ms, () => {
      void this.sweep().finally(() => {
        if (core.running && !core.stopping) this.start();
      });
    });
  }

  stop(): void {
    this.timer?.cancel();
  }

  /** One sweep: requeues the atoms of dead engines and wakes this process's and the others' engines. */
  async sweep(): Promise<void> {
    const core = this.core;
    await this.supervision.check();
    if (core.fencedOut) return;
    try {
      // A crashed engine's session lock is free at once; check it on every look (docs/reliability.md R11).
      const requeued = await core.store.requeueExpired({ liveCheckAfterMs: 0 });
      if (requeued.length > 0) {
        core.log.info({ count: requeued.length, engines: [...new Set(requeued.map((r) => r.engineId))] }, 'requeued atoms of dead engines');
        core.hub.announce();
        await core.store.wakeups?.notify();
      }
    } catch (e) {
      core.emitError(e);
    }
  }
}
