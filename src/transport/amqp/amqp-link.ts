/**
 * What a process holds when RabbitMQ is configured (docs/amqp.md): one connection, the
 * wake-up exchange, and (for remote tasks) the request and reply queues built on it.
 *
 * @example
 * ```ts
 * const link = await AmqpLink.open({ url: 'amqp://guest:guest@127.0.0.1:5672/' });
 * hub.attach(link.wakeups);
 * await link.close();
 * ```
 */
import type { Logger } from '../../core/logger.js';
import { AmqpConnection } from './amqp-connection.js';
import { AmqpWakeups } from './amqp-wakeups.js';

export interface AmqpLinkOptions {
  url: string;
  /** the prefix of the exchange and queue names (default `stoker`): deployments sharing a virtual host differ by it */
  prefix?: string;
  /** bound on the first connection (default 5,000 ms) */
  connectTimeoutMs?: number;
  logger?: Logger;
  /** the connection's name in the broker's list (e.g. `stoker-engine`) */
  name?: string;
}

export class AmqpLink {
  private constructor(
    readonly connection: AmqpConnection,
    readonly wakeups: AmqpWakeups,
    readonly prefix: string,
  ) {}

  /** Connects (bounded by `connectTimeoutMs`) and declares the wake-up exchange. */
  static async open(options: AmqpLinkOptions): Promise<AmqpLink> {
    const prefix = options.prefix ?? 'stoker';
    const connection = await AmqpConnection.open({
      url: options.url,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.name !== undefined ? { name: options.name } : {}),
    });
    const wakeups = new AmqpWakeups(connection, { exchange: `${prefix}.wake` });
    try {
      await wakeups.start();
    } catch (e) {
      await connection.close();
      throw e;
    }
    return new AmqpLink(connection, wakeups, prefix);
  }

  async close(): Promise<void> {
    await this.wakeups.stop();
    await this.connection.close();
  }
}
