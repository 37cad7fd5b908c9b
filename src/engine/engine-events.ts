/** The engine's typed lifecycle events (also for metrics). */
import type { ClaimedAtom } from '../store/store.js';
import type { RunStatus } from '../store/states.js';

export interface EngineEvents {
  error: [Error];
  fenced: [ClaimedAtom];
  'run.finished': [{ runId: string; status: RunStatus }];
  /** the local supervisor SIGKILLed a stopped engine process of this host (see EngineOptions.localSupervisor) */
  'supervisor.killed': [{ engineId: string; pid: number; overdueMs: number }];
}
