/**
 * C12 (TEST-PLAN §3): the SQLite profile, three engine processes sharing one WAL database.
 *
 * (a) kill -9 at random moments, with short tasks so that kills often land inside write
 *     transactions, plus engines that SIGKILL themselves at `inside-fenced-tx` (holding
 *     SQLite's write lock): safe, SQLite rolls the hot WAL frames back; the database stays
 *     intact (`PRAGMA integrity_check`), every run finishes and the checker passes.
 *
 * (b) SIGSTOP of an engine at `inside-fenced-tx`: it holds SQLite's one write lock
 *     (BEGIN IMMEDIATE … COMMIT spans the engine's completion callback), so every other
 *     engine stalls, and no lease can help (RULES.md R12, known limit). The plan's answer is
 *     a local supervisor that SIGKILLs an engine stuck in a write transaction for longer than
 *     X = 2T; it is NOT implemented yet, so the stall is unbounded and this sub-case is
 *     skipped by default (it prints `SKIP C12 supervisor not implemented`). With
 *     CHAOS_C12_STALL=1 it runs as an observation: it measures the stall (no event is
 *     committed by anyone while the engine is stopped), then plays the supervisor itself
 *     (SIGKILL after 2T) and checks that everyone recovers and the history is clean.
 *     Observed on this machine (2 cores, T = 3 s, stopped 6 s): zero events committed by
 *     the other engines during the whole stop; their writes (claims, completions, heartbeats)
 *     wait in SQLite's busy handler (busy_timeout 5 s, a synchronous wait that also blocks
 *     their event loops) and then fail with "database is locked"; 38 ms after the SIGKILL
 *     the first commit lands, the runs finish, and the checker passes. Their leases lapsed
 *     during the stall, so the recovery includes false takeovers among the survivors (3
 *     fenced writes in that run: allowed, and fenced).
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
  waitFor,
  waitTerminal,
  type EngineProc,
  type Fault,
  type Submitted,
} from './harness.js';
import { useScenario, verify, type Scenario } from './scenario.js';

const LEASE_MS = 3000;
const POLL_MS = 100;
const STALL_OBSERVATION = process.env.CHAOS_C12_STALL === '1';

async function eventCount(s: Scenario): Promise<number> {
  const [row] = await s.db!.exec('SELECT count(*) AS n FROM stoker_events');
  return Number(row?.n ?? 0);
}

const sqlite = testDialects().includes('sqlite');

describe.skipIf(!sqlite)('C12 SQLite: kill -9 with engines sharing one WAL file', () => {
  const s = useScenario('sqlite', 'c12');

  it(
    'is safe: the database stays intact, every run finishes, no invariant is violated',
    async (ctx) => {
      if (!s.db) return ctx.skip();
      const { fleet, store } = s;
      const engine = { leaseMs: LEASE_MS, env: { ENGINE_POLL_MS: String(POLL_MS) } };
      const workers: EngineProc[] = await Promise.all([0, 1].map(() => fleet.start({ ...engine, name: 'worker' })));
      // short tasks: many commits per second, so kills land inside write transactions
      const submitted: Submitted[] = await submitRuns(store, 30, { log: s.log, stepMs: 30 });
      const faults: Fault[] = [];
      const until = Date.now() + (LONG ? 60_000 : 6_000);
      const killer = (async () => {
        for (;;) {
          await sleep(randInt(500, 1500));
          if (Date.now() >= until) return;
          const alive = workers.filter((w) => w.alive);
          const victim = alive[randInt(0, alive.length - 1)];
          if (!victim) continue;
          faults.push({ kind: 'kill -9', pid: victim.pid, at: await victim.kill9() });
          workers.splice(workers.indexOf(victim), 1, fleet.spawn({ ...engine, name: 'worker' }));
        }
      })();
      let inTx = 0;
      let crasherDone = false;
      const feeder = (async () => {
        while (Date.now() < until || !crasherDone) {
          await sleep(1000);
          submitted.push(...(await submitRuns(store, 5, { log: s.log, stepMs: 30 })));
        }
      })();
      const crasher = (async () => {
        for (let i = 0; i < (LONG ? 20 : 3); i++) {
          const p = fleet.spawn({
            ...engine,
            name: 'crash@inside-fenced-tx',
            env: { ...engine.env, ENGINE_CRASH_AT: 'inside-fenced-tx', ENGINE_CRASH_AFTER: String(randInt(1, 4)) },
          });
          const line = await p.waitForLine((l) => l.startsWith('crash '), 10_000).catch(() => null);
          if (line) {
            inTx += 1;
            faults.push({ kind: 'crash@inside-fenced-tx', pid: p.pid, at: Number(line.split(' ')[5]) });
          }
          if (p.alive) await p.kill9();
        }
        crasherDone = true;
      })();
      await Promise.all([killer, crasher, feeder]);
      while (fleet.alive.length < 2) await fleet.start({ ...engine, name: 'worker' });
      const open = await waitTerminal(
        store,
        submitted.map((r) => r.id),
        60_000,
      );
      await fleet.terminateAll();
      expect(open, 'runs still active').toEqual([]);

      const integrity = await s.db.exec('PRAGMA integrity_check');
      expect(integrity.map((r) => Object.values(r)[0])).toEqual(['ok']);
      const { verdict, history } = await verify(s, submitted, 'C12a');
      const samples = takeoverSamples(faults, history.events, fleet.idsByPid());
      console.log(
        `C12a sqlite: ${faults.length} kills (${inTx} inside a write transaction), integrity ok; takeover kill → requeue ${describeLatency(samples.map((x) => x.requeueMs))}`,
      );
      expect(inTx).toBeGreaterThan(0);
      expect(verdict.violations).toEqual([]);
    },
    LONG ? 600_000 : 120_000,
  );
});

describe.skipIf(!sqlite)('C12 SQLite: an engine stopped inside a write transaction', () => {
  const s = useScenario('sqlite', 'c12stall');
  if (!STALL_OBSERVATION)
    console.log(
      'SKIP C12 supervisor not implemented (SIGSTOP inside-fenced-tx stalls every SQLite engine; set CHAOS_C12_STALL=1 to observe)',
    );

  // Known limit (RULES.md R12, TEST-PLAN C12): a process stopped while it holds SQLite's
  // write lock stalls every engine, unboundedly, until a supervisor kills it; none exists yet.
  it.skipIf(!STALL_OBSERVATION)(
    'stalls the other engines until the stuck one is killed (the test plays the missing supervisor)',
    async (ctx) => {
      if (!s.db) return ctx.skip();
      const { fleet, store } = s;
      const engine = { leaseMs: LEASE_MS, env: { ENGINE_POLL_MS: String(POLL_MS) } };
      await Promise.all([0, 1].map(() => fleet.start({ ...engine, name: 'worker' })));
      const stuck = await fleet.start({
        ...engine,
        name: 'stuck',
        env: { ...engine.env, ENGINE_STOP_AT: 'inside-fenced-tx', ENGINE_STOP_AFTER: '5' },
      });
      const submitted = await submitRuns(store, 20, { log: s.log, stepMs: 50 });
      await stuck.waitForLine((l) => l.startsWith('stop '), 30_000);
      await waitFor(() => stuck.procState() === 'T', 2000, 'the engine to be stopped');
      const stoppedAt = stuck.stoppedAt!;

      // X = 2T: how much does anyone commit meanwhile?
      const before = await eventCount(s);
      const samples: number[] = [];
      while (Date.now() < stoppedAt + 2 * LEASE_MS) {
        await sleep(250);
        samples.push(await eventCount(s));
      }
      const during = (samples.at(-1) ?? before) - before;
      const killedAt = await stuck.kill9(); // the supervisor's job
      const after = await eventCount(s);
      const resumed = await waitFor(
        async () => ((await eventCount(s)) > after ? Date.now() : undefined),
        30_000,
        'progress after the kill',
      );
      const open = await waitTerminal(
        store,
        submitted.map((r) => r.id),
        60_000,
      );
      await fleet.terminateAll();
      console.log(
        `C12b sqlite: stopped inside a write transaction for ${killedAt - stoppedAt} ms: ${during} events committed by others meanwhile (stall); ` +
          `first commit ${resumed - killedAt} ms after the supervisor's SIGKILL; others' stderr: ${fleet.all
            .filter((p) => p !== stuck)
            .map((p) => (p.stderr.match(/engine error: [^\n]*/g) ?? []).slice(0, 2).join(' / '))
            .join(' || ')}`,
      );
      expect(open).toEqual([]);
      const { verdict } = await verify(s, submitted, 'C12b');
      expect(verdict.violations).toEqual([]);
    },
    120_000,
  );
});
