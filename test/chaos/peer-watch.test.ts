/**
 * Protocol 4's immediate half (EngineOptions.watchPeers), with real processes: on
 * PostgreSQL and MySQL/MariaDB an engine waits for another's session lock, on SQLite it
 * looks at the other's pid. The reapers run once an hour and leases last a minute, so
 * nothing but the watch can find a crash soon:
 *
 * - an engine that waits on the victim's session lock takes the victim's atom over after
 *   `kill -9` (kill → claimed by the watcher is printed);
 * - the control: the same crash with the watch turned off is still unnoticed 1.5 s later,
 *   so it is the watch, not something else, that found the first one.
 */
import { describe, expect, it } from 'vitest';
import { client, sleep, waitFor, type EngineProc } from './harness.js';
import { testDialects, type TestStore } from '../helpers/databases.js';
import { useScenario, type Scenario } from './scenario.js';

const QUIET = { ENGINE_REAP_MS: '3600000', ENGINE_POLL_MS: '100' };
const LEASE_MS = 60_000;

/**
 * Whether some session is waiting (not yet granted) for a session lock: the watch is in
 * place. SQLite's watch is in the engine process only: there, wait a little instead.
 */
async function someoneWaitsForALock(db: TestStore): Promise<boolean> {
  if (db.dialect === 'sqlite') {
    await sleep(500);
    return true;
  }
  const rows =
    db.dialect === 'postgres'
      ? await db.exec(
          `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )
      : await db.exec(
          // not the wake-up listeners, which wait in a lock of their own (src/store/mysql/wakeups.ts)
          `SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'SELECT GET_LOCK(%' AND INFO NOT LIKE '%wake\\_listener' AND STATE LIKE '%lock%'`,
        );
  return rows.length > 0;
}

for (const dialect of testDialects()) {
  // one database per case: an engine of one case, killed, must not be found by the next
  describe(`peer watch on ${dialect}`, () => {
    const s = useScenario(dialect, 'watch');
    it('kill -9: the engine watching the victim takes its atom over, with the reapers off', async (ctx) => {
      if (!s.db) return ctx.skip();
      const { victim, witness, runId } = await victimAndWitness(s, {});
      await waitFor(() => someoneWaitsForALock(s.db!), 10_000, "the witness to wait on the victim's session lock");
      const t0 = Date.now();
      victim.signal('SIGKILL');
      await victim.exited;
      const atom = await waitFor(
        async () => {
          const [a] = await s.store.getAtoms(runId);
          return a && witness.ids.includes(a.claimedBy ?? '') ? a : undefined;
        },
        10_000,
        "the witness to claim the victim's atom",
      );
      console.log(
        `peer watch ${dialect}: kill -9 → claimed by the watching engine after ${Date.now() - t0} ms (reapers every hour, lease 60 s)`,
      );
      expect(atom).toMatchObject({ state: 'RUNNING', execution: 2 });
      const kinds = (await s.store.listEvents({ runId: runId })).map((e) => e.kind);
      expect(kinds.filter((k) => k === 'atom.requeued')).toHaveLength(1);
      expect((await s.store.listEngines()).find((e) => victim.ids.includes(e.id))?.state).toBe('dead');
    }, 60_000);
  });

  describe(`peer watch on ${dialect}, control`, () => {
    const s = useScenario(dialect, 'watch-off');
    it('without the watch the same crash is still unnoticed 1.5 s later', async (ctx) => {
      if (!s.db) return ctx.skip();
      const { victim, runId } = await victimAndWitness(s, { ENGINE_WATCH_PEERS: '0' });
      await sleep(1_000);
      if (dialect !== 'sqlite') expect(await someoneWaitsForALock(s.db)).toBe(false);
      victim.signal('SIGKILL');
      await victim.exited;
      await sleep(1_500);
      const [atom] = await s.store.getAtoms(runId);
      expect(atom).toMatchObject({ state: 'RUNNING', execution: 1 });
      expect(victim.ids).toContain(atom!.claimedBy);
    }, 60_000);
  });
}

/**
 * A victim engine holding a 60 s task, then a second engine (the witness), both with the
 * reapers off; the victim, alone when it looked, has nobody to watch for the next 30 s.
 */
async function victimAndWitness(
  s: Scenario,
  witnessEnv: Record<string, string>,
): Promise<{ victim: EngineProc; witness: EngineProc; runId: string }> {
  const victim = await s.fleet.start({ name: 'victim', leaseMs: LEASE_MS, concurrency: 1, env: QUIET });
  const { run } = await client(s.store).startRun('chaosHold', { log: s.log, holdMs: 60_000 });
  await waitFor(async () => victim.ids.includes((await s.store.getAtoms(run.id))[0]?.claimedBy ?? ''), 10_000, 'the victim to claim');
  const witness = await s.fleet.start({ name: 'witness', leaseMs: LEASE_MS, concurrency: 1, env: { ...QUIET, ...witnessEnv } });
  return { victim, witness, runId: run.id };
}
