/**
 * The messages of remote tasks (docs/amqp.md, "Remote tasks"), checked field by field
 * after the signature: a request on a task's queue, the worker's `started`, `heartbeat` and
 * `reply` on the engine's reply queue, and `cancel` on the cancel exchange. Queue and
 * exchange names derive from one prefix so that deployments sharing a virtual host differ.
 *
 * A request says `batchReplies: true` when its engine also reads `replies`: several
 * replies to it in one message (docs/amqp.md, "Remote tasks"). A worker sends `replies`
 * only to such an engine, so an engine that does not know them never gets one, and a worker
 * that does not know the field ignores it and replies one by one.
 *
 * A request message may carry more calls of the same queue after its first one (`more`:
 * the calls an engine made in one turn of its event loop, docs/amqp.md "Remote tasks"); on
 * a queue shared by several tasks (`remote: { queue }`) they may be calls of different tasks.
 * The first call stays in the fields every version reads, so a worker of the previous
 * version executes it and drops the rest; a worker of this version says so in every
 * message it sends (`readsBatches: true`), and an engine that hears about the first call
 * of a batch from a worker that does not sends the rest again one by one.
 *
 * Likewise a request says `batchNotices: true` when its engine reads `ids` in `started` and
 * `heartbeat`: the calls a worker started in one turn, or is running at a heartbeat, in one
 * message per engine.
 */
import type { JsonValue } from '../../core/json.js';
import type { RemoteCall, RemoteOutcome } from '../../flow/remote-call.js';
import type { FailureRecord } from '../../flow/types.js';
import type { Envelope } from './signed-messages.js';

/** What the engine asks, and what the worker answers (src/flow/remote-call.ts). */
export type RemoteRequest = RemoteCall;
export type RemoteResult = RemoteOutcome;

export const queueNames = (prefix: string) => ({
  /** the durable queue of a task's own name, or of a shared queue's (`remote: { queue }`) */
  task: (queue: string) => `${prefix}.task.${queue}`,
  cancel: `${prefix}.cancel`,
  reply: (id: string) => `${prefix}.reply.${id}`,
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown, max = 1024): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** Replies in one `replies` message at most (the message also obeys the codec's size limit). */
export const MAX_BATCHED_REPLIES = 256;

/** Calls in one request message at most (the message also obeys the codec's size limit). */
export const MAX_BATCHED_REQUESTS = 16;

/** One call of a request message: its id (the reply names it) and what to execute. */
export interface RequestCall {
  id: string;
  request: RemoteRequest;
}

/**
 * A request envelope's fields, or null when it is not one: its calls, the first one's
 * (`id`, `request`) followed by those of `more`, all of tasks in `tasks`: those the reader's
 * flows route to the queue the message came from. A message with one malformed call, or a
 * call of another task, is rejected whole: it was signed by an engine, so it is not a
 * request of this protocol for this queue.
 */
export function readRequest(
  m: Envelope,
  tasks: ReadonlySet<string>,
): { replyTo: string; batchReplies: boolean; batchNotices: boolean; calls: RequestCall[] } | null {
  if (m.type !== 'request' || !isText(m.replyTo, 255)) return null;
  const first = readCall(m);
  if (!first || !tasks.has(first.request.task)) return null;
  const calls = [first];
  if (m.more !== undefined) {
    if (!Array.isArray(m.more) || m.more.length === 0 || m.more.length >= MAX_BATCHED_REQUESTS) return null;
    for (const c of m.more as unknown[]) {
      const call = isObject(c) ? readCall(c) : null;
      if (!call || !tasks.has(call.request.task) || calls.some((k) => k.id === call.id)) return null;
      calls.push(call);
    }
  }
  return { replyTo: m.replyTo, batchReplies: m.batchReplies === true, batchNotices: m.batchNotices === true, calls };
}

function readCall(m: Record<string, unknown>): RequestCall | null {
  if (!isText(m.id, 64)) return null;
  const r = m.request;
  if (!isObject(r)) return null;
  if (r.kind !== 'execute' && r.kind !== 'revert') return null;
  if (!isText(r.task, 128) || !isText(r.flow, 128) || !isText(r.version, 128) || !isText(r.runId, 128)) return null;
  if (!isInt(r.atom) || !isInt(r.epoch) || !isInt(r.attempt) || !isInt(r.execution)) return null;
  if (!isText(r.idempotencyKey) || !isText(r.fencingToken) || !isObject(r.inputs)) return null;
  if (r.failure !== null && !isFailure(r.failure)) return null;
  if (r.timeoutMs !== null && !isInt(r.timeoutMs)) return null;
  return { id: m.id, request: r as unknown as RemoteRequest };
}

/** Calls named by one `started` or `heartbeat` message at most. */
export const MAX_NOTICE_IDS = 1024;

/**
 * The calls a `started` or `heartbeat` message is about: `ids` when the worker sent them
 * together (to an engine whose requests said `batchNotices: true`), else its `id`; null when
 * it names none.
 */
export function readNotice(m: Envelope): string[] | null {
  if (m.ids === undefined) return isText(m.id, 64) ? [m.id] : null;
  if (!Array.isArray(m.ids) || m.ids.length === 0 || m.ids.length > MAX_NOTICE_IDS) return null;
  return (m.ids as unknown[]).every((id) => isText(id, 64)) ? (m.ids as string[]) : null;
}

/** What one reply says: the call, the claim it answers, and the outcome. */
export interface ReplyFields {
  id: string;
  runId: string;
  atom: number;
  epoch: number;
  result: RemoteResult;
}

/**
 * The replies of a `reply` or `replies` envelope: null when it is neither, and null in
 * place of each malformed reply of a `replies` message.
 */
export function readReplies(m: Envelope): (ReplyFields | null)[] | null {
  if (m.type === 'reply') return [readReply(m)];
  if (m.type !== 'replies' || !Array.isArray(m.replies) || m.replies.length === 0 || m.replies.length > MAX_BATCHED_REPLIES) return null;
  return (m.replies as unknown[]).map((r) => (isObject(r) ? readReply({ ...m, ...r, type: 'reply' }) : null));
}

/** A reply envelope's fields, or null when it is not one. */
export function readReply(m: Envelope): ReplyFields | null {
  if (m.type !== 'reply' || !isText(m.id, 64) || !isText(m.runId, 128) || !isInt(m.atom) || !isInt(m.epoch)) return null;
  const o = m.outcome;
  if (!isObject(o)) return null;
  if (o.ok === true && 'result' in o)
    return { id: m.id, runId: m.runId, atom: m.atom, epoch: m.epoch, result: { ok: true, result: o.result as JsonValue } };
  if (o.ok === false && isFailure(o.failure))
    return { id: m.id, runId: m.runId, atom: m.atom, epoch: m.epoch, result: { ok: false, failure: o.failure } };
  return null;
}

function isFailure(v: unknown): v is FailureRecord {
  return isObject(v) && typeof v.type === 'string' && typeof v.message === 'string';
}
