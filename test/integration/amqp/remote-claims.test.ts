/**
 * How many atoms an engine with remote workers claims at once (docs/amqp.md, "Performance"),
 * on a real RabbitMQ: once the atoms it placed lately went to workers, one claim statement
 * takes them for its free remote slots too, not only for its local `concurrency`; local
 * atoms claimed with them beyond `concurrency` wait for a local slot, so local execution
 * never passes it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { task, unordered } from '../../../src/flow/index.js';
import type { Runtime } from '../../../src/runtime/create-runtime.js';
import type { Worker } from '../../../src/runtime/worker.js';
import { describeEachDialect } from '../../helpers/databases.js';
import type { TestVhost } from '../../helpers/rabbitmq.js';
import { closeRemoteRuntime, openRemoteRuntime } from '../../helpers/remote-runtime.js';

const KEY = 'test-key-0123456789abcdef';
const WIDE = 30;
/** rcWide: every execution waits until all of them have started */
const arrived: (() => void)[] = [];
let localNow = 0;
let localMax = 0;

const flows = [
  unordered(
    'rcWarm',
    Array.from({ length: WIDE }, (_, i) => task({ name: `rcw${i}`, provides: `w${i}`, remote: true, execute: () => i })),
  ),
  unordered(
    'rcWide',
    Array.from({ length: WIDE }, (_, i) =>
      task({
        name: `rcx${i}`,
        provides: `x${i}`,
        remote: true,
        execute: () =>
          new Promise((resolve) => {
            arrived.push(() => resolve(i));
            if (arrived.length === WIDE) for (const go of arrived.splice(0)) go();
          }),
      }),
    ),
  ),
  unordered('rcMixed', [
    ...Array.from({ length: 10 }, (_, i) => task({ name: `rcm${i}`, provides: `m${i}`, remote: true, execute: () => i })),
    ...Array.from({ length: 10 }, (_, i) =>
      task({
        name: `rcl${i}`,
        provides: `l${i}`,
        execute: async () => {
          localNow += 1;
          localMax = Math.max(localMax, localNow);
          await new Promise((r) => setTimeout(r, 20));
          localNow -= 1;
          return i;
        },
      }),
    ),
  ]),
];

await describeEachDialect('claims of an engine with remote workers', (d) => {
  let broker: TestVhost | null = null;
  let runtime: Runtime | null = null;
  let worker: Worker | null = null;

  beforeAll(async () => {
    ({ broker, runtime, worker } = await openRemoteRuntime(
      d.store,
      flows,
      KEY,
      { concurrency: 2, remoteConcurrency: 64, pollMs: 200 },
      { concurrency: 40 },
    ));
  }, 60_000);

  afterAll(async () => {
    await closeRemoteRuntime({ broker, runtime, workers: [worker] });
  }, 60_000);

  it('remote atoms beyond the local slots are claimed together: 30 out at once in a few claim statements', async (ctx) => {
    if (!runtime?.engine || !worker) return ctx.skip();
    const warm = await runtime.client.startRun('rcWarm', {});
    expect((await runtime.client.waitForRun(warm.run.id, { timeoutMs: 20_000 })).status).toBe('SUCCESS');
    const before = runtime.engine.stats.claimCommits;
    const { run } = await runtime.client.startRun('rcWide', {});
    // every task waits for all 30 to have started: the run ends only if all were out at once
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('SUCCESS');
    // two local slots: 15 claim statements or more if each claim took only those
    expect(runtime.engine.stats.claimCommits - before).toBeLessThanOrEqual(4);
  }, 30_000);

  it('local atoms claimed with remote ones run at most `concurrency` at a time', async (ctx) => {
    if (!runtime?.engine || !worker) return ctx.skip();
    localMax = 0;
    const { run } = await runtime.client.startRun('rcMixed', {});
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('SUCCESS');
    expect(localMax).toBe(2);
  }, 30_000);
});
