/**
 * Turning what a task threw into stored data, and the internal signal a task raises to park
 * its atom (durable sleep, signal, child run).
 */
import type { JsonValue } from '../core/json.js';
import { isStokerError } from '../errors.js';
import type { FlowGraph } from '../flow/graph.js';
import type { FailureRecord } from '../flow/types.js';

const MAX_DEPTH = 5;

/** A task failure as JSON-safe data: `{type, message, stack, code, details, retryable, cause}`. */
export function toFailureRecord(error: unknown, depth = 0): FailureRecord {
  if (error instanceof Error) {
    const rec: FailureRecord = { type: error.name || 'Error', message: error.message };
    if (error.stack) rec.stack = error.stack.split('\n').slice(0, 20).join('\n');
    const extra = error as Error & { code?: unknown; details?: unknown; retryable?: unknown };
    if (isStokerError(error)) {
      rec.code = error.code;
      rec.details = error.details;
    } else {
      if (typeof extra.code === 'string') rec.code = extra.code;
      if (extra.details !== undefined) rec.details = safeJson(extra.details);
    }
    if (typeof extra.retryable === 'boolean') rec.retryable = extra.retryable;
    if (error.cause !== undefined && depth < MAX_DEPTH) rec.cause = toFailureRecord(error.cause, depth + 1);
    return rec;
  }
  return { type: 'NonError', message: typeof error === 'string' ? error : safeString(error) };
}

function safeJson(v: unknown): JsonValue {
  try {
    return JSON.parse(JSON.stringify(v)) as JsonValue;
  } catch {
    return safeString(v);
  }
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return '[unprintable]';
  }
}

/** What a parked atom waits for. */
export type WaitRequest =
  | { kind: 'sleep'; ms: number }
  | { kind: 'signal'; name: string }
  | {
      kind: 'child';
      flow: string;
      version?: string;
      args: Record<string, JsonValue>;
      /** a graph built at run time (src/flow/build-graph.ts) instead of a registered flow's */
      graph?: FlowGraph;
    };

/**
 * Thrown (internally) by `ctx.sleep`, `ctx.waitForSignal` and `ctx.runChild` to park the
 * atom. Tasks must let it propagate; the engine records the wait and releases the claim.
 */
export class Suspension extends Error {
  constructor(
    readonly seq: number,
    readonly wait: WaitRequest,
  ) {
    super(`atom parked (${wait.kind})`);
    this.name = 'Suspension';
  }
}

/** A failure raised when a child run did not succeed. */
export class ChildRunFailedError extends Error {
  constructor(
    readonly childRunId: string,
    readonly status: string,
    readonly failure: FailureRecord | null,
  ) {
    super(`child run ${childRunId} ended ${status}${failure ? `: ${failure.message}` : ''}`);
    this.name = 'ChildRunFailedError';
  }
}
