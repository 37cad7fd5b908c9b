/**
 * Engines sharing a run (ARCHITECTURE.md, "Cost per atom"): a batch completion that finds
 * the run row changed by another transaction since this engine's last batch leaves the
 * claims for its freed slots to a claim statement of its own, and the run still ends with
 * every atom executed once, never more atoms executing at once than the engine's
 * concurrency. PostgreSQL: the only store whose
 * batch statement reports the run row's version.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { FlowRegistry, task, unordered } from '../../../src/flow/index.js';
import { openStore } from '../../../src/store/open-store.js';
import type { Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';

const ATOMS = 100;
const CONCURRENCY = 4;

describe.runIf(testDialects().includes('postgres'))('engines sharing a run (postgres)', () => {
  let db: TestStore | null = null;
  beforeAll(async () => {
    db = await createTestStore('postgres');
  });
  afterAll(async () => {
    await db?.drop();
  });

  /**
   * Runs an unordered flow of ATOMS on one engine, each task a turn of the event loop long
   * (counted: the most executing at once); `during` runs until the run ends.
   */
  async function run(name: string, during: (runId: string, done: () => boolean) => Promise<void>) {
    let executing = 0;
    let mostExecuting = 0;
    const flows = new FlowRegistry();
    flows.register(
      unordered(
        name,
        Array.from({ length: ATOMS }, (_, i) =>
          task({
            name: `s${i}`,
            execute: async () => {
              executing += 1;
              mostExecuting = Math.max(mostExecuting, executing);
              await new Promise((r) => setTimeout(r, 1));
              executing -= 1;
              return i;
            },
          }),
        ),
      ),
    );
    const store: Store = await openStore(db!.url, { role: 'shared-run-test' });
    const engine = new Engine({ store, flows, concurrency: CONCURRENCY, pollMs: 50, leaseMs: 5000 });
    await engine.start();
    try {
      const { run } = await engine.startRun(name, {});
      let ended = false;
      const side = during(run.id, () => ended);
      const done = await engine.waitForRun(run.id, { timeoutMs: 20_000 });
      ended = true;
      await side;
      return { done, atoms: await store.getAtoms(run.id), stats: { ...engine.stats }, mostExecuting };
    } finally {
      await engine.stop();
      await store.close();
    }
  }

  it('claims for the freed slots in a statement of their own while someone else changes the run row, and executes every atom once', async (ctx) => {
    if (!db) return ctx.skip();
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      // another engine's commits, as the engine sees them: the run row's version moves on
      const { done, atoms, stats, mostExecuting } = await run('shared', async (runId, ended) => {
        while (!ended()) await other.query('UPDATE stoker_runs SET row_version = row_version + 1 WHERE id = $1', [runId]);
      });
      expect(done.status).toBe('SUCCESS');
      expect(atoms.every((a) => a.state === 'SUCCESS' && a.execution === 1)).toBe(true);
      expect(stats.fencedWrites).toBe(0);
      expect(stats.executed).toBe(ATOMS);
      // about one claim statement per batch of 4 (25 batches), not a handful for the run
      expect(stats.claimCommits).toBeGreaterThanOrEqual(8);
      // the claims of their own take only the slots the completions freed
      expect(mostExecuting).toBeLessThanOrEqual(CONCURRENCY);
      expect(mostExecuting).toBeGreaterThan(1);
    } finally {
      await other.end();
    }
  });
});
