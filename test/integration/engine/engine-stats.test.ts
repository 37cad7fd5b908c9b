/**
 * The engine's counters of claims and wake-ups (`Engine.stats`: `claims`, `emptyClaims`,
 * `wakeups`), on every dialect: what `stoker engine` prints when it stops and
 * bench/claim-probe.ts reads to count claim statements that found nothing and wake-ups
 * heard per atom (issue 10, two engine processes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { RunClient } from '../../../src/engine/run-client.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import { openStore } from '../../../src/store/open-store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const dialect of testDialects()) {
  describe(`engine counters on ${dialect}`, () => {
    let db: TestStore | null = null;
    beforeAll(async () => {
      db = await createTestStore(dialect);
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('counts its claim statements, those that claimed nothing, and the wake-ups it hears from the store', async (ctx) => {
      if (!db) return ctx.skip();
      const flows = new FlowRegistry();
      flows.register(linear('counted', [task({ name: 'a', execute: () => 1 }), task({ name: 'b', execute: () => 2 })]));
      // the engine and the starter on stores of their own: the start reaches the engine only through the store's wake-up
      const store = await openStore(db.url, { role: 'stats-engine' });
      const other = await openStore(db.url, { role: 'stats-starter' });
      const engine = new Engine({ store, flows, concurrency: 2, pollMs: 600_000, reapMs: 3_600_000 });
      try {
        await engine.start();
        // the claim at its start finds nothing; its next poll is ten minutes away
        for (let i = 0; i < 100 && engine.stats.claims === 0; i++) await sleep(20);
        await sleep(200);
        expect(engine.stats.claims).toBe(1);
        expect(engine.stats.emptyClaims).toBe(1);
        expect(engine.stats.wakeups).toBe(0);
        const { run } = await new RunClient({ store: other, flows }).startRun('counted', {});
        const done = await engine.waitForRun(run.id, { timeoutMs: 10_000 });
        expect(done.status).toBe('SUCCESS');
        expect(engine.stats.wakeups).toBeGreaterThanOrEqual(1);
        // the first atom came with a claim statement after the wake-up, the second with its completion
        expect(engine.stats.claims - engine.stats.emptyClaims).toBe(1);
        expect(engine.stats.claimCommits).toBe(1);
        expect(engine.stats.executed).toBe(2);
      } finally {
        await engine.stop();
        await store.close();
        await other.close();
      }
    }, 30_000);
  });
}
