/**
 * C7 (docs/reliability.md): clock skew between engines, on PostgreSQL and MariaDB, with real
 * engine processes. Three engines share the work: `slow` runs its clocks 1 h behind and at
 * 0.9 × real time, `fast` 1 h ahead and at 1.1 ×, `true` unskewed (test/fixtures/
 * skewed-clock.ts: the process's `Date` and the engine's `Clock`). While each skewed engine
 * executes a task it is stopped (SIGSTOP) for 3 × the lease, then continued.
 *
 * Must hold (R6: leases are timed by the database's clock only):
 * - zero premature takeovers: every atom requeued away from a stopped engine is requeued
 *   after the stop, at or after the lease expiry its row showed in the database once it was
 *   stopped, and no sooner than the stop + T − h / rate by the harness's clock (its last
 *   renewal was at most one heartbeat before the stop; the database runs on this host, so
 *   this bound does not trust what the engine wrote); no atom of an engine that was never
 *   stopped is requeued at all;
 * - the engines that were never stopped never fence themselves (one id each, no fenced
 *   write): their skewed rate leaves their renewals inside the lease;
 * - the stopped engines' atoms are taken over (the scenario proved something), every run
 *   finishes, and the checker finds no violation of I1–I4, I6.
 */
import { describe, expect, it } from 'vitest';
import type { EventRow } from '../../src/store/store.js';
import { testDialects } from '../helpers/databases.js';
import { sleep, submitRuns, waitTerminal, type EngineProc } from './harness.js';
import { untilExecuting, useScenario, verify } from './scenario.js';

const LEASE_MS = 3000;
const STEP_MS = 150;
/** the database's timestamps: MariaDB's DATETIME(3) truncates, PostgreSQL keeps µs */
const SLACK_MS = 2;

/** the engine's default heartbeat (T/3) */
const HEARTBEAT_MS = Math.floor(LEASE_MS / 3);
const SKEWS = {
  slow: { ENGINE_CLOCK_OFFSET_MS: String(-3_600_000), ENGINE_CLOCK_RATE: '0.9' },
  fast: { ENGINE_CLOCK_OFFSET_MS: String(3_600_000), ENGINE_CLOCK_RATE: '1.1' },
  true: {},
} as const;
const RATES = { slow: 0.9, fast: 1.1 } as const;

// The dialects run at the same time: each has its own database, engines and log.
for (const dialect of testDialects().filter((d) => d !== 'sqlite')) {
  describe(`C7 clock skew between engines (±1 h, ±10 % rate) on ${dialect}`, { concurrent: true }, () => {
    const s = useScenario(dialect, 'c7');

    it('zero premature takeovers: a stopped engine loses its atoms only after its lease ran out by the database clock', async (ctx) => {
      if (!s.db) return ctx.skip();
      const base = { leaseMs: LEASE_MS, concurrency: 4 };
      const engines = await Promise.all(
        (Object.keys(SKEWS) as (keyof typeof SKEWS)[]).map((name) =>
          s.fleet.start({ ...base, name, env: { ENGINE_POLL_MS: '100', ...SKEWS[name] } }),
        ),
      );
      const [slow, fast, plain] = engines as [EngineProc, EngineProc, EngineProc];
      const submitted = await submitRuns(s.store, 24, { log: s.log, stepMs: STEP_MS });
      /** engine id → when its process was stopped, the earliest legitimate takeover, and the lease expiry its row showed */
      const stops = new Map<string, { stopAt: number; earliest: number; expiry: number }>();
      for (const [victim, rate] of [
        [slow, RATES.slow],
        [fast, RATES.fast],
      ] as const) {
        await untilExecuting(s, victim, submitted, STEP_MS);
        const stopAt = Date.now();
        victim.signal('SIGSTOP');
        // a renewal already on the wire may still land: read the row after it would have
        await sleep(300);
        const row = (await s.store.listEngines()).find((r) => r.id === victim.ids.at(-1));
        expect(row, `${victim.name}'s engine row`).toBeDefined();
        stops.set(row!.id, { stopAt, earliest: stopAt + LEASE_MS - HEARTBEAT_MS / rate - 100, expiry: row!.leaseExpiresAt.getTime() });
        await sleep(3 * LEASE_MS - 300);
        victim.signal('SIGCONT');
        submitted.push(...(await submitRuns(s.store, 6, { log: s.log, stepMs: STEP_MS })));
      }
      const open = await waitTerminal(
        s.store,
        submitted.map((r) => r.id),
        60_000,
      );
      expect(open, 'runs still active').toEqual([]);
      await s.fleet.terminateAll();

      const events: EventRow[] = [];
      for (const r of submitted) events.push(...(await s.store.listEvents({ runId: r.id })));
      const requeues = events.filter((e) => e.kind === 'atom.requeued' && e.engineId !== null);
      const premature = requeues.filter((e) => {
        const stop = stops.get(e.engineId!);
        // an atom of an engine id that was never stopped (the unskewed engine, or a skewed
        // one after it registered again), or requeued before its lease can have run out
        if (stop === undefined) return true;
        const at = e.at.getTime();
        return at < stop.stopAt || at < stop.expiry - SLACK_MS || at < stop.earliest;
      });
      const takenOver = requeues.filter((e) => stops.has(e.engineId!));
      const { verdict } = await verify(s, submitted, `C7 clock skew ${dialect}`);
      const margins = takenOver.map((e) => e.at.getTime() - stops.get(e.engineId!)!.expiry);
      const afterStop = takenOver.map((e) => e.at.getTime() - stops.get(e.engineId!)!.stopAt);
      console.log(
        `C7 ${dialect}: ${submitted.length} runs; atoms of the stopped skewed engines requeued ${takenOver.length}, ` +
          `requeue − lease expiry (DB clock) min ${Math.min(...margins)} ms max ${Math.max(...margins)} ms, requeue − stop min ${Math.min(...afterStop)} ms (T = ${LEASE_MS} ms); premature ${premature.length}; ` +
          `ids: slow ${slow.ids.length}, fast ${fast.ids.length}, true ${plain.ids.length}; fenced lines: slow ${slow.fenced.length}, fast ${fast.fenced.length}, true ${plain.fenced.length}`,
      );
      expect(
        premature.map((e) => `${e.runId}/${e.atom} of ${e.engineId} at ${e.at.toISOString()}`),
        'premature takeovers',
      ).toEqual([]);
      expect(takenOver.length, 'atoms taken over from the stopped engines (the stops caught work)').toBeGreaterThan(0);
      expect(plain.ids.length, 'the unskewed engine never fenced itself').toBe(1);
      expect(plain.fenced, 'fenced writes of the unskewed engine').toEqual([]);
      expect(engines.map((p) => p.exit?.code)).toEqual([0, 0, 0]);
      expect(verdict.violations).toEqual([]);
    }, 120_000);
  });
}
