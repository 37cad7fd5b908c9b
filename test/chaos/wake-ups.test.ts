/**
 * Protocol 6 across processes, with real engine processes: a run started by another
 * process is picked up at once by an idle engine whose next poll is ten minutes away, on
 * every dialect (PostgreSQL LISTEN/NOTIFY; SQLite, one host, a watched wake file;
 * MySQL/MariaDB, a listener's sleep ended by KILL QUERY).
 *
 * The engine's first poll runs when it starts; the runs here start after it, so nothing but
 * a wake-up can make the engine claim them within the ten seconds the test waits. Start →
 * finished latencies are printed.
 */
import { describe, expect, it } from 'vitest';
import { client, sleep, waitFor } from './harness.js';
import { testDialects } from '../helpers/databases.js';
import { useScenario } from './scenario.js';

const IDLE = { ENGINE_POLL_MS: '600000', ENGINE_REAP_MS: '3600000' };
const RUNS = 10;

for (const dialect of testDialects()) {
  describe(`cross-process wake-ups on ${dialect}`, () => {
    const s = useScenario(dialect, 'wake');
    it(`an idle engine that polls every 10 minutes runs ${RUNS} runs started by another process at once`, async (ctx) => {
      if (!s.db) return ctx.skip();
      await s.fleet.start({ name: 'idle', leaseMs: 30_000, concurrency: 2, env: IDLE });
      // past the engine's first poll (made at its start)
      await sleep(500);
      const starter = client(s.store);
      const latencies: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        const { run } = await starter.startRun('chaosChain5', { log: s.log, stepMs: 0 });
        const done = await waitFor(
          async () => {
            const row = await s.store.getRun(run.id);
            return row && row.status !== 'PENDING' && row.status !== 'RUNNING' ? row : undefined;
          },
          10_000,
          `run ${i + 1} of ${RUNS} to finish`,
        );
        expect(done.status).toBe('SUCCESS');
        latencies.push(performance.now() - t0);
        // idle again before the next start
        await sleep(100);
      }
      const sorted = [...latencies].sort((a, b) => a - b);
      console.log(
        `wake-ups ${dialect}: start → finished (5 tasks, seen by a 25 ms poll) median ${sorted[RUNS >> 1]!.toFixed(1)} ms, max ${sorted[RUNS - 1]!.toFixed(1)} ms`,
      );
    }, 120_000);
  });
}
