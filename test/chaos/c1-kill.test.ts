/**
 * C1 (docs/reliability.md): kill -9 of engine processes at random moments and at targeted fault
 * points, on every dialect. Two engines work through a stream of mixed runs; every 1–3 s
 * a random one is SIGKILLed and replaced; meanwhile a third slot runs engines that SIGKILL
 * themselves at `after-claim-commit`, `after-side-effect-before-result` and
 * `inside-fenced-tx` (ENGINE_CRASH_AT). Then every run must finish and the checker must
 * find no violation of I1–I4, I6; the takeover latency (kill → `atom.requeued` of an atom
 * the dead engine held, and → its next `atom.claimed`, by DB event time) is printed and
 * bounded by B = lease + poll + 1 s (I5).
 *
 * CHAOS_LONG=1: 60 s of random kills and 20 targeted kills per point.
 */
import { describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/databases.js';
import {
  LONG,
  describeLatency,
  randInt,
  sleep,
  submitRuns,
  takeoverSamples,
  waitTerminal,
  type EngineProc,
  type Fault,
  type Submitted,
} from './harness.js';
import { useScenario, verify } from './scenario.js';

const LEASE_MS = 3000;
const POLL_MS = 100;
const BOUND_MS = LEASE_MS + POLL_MS + 1000;
const WINDOW_MS = LONG ? 60_000 : 10_000;
const PER_POINT = LONG ? 20 : 2;
const POINTS = ['after-claim-commit', 'after-side-effect-before-result', 'inside-fenced-tx'] as const;
const STEP_MS = 150;

for (const dialect of testDialects()) {
  describe(`C1 kill -9 on ${dialect}`, () => {
    const s = useScenario(dialect, 'c1');

    it(
      'every run finishes after random and targeted kills; no invariant is violated',
      async (ctx) => {
        if (!s.db) return ctx.skip();
        const { fleet, store } = s;
        const engine = { leaseMs: LEASE_MS, env: { ENGINE_POLL_MS: String(POLL_MS) } };
        const workers: EngineProc[] = await Promise.all([
          fleet.start({ ...engine, name: 'worker' }),
          fleet.start({ ...engine, name: 'worker' }),
        ]);
        const submitted: Submitted[] = await submitRuns(store, 20, { log: s.log, stepMs: STEP_MS });
        const faults: Fault[] = [];
        const reached: Record<string, number> = Object.fromEntries(POINTS.map((p) => [p, 0]));
        const until = Date.now() + WINDOW_MS;

        // the workload keeps coming while the nemesis runs (and until every targeted kill landed)
        let crasherDone = false;
        const feeder = (async () => {
          while (Date.now() < until || !crasherDone) {
            await sleep(2000);
            submitted.push(...(await submitRuns(store, 5, { log: s.log, stepMs: STEP_MS })));
          }
        })();

        // random kills of the workers, each replaced at once
        const killer = (async () => {
          for (;;) {
            await sleep(randInt(1000, 3000));
            if (Date.now() >= until) return;
            const alive = workers.filter((w) => w.alive);
            const victim = alive[randInt(0, alive.length - 1)];
            if (!victim) continue;
            faults.push({ kind: 'kill -9', pid: victim.pid, at: await victim.kill9() });
            workers.splice(workers.indexOf(victim), 1, fleet.spawn({ ...engine, name: 'worker' }));
          }
        })();

        // targeted kills: one engine at a time SIGKILLs itself at a fault point
        const crasher = (async () => {
          for (let round = 0; round < PER_POINT; round++) {
            for (const point of POINTS) {
              const p = fleet.spawn({
                ...engine,
                name: `crash@${point}`,
                // On PostgreSQL most completions are one autocommit statement, with no open
                // transaction to die in: the engine that is to die inside one sends all of its
                // completions through the general transaction
                env: {
                  ...engine.env,
                  ENGINE_CRASH_AT: point,
                  ENGINE_CRASH_AFTER: String(randInt(1, 3)),
                  ...(point === 'inside-fenced-tx' ? { ENGINE_FAST_PATHS: '0' } : {}),
                },
              });
              const line = await p.waitForLine((l) => l.startsWith('crash '), 20_000).catch(() => null);
              if (line) {
                reached[point]! += 1;
                faults.push({ kind: `crash@${point}`, pid: p.pid, at: Number(line.split(' ')[5]) });
              }
              if (p.alive) await p.kill9();
              await p.exited;
            }
          }
          crasherDone = true;
        })();

        await Promise.all([feeder, killer, crasher]);
        // heal: two healthy workers
        await Promise.all(workers.map((w) => w.ready.catch(() => undefined)));
        while (fleet.alive.length < 2) await fleet.start({ ...engine, name: 'worker' });
        const open = await waitTerminal(
          store,
          submitted.map((r) => r.id),
          90_000,
        );
        await fleet.terminateAll();

        const { verdict, history } = await verify(s, submitted, 'C1');
        // from the kill, or from the first moment another engine was ready when none was
        const samples = takeoverSamples(faults, history.events, fleet.idsByPid(), 50, fleet.all);
        const requeue = samples.map((x) => x.requeueMs);
        const claim = samples.flatMap((x) => (x.claimMs === null ? [] : [x.claimMs]));
        const fencedStats = fleet.all.reduce((n, p) => n + Number(p.stats?.fencedWrites ?? 0), 0);
        console.log(
          [
            `C1 ${dialect}: ${submitted.length} runs, ${faults.length} kills (${faults.filter((f) => f.kind === 'kill -9').length} random; targeted ${JSON.stringify(reached)}), ${fleet.all.length} engine processes`,
            `C1 ${dialect}: takeover kill → requeue ${describeLatency(requeue)} (no engine ready for up to ${Math.max(0, ...samples.map((x) => x.noSurvivorMs))} ms after a kill)`,
            `C1 ${dialect}: takeover kill → next claim ${describeLatency(claim)}`,
            `C1 ${dialect}: re-executions ${verdict.stats.reexecutions} (${((100 * verdict.stats.reexecutions) / Math.max(1, faults.length)).toFixed(0)} per 100 kills), fenced writes ${verdict.stats.fencedWriteEvents} events / ${fencedStats} reported by survivors`,
          ].join('\n'),
        );

        expect(open, 'runs still active after the faults stopped').toEqual([]);
        expect(verdict.violations).toEqual([]);
        for (const point of POINTS) expect(reached[point], `targeted kills at ${point}`).toBeGreaterThan(0);
        expect(samples.length, 'takeover samples').toBeGreaterThan(0);
        // I5: every atom of a killed engine was taken over within B
        expect(Math.max(...requeue), `kill → requeue (bound ${BOUND_MS} ms)`).toBeLessThanOrEqual(BOUND_MS);
      },
      LONG ? 600_000 : 150_000,
    );
  });
}
