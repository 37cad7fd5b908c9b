/**
 * C3 / C4 (docs/reliability.md): the database server restarts (cleanly and by crash) under load,
 * on a PRIVATE server (test/chaos/private-server.ts; the shared servers are never touched).
 *
 * Three engine processes work through a stream of mixed chaos-flows runs; at random moments
 * the server is stopped (3 times, modes shuffled, each at least once: PostgreSQL `pg_ctl
 * stop -m fast` / `-m immediate`, MariaDB `mariadb-admin shutdown` / `kill -9 mariadbd`),
 * left down 2–5 s (CHAOS_LONG=1: 5 restarts, 2–10 s; the start, with crash recovery, comes
 * on top), and started again. Submissions keep coming during outages (failed ones are not
 * acknowledged). After each restart the test waits (≤ 20 s) until some engine claims again,
 * then waits 1–3 s before the next fault. Then it asserts:
 *
 * - no engine process exited (they reconnect; no crash loop);
 * - every acknowledged run is terminal with its expected outcome (I2: none lost);
 * - every engine is registered and live under its latest id, which differs from its first
 *   (each lost its session lock and fenced itself), the server shows its session lock held
 *   again (and, on PostgreSQL, a LISTEN connection of that process), and it claimed work
 *   after the last restart (a fresh batch of runs is submitted for that);
 * - the checker finds no violation of I1–I4, I6 (commits in flight during a crash are
 *   resolved by re-reading, never double-applied: one terminal transition per run, one
 *   recorded result per atom, from the execution under the atom's final epoch);
 * - at least one outage caught atoms in flight that were requeued and claimed again (else
 *   the scenario proved nothing); every engine exits 0 on SIGTERM afterwards.
 *
 * Printed figures: per outage, its mode and length, outage start → first successful claim
 * and server up → first claim (database event time; the server runs on this host), atoms
 * and runs re-claimed; totals of re-executions, fenced writes, failed submissions, and the
 * store errors the engines reported, by operation (completions and claims in flight).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import type { EventRow, Store } from '../../src/store/store.js';
import { isStokerError } from '../../src/errors.js';
import { EXPECTED_STATUS, WORKLOAD } from '../fixtures/chaos-flows.js';
import { checkHistory, collectHistory, formatVerdict } from './checker.js';
import { skippedWithoutServer } from './private-scenario.js';
import {
  Fleet,
  LONG,
  client,
  clientPortsToPids,
  randInt,
  readEffects,
  sleep,
  waitFor,
  waitTerminal,
  type EngineProc,
  type Submitted,
} from './harness.js';
import { createPrivateServer, type OutageTimes, type PrivateServer, type ServerKind, type StopMode } from './private-server.js';

const LEASE_MS = 3000;
const POLL_MS = 100;
const STEP_MS = 120;
const ENGINES = 3;
const RESTARTS = LONG ? 5 : 3;
const DOWN_MS: readonly [number, number] = LONG ? [2000, 10_000] : [2000, 5000];
/** time from one outage's end (claims resumed) to the next fault */
const GAP_MS: readonly [number, number] = [1000, 3000];
/** how long after a restart some engine must claim again */
const RESUME_TIMEOUT_MS = 20_000;

export interface RestartScenario {
  id: 'C3' | 'C4';
  kind: ServerKind;
  /** the stop modes used, in turn (shuffled once, each at least once) */
  modes: readonly StopMode[];
  /** how each mode is done, for the log */
  describeMode: (mode: StopMode) => string;
}

/** Count of `atom.claimed` events at or after wall time `ms` (DB clock; the server runs on this host). */
async function claimsSince(server: PrivateServer, db: string, ms: number): Promise<number> {
  const sql =
    server.kind === 'postgres'
      ? `SELECT count(*)::int AS n FROM stoker_events WHERE kind = 'atom.claimed' AND at >= to_timestamp(${ms} / 1000.0)`
      : `SELECT COUNT(*) AS n FROM stoker_events WHERE kind = 'atom.claimed' AND at >= TIMESTAMPADD(MICROSECOND, ${ms * 1000}, '1970-01-01 00:00:00')`;
  const [row] = await server.exec(sql, db);
  return Number(row?.n ?? 0);
}

function shuffled<T>(xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface Outage extends OutageTimes {
  /** first `atom.claimed` (DB time, ms) after the server was down, from the history */
  firstClaimAt: number | null;
  requeuedAtoms: number;
  requeuedRuns: number;
}

export function describeServerRestart(sc: RestartScenario): void {
  const title = `${sc.id} ${sc.kind} server restarts under load (private server)`;
  // skipped only when the private server's binaries are missing (initdb/pg_ctl or mariadbd/mariadb-install-db)
  if (skippedWithoutServer(sc.kind, title)) return;

  describe(title, () => {
    let server: PrivateServer | null = null;
    let store: Store | null = null;
    let fleet: Fleet | null = null;
    let dir = '';
    const db = `stoker_${sc.id.toLowerCase()}`;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `stoker-chaos-${sc.id.toLowerCase()}-`));
      server = createPrivateServer(sc.kind);
      await server.start();
      await server.createDatabase(db);
      store = await openStore(server.url(db), { role: 'harness' });
      await store.migrate();
      fleet = new Fleet(server.url(db));
    });

    afterAll(async () => {
      // engines first (they would reconnect forever), then the store, then the server
      await fleet?.cleanup();
      await store?.close().catch(() => undefined);
      await server?.destroy();
      if (dir && process.env.CHAOS_KEEP_LOGS !== '1') rmSync(dir, { recursive: true, force: true });
    });

    it(
      'engines reconnect and keep claiming; no run is lost; no invariant is violated',
      async () => {
        const srv = server!;
        const st = store!;
        const fl = fleet!;
        const log = join(dir, 'effects.jsonl');
        const started = Date.now();
        const engineOpts = { leaseMs: LEASE_MS, concurrency: 4, env: { ENGINE_POLL_MS: String(POLL_MS) } };
        const engines: EngineProc[] = await Promise.all(Array.from({ length: ENGINES }, () => fl.start({ ...engineOpts, name: 'engine' })));
        const errors = engines.map(countErrors);

        // the workload: one run per call, so a failed submission loses nothing acknowledged
        const c = client(st);
        const submitted: Submitted[] = [];
        let submitFailures = 0;
        const submit = async (n: number): Promise<void> => {
          for (let i = 0; i < n; i++) {
            const flow = WORKLOAD[(submitted.length + submitFailures) % WORKLOAD.length]!;
            try {
              const { run } = await c.startRun(flow, { log, stepMs: STEP_MS });
              submitted.push({ id: run.id, flow });
            } catch (e) {
              // the server is down (or the commit's outcome is unknown): not acknowledged;
              // anything else is a bug of the test or the engine
              if (!isStokerError(e) || !e.code.startsWith('STOKER_STORE_')) throw e;
              submitFailures += 1;
            }
          }
        };
        await submit(24);
        let chaosOver = false;
        const feeder = (async () => {
          while (!chaosOver) {
            await sleep(700);
            await submit(3);
          }
        })();

        const modes = shuffled(Array.from({ length: RESTARTS }, (_, i) => sc.modes[i % sc.modes.length]!));
        const outages: OutageTimes[] = [];
        try {
          for (const mode of modes) {
            await sleep(randInt(GAP_MS[0], GAP_MS[1]));
            const downMs = randInt(DOWN_MS[0], DOWN_MS[1]);
            const o = await srv.restart({ mode, downMs });
            outages.push(o);
            console.log(
              `${sc.id} ${sc.kind}: ${sc.describeMode(mode)}: down ${o.upAt - o.stopAt} ms (stop took ${o.downAt - o.stopAt} ms, start ${o.upAt - o.startAt} ms)`,
            );
            // the engines must come back by themselves before the next fault
            await waitFor(
              async () => (await claimsSince(srv, db, o.downAt).catch(() => 0)) > 0,
              RESUME_TIMEOUT_MS,
              `a claim after the ${mode} restart #${outages.length}`,
            ).catch(async (e: Error) => {
              const engineRows = await srv.exec('SELECT * FROM stoker_engines', db).catch((x: Error) => x.message);
              const atomRows = await srv
                .exec('SELECT state, count(*) AS n FROM stoker_atoms GROUP BY state', db)
                .catch((x: Error) => x.message);
              throw new Error(
                `${e.message}\nengine rows: ${JSON.stringify(engineRows)}\natoms by state: ${JSON.stringify(atomRows)}; ${submitted.length} runs submitted, ${submitFailures} submissions failed\nengine stdout/stderr tails:\n${engines
                  .map((p) => `${p.name} (pid ${p.pid}, alive ${p.alive}): ${p.lines.slice(-5).join(' | ')}\n${p.stderr.slice(-1500)}`)
                  .join('\n')}\nserver log:\n${srv.logTail(1500)}`,
              );
            });
          }
        } finally {
          chaosOver = true;
          await feeder;
        }
        const lastDown = outages.at(-1)!.downAt;

        // no engine process died: they reconnected (no crash loop)
        const dead = engines.filter((p) => !p.alive);
        for (const p of dead) console.error(`${sc.id}: ${p.name} (pid ${p.pid}) exited ${JSON.stringify(p.exit)}; stderr:\n${p.stderr}`);
        expect(
          dead.map((p) => `${p.name} pid ${p.pid} exited ${JSON.stringify(p.exit)}`),
          'engine processes that exited',
        ).toEqual([]);

        // fresh work after the last restart: every engine process must take some of it
        const before = submitted.length;
        await submit(4 * ENGINES);
        expect(submitted.length - before, 'submissions after the last restart').toBe(4 * ENGINES);

        const open = await waitTerminal(
          st,
          submitted.map((r) => r.id),
          60_000,
        );
        expect(open, 'runs still active after the restarts').toEqual([]);
        await waitFor(
          async () => {
            const rows = await st.listEngines();
            return engines.every((p) => rows.some((r) => r.id === p.ids.at(-1) && r.state === 'alive'));
          },
          15_000,
          'every engine to be registered and live under its latest id',
        );
        // the database holds each engine's session lock again (and, on PostgreSQL, its LISTEN)
        const sessions = await waitFor(
          async () => {
            const s = await engineSessions(srv, db, engines);
            return s.every((x) => x.lock && x.listen !== false) ? s : undefined;
          },
          10_000,
          'every engine to hold its session lock (and LISTEN) again',
        ).catch(async (e: Error) => {
          throw new Error(`${e.message}: ${JSON.stringify(await engineSessions(srv, db, engines))}`);
        });
        await fl.terminateAll();
        expect(
          engines.map((p) => p.exit?.code),
          'graceful exits',
        ).toEqual(engines.map(() => 0));

        // ---------------------------------------------------------------- the checker
        const history = await collectHistory(
          st,
          submitted.map((r) => ({ id: r.id, flow: r.flow, ...(EXPECTED_STATUS[r.flow] ? { expect: EXPECTED_STATUS[r.flow] } : {}) })),
          readEffects(log),
        );
        const verdict = checkHistory(history);
        console.log(formatVerdict(verdict, `${sc.id} on ${sc.kind}`));

        // ---------------------------------------------------------------- figures
        const events = [...history.events].sort((a, b) => a.id - b.id);
        const figures: Outage[] = outages.map((o, i) => {
          const next = outages[i + 1]?.stopAt ?? Infinity;
          const firstClaim = events.find((e) => e.kind === 'atom.claimed' && e.at.getTime() >= o.downAt);
          const requeued = events.filter((e) => e.kind === 'atom.requeued' && e.at.getTime() >= o.stopAt && e.at.getTime() < next);
          return {
            ...o,
            firstClaimAt: firstClaim ? firstClaim.at.getTime() : null,
            requeuedAtoms: requeued.length,
            requeuedRuns: new Set(requeued.map((e) => e.runId)).size,
          };
        });
        const reclaimedRuns = runsReclaimed(events);
        const idsByPid = fl.idsByPid();
        const claimsAfter = engines.map(
          (p) =>
            events.filter(
              (e) => e.kind === 'atom.claimed' && e.at.getTime() >= lastDown && e.engineId !== null && idsByPid.get(e.engineId) === p.pid,
            ).length,
        );
        // ids under which each engine process claimed work: one per (re-)registration that got to work
        const idsThatClaimed = engines.map(
          (p) =>
            new Set(
              events
                .filter((e) => e.kind === 'atom.claimed' && e.engineId !== null && idsByPid.get(e.engineId) === p.pid)
                .map((e) => e.engineId),
            ).size,
        );
        const fencedStats = engines.reduce((n, p) => n + Number(p.stats?.fencedWrites ?? 0), 0);
        console.log(
          [
            ...figures.map(
              (f, i) =>
                `${sc.id} ${sc.kind}: outage #${i + 1} ${f.mode}: down ${f.upAt - f.stopAt} ms; outage start → first claim ${
                  f.firstClaimAt === null ? 'none' : `${f.firstClaimAt - f.stopAt} ms`
                } (server up → first claim ${f.firstClaimAt === null ? 'none' : `${f.firstClaimAt - f.upAt} ms`}); re-claimed ${f.requeuedAtoms} atoms of ${f.requeuedRuns} runs`,
            ),
            `${sc.id} ${sc.kind}: ${submitted.length} runs acknowledged (${submitFailures} submissions failed during outages); runs re-claimed ${reclaimedRuns}; ` +
              `re-executions ${verdict.stats.reexecutions}; fenced writes ${verdict.stats.fencedWriteEvents} events / ${fencedStats} in stats`,
            `${sc.id} ${sc.kind}: engine ids that claimed work, per engine process ${JSON.stringify(idsThatClaimed)}; after the last restart: session locks held ${sessions.filter((x) => x.lock).length}/${ENGINES}` +
              `${srv.kind === 'postgres' ? `, LISTEN connections ${sessions.filter((x) => x.listen).length}/${ENGINES}` : ''}; ` +
              `store errors seen by the engines, by operation: ${JSON.stringify(mergeCounts(errors))} ` +
              `(completions in flight that failed: ${inFlight(errors, /run transaction|complete an atom|lock runs|atom update|update a run|insert/)}, claims: ${inFlight(errors, /claim atoms/)}); ` +
              `claims per engine after the last restart ${JSON.stringify(claimsAfter)}; test took ${Math.round((Date.now() - started) / 1000)} s`,
          ].join('\n'),
        );

        expect(verdict.violations).toEqual([]);
        expect(
          figures.map((f) => f.firstClaimAt !== null),
          'a claim after every outage',
        ).toEqual(figures.map(() => true));
        expect(
          claimsAfter.map((n) => n > 0),
          'every engine process claimed after the last restart',
        ).toEqual(engines.map(() => true));
        // every session ended with the server: each engine fenced itself and now runs under a new id
        expect(
          engines.map((p) => p.ids.at(-1) !== p.ids[0]),
          'every engine registered again under a new id',
        ).toEqual(engines.map(() => true));
        expect(
          figures.reduce((n, f) => n + f.requeuedAtoms, 0),
          'atoms in flight at an outage were re-claimed',
        ).toBeGreaterThan(0);
      },
      LONG ? 600_000 : 120_000,
    );
  });
}

/** Counts an engine process's `engine error:` lines by the store operation they name. */
function countErrors(p: EngineProc): Map<string, number> {
  const counts = new Map<string, number>();
  let partial = '';
  p.child.stderr!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('engine error:')) continue;
      // "cannot connect to … (<operation>): …" or "PostgreSQL: <operation> failed: …" / "MySQL: …"
      const m =
        /^engine error: cannot connect to \S+ at \S+ \((.+?)\): /.exec(line) ??
        /^engine error: (?:PostgreSQL|MySQL): (.+?) failed: /.exec(line);
      const op = (m?.[1] ?? `other: ${line.slice('engine error: '.length, 70)}`).replace(/: (begin|commit)$/, '');
      counts.set(op, (counts.get(op) ?? 0) + 1);
    }
  });
  return counts;
}

function mergeCounts(maps: readonly Map<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of maps) for (const [k, n] of m) out[k] = (out[k] ?? 0) + n;
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}

function inFlight(maps: readonly Map<string, number>[], op: RegExp): number {
  return maps.reduce((n, m) => n + [...m].filter(([k]) => op.test(k)).reduce((x, [, c]) => x + c, 0), 0);
}

interface EngineSession {
  pid: number;
  id: string;
  /** the engine's session lock (advisory lock / GET_LOCK on its latest id) is held by some session */
  lock: boolean;
  /** PostgreSQL: a LISTEN connection of this process exists; null on MariaDB */
  listen: boolean | null;
}

/**
 * What the server says about each engine's dedicated sessions. Lock keys as the adapters
 * derive them (postgres-store.ts ENGINE_LOCK_KEY, mysql-store.ts ENGINE_LOCK_NAME, default
 * table prefix and schema); LISTEN connections are matched to processes by client port.
 */
async function engineSessions(server: PrivateServer, db: string, engines: readonly EngineProc[]): Promise<EngineSession[]> {
  const listeners = new Set<number>();
  if (server.kind === 'postgres') {
    const owners = clientPortsToPids(server.port);
    const rows = await server.exec(
      `SELECT client_port FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'stoker-engine-listen' AND query LIKE 'LISTEN %'`,
      db,
    );
    for (const r of rows) {
      const pid = owners.get(Number(r.client_port));
      if (pid !== undefined) listeners.add(pid);
    }
  }
  const out: EngineSession[] = [];
  for (const p of engines) {
    const id = p.ids.at(-1) ?? '';
    if (!/^[0-9a-f-]+$/.test(id)) throw new Error(`unexpected engine id ${id}`);
    let lock: boolean;
    if (server.kind === 'postgres') {
      // a one-statement transaction: takes the lock (shared) only if no session holds it exclusively, and frees it at once
      const [row] = await server.exec(
        `SELECT pg_try_advisory_xact_lock_shared(hashtextextended(('stoker:.stoker_engine:' || '${id}') COLLATE "C", 0)) AS free`,
        db,
      );
      lock = row?.free === false;
    } else {
      const [row] = await server.exec(
        `SELECT IS_USED_LOCK(CONCAT('stoker_engine_', LEFT(SHA2(CONCAT('${db}.stoker_engine:', '${id}'), 256), 40))) AS conn`,
        db,
      );
      lock = row?.conn !== null && row?.conn !== undefined;
    }
    out.push({ pid: p.pid, id, lock, listen: server.kind === 'postgres' ? listeners.has(p.pid) : null });
  }
  return out;
}

/** Runs with an atom that was requeued and then claimed again. */
function runsReclaimed(events: readonly EventRow[]): number {
  const runs = new Set<string>();
  const pending = new Set<string>();
  for (const e of events) {
    if (e.atom === null) continue;
    const k = `${e.runId}/${e.atom}`;
    if (e.kind === 'atom.requeued') pending.add(k);
    else if (e.kind === 'atom.claimed' && pending.has(k)) {
      pending.delete(k);
      runs.add(e.runId);
    }
  }
  return runs.size;
}
