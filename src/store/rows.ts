/** Helpers shared by the adapters to turn database rows into the port's row types. */
import type { JsonValue } from '../core/json.js';
import type { FailureRecord } from '../flow/types.js';
import type {
  AtomRow,
  ClaimedAtom,
  EngineRow,
  EventInput,
  EventRow,
  JournalEntry,
  PruneOptions,
  PruneResult,
  RunRow,
  SignalRow,
} from './store.js';
import { ValidationError } from '../errors.js';
import { TERMINAL_RUN_STATUSES, type AtomState, type RunStatus } from './states.js';

type Raw = Record<string, unknown>;

/** Parses a JSON column that may arrive as text (SQLite, MySQL) or already parsed (PostgreSQL jsonb). */
export function jsonColumn<T = JsonValue>(v: unknown): T | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return JSON.parse(v) as T;
  if (Buffer.isBuffer(v)) return JSON.parse(v.toString('utf8')) as T;
  return v as T;
}

export function toJsonText(v: unknown): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}

export function dateColumn(v: unknown): Date {
  if (v instanceof Date) return v;
  if (typeof v === 'number') return new Date(v);
  if (typeof v === 'bigint') return new Date(Number(v));
  if (typeof v === 'string') return new Date(/^\d+$/.test(v) ? Number(v) : v);
  throw new TypeError(`not a date column: ${String(v)}`);
}

function nullableDate(v: unknown): Date | null {
  return v === null || v === undefined ? null : dateColumn(v);
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

export function runFromRow(r: Raw): RunRow {
  return {
    id: String(r.id),
    flow: String(r.flow),
    version: String(r.version),
    key: r.key === null || r.key === undefined ? null : String(r.key),
    status: r.status as RunStatus,
    args: jsonColumn(r.args) as RunRow['args'],
    result: jsonColumn(r.result),
    failure: jsonColumn<FailureRecord>(r.failure),
    parentRunId: r.parent_run_id === null || r.parent_run_id === undefined ? null : String(r.parent_run_id),
    parentAtom: r.parent_atom === null || r.parent_atom === undefined ? null : num(r.parent_atom),
    pendingAtoms: num(r.pending_atoms),
    revertPending: num(r.revert_pending),
    atomCount: num(r.atom_count),
    graphHash: String(r.graph_hash),
    createdAt: dateColumn(r.created_at),
    updatedAt: dateColumn(r.updated_at),
    finishedAt: nullableDate(r.finished_at),
  };
}

export function atomFromRow(r: Raw): AtomRow {
  return {
    runId: String(r.run_id),
    index: num(r.idx),
    name: String(r.name),
    state: r.state as AtomState,
    pending: num(r.pending),
    revertPending: num(r.revert_pending),
    skip: Boolean(num(r.skip)),
    revertRequested: Boolean(num(r.revert_requested)),
    epoch: num(r.epoch),
    claimedBy: r.claimed_by === null || r.claimed_by === undefined ? null : String(r.claimed_by),
    attempt: num(r.attempt),
    execution: num(r.execution),
    result: jsonColumn(r.result),
    failure: jsonColumn<FailureRecord>(r.failure),
    journal: jsonColumn<JournalEntry[]>(r.journal) ?? [],
    waitKind: r.wait_kind === null || r.wait_kind === undefined ? null : String(r.wait_kind),
    waitRef: r.wait_ref === null || r.wait_ref === undefined ? null : String(r.wait_ref),
    readyAt: nullableDate(r.ready_at),
    updatedAt: dateColumn(r.updated_at),
  };
}

export function claimFromRow(r: Raw, run?: RunRow): ClaimedAtom {
  // Every claim has the same fields in the same order, `run` included (undefined when the
  // claim did not read the run): one object shape keeps the engine's hot paths
  // monomorphic, where a second shape made V8 throw their optimized code away.
  return {
    runId: String(r.run_id),
    index: num(r.idx),
    state: r.state as ClaimedAtom['state'],
    epoch: num(r.epoch),
    attempt: num(r.attempt),
    execution: num(r.execution),
    journal: jsonColumn<JournalEntry[]>(r.journal) ?? [],
    failure: jsonColumn<FailureRecord>(r.failure),
    run,
  };
}

/**
 * What a requeue does with an atom whose holder is gone: back to READY (REVERTING: to
 * REVERT_READY) for another engine, unless its run has ended (cancelled, failed, reverted,
 * superseded while it ran): then nobody may start it again, and it becomes CANCELLED.
 * SQL for the new state and `ready_at`, given the atom's state column and an expression for
 * its run's status.
 */
export function requeueSql(state: string, runStatus: string, now: string): { state: string; readyAt: string } {
  const ended = `${runStatus} IN (${TERMINAL_RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`;
  return {
    state: `CASE WHEN ${ended} THEN 'CANCELLED' WHEN ${state} = 'REVERTING' THEN 'REVERT_READY' ELSE 'READY' END`,
    readyAt: `CASE WHEN ${ended} THEN NULL ELSE ${now} END`,
  };
}

/** The event of one requeued atom, by the state the requeue gave it ({@link requeueSql}). */
export function requeueEventKind(state: string): string {
  return state === 'CANCELLED' ? 'atom.cancelled' : 'atom.requeued';
}

/** The `atom.cancelled` events of a superseded run's open atoms (rows with `idx` and their `state` before). */
export function supersededAtomEvents(runId: string, open: readonly Raw[]): EventInput[] {
  return open.map((a) => ({ runId, atom: num(a.idx), kind: 'atom.cancelled', fromState: String(a.state), toState: 'CANCELLED' }));
}

export function eventFromRow(r: Raw): EventRow {
  return {
    id: num(r.id),
    runId: String(r.run_id),
    atom: r.atom === null || r.atom === undefined ? null : num(r.atom),
    kind: String(r.kind),
    fromState: (r.from_state as string | null) ?? null,
    toState: (r.to_state as string | null) ?? null,
    engineId: (r.engine_id as string | null) ?? null,
    epoch: r.epoch === null || r.epoch === undefined ? null : num(r.epoch),
    data: jsonColumn(r.data),
    at: dateColumn(r.at),
  };
}

export function signalFromRow(r: Raw): SignalRow {
  return { runId: String(r.run_id), name: String(r.name), payload: jsonColumn(r.payload), at: dateColumn(r.at) };
}

export function engineFromRow(r: Raw): EngineRow {
  return {
    id: String(r.id),
    host: String(r.host),
    pid: num(r.pid),
    version: String(r.version),
    state: r.state as EngineRow['state'],
    startedAt: dateColumn(r.started_at),
    heartbeatAt: dateColumn(r.heartbeat_at),
    leaseExpiresAt: dateColumn(r.lease_expires_at),
    leaseAgeMs: num(r.lease_age_ms),
    atomsHeld: num(r.atoms_held),
    remoteQueued: num(r.remote_queued ?? 0),
    remoteOldestMs: r.remote_oldest_ms === null || r.remote_oldest_ms === undefined ? null : num(r.remote_oldest_ms),
  };
}

/** Column name for each AtomPatch field (an allowlist: patches never name columns themselves). */
export const ATOM_PATCH_COLUMNS = {
  state: 'state',
  pending: 'pending',
  revertPending: 'revert_pending',
  skip: 'skip',
  revertRequested: 'revert_requested',
  attempt: 'attempt',
  execution: 'execution',
  result: 'result',
  failure: 'failure',
  journal: 'journal',
  waitKind: 'wait_kind',
  waitRef: 'wait_ref',
  claimedBy: 'claimed_by',
} as const;

/** Values of a patch as bound parameters: JSON fields as text, booleans as 0/1. */
export function patchValue(field: keyof typeof ATOM_PATCH_COLUMNS, v: unknown): unknown {
  switch (field) {
    case 'result':
    case 'failure':
    case 'journal':
      return toJsonText(v);
    case 'skip':
    case 'revertRequested':
      return v ? 1 : 0;
    default:
      return v;
  }
}

/** Validates {@link PruneOptions}: a clear error instead of deleting the wrong runs. */
export function checkPruneOptions(o: PruneOptions): { olderThanMs: number; limit: number } {
  if (!Number.isFinite(o.olderThanMs) || o.olderThanMs < 0) {
    throw new ValidationError(
      'STOKER_CONFIG_INVALID',
      `prune: olderThanMs must be a number of milliseconds, at least 0 (got ${String(o.olderThanMs)})`,
    );
  }
  if (!Number.isInteger(o.limit) || o.limit < 1 || o.limit > 100_000) {
    throw new ValidationError('STOKER_CONFIG_INVALID', `prune: limit must be an integer from 1 to 100000 (got ${String(o.limit)})`);
  }
  return { olderThanMs: Math.trunc(o.olderThanMs), limit: o.limit };
}

export function pruneResult(r: Raw): PruneResult {
  return { runs: num(r.runs), atoms: num(r.atoms), events: num(r.events), signals: num(r.signals), engines: num(r.engines) };
}
