/**
 * "No worker for a task name" made visible (docs/amqp.md, "Remote tasks"), on a real
 * RabbitMQ: a remote call that no worker starts within 1 s gets `atom.queued_remotely` in
 * its run's events (task, queue, wait so far); the engine's lease renewal carries the
 * number of such calls and the oldest wait, which `stoker engines list` shows (table and
 * JSON, through the CLI's own formatters); when a worker comes, `atom.remote_started`
 * records the whole wait. A call a worker starts at once writes neither event.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ENGINE_COLUMNS, formatTable } from '../../../src/cli/format.js';
import { linear, task } from '../../../src/flow/index.js';
import type { Runtime } from '../../../src/runtime/create-runtime.js';
import { Worker } from '../../../src/runtime/worker.js';
import { engineJson } from '../../../src/views/json.js';
import { describeEachDialect } from '../../helpers/databases.js';
import type { TestVhost } from '../../helpers/rabbitmq.js';
import { closeRemoteRuntime, openRemoteRuntime } from '../../helpers/remote-runtime.js';

const KEY = 'test-key-0123456789abcdef';

const flows = [
  linear('rwLateFlow', [task({ name: 'rwLate', requires: ['n'], provides: 'x', remote: true, execute: ({ n }) => (n as number) * 3 })]),
  linear('rwQuickFlow', [task({ name: 'rwQuick', requires: ['n'], provides: 'x', remote: true, execute: ({ n }) => (n as number) + 7 })]),
];

await describeEachDialect('remote calls waiting for a worker', (d) => {
  let broker: TestVhost | null = null;
  let runtime: Runtime | null = null;
  const workers: Worker[] = [];

  beforeAll(async () => {
    ({ broker, runtime } = await openRemoteRuntime(d.store, flows, KEY, { pollMs: 200, heartbeatMs: 200 }));
  }, 60_000);

  afterAll(async () => {
    await closeRemoteRuntime({ broker, runtime, workers });
  }, 60_000);

  const kinds = async (runId: string) => (await d.store.listEvents({ runId })).filter((e) => e.kind.includes('remote'));

  it('an atom no worker takes: queued_remotely in its events, counted in engines list, remote_started when a worker comes', async (ctx) => {
    if (!runtime || !broker) return ctx.skip();
    const { run } = await runtime.client.startRun('rwLateFlow', { n: 5 });
    // the engine reports the waiting call with its lease renewal
    const engines = await expect
      .poll(async () => (await d.store.listEngines()).filter((e) => e.remoteQueued > 0 && (e.remoteOldestMs ?? 0) >= 1000), {
        timeout: 20_000,
      })
      .toHaveLength(1)
      .then(() => d.store.listEngines());
    const busy = engines.find((e) => e.remoteQueued > 0)!;
    expect(busy.remoteQueued).toBe(1);
    const table = formatTable(ENGINE_COLUMNS, engines);
    expect(table).toContain('QUEUED REMOTELY');
    expect(table).toMatch(/1 \(oldest \d/);
    expect(engineJson(busy)).toMatchObject({ remoteQueued: 1, remoteOldestMs: expect.any(Number) });

    const queued = await expect
      .poll(async () => (await kinds(run.id)).find((e) => e.kind === 'atom.queued_remotely'), { timeout: 20_000 })
      .toBeDefined()
      .then(async () => (await kinds(run.id)).find((e) => e.kind === 'atom.queued_remotely')!);
    expect(queued.atom).toBe(0);
    expect(queued.data).toMatchObject({ task: 'rwLate', queue: 'stoker.task.rwLate' });
    expect((queued.data as { waitedMs: number }).waitedMs).toBeGreaterThanOrEqual(1000);

    workers.push(await Worker.open({ amqp: { url: broker.url, key: KEY }, flows, tasks: ['rwLate', 'rwQuick'], concurrency: 2 }));
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('SUCCESS');
    expect(done.result).toMatchObject({ x: 15 });
    const started = await expect
      .poll(async () => (await kinds(run.id)).find((e) => e.kind === 'atom.remote_started'), { timeout: 20_000 })
      .toBeDefined()
      .then(async () => (await kinds(run.id)).find((e) => e.kind === 'atom.remote_started')!);
    expect((started.data as { waitedMs: number }).waitedMs).toBeGreaterThanOrEqual((queued.data as { waitedMs: number }).waitedMs);
    // nothing waits any more, as of the next renewal
    await expect.poll(async () => (await d.store.listEngines()).every((e) => e.remoteQueued === 0), { timeout: 20_000 }).toBe(true);
    expect(formatTable(ENGINE_COLUMNS, await d.store.listEngines())).not.toMatch(/oldest/);
  }, 60_000);

  it('an atom a worker starts at once writes no event of its wait', async (ctx) => {
    if (!runtime || workers.length === 0) return ctx.skip();
    const { run } = await runtime.client.startRun('rwQuickFlow', { n: 1 });
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('SUCCESS');
    await new Promise((r) => setTimeout(r, 1500)); // past the threshold and one check
    expect(await kinds(run.id)).toEqual([]);
  }, 30_000);
});
