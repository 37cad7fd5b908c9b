/**
 * Turning what a task threw into stored data, and the internal signal a task raises to park
 * its atom (durable sleep, signal, child run).
 */
import { RemoteTaskFailure } from './remote-tasks.js';
import type { JsonValue } from '../core/json.js';
import { storableText } from '../core/canonical-json.js';
import { isStokerError } from '../errors.js';
import type { FlowGraph } from '../flow/graph.js';
import type { FailureRecord } from '../flow/types.js';

const MAX_DEPTH = 5;
/** inner errors of an AggregateError kept in a failure record */
const MAX_INNER_ERRORS = 20;

/**
 * A task failure as JSON-safe data: `{type, message, stack, code, details, retryable,
 * cause, errors}`. Nothing is lost to `[object Object]`: a thrown value that is not an
 * Error keeps its JSON form (as `details`, with its `message` or a JSON preview as the
 * message), details that are not JSON are converted ({@link toJsonSafe}), and an
 * AggregateError keeps its inner errors.
 *
 * @example
 * ```ts
 * toFailureRecord({ code: 'E_BUSY', retryIn: 5 });
 * // { type: 'NonError', message: '{"code":"E_BUSY","retryIn":5}', code: 'E_BUSY', details: { code: 'E_BUSY', retryIn: 5 } }
 * ```
 */
export function toFailureRecord(error: unknown, depth = 0): FailureRecord {
  // a remote worker's failure is stored as the worker recorded it (docs/amqp.md)
  if (error instanceof RemoteTaskFailure) return error.record;
  if (error instanceof Error) {
    // text Stoker stores itself is made storable on every dialect (no NUL, no lone surrogate)
    const rec: FailureRecord = { type: storableText(error.name || 'Error'), message: storableText(String(error.message)) };
    if (error.stack) rec.stack = storableText(error.stack.split('\n').slice(0, 20).join('\n'));
    const extra = error as Error & { code?: unknown; details?: unknown; retryable?: unknown };
    if (isStokerError(error)) {
      rec.code = error.code;
      rec.details = toJsonSafe(error.details);
    } else {
      if (typeof extra.code === 'string') rec.code = storableText(extra.code);
      if (extra.details !== undefined) rec.details = toJsonSafe(extra.details);
    }
    if (typeof extra.retryable === 'boolean') rec.retryable = extra.retryable;
    if (error.cause !== undefined && depth < MAX_DEPTH) rec.cause = toFailureRecord(error.cause, depth + 1);
    if (error instanceof AggregateError && Array.isArray(error.errors) && depth < MAX_DEPTH) {
      rec.errors = error.errors.slice(0, MAX_INNER_ERRORS).map((inner: unknown) => toFailureRecord(inner, depth + 1));
      if (rec.message === '') rec.message = `${error.errors.length} errors: ${rec.errors.map((r) => r.message).join('; ')}`;
    }
    return rec;
  }
  if (typeof error === 'string') return { type: 'NonError', message: storableText(error) };
  const details = toJsonSafe(error);
  const rec: FailureRecord = { type: 'NonError', message: previewOf(error, details) };
  if (typeof error === 'object' && error !== null) {
    const extra = error as { code?: unknown; retryable?: unknown };
    if (typeof extra.code === 'string') rec.code = storableText(extra.code);
    if (typeof extra.retryable === 'boolean') rec.retryable = extra.retryable;
    rec.details = details;
  }
  return rec;
}

/** The message of a thrown non-Error: its own `message`, else its JSON (cut at 500 characters). */
function previewOf(value: unknown, json: JsonValue): string {
  if (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') {
    return storableText((value as { message: string }).message);
  }
  const text = typeof json === 'string' ? json : JSON.stringify(json);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/**
 * A JSON-safe copy of any value, for failure records: a circular reference becomes
 * `"[Circular]"`, a BigInt its decimal string, a Date its ISO string, a Map an object
 * (or its entries), a Set an array, an Error a failure record, a function `"[Function
 * name]"`, a non-finite number its name; `undefined` fields are left out. Bounded: at most
 * 20 levels deep and 10,000 values, the rest `"[…]"`.
 *
 * @example
 * ```ts
 * toJsonSafe({ n: 10n, at: new Date(0), f() {} }); // { n: '10', at: '1970-01-01T00:00:00.000Z', f: '[Function f]' }
 * ```
 */
export function toJsonSafe(value: unknown): JsonValue {
  let budget = 10_000;
  const onPath = new Set<object>();
  const walk = (v: unknown, depth: number): JsonValue => {
    if (budget-- <= 0 || depth > 20) return '[…]';
    if (typeof v === 'string') return storableText(v);
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'undefined') return null;
    if (typeof v === 'symbol') return v.toString();
    if (typeof v === 'function') return `[Function${v.name ? ` ${v.name}` : ''}]`;
    const obj = v as object;
    if (onPath.has(obj)) return '[Circular]';
    if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
    if (obj instanceof Error) return toFailureRecord(obj, MAX_DEPTH - 1) as unknown as JsonValue;
    onPath.add(obj);
    try {
      if (Array.isArray(obj) || obj instanceof Set) return [...(obj as Iterable<unknown>)].map((x) => walk(x, depth + 1));
      if (obj instanceof Map) {
        const entries = [...obj.entries()];
        return entries.every(([k]) => typeof k === 'string')
          ? Object.fromEntries(entries.map(([k, x]) => [k as string, walk(x, depth + 1)]))
          : entries.map(([k, x]) => [walk(k, depth + 1), walk(x, depth + 1)]);
      }
      const out: Record<string, JsonValue> = {};
      for (const [k, x] of Object.entries(obj)) {
        if (x === undefined || k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
        out[storableText(k)] = walk(x, depth + 1);
      }
      return out;
    } finally {
      onPath.delete(obj);
    }
  };
  return walk(value, 0);
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
