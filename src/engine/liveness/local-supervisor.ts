/**
 * The local supervisor (docs/reliability.md R12, C12; EngineOptions.localSupervisor): on a
 * single-writer store on one host (SQLite), a process stopped while it holds the write lock
 * stalls every engine, and no lease can end that. An engine that has been unable to write
 * for longer than X = 2 × lease (its last renewal or registration is older than that by its
 * own monotonic clock) asks the store, with reads only, to SIGKILL this host's stopped
 * engines whose lease ran out more than X ago. It runs from the lease keeper's and the
 * reaper's timers, between write attempts: a blocked SQLite write holds this whole process
 * for up to busy_timeout.
 */
import type { LocalSupervisor } from '../../store/store.js';
import type { EngineCore } from '../engine-core.js';

export class LocalSupervision {
  private readonly store: LocalSupervisor | null;

  constructor(
    private readonly core: EngineCore,
    enabled: boolean,
  ) {
    this.store = enabled ? core.store.supervisor : null;
  }

  async check(): Promise<void> {
    const core = this.core;
    if (!this.store || !core.running || core.stopping) return;
    const staleMs = 2 * core.settings.leaseMs;
    const unableMs = core.clock.monotonicMs() - core.lastRenewMono;
    if (unableMs <= staleMs) return;
    try {
      const killed = await this.store.superviseLocalEngines({ selfId: core.id, staleMs });
      for (const k of killed) {
        core.stats.supervisorKills += 1;
        core.log.warn(
          { killedEngineId: k.engineId, pid: k.pid, leaseOverdueMs: k.overdueMs, unableToWriteMs: Math.round(unableMs) },
          `local supervisor: SIGKILLed engine ${k.engineId} (pid ${k.pid}): stopped with its lease over for ${k.overdueMs} ms while this engine could not write for ${Math.round(unableMs)} ms (a stopped process holding SQLite's write lock stalls every engine)`,
        );
        core.events.emit('supervisor.killed', k);
      }
    } catch (e) {
      core.emitError(e);
    }
  }
}
