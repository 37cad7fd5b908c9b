/**
 * One run's trouble must not reach another run (issue 11, item 1): an error raised for one
 * run inside the commit path never rolls back, delays or blocks the completions of other
 * runs that share its commit batch. Real databases, every dialect of STOKER_TEST_DIALECTS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import type { Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';

/** A promise each caller awaits until `n` callers wait: their tasks then finish in one turn (one commit batch). */
function barrier(n: number): () => Promise<void> {
  let waiting = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    waiting += 1;
    if (waiting === n) open();
    return opened;
  };
}

for (const dialect of testDialects()) {
  describe(`run isolation on ${dialect}`, () => {
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

    dbIt('a child run of an unknown flow fails its atom with STOKER_FLOW_NOT_FOUND; runs in the same batch finish', async () => {
      const meet = barrier(4);
      const registry = new FlowRegistry();
      registry.register(
        linear('orphan', [
          task({
            name: 'spawn',
            execute: async (_in, ctx) => {
              await meet();
              return ctx.runChild('no-such-flow', {});
            },
          }),
        ]),
      );
      registry.register(
        linear('chain', [
          task({ name: 'one', provides: 'a', execute: async () => (await meet(), 1) }),
          task({ name: 'two', requires: ['a'], provides: 'b', execute: ({ a }) => (a as number) + 1 }),
          task({ name: 'three', requires: ['b'], provides: 'c', execute: ({ b }) => (b as number) + 1 }),
        ]),
      );
      const engine = new Engine({ store, flows: registry, concurrency: 8, pollMs: 50, leaseMs: 5000 });
      await engine.start();
      try {
        const orphan = (await engine.startRun('orphan', {})).run.id;
        const chains = await Promise.all([1, 2, 3].map(async () => (await engine.startRun('chain', {})).run.id));
        for (const id of chains) {
          const run = await engine.waitForRun(id, { timeoutMs: 30_000 });
          expect(run.status).toBe('SUCCESS');
          expect(run.result).toEqual({ a: 1, b: 2, c: 3 });
        }
        const done = await engine.waitForRun(orphan, { timeoutMs: 30_000 });
        expect(done.status).toBe('REVERTED');
        const [spawn] = await store.getAtoms(orphan);
        expect(spawn!.state).toBe('REVERTED');
        expect(spawn!.failure?.code).toBe('STOKER_FLOW_NOT_FOUND');
        expect(spawn!.failure?.message).toMatch(/no-such-flow/);
        expect(spawn!.failure?.retryable).toBe(false);
        expect(done.failure?.code).toBe('STOKER_FLOW_NOT_FOUND');
        expect(await store.listRuns({ parentRunId: orphan })).toEqual([]);
        expect(engine.stats.fencedWrites).toBe(0);
      } finally {
        await engine.stop();
      }
    });

    dbIt('an error raised inside the commit for one run rolls back no completion of the other runs in its batch', async () => {
      const meet = barrier(4);
      let poisoned = '';
      const raisedFor = new Set<string>();
      const registry = new FlowRegistry();
      // a retried first attempt: a failure goes through the general run transaction on every
      // dialect (PostgreSQL's one-statement paths take successes only)
      const flaky = (name: string) =>
        linear(name, [
          task({
            name: 'first',
            provides: 'a',
            retry: { attempts: 2, backoffMs: 0, jitter: 0 },
            execute: async (_in, ctx) => {
              if (ctx.attempt === 1) {
                await meet();
                throw new Error('first attempt fails');
              }
              return 1;
            },
          }),
          task({ name: 'second', requires: ['a'], provides: 'b', execute: ({ a }) => (a as number) + 1 }),
        ]);
      registry.register(flaky('victim'));
      registry.register(flaky('bystander'));
      const engine = new Engine({
        store,
        flows: registry,
        concurrency: 8,
        pollMs: 50,
        leaseMs: 5000,
        faultPoint: (name, info) => {
          if (name !== 'in-run-transition') return;
          if (info.runId === poisoned) {
            raisedFor.add(info.runId);
            throw new TypeError(`a bug in the transition of run ${info.runId}`);
          }
        },
      });
      const errors: Error[] = [];
      engine.on('error', (e: Error) => errors.push(e));
      try {
        poisoned = (await engine.startRun('victim', {})).run.id;
        const others = await Promise.all([1, 2, 3].map(async () => (await engine.startRun('bystander', {})).run.id));
        await engine.start();
        for (const id of others) {
          const run = await engine.waitForRun(id, { timeoutMs: 30_000 });
          expect(run.status).toBe('SUCCESS');
          expect(run.result).toEqual({ a: 1, b: 2 });
          // each first attempt was recorded once: a retry_scheduled, then a success
          const firsts = (await store.listEvents({ runId: id })).filter((e) => e.atom === 0).map((e) => e.kind);
          expect(firsts.filter((k) => k === 'atom.retry_scheduled')).toHaveLength(1);
        }
        expect(raisedFor.has(poisoned)).toBe(true);
        expect(errors.some((e) => /a bug in the transition/.test(e.message))).toBe(true);
        // the poisoned run could record nothing; the engine did not fence itself for it
        expect(engine.stats.fencedWrites).toBe(0);
        expect((await store.getRun(poisoned))!.status).not.toMatch(/SUCCESS|REVERTED|FAILED/);
      } finally {
        await engine.stop();
        await engine.cancel(poisoned).catch(() => undefined);
      }
    });
  });
}
