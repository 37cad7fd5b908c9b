/**
 * C14 (docs/reliability.md): everything restarts at once, on a private PostgreSQL and a
 * private MariaDB server (test/chaos/private-server.ts; the shared servers are never
 * touched). Three engine processes work through a stream of mixed chaos-flows runs; with
 * tasks in flight every engine is killed (SIGKILL, all at once), the server is crashed and
 * started again at once (PostgreSQL `pg_ctl stop -m immediate`, MariaDB `kill -9
 * mariadbd`: recovery from the log), and three new engine processes start.
 *
 * Must hold:
 * - every run resumes and ends as expected (I2), and some were in flight at the crash;
 * - nothing with a recorded result runs again: no task starts, after the crash, for an atom
 *   whose SUCCESS the database held once it was back (flows whose scope retry or revert
 *   legitimately runs a succeeded task again are left out of this count; the checker's I6
 *   covers them), and the checker finds no violation of I1–I4, I6.
 */
import { expect, it } from 'vitest';
import { isTerminalRun } from '../../src/store/states.js';
import { testDialects } from '../helpers/databases.js';
import { readEffects, sleep, submitRuns, waitFor, waitTerminal } from './harness.js';
import { describePrivate, verifyPrivate } from './private-scenario.js';
import type { ServerKind, StopMode } from './private-server.js';

const LEASE_MS = 3000;
const STEP_MS = 150;
const ENGINES = 3;
/** flows in which a succeeded task may run again legitimately (scope retry, revert) */
const RERUN_ALLOWED = new Set(['chaosScope', 'chaosRevert']);

const KINDS: { kind: ServerKind; mode: StopMode }[] = [];
if (testDialects().includes('postgres')) KINDS.push({ kind: 'postgres', mode: 'immediate' });
if (testDialects().includes('mysql')) KINDS.push({ kind: 'mariadb', mode: 'kill9' });

for (const { kind, mode } of KINDS) {
  describePrivate(
    kind,
    `C14 everything restarts at once on ${kind} (private server)`,
    (s) => {
      it('every run resumes; nothing with a recorded result runs again; no invariant is violated', async () => {
        const engineOpts = { leaseMs: LEASE_MS, concurrency: 4, env: { ENGINE_POLL_MS: '100' } };
        const first = await Promise.all(Array.from({ length: ENGINES }, () => s.fleet.start({ ...engineOpts, name: 'before' })));
        const submitted = await submitRuns(s.store, 30, { log: s.log, stepMs: STEP_MS });
        // crash while every engine executes something and some runs have finished
        await waitFor(
          () => {
            const lines = readEffects(s.log);
            return first.every((p) => lines.some((l) => l.pid === p.pid && l.phase === 'start')) && lines.length > 60;
          },
          30_000,
          'every engine to be executing',
        );
        const crashAt = Date.now();
        await Promise.all(first.map((p) => p.kill9()));
        const outage = await s.server.restart({ mode, downMs: 0 });
        // what the database holds as recorded once it is back: no task of these may start again
        // (the harness's pooled connections died with the server: retry until it answers)
        const statuses = await waitFor(
          () => s.store.getRunStatuses(submitted.map((r) => r.id)).catch(() => undefined),
          20_000,
          'the server to answer',
        );
        const open = submitted.filter((r) => !isTerminalRun(statuses.get(r.id)!));
        const recorded = new Set<string>();
        const flowOf = new Map(submitted.map((r) => [r.id, r.flow]));
        for (const r of submitted) {
          if (RERUN_ALLOWED.has(r.flow)) continue;
          for (const a of await s.store.getAtoms(r.id)) if (a.state === 'SUCCESS') recorded.add(`${r.id}/${a.name}`);
        }
        const second = await Promise.all(Array.from({ length: ENGINES }, () => s.fleet.start({ ...engineOpts, name: 'after' })));
        const restartedAt = Date.now();
        const left = await waitTerminal(
          s.store,
          submitted.map((r) => r.id),
          60_000,
        );
        expect(left, 'runs still active after the restart').toEqual([]);
        await sleep(200);
        await s.fleet.terminateAll();

        const reruns = readEffects(s.log).filter((l) => l.phase === 'start' && l.t >= crashAt && recorded.has(`${l.run}/${l.name}`));
        const resumed = readEffects(s.log).filter((l) => l.phase === 'start' && l.t >= crashAt && flowOf.has(l.run));
        const { verdict } = await verifyPrivate(s, submitted, 'C14 restart all');
        console.log(
          `C14 ${kind}: ${submitted.length} runs, ${open.length} open at the crash, ${recorded.size} atoms with a recorded result then; ` +
            `server ${mode} + start took ${outage.upAt - outage.stopAt} ms; engines killed → new engines ready ${restartedAt - crashAt} ms; ` +
            `tasks started after the crash ${resumed.length}, of atoms with a recorded result ${reruns.length}; re-executions ${verdict.stats.reexecutions}`,
        );
        expect(open.length, 'runs in flight at the crash (else the scenario proved nothing)').toBeGreaterThan(0);
        expect(
          reruns.map((l) => `${l.run}/${l.name} epoch ${l.epoch}`),
          'tasks started again although their result was recorded',
        ).toEqual([]);
        expect(
          second.map((p) => p.exit?.code),
          'graceful exits of the new engines',
        ).toEqual(second.map(() => 0));
        expect(verdict.violations).toEqual([]);
      }, 120_000);
    },
    { label: 'c14' },
  );
}
