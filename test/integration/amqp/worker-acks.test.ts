/**
 * How a worker takes and acknowledges request messages (docs/amqp.md, "Remote tasks" and
 * "Performance"): its prefetch applies to each queue it consumes (at most `concurrency`
 * unacknowledged messages from each), while at most `concurrency` calls execute; request
 * messages done in one turn are acknowledged together (`basic.ack` with `multiple`) when
 * they are the oldest unacknowledged ones of the channel, else one by one, so an
 * acknowledgement never covers a message whose replies are not confirmed. A stopping worker
 * leaves the calls it holds but has not started to other workers.
 *
 * Needs only the broker: the requests are sent by a raw client, as an engine sends them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linear, task } from '../../../src/flow/index.js';
import { Worker } from '../../../src/runtime/worker.js';
import type { AmqpConnection } from '../../../src/transport/amqp/amqp-connection.js';
import { createTestVhost, type TestVhost } from '../../helpers/rabbitmq.js';
import { rawRemoteClient, requestCall } from '../../helpers/remote-runtime.js';

const KEY = 'test-key-0123456789abcdef';
const CONCURRENCY = 3;
/** executions wait here until released, by tag */
const holding = new Map<string, () => void>();

const holdTask = (name: string) =>
  task({
    name,
    requires: ['tag'],
    remote: true,
    execute: ({ tag }) => new Promise((resolve) => holding.set(String(tag), () => resolve(`done ${String(tag)}`))),
  });
const flows = [linear('waFlow', [holdTask('waA'), holdTask('waB'), holdTask('waC')])];
/** for a worker of its own, which the others' requests never reach */
const stopFlows = [linear('wsFlow', [holdTask('wsA'), holdTask('wsB')])];

describe('worker prefetch and acknowledgements', () => {
  let broker: TestVhost | null = null;
  let worker: Worker | null = null;
  let client: Awaited<ReturnType<typeof rawClient>> | null = null;

  /** a raw connection to the broker, with a reply queue whose replies it collects */
  async function rawClient(url: string) {
    const c = await rawRemoteClient(url, KEY);
    const replies = () =>
      c.got.flatMap((m) => (m.type === 'replies' ? (m.replies as Record<string, unknown>[]) : m.type === 'reply' ? [m] : []));
    /** one request message with one call of `task`, whose input `tag` names its hold */
    const send = (task: string, tag: string, flow = 'waFlow') =>
      c.send(
        `stoker.task.${task}`,
        c.codec.seal({ type: 'request', replyTo: c.replyTo, batchReplies: true, ...requestCall(tag, task, flow, { tag }) }),
      );
    const repliesTo = (tag: string) => replies().filter((r) => r.id === tag).length;
    const ready = async (task: string) => (await c.ch.checkQueue(`stoker.task.${task}`)).messageCount;
    return { conn: c.conn, send, repliesTo, ready };
  }

  /** releases these holds in one turn of the event loop */
  const release = (...tags: string[]) => {
    for (const tag of tags) holding.get(tag)!();
    for (const tag of tags) holding.delete(tag);
  };

  beforeAll(async () => {
    broker = await createTestVhost();
    if (!broker) return;
    worker = await Worker.open({ amqp: { url: broker.url, key: KEY }, flows, concurrency: CONCURRENCY });
    client = await rawClient(broker.url);
  }, 60_000);

  afterAll(async () => {
    for (const go of holding.values()) go();
    await worker?.stop({ drainMs: 0 });
    await client?.conn.close();
    await broker?.drop();
  }, 60_000);

  it('takes up to `concurrency` request messages from each of its queues, and executes `concurrency` calls at a time', async (ctx) => {
    if (!worker || !client) return ctx.skip();
    const c = client;
    const tags = ['waA', 'waB', 'waC'].flatMap((t) => [0, 1, 2].map((i) => [t, `p-${t}-${i}`] as const));
    for (const [t, tag] of tags) await c.send(t, tag);
    await expect.poll(() => holding.size, { timeout: 10_000 }).toBe(CONCURRENCY);
    // every message is with the worker (a channel-wide prefetch would have left six in the queues)
    for (const t of ['waA', 'waB', 'waC']) await expect.poll(() => c.ready(t), { timeout: 10_000 }).toBe(0);
    expect(worker.stats.inFlight).toBe(tags.length);
    // the calls waiting for a slot start as others end
    while (holding.size > 0) {
      const running = [...holding.keys()];
      expect(running.length).toBeLessThanOrEqual(CONCURRENCY);
      release(...running);
      await expect.poll(() => running.every((tag) => c.repliesTo(tag) === 1), { timeout: 10_000 }).toBe(true);
    }
    for (const [, tag] of tags) expect(c.repliesTo(tag)).toBe(1);
    await expect.poll(() => worker!.stats.acked, { timeout: 10_000 }).toBe(tags.length);
  }, 30_000);

  it('acknowledges request messages done together, the oldest of its channel, with one `basic.ack` (`multiple`)', async (ctx) => {
    if (!worker || !client) return ctx.skip();
    const c = client;
    const tags = ['m-0', 'm-1', 'm-2'];
    for (const tag of tags) await c.send('waA', tag);
    await expect.poll(() => tags.every((tag) => holding.has(tag)), { timeout: 10_000 }).toBe(true);
    const { acks, acked } = worker.stats;
    release(...tags);
    await expect.poll(() => worker!.stats.acked! - acked!, { timeout: 10_000 }).toBe(3);
    // the three replies went in one message, confirmed at once: one acknowledgement for the three
    expect(worker.stats.acks! - acks!).toBe(1);
    for (const tag of tags) expect(c.repliesTo(tag)).toBe(1);
  }, 30_000);

  it('never acknowledges a message whose replies are not confirmed: with an older one still executing, the others go one by one', async (ctx) => {
    if (!worker || !client) return ctx.skip();
    const c = client;
    const [first, middle, last] = ['n-0', 'n-1', 'n-2'];
    for (const tag of [first!, middle!, last!]) await c.send('waB', tag);
    await expect.poll(() => [first!, middle!, last!].every((tag) => holding.has(tag)), { timeout: 10_000 }).toBe(true);
    const { acks, acked, duplicates } = worker.stats;
    release(first!, last!);
    await expect.poll(() => worker!.stats.acked! - acked!, { timeout: 10_000 }).toBe(2);
    // `last` came after `middle`, which still executes: a `multiple` up to `last` would cover it
    expect(worker.stats.acks! - acks!).toBe(2);
    // the connection goes (as if cut): only `middle`, unacknowledged, is delivered again
    const connection = (worker as unknown as { amqp: { connection: AmqpConnection } }).amqp.connection;
    connection.reset('test: connection cut');
    await expect.poll(() => worker!.stats.duplicates! - duplicates!, { timeout: 15_000 }).toBe(1);
    release(middle!);
    // answered for both deliveries (the first one's acknowledgement died with its channel)
    await expect.poll(() => c.repliesTo(middle!), { timeout: 10_000 }).toBe(2);
    expect(c.repliesTo(first!)).toBe(1);
    expect(c.repliesTo(last!)).toBe(1);
    expect(worker.stats.duplicates! - duplicates!).toBe(1);
    await expect.poll(() => c.ready('waB'), { timeout: 10_000 }).toBe(0);
  }, 30_000);

  it('a stopping worker does not start the calls it holds waiting for a slot: their messages go back to the queue', async (ctx) => {
    if (!broker || !client) return ctx.skip();
    const c = client;
    const w = await Worker.open({ amqp: { url: broker.url, key: KEY }, flows: stopFlows, concurrency: 1 });
    try {
      await c.send('wsA', 's-run', 'wsFlow');
      await expect.poll(() => holding.has('s-run'), { timeout: 10_000 }).toBe(true);
      await c.send('wsB', 's-held', 'wsFlow');
      // delivered (its queue's own prefetch), waiting for the one slot
      await expect.poll(() => c.ready('wsB'), { timeout: 10_000 }).toBe(0);
      expect(w.stats.inFlight).toBe(2);
      const stopped = w.stop({ drainMs: 20_000 });
      release('s-run');
      await stopped;
      expect(c.repliesTo('s-run')).toBe(1);
      // never executed nor answered; back in its queue for another worker
      expect(holding.has('s-held')).toBe(false);
      expect(c.repliesTo('s-held')).toBe(0);
      await expect.poll(() => c.ready('wsB'), { timeout: 10_000 }).toBe(1);
    } finally {
      await w.stop({ drainMs: 0 });
    }
  }, 40_000);
});
