/**
 * C16 (docs/reliability.md): the database refuses writes for 20 s, on a private PostgreSQL
 * and a private MariaDB server (the switches are server-wide, so the shared servers are
 * never used). PostgreSQL: `ALTER SYSTEM SET default_transaction_read_only = on` and a
 * configuration reload (every session's next transaction is read-only; SQLSTATE 25006).
 * MariaDB: `SET GLOBAL read_only = ON`, with the engines connected as a user of their own
 * without the privilege to bypass it (error 1290). Three engines (T = 3 s) have tasks in
 * flight when it starts.
 *
 * Must hold:
 * - the engines stop claiming: once their lease estimate has run out (T after the switch,
 *   plus a poll) no engine tries to claim until writes are allowed again;
 * - they fence themselves: each registers again under a new id afterwards;
 * - nothing is written half: every run ends as expected and the checker finds no violation
 *   of I1–I4, I6 (a refused transaction leaves nothing behind);
 * - they resume: no engine process exits, and each claims work after writes are allowed.
 */
import { expect, it } from 'vitest';
import { testDialects } from '../helpers/databases.js';
import { readEffects, sleep, submitRuns, waitFor, waitTerminal, type EngineProc } from './harness.js';
import { describePrivate, verifyPrivate } from './private-scenario.js';
import type { PrivateServer, ServerKind } from './private-server.js';

const LEASE_MS = 3000;
const STEP_MS = 150;
const READ_ONLY_MS = 20_000;
const ENGINES = 3;
const ENGINE_USER = 'stoker_engine';

async function setReadOnly(server: PrivateServer, on: boolean): Promise<void> {
  if (server.kind === 'postgres') {
    await server.exec(on ? 'ALTER SYSTEM SET default_transaction_read_only = on' : 'ALTER SYSTEM RESET default_transaction_read_only');
    await server.exec('SELECT pg_reload_conf()');
  } else {
    await server.exec(`SET GLOBAL read_only = ${on ? 'ON' : 'OFF'}`);
  }
}

/** MariaDB: root bypasses read_only (it holds READ_ONLY ADMIN), so the engines get a user of their own. */
async function engineUrl(server: PrivateServer, db: string): Promise<string> {
  if (server.kind === 'postgres') return server.url(db);
  await server.exec(`CREATE USER '${ENGINE_USER}'@'127.0.0.1' IDENTIFIED BY 'engine'`);
  await server.exec(`GRANT ALL PRIVILEGES ON \`${db}\`.* TO '${ENGINE_USER}'@'127.0.0.1'`);
  // the session-lock sweep reads other sessions in the process list
  await server.exec(`GRANT PROCESS ON *.* TO '${ENGINE_USER}'@'127.0.0.1'`);
  return `mysql://${ENGINE_USER}:engine@127.0.0.1:${server.port}/${db}`;
}

/** Counts the engine's logged errors about claims from now on. */
function claimErrors(p: EngineProc): { count: number } {
  const c = { count: 0 };
  p.child.stderr!.on('data', (d: Buffer) => {
    c.count += (d.toString().match(/engine error: .*claim/gi) ?? []).length;
  });
  return c;
}

const KINDS: ServerKind[] = [];
if (testDialects().includes('postgres')) KINDS.push('postgres');
if (testDialects().includes('mysql')) KINDS.push('mariadb');

for (const kind of KINDS) {
  describePrivate(
    kind,
    `C16 the database refuses writes for ${READ_ONLY_MS / 1000} s on ${kind} (private server)`,
    (s) => {
      it.sequential(
        'engines stop claiming, fence themselves, write nothing half, and resume after',
        async () => {
          const engineOpts = { leaseMs: LEASE_MS, concurrency: 4, env: { ENGINE_POLL_MS: '100' } };
          const engines = await Promise.all(Array.from({ length: ENGINES }, () => s.fleet.start({ ...engineOpts, name: 'engine' })));
          const errors = engines.map(claimErrors);
          const submitted = await submitRuns(s.store, 30, { log: s.log, stepMs: STEP_MS });
          await waitFor(
            () => {
              const lines = readEffects(s.log);
              return engines.every((p) => lines.some((l) => l.pid === p.pid && l.phase === 'start')) || undefined;
            },
            30_000,
            'every engine to be executing',
          );
          const roFrom = Date.now();
          await setReadOnly(s.server, true);
          // the engines' lease estimates run out within 0.9 T of their last renewal, then they stop claiming
          await sleep(LEASE_MS + 500);
          const before = errors.map((e) => e.count);
          await sleep(READ_ONLY_MS - LEASE_MS - 500);
          const during = errors.map((e, i) => e.count - before[i]!);
          await setReadOnly(s.server, false);
          const roTo = Date.now();
          submitted.push(...(await submitRuns(s.store, 4 * ENGINES, { log: s.log, stepMs: STEP_MS })));
          const left = await waitTerminal(
            s.store,
            submitted.map((r) => r.id),
            60_000,
          );
          expect(left, 'runs still active after writes were allowed again').toEqual([]);
          const alive = engines.filter((p) => p.alive).length;
          await s.fleet.terminateAll();

          const { verdict, history } = await verifyPrivate(s, submitted, 'C16 read-only');
          const byPid = s.fleet.idsByPid();
          const claimed = history.events.filter((e) => e.kind === 'atom.claimed' && e.engineId !== null);
          const inWindow = claimed.filter((e) => e.at.getTime() > roFrom + 1000 && e.at.getTime() < roTo);
          const claimsAfter = engines.map((p) => claimed.filter((e) => byPid.get(e.engineId!) === p.pid && e.at.getTime() >= roTo).length);
          console.log(
            `C16 ${kind}: read-only ${roTo - roFrom} ms; claim errors logged per engine after its lease ran out ${JSON.stringify(during)}; ` +
              `claims committed in the window ${inWindow.length}; ids per engine ${JSON.stringify(engines.map((p) => p.ids.length))}; ` +
              `claims after ${JSON.stringify(claimsAfter)}; ${submitted.length} runs, requeues ${verdict.stats.requeues}, re-executions ${verdict.stats.reexecutions}, fenced writes ${verdict.stats.fencedWriteEvents}`,
          );
          expect(alive, 'engine processes alive after the read-only window').toBe(ENGINES);
          expect(inWindow.length, 'claims committed while the database refused writes').toBe(0);
          expect(during, 'claims tried after the lease estimate ran out').toEqual(engines.map(() => 0));
          expect(
            engines.map((p) => p.ids.length > 1),
            'every engine fenced itself and registered again',
          ).toEqual(engines.map(() => true));
          expect(
            claimsAfter.map((n) => n > 0),
            'every engine claims again afterwards',
          ).toEqual(engines.map(() => true));
          expect(
            engines.map((p) => p.exit?.code),
            'graceful exits',
          ).toEqual(engines.map(() => 0));
          expect(verdict.violations).toEqual([]);
        },
        150_000,
      );
    },
    // the two servers' read-only windows run at the same time: each is private to its describe
    { label: 'c16', fleetUrl: engineUrl, concurrent: true },
  );
}
