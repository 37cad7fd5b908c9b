/**
 * A task that completes alone fills the slot it frees in its completion's own statement
 * (ARCHITECTURE.md, "Cost per atom"; engine/fast-commits.ts, `fillsItsSlot`), not with a
 * claim statement of its own after the commit: at concurrency 1 every completion is alone,
 * so an unordered flow of N atoms made about N claim statements before, and now a couple.
 * A chain's step still goes through the single-success statement, which claims its
 * successor. Each atom still executes once, never more at once than the concurrency.
 */
import { expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { FlowRegistry, linear, task, unordered } from '../../../src/flow/index.js';
import { describeEachDialect } from '../../helpers/databases.js';

const ATOMS = 40;

await describeEachDialect('a lone completion claims for the slot it frees', (ctx) => {
  it('an unordered flow at concurrency 1 needs no claim statement per atom', async () => {
    const executed: number[] = [];
    let executing = 0;
    let mostExecuting = 0;
    const steps = (prefix: string) =>
      Array.from({ length: ATOMS }, (_, i) =>
        task({
          name: `${prefix}${i}`,
          execute: async () => {
            executing += 1;
            mostExecuting = Math.max(mostExecuting, executing);
            await new Promise((r) => setTimeout(r, 2));
            executing -= 1;
            executed.push(i);
            return i;
          },
        }),
      );
    const flows = new FlowRegistry();
    flows.register(unordered('spread', steps('u')));
    flows.register(linear('chain', steps('l')));
    const engine = new Engine({ store: ctx.store, flows, concurrency: 1, pollMs: 50, leaseMs: 5000 });
    await engine.start();
    try {
      const claimsBefore = engine.stats.claims;
      const { run } = await engine.startRun('spread', {});
      const done = await engine.waitForRun(run.id, { timeoutMs: 30_000 });
      expect(done.status).toBe('SUCCESS');
      expect([...executed].sort((a, b) => a - b)).toEqual(Array.from({ length: ATOMS }, (_, i) => i));
      expect(mostExecuting).toBe(1);
      // the first claim, and a few after wake-ups that found nothing; not one per atom
      expect(engine.stats.claims - claimsBefore).toBeLessThan(ATOMS / 4);

      executed.length = 0;
      const chainClaims = engine.stats.claims;
      const { run: chain } = await engine.startRun('chain', {});
      const chainDone = await engine.waitForRun(chain.id, { timeoutMs: 30_000 });
      expect(chainDone.status).toBe('SUCCESS');
      expect(executed).toEqual(Array.from({ length: ATOMS }, (_, i) => i));
      expect(engine.stats.claims - chainClaims).toBeLessThan(ATOMS / 4);
    } finally {
      await engine.stop();
    }
  });
});
