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

/**
 * Where the engine's parts report events: the engine's own emitter. A port rather than
 * node:events' type, so that the published declarations need no @types/node.
 */
export interface EngineEventSink {
  emit<K extends keyof EngineEvents>(event: K, ...args: EngineEvents[K]): boolean;
}

/** A listener of one engine event. */
export type EngineListener<K extends keyof EngineEvents> = (...args: EngineEvents[K]) => void;
