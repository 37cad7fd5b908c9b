/**
 * C12 (docs/reliability.md): the SQLite profile, three engine processes sharing one WAL database.
 *
 * (a) kill -9 at random moments, with short tasks so that kills often land inside write
 *     transactions, plus engines that SIGKILL themselves at `inside-fenced-tx` (holding
 *     SQLite's write lock): safe, SQLite rolls the hot WAL frames back; the database stays
 *     intact (`PRAGMA integrity_check`), every run finishes and the checker passes.
 *
 * (b) SIGSTOP of an engine at `inside-fenced-tx`: it holds SQLite's one write lock
 *     (BEGIN IMMEDIATE … COMMIT spans the engine's completion callback), so every other
 *     engine stalls, and no lease can help (docs/reliability.md R12, known limit): their writes
 *     (claims, completions, heartbeats, registrations) wait in SQLite's busy handler
 *     (busy_timeout 5 s, a synchronous wait that also blocks their event loops) and then fail
 *     with "database is locked". The local supervisor ends it (EngineOptions.localSupervisor,
 *     Store.superviseLocalEngines): an engine unable to write for longer than X = 2T SIGKILLs
 *     the engines of its host that are stopped and whose lease ran out more than X ago. The
 *     test runs 2 workers and the engine that stops itself, and checks: nothing is committed
 *     while it is stopped (the stall is real), a worker's supervisor kills it (and only it),
 *     not before X and within X + 10 s, it dies of SIGKILL, the workers are never killed and
 *     stop gracefully, every run finishes and the checker passes. It prints the stall (stop →
 *     first commit), stop → kill, and kill → first commit. The kill comes once the stuck
 *     engine's lease (last renewed at most T/3 before the stop) is over by X, i.e. between
 *     X + 2T/3 and X + T after the stop, plus up to one busy_timeout (5 s): a worker checks
 *     between its write attempts, each of which may wait that long for the lock.
 *     With CHAOS_C12_STALL=1 a second case observes the limit itself: every supervisor off,
 *     nobody kills the stopped engine for X + 10 s (it stays stopped, nothing commits), then
 *     the test kills it and everyone recovers. Leases lapse during the stall, so recovery
 *     includes takeovers among the survivors (fenced writes are allowed, and fenced).
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

  it("stalls everyone until another engine's local supervisor SIGKILLs it, after X = 2T", async (ctx) => {
    if (!s.db) return ctx.skip();
    const r = await stopInsideWriteTx(s, { supervisor: true });
    const killLines = r.workers.flatMap((w) => w.lines.filter((l) => l.startsWith('supervised ')).map((l) => ({ w, l })));
    const first = killLines.map((k) => ({ ...k, f: k.l.split(' ') })).sort((a, b) => Number(a.f[4]) - Number(b.f[4]))[0];
    const kills = r.workers.reduce((n, w) => n + Number(w.stats?.supervisorKills ?? NaN), 0);
    console.log(
      `C12b sqlite: stopped inside a write transaction; ${r.during} events committed by anyone while it was stopped (stall ${r.resumedAt - r.stoppedAt} ms, stop → first commit); ` +
        `${first?.w.name ?? '?'}'s supervisor SIGKILLed it ${r.killedAt - r.stoppedAt} ms after the stop (X = 2T = ${X} ms, its lease over by ${first?.f[3] ?? '?'} ms); ` +
        `first commit ${r.resumedAt - r.killedAt} ms after the kill; supervisor kills counted by the workers: ${kills}; fenced writes ${s.fleet.fencedTotal()}`,
    );
    expect(r.during, 'events committed while the engine held the write lock (the stall is the known limit)').toBe(0);
    expect(killLines.length, 'a `supervised` line from a worker').toBeGreaterThan(0);
    // only the stopped engine is ever targeted, and it is gone by SIGKILL
    expect(killLines.map((k) => Number(k.l.split(' ')[2]))).toEqual(killLines.map(() => r.stuck.pid));
    expect(r.stuck.ids).toContain(first!.f[1]);
    expect(r.stuck.exit?.signal).toBe('SIGKILL');
    expect(r.killedAt - r.stoppedAt, 'kill not before X = 2T').toBeGreaterThanOrEqual(X);
    expect(r.killedAt - r.stoppedAt, 'kill within 2T + 10 s').toBeLessThanOrEqual(X + 10_000);
    // the running engines were never killed: they stopped gracefully and counted the kills
    for (const w of r.workers) expect(w.exit, `${w.name} exit`).toMatchObject({ code: 0, signal: null });
    expect(kills).toBe(killLines.length);
    expect(r.open).toEqual([]);
    expect(r.verdict.violations).toEqual([]);
  }, 90_000);
});

describe.skipIf(!sqlite || !STALL_OBSERVATION)('C12 SQLite: an engine stopped inside a write transaction, no supervisor', () => {
  const s = useScenario('sqlite', 'c12nosupervisor');

  // The known limit itself (docs/reliability.md R12), with every supervisor off: nobody kills the stopped
  // engine, the stall lasts as long as it stays stopped; the test ends it after 2T + 10 s.
  it('without the supervisor, stalls everyone for as long as it stays stopped (CHAOS_C12_STALL=1)', async (ctx) => {
    if (!s.db) return ctx.skip();
    const r = await stopInsideWriteTx(s, { supervisor: false });
    console.log(
      `C12b sqlite without supervisor: stopped ${r.killedAt - r.stoppedAt} ms inside a write transaction, ${r.during} events committed meanwhile; ` +
        `first commit ${r.resumedAt - r.killedAt} ms after the test's SIGKILL; others' stderr: ${r.workers
          .map((p) => (p.stderr.match(/engine error: [^\n]*/g) ?? []).slice(0, 2).join(' / '))
          .join(' || ')}`,
    );
    expect(r.during).toBe(0);
    expect(r.workers.flatMap((w) => w.lines.filter((l) => l.startsWith('supervised ')))).toEqual([]);
    expect(r.open).toEqual([]);
    expect(r.verdict.violations).toEqual([]);
  }, 90_000);
});

/** X = 2T: how long an engine must have been unable to write before its supervisor acts */
const X = 2 * LEASE_MS;

/**
 * Two workers and one engine that SIGSTOPs itself at `inside-fenced-tx` (holding SQLite's
 * write lock). With `supervisor`, waits for a worker's supervisor to SIGKILL it; without,
 * waits 2T + 10 s (checking that it is still stopped) and SIGKILLs it itself. Then waits
 * for the first commit, for every run to end, stops the workers and checks the history.
 */
async function stopInsideWriteTx(s: Scenario, o: { supervisor: boolean }) {
  const { fleet, store } = s;
  const env: Record<string, string> = { ENGINE_POLL_MS: String(POLL_MS), ...(o.supervisor ? {} : { ENGINE_LOCAL_SUPERVISOR: '0' }) };
  const engine = { leaseMs: LEASE_MS, env };
  const workers = await Promise.all([0, 1].map(() => fleet.start({ ...engine, name: 'worker' })));
  const stuck = await fleet.start({
    ...engine,
    name: 'stuck',
    env: { ...env, ENGINE_STOP_AT: 'inside-fenced-tx', ENGINE_STOP_AFTER: '5' },
  });
  const submitted = await submitRuns(store, 20, { log: s.log, stepMs: 50 });
  await stuck.waitForLine((l) => l.startsWith('stop '), 30_000);
  await waitFor(() => stuck.procState() === 'T', 2000, 'the engine to be stopped');
  const stoppedAt = stuck.stoppedAt!;

  let killedAt: number;
  if (o.supervisor) {
    // the kill time is printed by the killer right after kill(2); allow more than the bound
    // asserted by the caller, so that a late kill fails there with its figure
    const line = await Promise.any(workers.map((w) => w.waitForLine((l) => l.startsWith('supervised '), X + 25_000)));
    killedAt = Number(line.split(' ')[4]);
    await Promise.race([stuck.exited, sleep(5000)]);
  } else {
    while (Date.now() < stoppedAt + X + 10_000) {
      await sleep(250);
      expect(stuck.procState(), 'still stopped: nobody killed it').toBe('T');
    }
    killedAt = await stuck.kill9();
  }
  const [row] = await s.db!.exec(`SELECT count(*) AS n FROM stoker_events WHERE at > ${stoppedAt} AND at < ${killedAt}`);
  const during = Number(row?.n ?? NaN);
  const resumedAt = await waitFor(
    async () => {
      const [first] = await s.db!.exec(`SELECT min(at) AS t FROM stoker_events WHERE at >= ${killedAt}`);
      return first?.t === null || first?.t === undefined ? undefined : Number(first.t);
    },
    30_000,
    'the first commit after the kill',
  );
  const open = await waitTerminal(
    store,
    submitted.map((r) => r.id),
    60_000,
  );
  await fleet.terminateAll();
  const { verdict } = await verify(s, submitted, o.supervisor ? 'C12b' : 'C12b (no supervisor)');
  return { workers, stuck, stoppedAt, killedAt, during, resumedAt, open, verdict };
}
