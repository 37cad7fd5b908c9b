/**
 * The worker's side of remote tasks (docs/amqp.md, "Remote tasks"): consumes the durable
 * queues of its tasks (a task's own, or one shared by several tasks), at most `concurrency`
 * unacknowledged request messages at a time from each queue and `concurrency` calls
 * executing (a message may carry several calls of its queue), checks each message (signature, size, age, nonce,
 * shape, every call of a task routed to the queue it came from: a rejected message is
 * acknowledged, so dropped, and counted, never executed), tells the engine it started,
 * sends heartbeats while the task runs, and replies on the engine's reply queue. A request
 * message is acknowledged only after the broker has confirmed the replies to all its calls
 * (publisher confirms): a worker killed before that leaves the whole message to be
 * delivered again, to itself or another worker.
 *
 * A reply the broker cannot route (the engine's reply queue is gone: that engine died, and
 * another one takes the atom over under a new epoch) is counted as undeliverable; the
 * request is acknowledged all the same. A `cancel` for a request being executed here
 * aborts the task's signal.
 *
 * @example
 * ```ts
 * const queues = new Map([['charge', new Set(['charge'])], ['pool', new Set(['resize', 'crop'])]]);
 * const consumer = new AmqpTaskConsumer(connection, { prefix: 'stoker', codec, queues, concurrency: 8, handle });
 * await consumer.start();
 * ```
 */
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { appendTo } from '../../core/collections.js';
import type { AmqpConnection } from './amqp-connection.js';
import { MAX_BATCHED_REPLIES, MAX_NOTICE_IDS, queueNames, readRequest, type RemoteRequest, type RemoteResult } from './remote-protocol.js';
import type { MessageCodec } from './signed-messages.js';

/** results kept for deliveries of the same request again (a connection cut before the ack) */
const MAX_REMEMBERED = 10_000;

/** the outcomes of one `replies` message at most (bytes of their JSON; a larger one goes alone) */
const MAX_BATCH_BYTES = 1024 * 1024;

/** The outcome of a call the worker stopped before it started: never sent (its message goes back to the queue). */
const NOT_STARTED: RemoteResult = {
  ok: false,
  failure: { type: 'Error', message: 'the worker stopped before it started', retryable: true },
};

/** A call delivered here, waiting for a slot or executing. */
interface Running {
  abort: AbortController;
  done: Promise<RemoteResult>;
  replyTo: string;
  /** its engine reads several calls in one `started` or `heartbeat` */
  batchNotices: boolean;
  /** executing (not waiting for a slot): its engine gets `started` and heartbeats */
  executing: boolean;
}

/** A request message delivered here: acknowledged on its channel once the replies to all its calls are confirmed. */
interface Delivery {
  from: ConfirmChannel;
  msg: ConsumeMessage;
  /** calls of it whose reply is not confirmed yet */
  left: number;
}

/** A reply waiting for the end of the turn, to go with the others to the same engine. */
interface QueuedReply {
  delivery: Delivery;
  fields: { id: string; runId: string; atom: number; epoch: number; outcome: RemoteResult };
  bytes: number;
  sent: () => void;
}

/**
 * Executes a call. `abort` is the call's own controller: its signal is the task's
 * `ctx.signal` (a cancel from the engine or the worker's stop aborts it), and the handler
 * aborts it on the task's timeout, so that one controller serves each call.
 */
export type RemoteHandler = (request: RemoteRequest, abort: AbortController) => Promise<RemoteResult>;

export interface TaskConsumerOptions {
  prefix: string;
  codec: MessageCodec;
  /** the queues this worker consumes (names without the prefix), each with the task names it accepts on it */
  queues: ReadonlyMap<string, ReadonlySet<string>>;
  /** calls executed at once, and the prefetch of each queue's consumer (in messages) */
  concurrency: number;
  handle: RemoteHandler;
  /** how often a running task's heartbeat goes to the engine (default 2,000 ms) */
  heartbeatMs?: number;
}

export class AmqpTaskConsumer {
  readonly stats = {
    /** requests executed (a redelivered one counts again) */
    executed: 0,
    /** replies confirmed by the broker */
    replied: 0,
    /** messages that carried them (several replies to one engine in one turn share one) */
    replyMessages: 0,
    /** replies the broker could not route: the engine's reply queue is gone */
    undeliverable: 0,
    /** cancellations that aborted a task running here */
    cancelled: 0,
    /** deliveries of a request this process was running or had run: answered with its result, not executed again */
    duplicates: 0,
    /** request messages acknowledged (a rejected one included) */
    acked: 0,
    /** `basic.ack` frames that acknowledged them: fewer when one covered several (`multiple`) */
    acks: 0,
  };
  private readonly names: ReturnType<typeof queueNames>;
  private ch: ConfirmChannel | null = null;
  private readonly closed = new WeakSet<ConfirmChannel>();
  private readonly running = new Map<string, Running>();
  /** results of requests run here lately, for deliveries of the same request again (bounded) */
  private readonly finished = new Map<string, RemoteResult>();
  private readonly setup = (model: ChannelModel): Promise<void> => this.open(model);
  private stopping = false;
  private idle: (() => void) | null = null;
  /** replies to engines that read `replies`, by reply queue, sent together at the end of the turn */
  private readonly batches = new Map<string, QueuedReply[]>();
  private flushing: NodeJS.Immediate | null = null;
  /** calls that started executing in this turn, for one `started` per engine at its end */
  private readonly toStart = new Set<string>();
  private startedSoon: NodeJS.Immediate | null = null;
  /** the heartbeat of every call executing here, while any does */
  private beats: NodeJS.Timeout | null = null;
  /** free execution slots (`concurrency`), and the calls waiting for one */
  private free: number;
  private readonly slotWaiters: (() => void)[] = [];
  /** replies in each unconfirmed message, by its id: a returned message counts them all undeliverable */
  private readonly inMessage = new Map<string, number>();
  /**
   * The request messages of each channel not yet acknowledged, by delivery tag in the order
   * they came (the broker numbers a channel's deliveries upwards), each with whether it may
   * be acknowledged now (the replies to all its calls are confirmed, or it was rejected).
   */
  private readonly unacked = new WeakMap<ConfirmChannel, Map<number, { msg: ConsumeMessage; done: boolean }>>();

  constructor(
    private readonly connection: AmqpConnection,
    private readonly options: TaskConsumerOptions,
  ) {
    this.names = queueNames(options.prefix);
    this.free = options.concurrency;
  }

  get inFlight(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    await this.connection.onConnect(this.setup);
  }

  /** Stops taking requests; waits up to `drainMs` for running ones, then aborts them (their requests go back to the queue). */
  async stop(drainMs = 30_000): Promise<void> {
    this.stopping = true;
    this.connection.offConnect(this.setup);
    const ch = this.ch;
    // no new deliveries; unacknowledged ones return to the queue when the channel closes
    // a channel the broker already closed (a restart) may refuse these at once: a stop goes on
    if (ch) for (const tag of this.consumerTags) await settle(() => ch.cancel(tag));
    if (this.running.size > 0) {
      await Promise.race([new Promise<void>((resolve) => (this.idle = resolve)), new Promise((r) => setTimeout(r, drainMs))]);
    }
    for (const r of this.running.values()) r.abort.abort(new Error('worker stopping'));
    if (this.beats) clearInterval(this.beats);
    this.beats = null;
    this.ch = null;
    if (ch) await settle(() => ch.close());
  }

  private consumerTags: string[] = [];

  private async open(model: ChannelModel): Promise<void> {
    const ch = await model.createConfirmChannel();
    this.unacked.set(ch, new Map());
    ch.on('error', () => undefined);
    ch.on('return', (msg: ConsumeMessage) => {
      const id = msg.properties.messageId as string | undefined;
      this.stats.undeliverable += (id !== undefined ? this.inMessage.get(id) : undefined) ?? 1;
    });
    // Per consumer, so at most `concurrency` unacknowledged messages from each queue (the calls
    // beyond `concurrency` wait here for a slot). A channel-wide prefetch (`basic.qos` global)
    // bounded the messages over all queues, but RabbitMQ enforces it in a limiter that, at
    // every acknowledgement that frees a slot, resumes every queue waiting on it, each of which
    // then asks the limiter again: with requests waiting on many queues (1,000 task queues)
    // that cost the broker 0.3-0.5 ms per atom (docs/amqp.md, "Performance").
    await ch.prefetch(this.options.concurrency, false);
    await ch.assertExchange(this.names.cancel, 'fanout', { durable: true });
    const { queue: cancels } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await ch.bindQueue(cancels, this.names.cancel, '');
    const tags: string[] = [];
    tags.push(
      (await ch.consume(cancels, (msg) => (msg ? this.onCancel(msg) : this.lost('cancel consumer cancelled')), { noAck: true }))
        .consumerTag,
    );
    for (const [name, tasks] of this.options.queues) {
      const queue = this.names.task(name);
      await ch.assertQueue(queue, { durable: true });
      // a null delivery: the broker cancelled the consumer (its queue was deleted)
      const onRequest = (msg: ConsumeMessage | null) =>
        msg ? void this.onRequest(ch, msg, tasks) : this.lost(`consumer of ${queue} cancelled`);
      tags.push((await ch.consume(queue, onRequest, { noAck: false })).consumerTag);
    }
    this.consumerTags = tags;
    this.ch = ch;
    ch.on('close', () => {
      this.closed.add(ch);
      if (this.ch !== ch) return;
      this.ch = null;
      // closed by a channel error while the connection stays up: set everything up again
      this.lost('task channel closed');
    });
  }

  /** the channel failed or a consumer was cancelled by the broker: start again on a new connection (docs/amqp.md, "Connecting") */
  private lost(reason: string): void {
    if (!this.stopping) this.connection.reset(reason);
  }

  private onCancel(msg: ConsumeMessage): void {
    const opened = this.options.codec.open(msg.content, msg.properties.headers, false);
    if (!opened.ok || opened.message.type !== 'cancel' || typeof opened.message.id !== 'string') return;
    const running = this.running.get(opened.message.id);
    if (!running) return;
    this.stats.cancelled += 1;
    running.abort.abort(Object.assign(new Error('cancelled by the engine'), { code: 'STOKER_REMOTE_CANCELLED' }));
  }

  /** A request message from a queue whose calls may be of `tasks` only (else it is rejected whole). */
  private async onRequest(ch: ConfirmChannel, msg: ConsumeMessage, tasks: ReadonlySet<string>): Promise<void> {
    this.unacked.get(ch)?.set(msg.fields.deliveryTag, { msg, done: false });
    const codec = this.options.codec;
    const opened = codec.open(msg.content, msg.properties.headers, msg.fields.redelivered);
    const read = opened.ok ? readRequest(opened.message, tasks) : null;
    if (!read) {
      if (opened.ok) codec.rejected.malformed += 1;
      this.acknowledge(ch, [msg]); // dropped, never executed
      return;
    }
    if (this.stopping) {
      this.unacked.get(ch)?.delete(msg.fields.deliveryTag);
      ch.nack(msg, false, true);
      return;
    }
    // one message may carry several calls of its queue: it is acknowledged once every reply
    // of it is confirmed, so a worker killed before that leaves all of them to be delivered again
    const delivery: Delivery = { from: ch, msg, left: read.calls.length };
    await Promise.all(read.calls.map((c) => this.run(delivery, c.id, read, c.request)));
    if (this.running.size === 0) this.idle?.();
  }

  /** Executes one call of a delivered message (within the worker's concurrency) and replies. */
  private async run(
    delivery: Delivery,
    id: string,
    how: { replyTo: string; batchReplies: boolean; batchNotices: boolean },
    request: RemoteRequest,
  ): Promise<void> {
    const { replyTo, batchReplies, batchNotices } = how;
    // The broker delivers again a request whose delivery was not acknowledged (the
    // connection was cut): if this process is running it or has just run it, its result
    // answers the new delivery; it is not executed a second time here.
    const known = this.finished.get(id) ?? this.running.get(id)?.done;
    if (known) {
      this.stats.duplicates += 1;
      const result = await known;
      // never started here (the worker stops): this delivery too is left unacknowledged
      if (result !== NOT_STARTED) await this.reply(delivery, id, replyTo, batchReplies, request, result);
      return;
    }
    const abort = new AbortController();
    let settle!: (r: RemoteResult) => void;
    const done = new Promise<RemoteResult>((resolve) => (settle = resolve));
    const call: Running = { abort, done, replyTo, batchNotices, executing: false };
    this.running.set(id, call);
    let result: RemoteResult;
    let started: NodeJS.Immediate | undefined;
    let beat: NodeJS.Timeout | undefined;
    // the prefetch counts messages, and a message may carry several calls: `concurrency`
    // bounds the calls executed at once
    await this.acquire();
    if (this.stopping) {
      // The worker stops before this call started: it is left to another worker. Its message
      // stays unacknowledged, so the broker delivers it again when the channel closes; a
      // worker holds up to `concurrency` messages per queue, and running them all during
      // the drain would only delay the stop (docs/amqp.md, "Worker prefetch").
      this.running.delete(id);
      this.release();
      settle(NOT_STARTED);
      return;
    }
    try {
      if (abort.signal.aborted) {
        // cancelled while it waited for a slot: never started, and the engine waits for it no more
        result = { ok: false, failure: { type: 'Error', message: 'cancelled by the engine before it started', retryable: true } };
      } else {
        call.executing = true;
        // `started` waits for the next turn of the event loop: a task that finished meanwhile
        // (a quick one) is answered by its reply alone, one message less per atom; to an engine
        // that reads them together, the calls started in one turn share one `started`, and the
        // calls running here one heartbeat (docs/amqp.md, "Performance")
        if (batchNotices) {
          this.toStart.add(id);
          this.startedSoon ??= setImmediate(() => this.sendStarted());
          this.beats ??= setInterval(() => this.sendBeats(), this.options.heartbeatMs ?? 2000);
        } else {
          started = setImmediate(() => this.notify('started', replyTo, [id], false));
          beat = setInterval(() => this.notify('heartbeat', replyTo, [id], false), this.options.heartbeatMs ?? 2000);
        }
        this.stats.executed += 1;
        result = await this.options.handle(request, abort);
      }
    } finally {
      clearImmediate(started);
      clearInterval(beat);
      this.toStart.delete(id);
      this.running.delete(id);
      this.release();
    }
    settle(result);
    this.remember(id, result);
    await this.reply(delivery, id, replyTo, batchReplies, request, result);
  }

  /** `started` for the calls that began in the last turn and still run: one message per engine. */
  private sendStarted(): void {
    this.startedSoon = null;
    const ids = [...this.toStart];
    this.toStart.clear();
    this.notifyEach('started', ids);
  }

  /** A heartbeat for every call executing here: one message per engine (the timer stops when none runs). */
  private sendBeats(): void {
    const ids = [...this.running].filter(([, r]) => r.executing && r.batchNotices).map(([id]) => id);
    if (ids.length === 0 && this.beats) {
      clearInterval(this.beats);
      this.beats = null;
    }
    this.notifyEach('heartbeat', ids);
  }

  /** One `started` or `heartbeat` per engine for these calls (of engines that read `ids`). */
  private notifyEach(type: 'started' | 'heartbeat', ids: readonly string[]): void {
    const byEngine = new Map<string, string[]>();
    for (const id of ids) {
      const replyTo = this.running.get(id)?.replyTo;
      if (replyTo !== undefined) appendTo(byEngine, replyTo, id);
    }
    for (const [replyTo, group] of byEngine) this.notify(type, replyTo, group, true);
  }

  /** Sends a notice (a hint: nothing waits for it, and a lost one costs nothing). */
  private notify(type: 'started' | 'heartbeat', replyTo: string, ids: readonly string[], together: boolean): void {
    const ch = this.ch;
    if (!ch) return;
    const bodies = together
      ? Array.from({ length: Math.ceil(ids.length / MAX_NOTICE_IDS) }, (_, k) => {
          const part = ids.slice(k * MAX_NOTICE_IDS, (k + 1) * MAX_NOTICE_IDS);
          return this.options.codec.seal({ type, id: part[0], ids: part, readsBatches: true });
        })
      : ids.map((id) => this.options.codec.seal({ type, id, readsBatches: true }));
    try {
      for (const { body, headers } of bodies) ch.sendToQueue(replyTo, body, { headers });
    } catch {
      // the channel is closing: a notice is a hint
    }
  }

  private acquire(): Promise<void> | void {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    return new Promise<void>((resolve) => this.slotWaiters.push(resolve));
  }

  private release(): void {
    const next = this.slotWaiters.shift();
    if (next) next();
    else this.free += 1;
  }

  private remember(id: string, result: RemoteResult): void {
    this.finished.set(id, result);
    // oldest first: a Map iterates in insertion order
    for (const old of this.finished.keys()) {
      if (this.finished.size <= MAX_REMEMBERED) break;
      this.finished.delete(old);
    }
  }

  /**
   * Publishes the reply (mandatory, confirmed), then acknowledges the request on the channel
   * it came on. To an engine that reads `replies` (`batchReplies`), the replies finished in
   * the same turn of the event loop go in one message (docs/amqp.md, "Performance"); each
   * request is still acknowledged only once the message with its reply is confirmed.
   */
  private async reply(
    delivery: Delivery,
    id: string,
    replyTo: string,
    batchReplies: boolean,
    request: RemoteRequest,
    result: RemoteResult,
  ): Promise<void> {
    const fields = { id, runId: request.runId, atom: request.atom, epoch: request.epoch, outcome: result };
    if (!batchReplies) return this.publishReplies(replyTo, [{ delivery, fields, bytes: 0, sent: () => undefined }]);
    await new Promise<void>((sent) => {
      const queued = this.batches.get(replyTo);
      const bytes = Buffer.byteLength(JSON.stringify(result));
      if (queued) queued.push({ delivery, fields, bytes, sent });
      else this.batches.set(replyTo, [{ delivery, fields, bytes, sent }]);
      this.flushing ??= setImmediate(() => this.flush());
    });
  }

  /** Sends the replies queued in this turn: one message per engine, within the batch limits. */
  private flush(): void {
    this.flushing = null;
    const batches = [...this.batches];
    this.batches.clear();
    for (const [replyTo, queued] of batches) {
      let part: QueuedReply[] = [];
      let bytes = 0;
      for (const q of queued) {
        if (part.length > 0 && (part.length === MAX_BATCHED_REPLIES || bytes + q.bytes > MAX_BATCH_BYTES)) {
          void this.publishReplies(replyTo, part);
          part = [];
          bytes = 0;
        }
        part.push(q);
        bytes += q.bytes;
      }
      void this.publishReplies(replyTo, part);
    }
  }

  /** One message with these replies (`reply` for one, `replies` for more); acknowledges their requests once it is confirmed. */
  private async publishReplies(replyTo: string, replies: readonly QueuedReply[]): Promise<void> {
    try {
      // the channel the requests came on, while it is open (a delivery tag is only good
      // there); else the current one: the reply still goes, and the request comes again
      const from = replies[0]!.delivery.from;
      const ch = this.closed.has(from) ? this.ch : from;
      if (!ch) return; // no connection: the requests are delivered again, and answered then
      const { body, headers } =
        replies.length === 1
          ? this.options.codec.seal({ type: 'reply', readsBatches: true, ...replies[0]!.fields })
          : this.options.codec.seal({ type: 'replies', readsBatches: true, replies: replies.map((q) => q.fields) });
      const messageId = `${replies[0]!.fields.id}+${replies.length}`;
      this.inMessage.set(messageId, replies.length);
      try {
        await new Promise<void>((resolve, reject) => {
          ch.publish('', replyTo, body, { headers, messageId, mandatory: true, persistent: false }, (err: unknown) =>
            err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
          );
        });
      } catch {
        return; // not confirmed: leave the requests unacknowledged, to be delivered again
      } finally {
        this.inMessage.delete(messageId);
      }
      this.stats.replied += replies.length;
      this.stats.replyMessages += 1;
      // a delivery tag belongs to its channel: after a reconnect the old request is redelivered
      // (the engine drops the second reply as unknown)
      // The channel may have closed since the confirm (a broker shutdown): amqplib then throws
      // here, and the unacknowledged requests are delivered again anyway.
      try {
        const done: ConsumeMessage[] = [];
        for (const q of replies) if (q.delivery.from === ch && --q.delivery.left === 0) done.push(q.delivery.msg);
        this.acknowledge(ch, done);
      } catch {
        // the channel is gone with its delivery tags
      }
    } finally {
      for (const q of replies) q.sent();
    }
  }

  /**
   * Acknowledges these request messages of `ch`, whose replies are all confirmed (or which
   * were rejected). The run of done messages at the head of the channel's unacknowledged
   * ones goes in one `basic.ack` with `multiple` (it covers every message of the channel up
   * to its tag, and each of those is done); the others go one by one, so a message never
   * waits for an earlier one still executing, and an acknowledgement never covers a message
   * whose replies are not confirmed (docs/amqp.md, "Remote tasks").
   */
  private acknowledge(ch: ConfirmChannel, msgs: readonly ConsumeMessage[]): void {
    const open = this.unacked.get(ch);
    if (!open) {
      for (const m of msgs) this.ack(ch, m, 1);
      return;
    }
    for (const m of msgs) {
      const entry = open.get(m.fields.deliveryTag);
      if (entry) entry.done = true;
    }
    let last: ConsumeMessage | null = null;
    let covered = 0;
    for (const [tag, entry] of open) {
      if (!entry.done) break;
      open.delete(tag);
      last = entry.msg;
      covered += 1;
    }
    if (last) this.ack(ch, last, covered);
    for (const m of msgs) if (open.delete(m.fields.deliveryTag)) this.ack(ch, m, 1);
  }

  private ack(ch: ConfirmChannel, msg: ConsumeMessage, covered: number): void {
    ch.ack(msg, covered > 1);
    this.stats.acks += 1;
    this.stats.acked += covered;
  }
}

/** Runs `fn` and waits for it, ignoring a failure whether it is thrown or rejected. */
async function settle(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch {
    // nothing to do: the channel is gone already
  }
}
