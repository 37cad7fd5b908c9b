/**
 * Tasks that share a queue (`remote: { queue }`, docs/amqp.md "Remote tasks"): calls of
 * different tasks made in one turn travel in one request message on the shared queue, one
 * worker consumes the queue and runs them all, and each outcome is recorded once. A worker
 * rejects, whole, a message carrying a task its flows do not route to the queue it came
 * from; and refuses to start with only part of a shared queue's tasks.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import { linear, task, unordered } from '../../../src/flow/index.js';
import type { Runtime } from '../../../src/runtime/create-runtime.js';
import { Worker } from '../../../src/runtime/worker.js';
import { MessageCodec } from '../../../src/transport/amqp/signed-messages.js';
import { describeEachDialect } from '../../helpers/databases.js';
import type { TestVhost } from '../../helpers/rabbitmq.js';
import { closeRemoteRuntime, openRemoteRuntime, requestCall } from '../../helpers/remote-runtime.js';

const KEY = 'test-key-0123456789abcdef';
const POOL = 'stoker.task.sq-pool';

const flows = [
  unordered('sqFlow', [
    task({ name: 'sqA', requires: ['i'], remote: { queue: 'sq-pool' }, execute: ({ i }) => (i as number) * 10 }),
    task({ name: 'sqB', requires: ['i'], remote: { queue: 'sq-pool' }, execute: ({ i }) => (i as number) + 1000 }),
  ]),
  // a remote task on a queue of its own: never accepted on the shared one
  linear('sqOwnFlow', [task({ name: 'sqOwn', requires: ['i'], remote: true, execute: () => 'own' })]),
];

const call = (id: string, task: string) => requestCall(id, task, task === 'sqOwn' ? 'sqOwnFlow' : 'sqFlow', { i: 1 });

await describeEachDialect('tasks sharing a remote queue', (d) => {
  let broker: TestVhost | null = null;
  let runtime: Runtime | null = null;
  const workers: Worker[] = [];

  beforeAll(async () => {
    // no worker yet: the first test reads the engine's messages itself before one starts
    ({ broker, runtime } = await openRemoteRuntime(d.store, flows, KEY, { pollMs: 200, concurrency: 16 }));
  }, 60_000);

  afterAll(async () => {
    await closeRemoteRuntime({ broker, runtime, workers });
  }, 60_000);

  const openWorker = async (tasks?: string[]) => {
    const w = await Worker.open({ amqp: { url: broker!.url, key: KEY }, flows, concurrency: 8, ...(tasks ? { tasks } : {}) });
    workers.push(w);
    return w;
  };

  it('calls of two tasks of one queue share messages; one worker runs both, each outcome recorded once', async (ctx) => {
    if (!runtime?.amqp?.remote || !broker) return ctx.skip();
    const remote = runtime.amqp.remote;
    const before = remote.snapshot();
    // the queue's messages as the engine sent them, left unacknowledged (they go back when this connection closes)
    const conn = await amqp.connect(broker.url);
    const codec = new MessageCodec({ key: KEY });
    const seen: { tasks: string[] }[] = [];
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue(POOL, { durable: true });
      await ch.consume(POOL, (msg) => {
        const opened = codec.open(msg!.content, msg!.properties.headers, msg!.fields.redelivered);
        if (!opened.ok) return;
        const m = opened.message as unknown as { request: { task: string }; more?: { request: { task: string } }[] };
        seen.push({ tasks: [m.request.task, ...(m.more ?? []).map((c) => c.request.task)] });
      });
      const runs = await runtime.client.startRuns(
        'sqFlow',
        Array.from({ length: 3 }, (_, i) => ({ i })),
      );
      await expect.poll(() => seen.flatMap((s) => s.tasks).length, { timeout: 20_000 }).toBe(6);
      expect(seen.length).toBe(remote.snapshot().requestMessages - before.requestMessages);
      // six calls claimed together go out in messages of two (spread over at least four
      // messages: docs/amqp.md), so three messages, one of them with a call of each task;
      // with a queue per task, each task's three calls would have gone one per message
      expect(seen.length).toBeLessThan(6);
      expect(seen.some((s) => s.tasks.includes('sqA') && s.tasks.includes('sqB'))).toBe(true);
      // the waits know their queue: a call unstarted for a second is reported with it
      await expect
        .poll(async () => (await d.store.listEvents({ runId: runs[0]!.id })).find((e) => e.kind === 'atom.queued_remotely')?.data, {
          timeout: 20_000,
        })
        .toMatchObject({ queue: POOL });
      await conn.close();

      const worker = await openWorker();
      expect([...worker.queues].sort()).toEqual(['sq-pool', 'sqOwn']);
      for (const [i, run] of runs.entries()) {
        expect((await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 })).status).toBe('SUCCESS');
        const results = Object.fromEntries((await d.store.getAtoms(run.id)).map((a) => [a.name, a.result]));
        expect(results).toEqual({ sqA: i * 10, sqB: i + 1000 });
      }
      expect(worker.stats.executed).toBe(6);
      expect(remote.snapshot().published - before.published).toBe(6);
      expect(remote.snapshot().unbatched - before.unbatched).toBe(0);
    } finally {
      await conn.close().catch(() => undefined);
    }
  }, 60_000);

  it('a signed message on the shared queue with a task not routed to it is rejected whole, never executed', async (ctx) => {
    if (!broker) return ctx.skip();
    const worker = workers[0] ?? (await openWorker());
    const before = worker.stats;
    const conn = await amqp.connect(broker.url);
    try {
      const ch = await conn.createConfirmChannel();
      const { queue: replyTo } = await ch.assertQueue('', { exclusive: true });
      const got: unknown[] = [];
      await ch.consume(replyTo, (msg) => got.push(msg), { noAck: true });
      const codec = new MessageCodec({ key: KEY });
      const send = (queue: string, m: Record<string, unknown>) => {
        const { body, headers } = codec.seal({ type: 'request', replyTo, batchReplies: true, ...m });
        return new Promise<void>((resolve, reject) =>
          ch.sendToQueue(queue, body, { headers }, (e: unknown) => (e ? reject(e as Error) : resolve())),
        );
      };
      const tag = `${d.dialect}-${Date.now()}`;
      // a follower of a task on its own queue; a first call of it; a shared task sent to the other queue
      await send(POOL, { ...call(`${tag}-a`, 'sqA'), more: [call(`${tag}-b`, 'sqB'), call(`${tag}-own`, 'sqOwn')] });
      await send(POOL, { ...call(`${tag}-own2`, 'sqOwn') });
      await send('stoker.task.sqOwn', { ...call(`${tag}-a2`, 'sqA') });
      await expect.poll(() => worker.stats.malformed! - before.malformed!, { timeout: 10_000 }).toBe(3);
      expect(worker.stats.executed! - before.executed!).toBe(0);
      expect(got).toEqual([]);
      await expect.poll(async () => (await ch.checkQueue(POOL)).messageCount, { timeout: 5_000 }).toBe(0);
    } finally {
      await conn.close();
    }
  }, 30_000);

  it('a worker given only some tasks of a shared queue fails at start, naming the queue and the tasks left out', async (ctx) => {
    if (!broker) return ctx.skip();
    const error = await openWorker(['sqA', 'sqOwn']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('STOKER_CONFIG_INVALID');
    expect((error as ValidationError).message).toContain('queue sq-pool is shared by tasks the worker leaves out: sqB (it executes sqA)');
    // all of them: the shared queue only
    const whole = await openWorker(['sqA', 'sqB']);
    expect([...whole.queues]).toEqual(['sq-pool']);
  }, 30_000);
});
