/**
 * The JSON views of stored rows: runs, atoms, events, engines and locks as every interface
 * shows them (the CLI's `-f json`, the API's bodies, live updates), with dates as ISO
 * strings. One module, so the shapes are the same everywhere; docs and tests pin them.
 *
 * @example
 * ```ts
 * const body = (await store.listRuns({ limit: 20 })).map(runJson);
 * ```
 */
import type { JsonValue } from '../core/json.js';
import type { AtomRow, EngineRow, EventRow, LockRow, RunRow } from '../store/store.js';

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** A run as the CLI prints it with `-f json`. */
export function runJson(run: RunRow): Record<string, JsonValue> {
  return {
    id: run.id,
    flow: run.flow,
    version: run.version,
    key: run.key,
    status: run.status,
    args: run.args,
    result: run.result,
    failure: run.failure as unknown as JsonValue,
    parentRunId: run.parentRunId,
    parentAtom: run.parentAtom,
    atomCount: run.atomCount,
    createdAt: iso(run.createdAt),
    updatedAt: iso(run.updatedAt),
    finishedAt: iso(run.finishedAt),
  };
}

export function atomJson(atom: AtomRow): Record<string, JsonValue> {
  return {
    index: atom.index,
    name: atom.name,
    state: atom.state,
    attempt: atom.attempt,
    execution: atom.execution,
    epoch: atom.epoch,
    claimedBy: atom.claimedBy,
    result: atom.result,
    failure: atom.failure as unknown as JsonValue,
    waitKind: atom.waitKind,
    waitRef: atom.waitRef,
    readyAt: iso(atom.readyAt),
    updatedAt: iso(atom.updatedAt),
  };
}

export function eventJson(event: EventRow, atomName?: string): Record<string, JsonValue> {
  return {
    id: event.id,
    at: iso(event.at),
    atom: event.atom,
    ...(atomName !== undefined ? { atomName } : {}),
    kind: event.kind,
    fromState: event.fromState,
    toState: event.toState,
    engineId: event.engineId,
    epoch: event.epoch,
    data: event.data,
  };
}

export function engineJson(engine: EngineRow): Record<string, JsonValue> {
  return {
    id: engine.id,
    host: engine.host,
    pid: engine.pid,
    version: engine.version,
    state: engine.state,
    startedAt: iso(engine.startedAt),
    heartbeatAt: iso(engine.heartbeatAt),
    leaseExpiresAt: iso(engine.leaseExpiresAt),
    leaseAgeMs: engine.leaseAgeMs,
    atomsHeld: engine.atomsHeld,
    remoteQueued: engine.remoteQueued,
    remoteOldestMs: engine.remoteOldestMs,
  };
}

/** `held`, `expired` (the lease ran out without a release) or `released`, by the database clock. */
export function lockState(lock: LockRow): 'held' | 'expired' | 'released' {
  return lock.held ? 'held' : lock.releasedAt !== null ? 'released' : 'expired';
}

export function lockJson(lock: LockRow): Record<string, JsonValue> {
  return {
    name: lock.name,
    holder: lock.holder,
    token: lock.token,
    state: lockState(lock),
    remainingMs: lock.remainingMs,
    acquiredAt: iso(lock.acquiredAt),
    expiresAt: iso(lock.expiresAt),
    releasedAt: iso(lock.releasedAt),
  };
}
