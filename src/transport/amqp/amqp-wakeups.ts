/**
 * Wake-ups over AMQP (protocol 6; docs/amqp.md, "Wake-ups"): a process announces claimable
 * work by publishing one small message to a fanout exchange, and every subscribed process
 * consumes from a private, auto-deleted queue bound to it and wakes its idle engines.
 *
 * Only a process with subscribers (engines) has a queue: a process that only announces (a
 * run client, `stoker run`, a worker) would otherwise get every message back, its own
 * included, and the broker would deliver each one to it for nothing.
 *
 * A message is a hint, never state: a lost, duplicated, delayed or forged one changes only
 * when an engine next looks (the poll stays the safety net). One sent for a start while its
 * commit is still being made (`notifyStarting`, MySQL/MariaDB: src/engine/run-client.ts)
 * names the run, so that the hearers' claims wait for that commit instead of missing its
 * uncommitted rows; a forged name costs an engine at most a second's wait
 * (src/store/mysql/visible-claims.ts).
 *
 * An announcement after a quiet spell (nothing published for {@link QUIET_MS}) is
 * published at once: an idle system starts a run without waiting for a turn of the event
 * loop. Otherwise announcements are batched: calls of {@link AmqpWakeups.notify} made
 * before the next turn of the event loop share one message, as the PostgreSQL NOTIFY path
 * shares one statement per commit batch, so a busy engine never publishes per transaction.
 *
 * @example
 * ```ts
 * const wakeups = new AmqpWakeups(connection, { exchange: 'stoker.wake' });
 * const off = await wakeups.subscribe(() => hub.wake());
 * wakeups.notify(); // after a commit that made atoms claimable for others
 * ```
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Channel, ChannelModel } from 'amqplib';
import { writeNow, type AmqpConnection } from './amqp-connection.js';

/**
 * How long after a message the next announcement waits for the end of its turn of the
 * event loop, to share one message with the others of that turn. A busy engine ends a
 * commit batch every millisecond or so: it keeps one message per turn. A lone start on an
 * idle system goes out at once, not behind whatever else its turn holds.
 */
export const QUIET_MS = 5;

/** A wake-up's name of a run whose start was committing (what the engine's `WakeHint` holds). */
export interface StartingRunHint {
  startingRun: string;
}

export interface AmqpWakeupsOptions {
  /** the fanout exchange (default `stoker.wake`); engines of one deployment share it */
  exchange?: string;
}

export class AmqpWakeups {
  /** published: messages sent; received: wake-ups from other processes; ignored: this process's own or unreadable messages */
  readonly stats = { published: 0, received: 0, ignored: 0 };
  private readonly exchange: string;
  /** tells this process's own messages apart (it is already woken in memory) */
  private readonly origin = randomUUID();
  private channel: Channel | null = null;
  /** the channel this process's queue is being set up on, then is consumed from */
  private consuming: Channel | null = null;
  /** the channel this process's queue is consumed from, once it is */
  private consumed: Channel | null = null;
  private readonly listeners = new Set<(hint?: StartingRunHint) => void>();
  private scheduled = false;
  /** when the last message was published (performance.now()), -Infinity before the first */
  private lastPublishedAt = Number.NEGATIVE_INFINITY;
  private stopped = false;
  private readonly setup = (model: ChannelModel): Promise<void> => this.open(model);

  constructor(
    private readonly connection: AmqpConnection,
    options: AmqpWakeupsOptions = {},
  ) {
    this.exchange = options.exchange ?? 'stoker.wake';
  }

  /** Declares the exchange (and, with subscribers, this process's queue) on every connection. */
  async start(): Promise<void> {
    await this.connection.onConnect(this.setup);
  }

  /**
   * Calls `onWake` when another process announces work, and once each time this process's
   * queue is bound (the first subscription, each reconnection: announcements may have been
   * missed until then). The first subscriber makes the queue. Returns the unsubscribe
   * function (the queue stays until the connection ends).
   */
  subscribe(onWake: (hint?: StartingRunHint) => void): () => void {
    this.listeners.add(onWake);
    const ch = this.channel;
    if (ch && this.consuming !== ch) {
      this.consume(ch).catch(() => {
        if (this.channel === ch) this.lost('wake-up queue setup failed');
      });
    }
    return () => this.listeners.delete(onWake);
  }

  /** whether this process's queue is bound and consumed on the current connection */
  get listening(): boolean {
    return this.channel !== null && this.consumed === this.channel;
  }

  /**
   * Announces claimable work: at once after a quiet spell ({@link QUIET_MS}); else calls
   * until the next turn of the event loop share one message.
   */
  notify(): void {
    if (this.scheduled) return;
    if (performance.now() - this.lastPublishedAt >= QUIET_MS) {
      this.publish(true);
      return;
    }
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.publish();
    });
  }

  /**
   * Announces a run whose start is committing, naming it, at once; false (nothing sent) unless
   * it can go out at once: after a quiet spell, with a channel. The caller then announces
   * after the commit ({@link notify}).
   */
  notifyStarting(runId: string): boolean {
    if (this.scheduled || performance.now() - this.lastPublishedAt < QUIET_MS) return false;
    return this.publish(true, runId);
  }

  /** `now`: written to the socket before this returns, not at the end of the turn ({@link writeNow}); whether it went out */
  private publish(now = false, startingRun?: string): boolean {
    const ch = this.channel;
    if (!ch) return false; // broker away: the poll finds the work
    try {
      const message = startingRun === undefined ? { from: this.origin } : { from: this.origin, run: startingRun };
      ch.publish(this.exchange, '', Buffer.from(JSON.stringify(message)), { persistent: false });
      if (now) writeNow(ch);
      this.stats.published += 1;
      this.lastPublishedAt = performance.now();
      return true;
    } catch {
      // the channel closed under us; the reconnect sets a new one up
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.connection.offConnect(this.setup);
    this.listeners.clear();
    const ch = this.channel;
    this.channel = null;
    // let a publish scheduled in this turn go out first
    await new Promise<void>((resolve) => setImmediate(resolve));
    await ch?.close().catch(() => undefined);
  }

  private async open(model: ChannelModel): Promise<void> {
    const ch = await model.createChannel();
    ch.on('error', () => undefined);
    await ch.assertExchange(this.exchange, 'fanout', { durable: true });
    this.channel = ch;
    ch.on('close', () => {
      if (this.channel !== ch) return;
      this.channel = null;
      this.lost('wake-up channel closed');
    });
    if (this.listeners.size > 0) await this.consume(ch);
  }

  /** Binds this process's queue on `ch` and consumes it; then wakes the subscribers (announcements may have been missed until now). */
  private async consume(ch: Channel): Promise<void> {
    this.consuming = ch;
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await ch.bindQueue(queue, this.exchange, '');
    await ch.consume(
      queue,
      (msg) => {
        if (!msg) return this.lost('wake-up consumer cancelled');
        let body: { from?: unknown; run?: unknown } | null;
        try {
          body = JSON.parse(msg.content.toString('utf8')) as { from?: unknown; run?: unknown } | null;
        } catch {
          body = null;
        }
        const from = body?.from;
        // this process's own message (already woken in memory), or not one of ours
        if (from === this.origin || typeof from !== 'string') {
          this.stats.ignored += 1;
          return;
        }
        this.stats.received += 1;
        // a run id as the tables hold them (VARBINARY(255)); anything else is no name
        const run = body?.run;
        this.fire(typeof run === 'string' && run.length > 0 && Buffer.byteLength(run) <= 255 ? { startingRun: run } : undefined);
      },
      { noAck: true },
    );
    this.consumed = ch;
    // wake-ups may have been missed before the queue was bound, or while disconnected
    this.fire();
  }

  /** the channel failed while the connection stays up: set it up again on a new connection (docs/amqp.md, "Connecting") */
  private lost(reason: string): void {
    if (!this.stopped) this.connection.reset(reason);
  }

  private fire(hint?: StartingRunHint): void {
    for (const fn of this.listeners) fn(hint);
  }
}
