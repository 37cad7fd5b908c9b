/**
 * Channel errors that are not a connection loss (docs/amqp.md, "Connecting"): a task queue
 * deleted under the worker consuming it and the engine publishing to it, and the cancel
 * exchange deleted before the engine publishes a cancel on it (the broker closes that
 * channel with NOT_FOUND). Neither may leave an engine or a worker waiting forever: the
 * part whose channel failed, or whose consumer the broker cancelled, sets everything up
 * again as after a lost connection, and the next remote tasks run.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { linear, task } from '../../../src/flow/index.js';
import { createRuntime, type Runtime } from '../../../src/runtime/create-runtime.js';
import { Worker } from '../../../src/runtime/worker.js';
import { describeEachDialect } from '../../helpers/databases.js';
import { createTestVhost, type TestVhost } from '../../helpers/rabbitmq.js';

const KEY = 'test-key-0123456789abcdef';
const started: string[] = [];

const flows = [
  linear('ceOne', [task({ name: 'ceA', requires: ['n'], provides: 'x', remote: true, execute: ({ n }) => (n as number) + 1 })]),
  linear('ceHold', [
    task({
      name: 'ceWait',
      requires: ['tag'],
      remote: true,
      execute: ({ tag }, ctx) =>
        new Promise((resolve) => {
          started.push(String(tag));
          ctx.signal.addEventListener('abort', () => resolve('aborted'));
        }),
    }),
  ]),
];

await describeEachDialect('AMQP channel errors', (d) => {
  let broker: TestVhost | null = null;
  let runtime: Runtime | null = null;
  let worker: Worker | null = null;
  let admin: amqp.ChannelModel | null = null;

  beforeAll(async () => {
    broker = await createTestVhost();
    if (!broker) return;
    runtime = await createRuntime({ store: d.store, flows, amqp: { url: broker.url, key: KEY }, pollMs: 200, logLevel: 'silent' });
    await runtime.start();
    worker = await Worker.open({ amqp: { url: broker.url, key: KEY }, flows, tasks: ['ceA', 'ceWait'], concurrency: 4 });
    admin = await amqp.connect(broker.url);
  }, 60_000);

  afterAll(async () => {
    await admin?.close().catch(() => undefined);
    await worker?.stop({ drainMs: 0 });
    await runtime?.stop({ drain: false });
    await broker?.drop();
  }, 60_000);

  const runOne = async (n: number): Promise<void> => {
    const { run } = await runtime!.client.startRun('ceOne', { n });
    const done = await runtime!.client.waitForRun(run.id, { timeoutMs: 30_000 });
    expect(done.status).toBe('SUCCESS');
    expect(done.result).toMatchObject({ x: n + 1 });
  };

  it('a task queue deleted under the worker and the engine: both set it up again, the next task runs', async (ctx) => {
    if (!runtime || !worker || !admin) return ctx.skip();
    await runOne(1); // the engine has declared the queue, the worker consumes it
    const ch = await admin.createChannel();
    await ch.deleteQueue('stoker.task.ceA');
    await ch.close();
    await runOne(2);
    await runOne(3);
  }, 90_000);

  it('the cancel exchange deleted: the engine channel that fails on a cancel is set up again, the next task runs', async (ctx) => {
    if (!runtime || !worker || !admin) return ctx.skip();
    const ch = await admin.createChannel();
    await ch.deleteExchange('stoker.cancel');
    await ch.close();
    const tag = `${d.dialect}-${Date.now()}`;
    const { run } = await runtime.client.startRun('ceHold', { tag });
    await expect.poll(() => started.includes(tag), { timeout: 20_000 }).toBe(true);
    await runtime.client.cancel(run.id, 'test'); // the cancel is published to the missing exchange
    const cancelled = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(cancelled.status).toBe('CANCELLED');
    await runOne(4);
    await runOne(5);
  }, 90_000);
});
