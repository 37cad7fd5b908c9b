/**
 * A RabbitMQ virtual host per test (docs/amqp.md), made with `rabbitmqctl` and deleted by
 * `drop()`. The broker comes from `STOKER_TEST_AMQP_URL` (default
 * `amqp://guest:guest@127.0.0.1:5672/`); `rabbitmqctl` must work on this host (override with
 * `STOKER_TEST_RABBITMQCTL`). When the broker is unreachable the caller skips, after
 * `SKIP amqp: <reason>` is printed; with `STOKER_REQUIRE_SERVICES=1` it fails instead, as
 * the databases do (test/helpers/databases.ts).
 *
 * @example
 * ```ts
 * const broker = await createTestVhost();
 * if (!broker) return ctx.skip();
 * … broker.url …
 * await broker.drop();
 * ```
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import amqp from 'amqplib';

const run = promisify(execFile);

export interface TestVhost {
  /** the vhost's URL, with the test broker's credentials */
  url: string;
  vhost: string;
  /** the broker's URL with this host and port, for bad-credential tests */
  baseUrl: string;
  drop(): Promise<void>;
}

export function amqpBaseUrl(): string {
  return process.env.STOKER_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
}

const ctl = (): string => process.env.STOKER_TEST_RABBITMQCTL ?? 'rabbitmqctl';

let reachable: Promise<string | null> | null = null;

/** null when the broker answers, else why not. */
export function amqpUnreachable(): Promise<string | null> {
  reachable ??= (async () => {
    try {
      const c = await amqp.connect(amqpBaseUrl(), { timeout: 3000 });
      await c.close();
      await run(ctl(), ['status'], { timeout: 30_000 });
      return null;
    } catch (e) {
      return `RabbitMQ at ${amqpBaseUrl().replace(/:[^:@/]*@/, ':***@')} (with rabbitmqctl) unavailable: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    }
  })();
  return reachable;
}

/** A fresh vhost the test user may use, or null (after printing SKIP) when RabbitMQ is unavailable. */
export async function createTestVhost(): Promise<TestVhost | null> {
  const reason = await amqpUnreachable();
  if (reason !== null) {
    if (process.env.STOKER_REQUIRE_SERVICES === '1') throw new Error(`STOKER_REQUIRE_SERVICES=1 and ${reason}`);
    console.warn(`SKIP amqp: ${reason}`);
    return null;
  }
  const base = new URL(amqpBaseUrl());
  const user = decodeURIComponent(base.username || 'guest');
  const vhost = `stoker_t_${randomBytes(5).toString('hex')}`;
  await run(ctl(), ['add_vhost', vhost], { timeout: 30_000 });
  await run(ctl(), ['set_permissions', '-p', vhost, user, '.*', '.*', '.*'], { timeout: 30_000 });
  const url = new URL(base.toString());
  url.pathname = `/${vhost}`;
  return {
    url: url.toString(),
    vhost,
    baseUrl: base.toString(),
    drop: async () => {
      await run(ctl(), ['delete_vhost', vhost], { timeout: 30_000 });
    },
  };
}
