/**
 * The engine's side of remote tasks (docs/amqp.md, "Remote tasks"). Each call publishes a
 * signed request on the durable queue of its task and waits for the worker's
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
 * @example
 * ```ts
 * const remote = new AmqpRemoteTasks(connection, { prefix: 'stoker', codec });
 * await remote.start();
 * const outcome = await remote.call(request, abortSignal);
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { TransportError } from '../../errors.js';
import type { AmqpConnection } from './amqp-connection.js';
import { queueNames, readReplies, type RemoteRequest, type RemoteResult } from './remote-protocol.js';
import type { MessageCodec } from './signed-messages.js';

interface Pending {
  request: RemoteRequest;
  resolve: (r: RemoteResult) => void;
  started: boolean;
  /** told once, when a worker first says it started the call */
  onStarted?: () => void;
  /** when a worker last said it is working on it (Date.now) */
  seenAt: number | null;
}

export interface RemoteTaskStats {
  /** requests published (a re-publish after a reconnect counts again) */
  published: number;
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
  private readonly setup = (model: ChannelModel): Promise<void> => this.open(model);
  private stopped = false;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly options: { prefix: string; codec: MessageCodec },
  ) {
    this.names = queueNames(options.prefix);
    this.replyQueue = this.names.reply(randomUUID());
  }

  /** the durable queue a task's requests wait in */
  queueFor(task: string): string {
    return this.names.task(task);
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

  /** Publishes the request and resolves with the worker's outcome; rejects with the abort reason when `signal` aborts. */
  call(request: RemoteRequest, signal: AbortSignal, onStarted?: () => void): Promise<RemoteResult> {
    const id = randomUUID();
    return new Promise<RemoteResult>((resolve, reject) => {
      const onAbort = (): void => {
        this.pending.delete(id);
        this.sendCancel(id);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        request,
        started: false,
        seenAt: null,
        ...(onStarted ? { onStarted } : {}),
        resolve: (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
      });
      this.publish(id, request).catch((e: unknown) => {
        // a channel lost before the broker confirmed: the next connection publishes it again
        if (!this.pending.has(id) || !this.stopped) return;
        this.pending.delete(id);
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  /**
   * Sends at once when connected; otherwise leaves the call pending, and the next
   * connection publishes it with the others (the broker may be away: the call waits, as a
   * queued request would, under the task's timeout and abort signal).
   */
  private async publish(id: string, request: RemoteRequest): Promise<void> {
    if (this.stopped) throw new TransportError('STOKER_REMOTE_UNAVAILABLE', 'remote task not sent: the AMQP link was closed');
    if (this.pub) await this.send(this.pub, id, request);
  }

  private async send(pub: ConfirmChannel, id: string, request: RemoteRequest): Promise<void> {
    const queue = this.names.task(request.task);
    if (!this.declared.has(queue)) {
      await pub.assertQueue(queue, { durable: true });
      this.declared.add(queue);
    }
    // batchReplies: this engine reads several replies in one message (docs/amqp.md, "Remote tasks")
    const { body, headers } = this.options.codec.seal({ type: 'request', id, replyTo: this.replyQueue, batchReplies: true, request });
    await new Promise<void>((resolve, reject) => {
      // mandatory: a queue deleted under us returns the request (see open), never drops it.
      // Transient: the call is held here until its reply and published again after any
      // reconnect, a broker restart included, so a copy on the broker's disk would only be a
      // second delivery; writing it cost the broker about half its CPU per request.
      pub.sendToQueue(
        queue,
        body,
        { persistent: false, mandatory: true, messageId: id, headers, contentType: 'application/json' },
        (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
      );
    });
    this.stats.published += 1;
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
      const p = id === undefined ? undefined : this.pending.get(id);
      if (p && this.pub === pub) void this.send(pub, id!, p.request).catch(() => undefined);
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
    for (const [id, p] of this.pending) void this.send(pub, id, p.request).catch(() => undefined);
  }

  private lost(reason: string): void {
    if (!this.stopped) this.connection.reset(reason);
  }

  private onMessage(msg: ConsumeMessage): void {
    const opened = this.options.codec.open(msg.content, msg.properties.headers, msg.fields.redelivered);
    if (!opened.ok) return;
    const m = opened.message;
    if (m.type === 'started' || m.type === 'heartbeat') {
      const p = typeof m.id === 'string' ? this.pending.get(m.id) : undefined;
      if (p) {
        if (!p.started) p.onStarted?.();
        p.started = true;
        p.seenAt = Date.now();
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
      const p = this.pending.get(reply.id);
      if (!p) {
        this.stats.unknownReplies += 1;
        continue;
      }
      if (reply.epoch !== p.request.epoch || reply.runId !== p.request.runId || reply.atom !== p.request.atom) {
        this.stats.staleReplies += 1;
        continue;
      }
      this.pending.delete(reply.id);
      this.stats.replies += 1;
      p.resolve(reply.result);
    }
  }
}
