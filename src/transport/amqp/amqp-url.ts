/**
 * AMQP URLs: checked once, before anything connects, and never shown with their password
 * (docs/amqp.md, "Connecting"). A malformed `--amqp` is a usage error naming what is wrong.
 *
 * @example
 * ```ts
 * checkAmqpUrl('amqp://guest:guest@127.0.0.1:5672/'); // ok
 * redactAmqpUrl('amqp://guest:secret@mq/prod'); // 'amqp://guest:***@mq/prod'
 * ```
 */
import { ValidationError } from '../../errors.js';

/** The URL with its password replaced by `***` (and a URL that does not parse reduced to its scheme). */
export function redactAmqpUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
    return scheme === undefined ? '(not a URL)' : `${scheme}:…`;
  }
}

/** Throws `STOKER_AMQP_URL_INVALID` (a usage error) unless `url` is an `amqp://` or `amqps://` URL with a host. */
export function checkAmqpUrl(url: string): URL {
  const fail = (why: string): never => {
    throw new ValidationError('STOKER_AMQP_URL_INVALID', `invalid AMQP URL ${redactAmqpUrl(url)}: ${why}`, {
      details: { url: redactAmqpUrl(url) },
    });
  };
  if (typeof url !== 'string' || url.trim() === '') return fail('it is empty');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('it does not parse as a URL (expected amqp://user:password@host:5672/vhost)');
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    return fail(`the scheme must be amqp: or amqps:, not ${parsed.protocol}`);
  }
  if (parsed.hostname === '') return fail('it names no host');
  if (parsed.port !== '' && (Number(parsed.port) < 1 || Number(parsed.port) > 65_535)) return fail(`port ${parsed.port} is out of range`);
  if (parsed.search !== '' && !/^\?(?:[a-z_]+=[^&]*&?)*$/i.test(parsed.search)) return fail('its query string is malformed');
  return parsed;
}
