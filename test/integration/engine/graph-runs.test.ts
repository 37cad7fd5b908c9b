/**
 * Runs of graphs built at run time (the seam the orchestration layer builds on), on every
 * dialect: step types registered with an engine execute the atoms by type name with their
 * stored parameters; inputs flow between steps; an engine that lacks a step type hands its
 * atoms back to one that has it; a graph can be a child run; a step type's revert runs on
 * failure. And the run client on its own, without an engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { RunClient } from '../../../src/engine/run-client.js';
import { WakeHub } from '../../../src/engine/wake-hub.js';
import { buildGraph } from '../../../src/flow/build-graph.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import { StepTypeRegistry, type StepType } from '../../../src/flow/step-type.js';
import type { JsonValue } from '../../../src/core/json.js';
import type { Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';

for (const dialect of testDialects()) {
  describe(`runs of built graphs on ${dialect}`, () => {
    let db: TestStore | null = null;
    let store: Store;
    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (db) store = db.store;
    });
    afterAll(async () => {
      await db?.drop();
    });
    const dbIt = (name: string, fn: () => Promise<void>) =>
      it(name, async (ctx) => {
        if (db === null) return ctx.skip();
        await fn();
      });

    const seen: { type: string; params: JsonValue; inputs: Record<string, JsonValue>; engine: string }[] = [];
    const makeSteps = (engine: string, ...types: string[]): StepTypeRegistry => {
      const steps = new StepTypeRegistry();
      for (const type of types) {
        const step: StepType = {
          type,
          execute: (params, inputs) => {
            seen.push({ type, params, inputs, engine });
            const p = params as { value?: number; fail?: boolean };
            if (p.fail) throw new Error(`step failed on purpose`);
            return { id: `${type}:${String(p.value ?? 0)}`, total: (p.value ?? 0) + Number(inputs.before ?? 0) };
          },
          revert: (params) => {
            seen.push({ type: `${type}.revert`, params, inputs: {}, engine });
          },
        };
        steps.register(step);
      }
      return steps;
    };

    dbIt('executes each atom with its step type and parameters; results flow to inputs and outputs', async () => {
      seen.length = 0;
      const engine = new Engine({ store, steps: makeSteps('one', 'res.make'), pollMs: 50, concurrency: 4 });
      await engine.start();
      try {
        const g = buildGraph({
          name: 'stack-make',
          steps: [
            { name: 'b', type: 'res.make', params: { value: 2 }, inputs: { before: { step: 'a', key: 'total' } } },
            { name: 'a', type: 'res.make', params: { value: 1 } },
            { name: 'c', type: 'res.make', params: { value: 3 }, after: ['a'] },
          ],
          outputs: { last: { step: 'b', key: 'id' }, total: { step: 'b', key: 'total' } },
        });
        const { run } = await engine.startGraph(g, {}, { key: 'stack-1' });
        expect(run.flow).toBe('stack-make');
        const done = await engine.waitForRun(run.id, { timeoutMs: 15_000 });
        expect(done.status).toBe('SUCCESS');
        expect(done.result).toEqual({ last: 'res.make:2', total: 3 });
        expect(seen.find((s) => (s.params as { value: number }).value === 2)!.inputs).toEqual({ before: 1 });
        const atoms = await store.getAtoms(run.id);
        expect(atoms.map((a) => [a.name, a.state])).toEqual([
          ['a', 'SUCCESS'],
          ['b', 'SUCCESS'],
          ['c', 'SUCCESS'],
        ]);
        // the stored graph is the one given: another engine reads the same plan
        expect((await store.getRunGraph(run.id))!.atoms.map((a) => a.step)).toEqual(g.atoms.map((a) => a.step));
      } finally {
        await engine.stop();
      }
    });

    dbIt('an engine that lacks a step type hands its atoms back; one that has it runs them', async () => {
      seen.length = 0;
      const lacking = new Engine({ store, steps: makeSteps('lacking', 'res.other'), pollMs: 30, concurrency: 2 });
      await lacking.start();
      try {
        const g = buildGraph({ name: 'needs-make', steps: [{ name: 'x', type: 'res.special', params: { value: 7 } }] });
        const { run } = await new RunClient({ store }).startGraph(g);
        await new Promise((r) => setTimeout(r, 300));
        expect((await store.getRun(run.id))!.status).not.toMatch(/SUCCESS|FAILED|REVERTED/);
        expect(seen).toEqual([]);
        const able = new Engine({ store, steps: makeSteps('able', 'res.special'), pollMs: 30, concurrency: 2 });
        await able.start();
        try {
          const done = await able.waitForRun(run.id, { timeoutMs: 15_000 });
          expect(done.status).toBe('SUCCESS');
          expect(seen.map((s) => s.engine)).toEqual(['able']);
        } finally {
          await able.stop();
        }
      } finally {
        await lacking.stop();
      }
    });

    dbIt('a failing step reverts the steps before it, in reverse order, through their step types', async () => {
      seen.length = 0;
      const engine = new Engine({ store, steps: makeSteps('one', 'res.make'), pollMs: 50, concurrency: 4 });
      await engine.start();
      try {
        const g = buildGraph({
          name: 'stack-fail',
          steps: [
            { name: 'a', type: 'res.make', params: { value: 1 }, revert: true },
            { name: 'b', type: 'res.make', params: { value: 2 }, after: ['a'], revert: true },
            { name: 'c', type: 'res.make', params: { fail: true }, after: ['b'] },
          ],
        });
        const { run } = await engine.startGraph(g);
        const done = await engine.waitForRun(run.id, { timeoutMs: 15_000 });
        expect(done.status).toBe('REVERTED');
        expect(done.failure).toMatchObject({ message: 'step failed on purpose' });
        expect(seen.filter((s) => s.type.endsWith('.revert')).map((s) => (s.params as { value: number }).value)).toEqual([2, 1]);
      } finally {
        await engine.stop();
      }
    });

    dbIt('a task can run a built graph as its child run and gets its result', async () => {
      seen.length = 0;
      const child = buildGraph({
        name: 'child-graph',
        steps: [{ name: 'only', type: 'res.make', params: { value: 5 } }],
        outputs: { id: { step: 'only', key: 'id' } },
      });
      const flows = new FlowRegistry();
      flows.register(linear('parent', [task({ name: 'spawn', provides: 'got', execute: (_i, ctx) => ctx.runChild(child, {}) })]));
      const engine = new Engine({ store, flows, steps: makeSteps('one', 'res.make'), pollMs: 50, concurrency: 4 });
      await engine.start();
      try {
        const { run } = await engine.startRun('parent', {});
        const done = await engine.waitForRun(run.id, { timeoutMs: 15_000 });
        expect(done.status).toBe('SUCCESS');
        expect(done.result).toEqual({ got: { id: 'res.make:5' } });
        const [childRun] = await store.listRuns({ parentRunId: run.id });
        expect(childRun).toMatchObject({ flow: 'child-graph', status: 'SUCCESS' });
      } finally {
        await engine.stop();
      }
    });

    dbIt(
      'the run client works without an engine; its cancel reaches an engine of the same process; its wait times out with its own code',
      async () => {
        const hub = new WakeHub();
        let aborted: unknown = null;
        const steps = new StepTypeRegistry().register({
          type: 'res.slow',
          execute: (_p, _i, ctx) =>
            new Promise((_, reject) => {
              ctx.signal.addEventListener('abort', () => {
                aborted = ctx.signal.reason;
                reject(ctx.signal.reason as Error);
              });
            }),
        });
        const client = new RunClient({ store, wakeHub: hub });
        const { run } = await client.startGraph(buildGraph({ name: 'slow', steps: [{ name: 's', type: 'res.slow' }] }));
        await expect(client.waitForRun(run.id, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'STOKER_RUN_WAIT_TIMEOUT' });
        const engine = new Engine({ store, steps, wakeHub: hub, pollMs: 50 });
        await engine.start();
        try {
          for (let i = 0; i < 200 && (await store.getAtoms(run.id))[0]!.state !== 'RUNNING'; i++)
            await new Promise((r) => setTimeout(r, 25));
          const cancelled = await client.cancel(run.id, 'no longer needed');
          expect(cancelled.status).toBe('CANCELLED');
          for (let i = 0; i < 100 && aborted === null; i++) await new Promise((r) => setTimeout(r, 10));
          expect(aborted).toMatchObject({ code: 'STOKER_RUN_NOT_ACTIVE' });
          const events = await store.listEvents({ runId: run.id });
          expect(events.find((e) => e.kind === 'run.cancelled')?.engineId ?? null).toBeNull();
        } finally {
          await engine.stop();
        }
        await expect(client.cancel(run.id)).rejects.toMatchObject({ code: 'STOKER_RUN_NOT_ACTIVE' });
        await expect(
          client.startGraph({ ...buildGraph({ name: 'x', steps: [{ name: 'a', type: 't' }] }), format: 2 as 1 }),
        ).rejects.toMatchObject({
          code: 'STOKER_FLOW_INVALID',
        });
        await expect(client.startRun('no-flows-here', {})).rejects.toMatchObject({ code: 'STOKER_FLOW_NOT_FOUND' });
      },
    );
  });
}
