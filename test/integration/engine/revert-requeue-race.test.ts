/**
 * A requeue racing the start of a revert (found by the simulation, seed 1912), on real
 * databases. The transaction that starts a run's revert reads a sibling atom RUNNING and
 * flags it to revert when it finishes. Requeues used to take no run lock, so one could land
 * between the read and the flag (RUNNING → READY): the flag missed, and the revert start
 * had to look again (it still does). Since issue 11 a requeue reads the run under a lock of
 * the run row, so it cannot land inside that transaction at all: a sweep attempted there
 * leaves the atom alone (SKIP LOCKED), the flag lands, and the sweep after the commit
 * hands the flagged atom on. The run ends REVERTED either way.
 *
 * PostgreSQL and MySQL only: on SQLite the transaction holds the one write lock, so no
 * requeue can land inside it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { FlowRegistry, task, unordered } from '../../../src/flow/index.js';
import type { AtomUpdate, RunTx, Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';

const GHOST = 'ghost';

for (const dialect of testDialects().filter((d) => d !== 'sqlite')) {
  describe(`a requeue while a revert starts, on ${dialect}`, () => {
    let db: TestStore | null = null;
    beforeAll(async () => {
      db = await createTestStore(dialect);
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('the requeued sibling is unscheduled, not left to run unflagged: the run ends REVERTED', async (ctx) => {
      if (!db) return ctx.skip();
      const store = db.store;
      const other = await db.open();
      const registry = new FlowRegistry();
      let bRuns = 0;
      registry.register(
        unordered('race', [
          task({
            name: 'a',
            execute: () => {
              throw Object.assign(new Error('a fails on purpose'), { retryable: false });
            },
          }),
          task({
            name: 'b',
            execute: () => {
              bRuns += 1;
              return 'b';
            },
          }),
        ]),
      );

      // both atoms held by an engine that never runs them; `a` is handed back so that the
      // engine under test fails it, while `b` stays RUNNING under the ghost
      await store.registerEngine({ id: GHOST, host: 'test', pid: process.pid, version: 'test', leaseMs: 60_000 });
      const { run } = await new Engine({ store, flows: registry }).startRun('race', {});
      const claims = (await store.claimAtoms(GHOST, 10)).filter((c) => c.runId === run.id);
      expect(claims).toHaveLength(2);
      const atoms = await store.getAtoms(run.id);
      const a = atoms.find((x) => x.name === 'a')!;
      const b = atoms.find((x) => x.name === 'b')!;
      await store.runTransaction([run.id], (tx) =>
        tx.updateAtoms(run.id, [
          {
            index: a.index,
            epoch: a.epoch,
            expectStates: ['RUNNING'],
            patch: { state: 'READY', claimedBy: null, readyAt: { delayMs: 0 } },
          },
        ]),
      );

      // the engine under test: the first time its transaction flags a running atom, the
      // ghost (gone by now) is swept from another session just before
      await store.deregisterEngine(GHOST);
      let injected = 0;
      let sweptInside: unknown = null;
      const racing = withFlagHook(store, async () => {
        injected += 1;
        sweptInside = await other.requeueExpired({ liveCheckAfterMs: 0 });
      });
      // one slot: while `a`'s failure is being committed the engine claims nothing, so the
      // requeued `b` cannot be claimed (and then rightly flagged) before the revert start
      // looks again; with two slots a loaded machine let the claim loop win that race
      const engine = new Engine({ store: racing, flows: registry, concurrency: 1, pollMs: 50, leaseMs: 10_000 });
      await engine.start();
      try {
        const done = await engine.waitForRun(run.id, { timeoutMs: 10_000, pollMs: 50 });
        expect(injected).toBe(1);
        // the run row was locked by the revert's transaction: the sweep left `b` alone
        expect(sweptInside).toEqual([]);
        expect(done.status).toBe('REVERTED');
        const kinds = (await store.listEvents({ runId: run.id })).filter((e) => e.atom === b.index).map((e) => e.kind);
        // flagged while RUNNING (no requeue got in between), handed on by a later sweep
        expect(kinds.slice(0, 2)).toEqual(['atom.claimed', 'atom.requeued']);
        expect(kinds).not.toContain('atom.unscheduled');
        expect(bRuns).toBeLessThanOrEqual(1);
      } finally {
        await engine.stop();
      }
    });
  });
}

/**
 * The store, except that inside a run transaction the first update that sets
 * `revertRequested` runs `before` first (once).
 */
function withFlagHook(store: Store, before: () => Promise<void>): Store {
  let armed = true;
  const hook = (tx: RunTx): RunTx =>
    new Proxy(tx, {
      get(target, prop, receiver) {
        if (prop !== 'updateAtoms') return Reflect.get(target, prop, receiver) as unknown;
        return async (runId: string, updates: readonly AtomUpdate[]) => {
          if (armed && updates.some((u) => u.patch.revertRequested === true)) {
            armed = false;
            await before();
          }
          return target.updateAtoms(runId, updates);
        };
      },
    });
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop !== 'runTransaction') return Reflect.get(target, prop, receiver) as unknown;
      return <T>(runIds: readonly string[], fn: (tx: RunTx) => Promise<T>) => target.runTransaction(runIds, (tx) => fn(hook(tx)));
    },
  });
}
