/**
 * Retention (EngineOptions.retentionMs; off by default): every `retentionEveryMs`
 * (jittered ±20 %) the engine deletes runs that ended more than `retentionMs` ago, with
 * their atoms, events and signals, and the rows of long-dead engines, in batches of 1,000
 * runs (at most 100 batches a round). Several engines may prune at once: they take
 * different runs.
 */
import type { TimerHandle } from '../core/clock.js';
import { pruneInBatches } from '../store/prune.js';
import type { EngineCore } from './engine-core.js';

export class RetentionTimer {
  private timer: TimerHandle | null = null;

  constructor(
    private readonly core: EngineCore,
    private readonly retention: { olderThanMs: number; everyMs: number },
  ) {}

  start(): void {
    const core = this.core;
    const ms = this.retention.everyMs * (0.8 + core.rng.next() * 0.4);
    this.timer = core.clock.setTimer(ms, () => {
      void this.prune().finally(() => {
        if (core.running && !core.stopping) this.start();
      });
    });
  }

  stop(): void {
    this.timer?.cancel();
  }

  private async prune(): Promise<void> {
    const core = this.core;
    const olderThanMs = this.retention.olderThanMs;
    try {
      const total = await pruneInBatches(core.store, {
        olderThanMs,
        batch: 1000,
        maxBatches: 100,
        keepGoing: () => core.running && !core.stopping,
      });
      if (total.runs > 0 || total.engines > 0) core.log.info({ ...total, olderThanMs }, 'retention: pruned runs that ended long ago');
    } catch (e) {
      core.emitError(e);
    }
  }
}
