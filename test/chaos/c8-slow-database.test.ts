/**
 * C8 (docs/reliability.md): a slow database, on PostgreSQL and MariaDB, with three engine
 * processes (T = 3 s) working through a stream of mixed chaos-flows runs.
 *
 * lock: a session of the test's own locks the row of a run in progress (`SELECT … FOR
 * UPDATE` in an open transaction) and holds it for 20 s. Every transaction of that run waits
 * for it (until the store's lock timeout, 5 s), so its completions fail and the engines that
 * hold its atoms give their ids up. Must hold: no engine process exits; other runs go on
 * finishing while the lock is held; the locked run finishes once it is released; every run
 * ends as expected and the checker finds no violation (false takeovers allowed, all fenced).
 *
 * trigger: for 10 s a trigger sleeps in every update of an atom row (150 ms a row) and of an
 * engine row (2 s: a renewal takes longer than the margin R9 leaves, so engines fence
 * themselves, and the database sees their leases lapse between two renewals: their atoms
 * are taken over while they still run). Must hold: the same.
 *
 * starved: for 10 s one engine process gets the CPU 200 ms of every 2.8 s (SIGSTOP for
 * 2.6 s, SIGCONT for 200 ms, as a starved or throttled process would): its renewals come
 * about once a cycle, close to the lease (3 s) and past R9's margin (0.9 × T), so it may
 * fence itself and its lease may lapse while its tasks still run. Must hold: the same.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Dialect } from '../helpers/databases.js';
import { testDialects } from '../helpers/databases.js';
import { readEffects, sleep, submitRuns, waitFor, waitTerminal, type EngineProc, type Submitted } from './harness.js';
import { useScenario, verify, type Scenario } from './scenario.js';

const LEASE_MS = 3000;
const STEP_MS = 150;
const HOLD_MS = 20_000;
const SLOW_MS = 10_000;
/** the starved engine's cycle: stopped this long, then running this long */
const STARVED_STOP_MS = 2600;
const STARVED_RUN_MS = 200;

/** A raw session of the test's own on the scenario's database. */
interface RawSession {
  query(sql: string, params?: unknown[]): Promise<unknown>;
  close(): Promise<void>;
}

async function rawSession(dialect: Dialect, url: string): Promise<RawSession> {
  if (dialect === 'postgres') {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    // the holder must not be ended by the server's idle-in-transaction timeout
    await c.query('SET idle_in_transaction_session_timeout = 0');
    return { query: (sql, params) => c.query(sql, params), close: () => c.end() };
  }
  const c = await mysql.createConnection({ uri: url });
  return { query: (sql, params) => c.query(sql, params), close: () => c.end() };
}

async function startFleet(s: Scenario): Promise<{ engines: EngineProc[]; submitted: Submitted[] }> {
  const opts = { leaseMs: LEASE_MS, concurrency: 4, env: { ENGINE_POLL_MS: '100' } };
  const engines = await Promise.all([0, 1, 2].map(() => s.fleet.start({ ...opts, name: 'engine' })));
  const submitted = await submitRuns(s.store, 24, { log: s.log, stepMs: STEP_MS });
  return { engines, submitted };
}

async function finish(s: Scenario, engines: EngineProc[], submitted: Submitted[], label: string) {
  const left = await waitTerminal(
    s.store,
    submitted.map((r) => r.id),
    90_000,
  );
  expect(left, 'runs still active').toEqual([]);
  const alive = engines.filter((p) => p.alive).length;
  await s.fleet.terminateAll();
  const { verdict } = await verify(s, submitted, label);
  expect(alive, 'engine processes alive after the fault').toBe(engines.length);
  return verdict;
}

// The dialects run at the same time (each has its own database, engines and log; the test
// mostly waits out the 20 s and 10 s phases); the three scenarios of one dialect run in turn.
for (const dialect of testDialects().filter((d) => d !== 'sqlite'))
  describe(dialect, { concurrent: true }, () => {
    describe.sequential(`C8 a session holds a run's row lock for ${HOLD_MS / 1000} s on ${dialect}`, () => {
      const s = useScenario(dialect, 'c8lock');

      it('other runs go on; the locked run finishes after the release; false takeovers are fenced', async (ctx) => {
        if (!s.db) return ctx.skip();
        const { engines, submitted } = await startFleet(s);
        // a long chain in progress: some of its tasks done, not finished
        const chains = submitted.filter((r) => r.flow === 'chaosChain10').map((r) => r.id);
        const victim = await waitFor(
          () => {
            const started = new Set(readEffects(s.log).map((l) => l.run));
            return chains.find((id) => started.has(id));
          },
          30_000,
          'a chain of ten to be in progress',
        );
        const holder = await rawSession(dialect, s.db.url);
        const from = Date.now();
        try {
          await holder.query('BEGIN');
          await holder.query(`SELECT id FROM stoker_runs WHERE id = ${dialect === 'postgres' ? '$1' : '?'} FOR UPDATE`, [victim]);
          // new runs while it is held: they must not wait for the locked one
          submitted.push(...(await submitRuns(s.store, 9, { log: s.log, stepMs: STEP_MS })));
          await sleep(HOLD_MS);
          await holder.query('ROLLBACK');
        } finally {
          await holder.close();
        }
        const to = Date.now();
        const statuses = await s.store.getRunStatuses([victim]);
        const runs = await s.store.listRuns({ limit: 1000 });
        const finishedMeanwhile = runs.filter(
          (r) => r.id !== victim && r.finishedAt !== null && r.finishedAt.getTime() > from + 1000 && r.finishedAt.getTime() < to,
        );
        const verdict = await finish(s, engines, submitted, `C8 lock ${dialect}`);
        console.log(
          `C8 lock ${dialect}: run ${victim} locked ${to - from} ms (${statuses.get(victim)} at the release); other runs finished meanwhile ${finishedMeanwhile.length}; ` +
            `re-registrations ${JSON.stringify(engines.map((p) => p.ids.length - 1))}; requeues ${verdict.stats.requeues}; fenced writes ${verdict.stats.fencedWriteEvents}; re-executions ${verdict.stats.reexecutions}`,
        );
        expect(finishedMeanwhile.length, 'runs that finished while one run was locked').toBeGreaterThan(0);
        expect(verdict.violations).toEqual([]);
      }, 150_000);
    });

    describe.sequential(`C8 a trigger slows every atom and engine row update for ${SLOW_MS / 1000} s on ${dialect}`, () => {
      const s = useScenario(dialect, 'c8slow');

      it('slower but correct: every run finishes; false takeovers are fenced', async (ctx) => {
        if (!s.db) return ctx.skip();
        const { engines, submitted } = await startFleet(s);
        await waitFor(() => readEffects(s.log).length > 20 || undefined, 30_000, 'work in progress');
        const db = s.db;
        const slow = async (table: string, seconds: number): Promise<void> => {
          if (dialect === 'postgres') {
            await db.exec(
              `CREATE FUNCTION c8_sleep_${table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${seconds}); RETURN NEW; END $$`,
            );
            await db.exec(
              `CREATE TRIGGER c8_slow_${table} BEFORE UPDATE ON stoker_${table} FOR EACH ROW EXECUTE FUNCTION c8_sleep_${table}()`,
            );
          } else {
            await db.exec(
              `CREATE TRIGGER c8_slow_${table} BEFORE UPDATE ON stoker_${table} FOR EACH ROW SET @c8_slept = SLEEP(${seconds})`,
            );
          }
        };
        const from = Date.now();
        await slow('atoms', 0.15);
        await slow('engines', 2);
        await sleep(SLOW_MS);
        for (const table of ['atoms', 'engines'])
          await db.exec(`DROP TRIGGER c8_slow_${table}${dialect === 'postgres' ? ` ON stoker_${table}` : ''}`);
        const to = Date.now();
        submitted.push(...(await submitRuns(s.store, 6, { log: s.log, stepMs: STEP_MS })));
        const verdict = await finish(s, engines, submitted, `C8 slow trigger ${dialect}`);
        console.log(
          `C8 slow trigger ${dialect}: ${to - from} ms slowed; re-registrations ${JSON.stringify(engines.map((p) => p.ids.length - 1))}; ` +
            `requeues (false takeovers) ${verdict.stats.requeues}; fenced writes ${verdict.stats.fencedWriteEvents}; re-executions ${verdict.stats.reexecutions}; ` +
            `engine errors logged ${engines.reduce((n, p) => n + (p.stderr.match(/engine error/g) ?? []).length, 0)}`,
        );
        expect(verdict.violations).toEqual([]);
      }, 150_000);
    });

    describe.sequential(
      `C8 one engine starved of CPU (${STARVED_RUN_MS} ms in every ${STARVED_STOP_MS + STARVED_RUN_MS} ms) for ${SLOW_MS / 1000} s on ${dialect}`,
      () => {
        const s = useScenario(dialect, 'c8starved');

        it('slower but correct: every run finishes; false takeovers are fenced', async (ctx) => {
          if (!s.db) return ctx.skip();
          const { engines, submitted } = await startFleet(s);
          const starved = engines[0]!;
          await waitFor(() => readEffects(s.log).some((l) => l.pid === starved.pid) || undefined, 30_000, `${starved.name} at work`);
          const until = Date.now() + SLOW_MS;
          while (Date.now() < until) {
            starved.signal('SIGSTOP');
            await sleep(STARVED_STOP_MS);
            starved.signal('SIGCONT');
            await sleep(STARVED_RUN_MS);
          }
          submitted.push(...(await submitRuns(s.store, 6, { log: s.log, stepMs: STEP_MS })));
          const verdict = await finish(s, engines, submitted, `C8 starved ${dialect}`);
          console.log(
            `C8 starved ${dialect}: re-registrations ${JSON.stringify(engines.map((p) => p.ids.length - 1))}; requeues (false takeovers) ${verdict.stats.requeues}; ` +
              `fenced writes ${verdict.stats.fencedWriteEvents}; re-executions ${verdict.stats.reexecutions}`,
          );
          expect(verdict.violations).toEqual([]);
        }, 150_000);
      },
    );
  });
