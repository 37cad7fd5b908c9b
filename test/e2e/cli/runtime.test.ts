/**
 * createRuntime and loadFlowsModule, in process: the wiring the CLI commands stand on.
 */
import { sqliteMigrations } from '../../../src/store/sqlite/migrations.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { isStokerError } from '../../../src/errors.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import { createRuntime } from '../../../src/runtime/create-runtime.js';
import { loadFlowsModule } from '../../../src/runtime/load-flows.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { ROOT, tempDir } from './harness.js';

let dir: { path: string; remove(): void };
beforeAll(() => {
  dir = tempDir('stoker-runtime-');
});
afterAll(() => dir?.remove());

const double = linear('double', [task({ name: 'twice', requires: ['n'], provides: 'm', execute: ({ n }) => (n as number) * 2 })]);

describe('createRuntime', () => {
  it('wires a migrated store, the flows and N engines sharing one wake-up hub; stop closes the store it opened', async () => {
    const runtime = await createRuntime({
      store: `sqlite:${join(dir.path, 'a.db')}`,
      flows: [double],
      engines: 2,
      concurrency: 2,
      pollMs: 20,
      logLevel: 'silent',
    });
    expect(runtime.migrated.map((m) => [m.module, m.version])).toEqual([
      ...sqliteMigrations.map((m) => ['core', m.version]),
      ['orchestration', 1],
    ]);
    expect(runtime.engines).toHaveLength(2);
    expect(runtime.engine).toBe(runtime.engines[0]);
    expect(runtime.flows.list().map((f) => f.name)).toEqual(['double']);
    await runtime.start();
    expect((await runtime.store.listEngines()).map((e) => e.id).sort()).toEqual(runtime.engines.map((e) => e.id).sort());

    const runs = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => runtime.client.startRun('double', { n })));
    const done = await Promise.all(runs.map(({ run }) => runtime.client.waitForRun(run.id, { timeoutMs: 10_000 })));
    expect(done.map((r) => [r.status, r.result])).toEqual([1, 2, 3, 4, 5, 6].map((n) => ['SUCCESS', { m: 2 * n }]));
    expect(runtime.engines.reduce((sum, e) => sum + e.stats.executed, 0)).toBe(6);

    await runtime.stop();
    await runtime.stop(); // twice is fine
    const closed = await runtime.store.getRun(runs[0]!.run.id).catch((e: unknown) => e);
    expect(isStokerError(closed) && closed.code).toBe('STOKER_STORE_CLOSED');
  });

  it('with engines: 0 is a client; a store passed in stays open after stop', async () => {
    const store = new SqliteStore({ path: join(dir.path, 'b.db') });
    const runtime = await createRuntime({ store, flows: new FlowRegistry(), engines: 0, logLevel: 'silent' });
    expect(runtime.engines).toEqual([]);
    runtime.flows.register(double);
    const { run } = await runtime.client.startRun('double', { n: 4 });
    expect(run.status).toBe('PENDING');
    await runtime.start(); // no engines: nothing claims
    await runtime.stop();
    expect((await store.getRun(run.id))?.status).toBe('PENDING');
    expect((await store.listEngines()).length).toBe(0);
    await store.close();
  });

  it('rejects a bad engine count and log level before opening anything', async () => {
    const e1 = await createRuntime({ store: 'foo://never-opened', engines: -1 }).catch((e: unknown) => e);
    expect(isStokerError(e1) && e1.code).toBe('STOKER_CONFIG_INVALID');
    const e2 = await createRuntime({ store: 'foo://never-opened', logLevel: 'loud' as never }).catch((e: unknown) => e);
    expect(isStokerError(e2) && e2.message).toMatch(/^log level must be one of trace, debug/);
  });
});

describe('loadFlowsModule', () => {
  it('loads a TypeScript flows module and registers its flows in the given registry', async () => {
    const flows = new FlowRegistry();
    const loaded = await loadFlowsModule(join(ROOT, 'examples', 'order-flows.ts'), flows);
    expect(loaded.map((f) => `${f.name}@${f.version}`)).toEqual(['order@1', 'order-express@1']);
    expect(flows.get('order').graph.atoms.map((a) => a.name)).toEqual([
      'validate-order',
      'reserve-inventory',
      'charge-payment',
      'ship-order',
    ]);
    // loading it again is harmless: the same graphs register as no-ops
    await loadFlowsModule(join(ROOT, 'examples', 'order-flows.ts'), flows);
    expect(flows.list()).toHaveLength(2);
  });

  it('names the file in a STOKER_FLOWS_MODULE_INVALID error', async () => {
    const e = await loadFlowsModule(join(dir.path, 'nope.ts')).catch((err: unknown) => err);
    expect(isStokerError(e) && e.code).toBe('STOKER_FLOWS_MODULE_INVALID');
    expect((e as Error).message).toBe(`flows module ${join(dir.path, 'nope.ts')} was not found (looked for ${join(dir.path, 'nope.ts')})`);
  });
});
