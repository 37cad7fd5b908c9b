/**
 * C13 (docs/reliability.md): a rolling restart. Three engines work through mixed runs; each in
 * turn gets a replacement and then SIGTERM while tasks are in flight. SIGTERM drains for
 * 300 ms (ENGINE_DRAIN_MS), then hands back what is still running (a fenced release, no
 * lease wait): the next claim of every handed-back atom must come within poll + 1 s of the
 * requeue (and drain + poll + 1 s of the SIGTERM), far below the 6 s lease. Nothing was
 * stolen, so there are zero fenced writes; every run finishes; the checker passes.
 */
import { describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/databases.js';
import { describeLatency, sleep, submitRuns, takeoverSamples, waitTerminal, type Fault, type Submitted } from './harness.js';
import { useScenario, verify } from './scenario.js';

const LEASE_MS = 6000;
const POLL_MS = 100;
const DRAIN_MS = 300;

for (const dialect of testDialects()) {
  describe(`C13 graceful rolling restart on ${dialect}`, () => {
    const s = useScenario(dialect, 'c13');

    it('SIGTERM hands atoms back at once: takeover within poll + 1 s, zero fenced writes', async (ctx) => {
      if (!s.db) return ctx.skip();
      const { fleet, store } = s;
      // spare slots (8 each, ~15 runs in flight): a handed-back atom waits for a poll, not for capacity
      const engine = { leaseMs: LEASE_MS, concurrency: 8, env: { ENGINE_POLL_MS: String(POLL_MS), ENGINE_DRAIN_MS: String(DRAIN_MS) } };
      const first = await Promise.all([0, 1, 2].map(() => fleet.start({ ...engine, name: 'old' })));
      const submitted: Submitted[] = await submitRuns(store, 15, { log: s.log, stepMs: 800 });
      await sleep(1000);

      const faults: Fault[] = [];
      for (const old of first) {
        await fleet.start({ ...engine, name: 'new' });
        const at = Date.now();
        old.signal('SIGTERM');
        faults.push({ kind: 'SIGTERM', pid: old.pid, at });
        await old.exited;
        expect(old.exit?.code, `${old.name} exits 0 after SIGTERM; stderr: ${old.stderr.slice(-500)}`).toBe(0);
        await sleep(800);
      }
      const open = await waitTerminal(
        store,
        submitted.map((r) => r.id),
        60_000,
      );
      await fleet.terminateAll();
      expect(open, 'runs still active').toEqual([]);

      const { verdict, history } = await verify(s, submitted, 'C13');
      expect(verdict.violations).toEqual([]);
      const samples = takeoverSamples(faults, history.events, fleet.idsByPid());
      const handback = samples.map((x) => x.requeueMs);
      const claim = samples.flatMap((x) => (x.claimMs === null ? [] : [x.claimMs]));
      const requeueToClaim = samples.flatMap((x) => (x.claimMs === null ? [] : [x.claimMs - x.requeueMs]));
      const fencedStats = fleet.all.reduce((n, p) => n + Number(p.stats?.fencedWrites ?? 0), 0);
      console.log(
        [
          `C13 ${dialect}: ${faults.length} SIGTERMs, ${samples.length} atoms handed back; fenced writes ${verdict.stats.fencedWriteEvents} events / ${fencedStats} in stats`,
          `C13 ${dialect}: SIGTERM → requeue ${describeLatency(handback)}`,
          `C13 ${dialect}: SIGTERM → next claim ${describeLatency(claim)}`,
          `C13 ${dialect}: requeue → next claim ${describeLatency(requeueToClaim)}`,
        ].join('\n'),
      );
      expect(verdict.stats.fencedWriteEvents, 'fenced write events').toBe(0);
      expect(fencedStats, 'fenced writes reported by the engines').toBe(0);
      expect(samples.length, 'atoms handed back (tasks were in flight at SIGTERM)').toBeGreaterThan(0);
      expect(samples.every((x) => x.claimMs !== null)).toBe(true);
      expect(Math.max(...requeueToClaim), 'requeue → claim').toBeLessThanOrEqual(POLL_MS + 1000);
      expect(Math.max(...claim), 'SIGTERM → claim').toBeLessThanOrEqual(DRAIN_MS + POLL_MS + 1000);
    }, 120_000);
  });
}
