/**
 * C2 (docs/reliability.md): a zombie. An engine SIGSTOPs itself at
 * `after-side-effect-before-result` (its task's side effect happened, the result is not
 * recorded) and stays stopped for 3× its lease (1.5 s) while another engine takes its
 * atoms over; then it gets SIGCONT. None of its writes may land: its completion is fenced
 * (an `atom.fenced_write` event, a `fenced` line, stats.fencedWrites > 0), the recorded
 * result is the new owner's, it registers again under a new id (a new engines row) and
 * goes on working. Takeover must come within B = lease + poll + 1 s of the stop.
 */
import { describe, expect, it } from 'vitest';
import type { EffectResult } from '../fixtures/chaos-flows.js';
import { testDialects } from '../helpers/databases.js';
import { LONG, readEffects, sleep, submitRuns, waitFor, waitTerminal, type Submitted } from './harness.js';
import { useScenario, verify } from './scenario.js';

const LEASE_MS = 1500;
const POLL_MS = 100;
const BOUND_MS = LEASE_MS + POLL_MS + 1000;
const STOP_MS = 3 * LEASE_MS;

for (const dialect of testDialects()) {
  describe(`C2 zombie (SIGSTOP beyond the lease) on ${dialect}`, () => {
    const s = useScenario(dialect, 'c2');

    it('a stopped engine is taken over within the bound; after SIGCONT its writes are fenced and it re-registers', async (ctx) => {
      if (!s.db) return ctx.skip();
      const { fleet, store } = s;
      const env = { ENGINE_POLL_MS: String(POLL_MS) };
      const [zombie, worker] = await Promise.all([
        fleet.start({
          leaseMs: LEASE_MS,
          name: 'zombie',
          env: { ...env, ENGINE_STOP_AT: 'after-side-effect-before-result', ENGINE_STOP_AFTER: '3' },
        }),
        // spare slots, so the takeover is not delayed by a busy worker
        fleet.start({ leaseMs: LEASE_MS, name: 'worker', concurrency: 8, env }),
      ]);
      const zombieId = zombie.ids[0]!;
      const submitted: Submitted[] = await submitRuns(store, 12, { log: s.log, stepMs: 150 });

      const stopLine = await zombie.waitForLine((l) => l.startsWith('stop '), 30_000);
      const [, , , runId, atomText, atText] = stopLine.split(' ');
      const atom = Number(atomText);
      const stoppedAt = Number(atText);
      await waitFor(() => zombie.procState() === 'T', 2000, 'the zombie to be stopped');
      const before = (await store.getAtoms(runId!)).find((a) => a.index === atom)!;
      const zombieEpoch = before.epoch;
      console.log(
        `C2 ${dialect}: zombie pid ${zombie.pid} (${zombieId}) stopped holding ${runId}/${atom} (${before.name}) epoch ${zombieEpoch}`,
      );

      // another engine takes over while the zombie sleeps
      const takeover = await waitFor(
        async () => {
          const events = await store.listEvents({ runId: runId! });
          const claim = events.find((e) => e.atom === atom && e.kind === 'atom.claimed' && (e.epoch ?? 0) > zombieEpoch);
          return claim
            ? { claim, requeue: events.find((e) => e.atom === atom && e.kind === 'atom.requeued' && e.engineId === zombieId) }
            : undefined;
        },
        STOP_MS,
        'another engine to claim the zombie’s atom',
      );
      const requeueMs = takeover.requeue ? takeover.requeue.at.getTime() - stoppedAt : NaN;
      const claimMs = takeover.claim.at.getTime() - stoppedAt;
      console.log(
        `C2 ${dialect}: takeover stop → requeue ${requeueMs} ms, → claim ${claimMs} ms by ${takeover.claim.engineId} (epoch ${takeover.claim.epoch}); bound ${BOUND_MS} ms`,
      );
      expect(takeover.claim.engineId).not.toBe(zombieId);
      expect(claimMs).toBeLessThanOrEqual(BOUND_MS);

      const wake = stoppedAt + STOP_MS - Date.now();
      if (wake > 0) await sleep(wake);
      const contAt = Date.now();
      zombie.signal('SIGCONT');
      const fencedLine = await zombie.waitForLine((l) => l.startsWith(`fenced ${runId} ${atom} `), 10_000);
      expect(Number(fencedLine.split(' ')[3])).toBe(zombieEpoch);
      // it fenced itself and registered again under a new id
      await zombie.waitForLine((l) => l.startsWith('id '), 10_000);
      const newId = zombie.ids.at(-1)!;
      expect(newId).not.toBe(zombieId);

      // more work arrives: the revived engine takes part
      submitted.push(...(await submitRuns(store, 10, { log: s.log, stepMs: 100 })));
      const open = await waitTerminal(
        store,
        submitted.map((r) => r.id),
        60_000,
      );
      expect(open, 'runs still active').toEqual([]);
      const engines = await store.listEngines();
      const rows = engines.filter((e) => e.pid === zombie.pid);
      console.log(`C2 ${dialect}: engines rows of the zombie's pid: ${rows.map((r) => `${r.id}=${r.state}`).join(', ')}`);
      expect(rows.some((r) => r.id === newId && r.state !== 'dead')).toBe(true);
      expect(
        engines.some((r) => r.id === zombieId && r.state !== 'dead'),
        'the old id is no longer live',
      ).toBe(false);
      const afterCont = readEffects(s.log).filter((l) => l.pid === zombie.pid && l.t > contAt && l.phase === 'start');
      expect(afterCont.length, 'tasks the revived engine executed').toBeGreaterThan(0);

      await fleet.terminateAll();
      expect(worker.exit?.code).toBe(0);
      console.log(`C2 ${dialect}: zombie stats ${JSON.stringify(zombie.stats)}`);
      expect(Number(zombie.stats?.fencedWrites)).toBeGreaterThan(0);

      // its side effect happened, but the recorded result is the new owner's
      const effects = readEffects(s.log);
      expect(
        effects.some(
          (l) => l.pid === zombie.pid && l.run === runId && l.name === before.name && l.phase === 'end' && l.epoch === zombieEpoch,
        ),
      ).toBe(true);
      const final = (await store.getAtoms(runId!)).find((a) => a.index === atom)!;
      expect(final.epoch).toBeGreaterThan(zombieEpoch);
      if (final.state === 'SUCCESS') expect((final.result as unknown as EffectResult).epoch).toBeGreaterThan(zombieEpoch);
      const events = await store.listEvents({ runId: runId! });
      expect(events.some((e) => e.kind === 'atom.fenced_write' && e.atom === atom && e.epoch === zombieEpoch)).toBe(true);

      const { verdict } = await verify(s, submitted, 'C2');
      expect(verdict.violations).toEqual([]);
    }, 120_000);
  });
}

/**
 * C2 variant (b): the zombie is stopped at `inside-fenced-tx`, i.e. inside its completion
 * transaction, holding the run's and the atom's row locks. Claims and requeues skip locked
 * rows, so the takeover of that atom is bounded by how soon the server ends the idle
 * transaction (docs/reliability.md R12: `idle_in_transaction_session_timeout` on PostgreSQL, 15 s by
 * default in PostgresStore; MariaDB's `idle_transaction_timeout`), not by the lease. Slow
 * (≥ 15 s), so only with CHAOS_LONG=1 (or CHAOS_C2B=1).
 */
const C2B = LONG || process.env.CHAOS_C2B === '1';
const C2B_CAP_MS = 30_000;
for (const dialect of testDialects().filter((d) => d !== 'sqlite')) {
  describe.skipIf(!C2B)(`C2b zombie stopped inside its fenced transaction on ${dialect}`, () => {
    const s = useScenario(dialect, 'c2b');

    // Both stores end a session that idles inside a transaction (PostgreSQL
    // idle_in_transaction_session_timeout, MariaDB idle_transaction_timeout, RULES R12),
    // so the zombie's row locks are freed and its atom is taken over; on SIGCONT the zombie
    // finds its transaction gone and must not crash.
    const test = it;
    test('the held atom is taken over once the server ends the idle transaction; no zombie write lands', async (ctx) => {
      if (!s.db) return ctx.skip();
      const { fleet, store } = s;
      const env = { ENGINE_POLL_MS: String(POLL_MS) };
      const [zombie] = await Promise.all([
        // ENGINE_FAST_PATHS=0: its completions are general transactions, one of which it stops in
        fleet.start({
          leaseMs: LEASE_MS,
          name: 'zombie',
          env: { ...env, ENGINE_STOP_AT: 'inside-fenced-tx', ENGINE_STOP_AFTER: '3', ENGINE_FAST_PATHS: '0' },
        }),
        fleet.start({ leaseMs: LEASE_MS, name: 'worker', concurrency: 8, env }),
      ]);
      const zombieId = zombie!.ids[0]!;
      const submitted: Submitted[] = await submitRuns(store, 12, { log: s.log, stepMs: 150 });
      const stopLine = await zombie!.waitForLine((l) => l.startsWith('stop '), 30_000);
      const [, , , runId, atomText, atText] = stopLine.split(' ');
      const atom = Number(atomText);
      const stoppedAt = Number(atText);
      await waitFor(() => zombie!.procState() === 'T', 2000, 'the zombie to be stopped');
      const claim = await waitFor(
        async () =>
          (await store.listEvents({ runId: runId! })).find(
            (e) => e.atom === atom && e.kind === 'atom.claimed' && e.engineId !== zombieId && e.at.getTime() > stoppedAt,
          ),
        C2B_CAP_MS,
        `another engine to claim ${runId}/${atom} (held inside a stopped transaction)`,
      ).catch(() => null);
      const takeoverMs = claim ? claim.at.getTime() - stoppedAt : null;
      console.log(
        `C2b ${dialect}: stopped inside the fenced transaction of ${runId}/${atom}; takeover after ${takeoverMs ?? `> ${C2B_CAP_MS}`} ms`,
      );
      zombie!.signal('SIGCONT');
      const open = await waitTerminal(
        store,
        submitted.map((r) => r.id),
        60_000,
      );
      const crashed = zombie!.alive ? null : zombie!.exit;
      await fleet.terminateAll();
      console.log(
        `C2b ${dialect}: after SIGCONT the zombie ${crashed ? `crashed ${JSON.stringify(crashed)}: ${/^\w*[Ee]rror: [^\n]*/m.exec(zombie!.stderr)?.[0] ?? zombie!.stderr.slice(-300)}` : `exited ${JSON.stringify(zombie!.exit)} on SIGTERM`}; stats ${JSON.stringify(zombie!.stats)}`,
      );
      const { verdict } = await verify(s, submitted, 'C2b');
      expect(verdict.violations).toEqual([]);
      expect(open).toEqual([]);
      expect(takeoverMs, 'takeover of an atom held inside a stopped transaction').not.toBeNull();
      expect(crashed, 'the revived zombie keeps running (its failed transaction is an error, not a crash)').toBeNull();
    }, 180_000);
  });
}
