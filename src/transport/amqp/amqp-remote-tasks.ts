/**
 * The engine's side of remote tasks (docs/amqp.md, "Remote tasks"). Each call publishes a
 * signed request on the durable queue of its task (its own, or one shared by several
 * tasks: `remote: { queue }`) and waits for the worker's
 * reply on this process's reply queue; the publish is confirmed by the broker before the
 * call waits. The request carries the claim's epoch (fencing token): a reply for another
 * epoch, for a call no longer waited for (already answered, aborted, or made by a process
 * that has since died) or that fails its signature is dropped and counted, never returned.
 *
 * An abort of the call (cancel, timeout, lease loss, shutdown) is forwarded to the workers
 * on the cancel exchange, so the task's own `ctx.signal` fires there. When the connection
 * is lost the reply queue goes with it (it is exclusive); after reconnecting, every call
 * still waiting is published again under the same id, and the first reply wins: at least
 * once execution, one recorded outcome (protocol 9).
 *
 * The calls of one queue made in one turn of the event loop go in one request message (at
 * most {@link MAX_BATCHED_REQUESTS}, and spread over at least {@link SPREAD} messages when
 * there are that many calls, so that one worker's prefetch does not take them all); each
 * call keeps its own id, reply, epoch check and cancel (docs/amqp.md, "Remote tasks").
 *
 * @example
 * ```ts
 * const remote = new AmqpRemoteTasks(connection, { prefix: 'stoker', codec });
 * await remote.start();
 * const outcome = await remote.call(request, abortSignal, { queue: request.task });
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { appendTo } from '../../core/collections.js';
import { TransportError } from '../../errors.js';
import type { AmqpConnection } from './amqp-connection.js';
import { MAX_BATCHED_REQUESTS, queueNames, readNotice, readReplies, type RemoteRequest, type RemoteResult } from './remote-protocol.js';
import type { Envelope, MessageCodec } from './signed-messages.js';

/**
 * The least number of messages the calls of one queue in one turn are spread over (when there
 * are that many): RabbitMQ hands a queue's messages to its consumers in turn, so four
 * messages can reach four workers where one would reach one.
 */
export const SPREAD = 4;

/** The calls that followed the first one in a request message, while any of them waits. */
interface Batch {
  head: string;
  followers: string[];
  waiting: number;
}

interface Pending {
  request: RemoteRequest;
  /** the queue it goes to (without the prefix) */
  queue: string;
  resolve: (r: RemoteResult) => void;
  /** ends the call with a transport error (the link was closed before the request went out) */
  fail: (e: Error) => void;
  /** the message this call went out in, when it led one with followers or followed one */
  batch?: Batch;
  started: boolean;
  /** told once, when a worker first says it started the call */
  onStarted?: () => void;
  /** when a worker last said it is working on it (Date.now) */
  seenAt: number | null;
}

export interface RemoteTaskStats {
  /** requests published (a re-publish after a reconnect counts again) */
  published: number;
  /** messages that carried them: fewer than the requests when calls of one queue were batched */
  requestMessages: number;
  /** `started` and `heartbeat` messages received */
  notices: number;
  /** batches whose first call a worker of the previous version answered: their other calls were sent again one by one */
  unbatched: number;
  /** replies returned to a call */
  replies: number;
  /** messages that brought replies: fewer than the replies when a worker batched them */
  replyMessages: number;
  /** replies for another epoch than the call's: dropped */
  staleReplies: number;
  /** replies for no call waiting here (a duplicate, an aborted call): dropped */
  unknownReplies: number;
  /** cancellations sent to workers */
  cancels: number;
  /** calls waiting for a worker that has not started them yet */
  queued: number;
  /** calls a worker is executing */
  running: number;
}

export class AmqpRemoteTasks {
  readonly stats: Omit<RemoteTaskStats, 'queued' | 'running'> = {
    published: 0,
    requestMessages: 0,
    notices: 0,
    unbatched: 0,
    replies: 0,
    replyMessages: 0,
    staleReplies: 0,
    unknownReplies: 0,
    cancels: 0,
  };
  private readonly names: ReturnType<typeof queueNames>;
  private readonly replyQueue: string;
  private readonly pending = new Map<string, Pending>();
  private pub: ConfirmChannel | null = null;
  private sub: Channel | null = null;
  private readonly declared = new Set<string>();
  /** calls made in this turn, by queue, published together at its end */
  private readonly outgoing = new Map<string, string[]>();
  private flushing: NodeJS.Immediate | null = null;
  /** the calls of each unconfirmed request message, by its message id: a returned message is sent again */
  private readonly inMessage = new Map<string, string[]>();
  /** false once a worker of the previous version answered a batch: every request goes alone from then on */
  private batching = true;
  /** batches by the id of their first call, while a follower waits (to send them again should an old worker answer it) */
  private readonly batches = new Map<string, Batch>();
  private readonly setup = (model: ChannelModel): Promise<void> => this.open(model);
  private stopped = false;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly options: { prefix: string; codec: MessageCodec },
  ) {
    this.names = queueNames(options.prefix);
    this.replyQueue = this.names.reply(randomUUID());
  }

  /** the broker's name of a task's queue (its own name, or the shared queue's) */
  queueFor(queue: string): string {
    return this.names.task(queue);
  }

  /** this process's reply queue (exclusive to its connection) */
  get replyQueueName(): string {
    return this.replyQueue;
  }

  /** counters, with the calls waiting for a worker (`queued`) and those being executed (`running`) */
  snapshot(): RemoteTaskStats {
    let running = 0;
    for (const p of this.pending.values()) if (p.started) running += 1;
    return { ...this.stats, ...this.options.codec.rejected, queued: this.pending.size - running, running } as RemoteTaskStats;
  }

  async start(): Promise<void> {
    await this.connection.onConnect(this.setup);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.connection.offConnect(this.setup);
    const channels = [this.pub, this.sub];
    this.pub = null;
    this.sub = null;
    for (const ch of channels) await ch?.close().catch(() => undefined);
  }

  /**
   * Publishes the request on `queue` (the task's own name, or its shared queue) and resolves
   * with the worker's outcome; rejects with the abort reason when `signal` aborts.
   * `onStarted` is called once, when a worker first says it works on the call.
   */
  call(request: RemoteRequest, signal: AbortSignal, how: { queue: string; onStarted?: (() => void) | undefined }): Promise<RemoteResult> {
    const { queue, onStarted } = how;
    const id = randomUUID();
    return new Promise<RemoteResult>((resolve, reject) => {
      if (this.stopped) {
        reject(new TransportError('STOKER_REMOTE_UNAVAILABLE', 'remote task not sent: the AMQP link was closed'));
        return;
      }
      const onAbort = (): void => {
        this.settled(id);
        this.sendCancel(id);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        request,
        queue,
        started: false,
        seenAt: null,
        ...(onStarted ? { onStarted } : {}),
        resolve: (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        fail: (e) => {
          this.settled(id);
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      // Sent at the end of the turn with the other calls of its queue; when not connected, the
      // next connection publishes it with the others (the broker may be away: the call waits,
      // as a queued request would, under the task's timeout and abort signal).
      appendTo(this.outgoing, queue, id);
      this.flushing ??= setImmediate(() => this.flush());
    });
  }

  /** Forgets a call that ended, and the batch it was in once none of its followers waits. */
  private settled(id: string): void {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (p) this.leave(id, p);
  }

  /** The call no longer waits on the message it went out in (it ended, or goes out again). */
  private leave(id: string, p: Pending): void {
    const b = p.batch;
    if (!b) return;
    delete p.batch;
    if (b.followers.includes(id) && --b.waiting === 0) this.batches.delete(b.head);
  }

  /** Publishes the calls made in this turn: per queue, in messages of up to {@link MAX_BATCHED_REQUESTS}. */
  private flush(): void {
    this.flushing = null;
    const byQueue = [...this.outgoing.values()];
    this.outgoing.clear();
    const pub = this.pub;
    if (!pub) return; // the next connection publishes every waiting call
    for (const ids of byQueue) this.sendAll(pub, ids);
  }

  /** Sends these calls of one queue, split as the batch limits say (one per message when batching is off). */
  private sendAll(pub: ConfirmChannel, ids: readonly string[]): void {
    const waiting = ids.filter((id) => this.pending.has(id));
    const size = this.batching ? Math.min(MAX_BATCHED_REQUESTS, Math.ceil(waiting.length / SPREAD)) : 1;
    for (let i = 0; i < waiting.length; i += size) {
      const part = waiting.slice(i, i + size);
      this.send(pub, part).catch((e: unknown) => {
        // a channel lost before the broker confirmed: the next connection publishes them again
        if (!this.stopped) return;
        for (const id of part) this.pending.get(id)?.fail(e instanceof Error ? e : new Error(String(e)));
      });
    }
  }

  /** One request message with these calls (of one queue); resolves once the broker confirmed it. */
  private async send(pub: ConfirmChannel, ids: readonly string[]): Promise<void> {
    const calls = ids.flatMap((id) => {
      const p = this.pending.get(id);
      return p ? [{ id, p }] : [];
    });
    const head = calls[0];
    if (!head) return;
    const queue = this.names.task(head.p.queue);
    if (!this.declared.has(queue)) {
      await pub.assertQueue(queue, { durable: true });
      this.declared.add(queue);
    }
    // batchReplies, batchNotices: this engine reads several replies, and several calls in a
    // `started` or `heartbeat`, in one message (docs/amqp.md, "Remote tasks")
    const more = calls.slice(1).map((c) => ({ id: c.id, request: c.p.request }));
    const { body, headers } = this.options.codec.seal({
      type: 'request',
      id: head.id,
      replyTo: this.replyQueue,
      batchReplies: true,
      batchNotices: true,
      request: head.p.request,
      ...(more.length > 0 ? { more } : {}),
    });
    if (body.length > this.options.codec.maxBytes && calls.length > 1) {
      // too large together for a receiver to accept: in two halves (a call too large alone goes
      // alone, and is rejected by the worker as before)
      const half = Math.ceil(calls.length / 2);
      await Promise.all([this.send(pub, ids.slice(0, half)), this.send(pub, ids.slice(half))]);
      return;
    }
    for (const c of calls) this.leave(c.id, c.p);
    if (more.length > 0) {
      const batch: Batch = { head: head.id, followers: more.map((c) => c.id), waiting: more.length };
      this.batches.set(head.id, batch);
      for (const c of calls) c.p.batch = batch;
    }
    this.inMessage.set(
      head.id,
      calls.map((c) => c.id),
    );
    try {
      await new Promise<void>((resolve, reject) => {
        // mandatory: a queue deleted under us returns the request (see open), never drops it.
        // Transient: the call is held here until its reply and published again after any
        // reconnect, a broker restart included, so a copy on the broker's disk would only be a
        // second delivery; writing it cost the broker about half its CPU per request.
        pub.sendToQueue(
          queue,
          body,
          { persistent: false, mandatory: true, messageId: head.id, headers, contentType: 'application/json' },
          (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
        );
      });
    } finally {
      this.inMessage.delete(head.id);
    }
    this.stats.published += calls.length;
    this.stats.requestMessages += 1;
  }

  private sendCancel(id: string): void {
    const pub = this.pub;
    if (!pub) return; // the request is re-published nowhere: no worker can be running a reply we wait for
    const { body, headers } = this.options.codec.seal({ type: 'cancel', id });
    try {
      pub.publish(this.names.cancel, '', body, { headers }, () => undefined);
      this.stats.cancels += 1;
    } catch {
      // channel closed: the worker's reply will be dropped as unknown
    }
  }

  private async open(model: ChannelModel): Promise<void> {
    this.declared.clear();
    const pub = await model.createConfirmChannel();
    pub.on('error', () => undefined);
    await pub.assertExchange(this.names.cancel, 'fanout', { durable: true });
    // a request the broker could not route: its queue was deleted since we declared it
    pub.on('return', (msg: ConsumeMessage) => {
      this.declared.delete(msg.fields.routingKey);
      const id = msg.properties.messageId as string | undefined;
      const ids = id === undefined ? undefined : this.inMessage.get(id);
      if (ids && this.pub === pub) void this.send(pub, ids).catch(() => undefined);
    });
    const sub = await model.createChannel();
    sub.on('error', () => undefined);
    await sub.assertQueue(this.replyQueue, { exclusive: true, autoDelete: true, durable: false });
    await sub.consume(this.replyQueue, (msg) => (msg ? this.onMessage(msg) : this.lost('reply consumer cancelled')), { noAck: true });
    this.pub = pub;
    this.sub = sub;
    // a channel closed by an error while the connection stays up (e.g. a cancel published
    // to a deleted exchange): set everything up again rather than wait forever
    pub.on('close', () => {
      if (this.pub !== pub) return;
      this.pub = null;
      this.lost('request channel closed');
    });
    sub.on('close', () => {
      if (this.sub !== sub) return;
      this.sub = null;
      this.lost('reply channel closed');
    });
    // calls still waiting lost their reply queue with the old connection: ask again
    const byQueue = new Map<string, string[]>();
    for (const [id, p] of this.pending) appendTo(byQueue, p.queue, id);
    this.outgoing.clear();
    for (const ids of byQueue.values()) this.sendAll(pub, ids);
  }

  private lost(reason: string): void {
    if (!this.stopped) this.connection.reset(reason);
  }

  private onMessage(msg: ConsumeMessage): void {
    const opened = this.options.codec.open(msg.content, msg.properties.headers, msg.fields.redelivered);
    if (!opened.ok) return;
    const m = opened.message;
    if (m.type === 'started' || m.type === 'heartbeat') {
      const ids = readNotice(m);
      if (!ids) {
        this.options.codec.rejected.malformed += 1;
        return;
      }
      this.stats.notices += 1;
      const now = Date.now();
      for (const id of ids) {
        this.answeredBy(id, m);
        const p = this.pending.get(id);
        if (!p) continue;
        if (!p.started) p.onStarted?.();
        p.started = true;
        p.seenAt = now;
      }
      return;
    }
    const replies = readReplies(m);
    if (!replies) {
      this.options.codec.rejected.malformed += 1;
      return;
    }
    this.stats.replyMessages += 1;
    for (const reply of replies) {
      if (!reply) {
        this.options.codec.rejected.malformed += 1;
        continue;
      }
      this.answeredBy(reply.id, m);
      const p = this.pending.get(reply.id);
      if (!p) {
        this.stats.unknownReplies += 1;
        continue;
      }
      if (reply.epoch !== p.request.epoch || reply.runId !== p.request.runId || reply.atom !== p.request.atom) {
        this.stats.staleReplies += 1;
        continue;
      }
      this.settled(reply.id);
      this.stats.replies += 1;
      p.resolve(reply.result);
    }
  }

  /**
   * A worker sent `m` about call `id`. When `id` led a batch and the worker does not read
   * batches (a worker of the previous version executes the first call and drops the others),
   * the other calls still waiting are sent again one by one, and so is every request from then
   * on (docs/amqp.md, "Versions").
   */
  private answeredBy(id: string, m: Envelope): void {
    const batch = this.batches.get(id);
    if (!batch || m.readsBatches === true) return;
    this.batches.delete(id);
    this.batching = false;
    this.stats.unbatched += 1;
    const pub = this.pub;
    if (pub) this.sendAll(pub, batch.followers);
  }
}
