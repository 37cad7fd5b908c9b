/**
 * `openAmqp(options)`: connects to RabbitMQ for wake-ups and remote tasks (docs/amqp.md).
 * The AMQP driver is loaded only here, when asked for, so importing the package loads none.
 *
 * @example
 * ```ts
 * const amqp = await openAmqp({ url: 'amqp://guest:guest@127.0.0.1:5672/' });
 * const engine = new Engine({ store, flows, amqp });
 * await engine.start();
 * …
 * await engine.stop();
 * await amqp.close();
 * ```
 */
import type { AmqpLink, AmqpLinkOptions } from '../transport/amqp/amqp-link.js';

export type AmqpOptions = AmqpLinkOptions;
export type Amqp = AmqpLink;

/** Checks the URL, connects within `connectTimeoutMs` (default 5 s) and declares the wake-up exchange. */
export async function openAmqp(options: AmqpOptions): Promise<Amqp> {
  const { checkAmqpUrl } = await import('../transport/amqp/amqp-url.js');
  checkAmqpUrl(options.url);
  const { AmqpLink } = await import('../transport/amqp/amqp-link.js');
  return AmqpLink.open(options);
}
