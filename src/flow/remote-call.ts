/**
 * What a remote worker needs to execute one atom, and what it answers (docs/amqp.md,
 * "Remote tasks"). Plain data shared by the engine (which sends it) and the AMQP transport
 * (which carries and checks it); nothing of the database.
 */
import type { JsonValue } from '../core/json.js';
import type { FailureRecord } from './types.js';

/** One execution asked of a worker. */
export interface RemoteCall {
  kind: 'execute' | 'revert';
  /** the task's (atom's) name: the queue the request goes to */
  task: string;
  flow: string;
  version: string;
  runId: string;
  atom: number;
  /** the claim's fencing token (protocol 3): a reply for another epoch is dropped */
  epoch: number;
  attempt: number;
  execution: number;
  idempotencyKey: string;
  fencingToken: string;
  inputs: Record<string, JsonValue>;
  retryValue: JsonValue | null;
  failure: FailureRecord | null;
  timeoutMs: number | null;
}

/** The worker's answer: the task's result, or its failure as the worker recorded it. */
export type RemoteOutcome = { ok: true; result: JsonValue } | { ok: false; failure: FailureRecord };

/**
 * The queue a remote task's calls go to: the one it shares (`remote: { queue }`), else its
 * own, named after the task (docs/amqp.md, "Remote tasks").
 *
 * @example
 * ```ts
 * remoteQueueOf(task({ name: 'a', remote: true, execute }));                    // 'a'
 * remoteQueueOf(task({ name: 'b', remote: { queue: 'pool' }, execute }));       // 'pool'
 * ```
 */
export function remoteQueueOf(task: { readonly name: string; readonly remoteQueue?: string | undefined }): string {
  return task.remoteQueue ?? task.name;
}
