/**
 * What a process holds when RabbitMQ is configured (docs/amqp.md): one connection, the
 * wake-up exchange and, with a signing key, the engine's side of remote tasks (a reply
 * queue) or, in a worker, consumers of task queues.
 *
 * @example
 * ```ts
 * const link = await AmqpLink.open({ url: 'amqp://guest:guest@127.0.0.1:5672/', key: process.env.KEY });
 * hub.attach(link.wakeups);
 * await link.close();
 * ```
 */
import type { Logger } from '../../core/logger.js';
import { AmqpConnection } from './amqp-connection.js';
import { AmqpRemoteTasks } from './amqp-remote-tasks.js';
import { AmqpTaskConsumer, type RemoteHandler } from './amqp-task-consumer.js';
import { AmqpWakeups } from './amqp-wakeups.js';
import { checkAmqpUrl } from './amqp-url.js';
import { MessageCodec, checkAmqpKey } from './signed-messages.js';

export interface AmqpLinkOptions {
  url: string;
  /**
   * The key shared by engines and workers to sign remote-task messages (HMAC-SHA256, at
   * least 16 characters). Without it remote tasks are off: every task runs in the engine.
   */
  key?: string;
  /** the prefix of the exchange and queue names (default `stoker`): deployments sharing a virtual host differ by it */
  prefix?: string;
  /** bound on the first connection (default 5,000 ms) */
  connectTimeoutMs?: number;
  /** remote-task messages larger than this are rejected (default 4 MiB) */
  maxMessageBytes?: number;
  logger?: Logger;
  /** the connection's name in the broker's list (e.g. `stoker-engine`) */
  name?: string;
}

export class AmqpLink {
  /** the engine's side of remote tasks; null without a key */
  readonly remote: AmqpRemoteTasks | null;
  private readonly consumers: AmqpTaskConsumer[] = [];

  private constructor(
    readonly connection: AmqpConnection,
    readonly wakeups: AmqpWakeups,
    readonly prefix: string,
    private readonly codec: MessageCodec | null,
  ) {
    this.remote = codec ? new AmqpRemoteTasks(connection, { prefix, codec }) : null;
  }

  /** Checks the URL and key, connects (bounded by `connectTimeoutMs`) and declares what it uses. */
  static async open(options: AmqpLinkOptions): Promise<AmqpLink> {
    checkAmqpUrl(options.url);
    const codec =
      options.key === undefined
        ? null
        : new MessageCodec({ key: checkAmqpKey(options.key), ...(options.maxMessageBytes ? { maxBytes: options.maxMessageBytes } : {}) });
    const prefix = options.prefix ?? 'stoker';
    const connection = await AmqpConnection.open({
      url: options.url,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.name !== undefined ? { name: options.name } : {}),
    });
    const link = new AmqpLink(connection, new AmqpWakeups(connection, { exchange: `${prefix}.wake` }), prefix, codec);
    try {
      await link.wakeups.start();
      await link.remote?.start();
    } catch (e) {
      await connection.close();
      throw e;
    }
    return link;
  }

  /** the rejected-message counters of remote tasks (all zero without a key) */
  get rejected(): MessageCodec['rejected'] | null {
    return this.codec?.rejected ?? null;
  }

  /** Starts consuming `queues`, each with the tasks it accepts (a worker); needs the key. */
  async consume(options: {
    queues: ReadonlyMap<string, ReadonlySet<string>>;
    concurrency: number;
    handle: RemoteHandler;
    heartbeatMs?: number;
  }): Promise<AmqpTaskConsumer> {
    if (!this.codec) checkAmqpKey(undefined);
    const consumer = new AmqpTaskConsumer(this.connection, { prefix: this.prefix, codec: this.codec!, ...options });
    await consumer.start();
    this.consumers.push(consumer);
    return consumer;
  }

  async close(): Promise<void> {
    for (const c of this.consumers) await c.stop(0);
    await this.remote?.stop();
    await this.wakeups.stop();
    await this.connection.close();
  }
}
