/**
 * C6 (docs/reliability.md), PostgreSQL and MariaDB: engine connections are killed from the server
 * side every 0.5–2 s for ~8 s while three engines work through mixed runs.
 *
 * - PostgreSQL: `pg_terminate_backend` of a random backend whose `application_name` is
 *   `stoker-engine…` (the fixture opens its store with role `engine`: pool connections are
 *   `stoker-engine`, the session-lock connection `stoker-engine-lock`, LISTEN
 *   `stoker-engine-listen`, the peer watch `stoker-engine-watch`; the fast completions'
 *   `stoker-engine-hot` counts as a pool connection).
 * - MariaDB (performance_schema is off, so no program_name): `KILL CONNECTION` of a
 *   PROCESSLIST entry whose client port belongs to an engine process (ports → pids by `ss`);
 *   an engine's session-lock connection is the one `IS_USED_LOCK(<its lock name>)` names,
 *   its wake-up listener's waiter the one waiting in `SELECT GET_LOCK(<name>, 10) AS
 *   stoker_wake_listener`, the listener's holder the one `IS_USED_LOCK(<name>)` names, its
 *   peer watch the one waiting in any other `GET_LOCK`.
 *
 * Kinds are killed in turn (pool, session lock, LISTEN where there is one, MariaDB's
 * listener holder, peer watch), a random connection of the kind each time.
 *
 * Losing the session-lock connection makes an engine fence itself and register again under
 * a new id (its atoms are taken over, so fenced writes are allowed here). Pass: no engine
 * process exits (no crash loop), each is registered and live again after the faults, every
 * run finishes, and the checker finds no violation.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mysqlAdminUrl, testDialects } from '../helpers/databases.js';
import { clientPortsToPids, randInt, sleep, submitRuns, waitFor, waitTerminal, type EngineProc, type Submitted } from './harness.js';
import { useScenario, verify, type Scenario } from './scenario.js';

const LEASE_MS = 3000;
const WINDOW_MS = process.env.CHAOS_LONG === '1' ? 60_000 : 8_000;

interface Victim {
  id: number;
  kind: 'pool' | 'lock' | 'listen' | 'hold' | 'watch';
  what: string;
}

async function engineConnections(s: Scenario, engines: readonly EngineProc[]): Promise<Victim[]> {
  const exec = s.db!.exec;
  if (s.dialect === 'postgres') {
    const rows = await exec(
      `SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE 'stoker-engine%' AND datname = current_database()`,
    );
    return rows.map((r) => {
      const name = String(r.application_name);
      const kind = name.endsWith('-lock') ? 'lock' : name.endsWith('-listen') ? 'listen' : name.endsWith('-watch') ? 'watch' : 'pool';
      return { id: Number(r.pid), kind, what: name };
    });
  }
  // the session-lock connection of each engine holds GET_LOCK(<name of its id>): IS_USED_LOCK names it
  const database = new URL(s.db!.url).pathname.slice(1);
  const locks = new Set<number>();
  for (const e of engines) {
    const id = e.ids.at(-1);
    if (!id || !/^[0-9a-f-]+$/.test(id)) continue;
    const [row] = await exec(
      `SELECT IS_USED_LOCK(CONCAT('stoker_engine_', LEFT(SHA2(CONCAT('${database}.stoker_engine:', '${id}'), 256), 40))) AS conn`,
    );
    if (row?.conn !== null && row?.conn !== undefined) locks.add(Number(row.conn));
  }
  const pids = new Set(engines.map((e) => e.pid));
  const port = Number(new URL(mysqlAdminUrl()).port || 3306);
  const owners = clientPortsToPids(port);
  const rows = await exec(`SELECT ID, HOST, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()`);
  // a listener's waiter names the lock its holder keeps
  const holders = new Set<number>();
  for (const r of rows) {
    const name = /^SELECT GET_LOCK\('(stoker_wake_[0-9a-f]+)', 10\) AS stoker_wake_listener$/.exec(String(r.INFO ?? ''))?.[1];
    if (!name) continue;
    const [row] = await exec(`SELECT IS_USED_LOCK('${name}') AS conn`);
    if (row?.conn !== null && row?.conn !== undefined) holders.add(Number(row.conn));
  }
  return rows.flatMap((r) => {
    const id = Number(r.ID);
    const pid = owners.get(Number(String(r.HOST).split(':')[1]));
    if (pid === undefined || !pids.has(pid)) return [];
    const info = String(r.INFO ?? '');
    const kind = locks.has(id)
      ? 'lock'
      : holders.has(id)
        ? 'hold'
        : info.endsWith(') AS stoker_wake_listener')
          ? 'listen'
          : info.startsWith('SELECT GET_LOCK(')
            ? 'watch'
            : 'pool';
    return [{ id, kind, what: `pid ${pid} ${String(r.COMMAND)}` } satisfies Victim];
  });
}

async function killConnection(s: Scenario, v: Victim): Promise<void> {
  if (s.dialect === 'postgres') await s.db!.exec(`SELECT pg_terminate_backend(${v.id})`);
  else await s.db!.exec(`KILL CONNECTION ${v.id}`).catch(() => undefined); // it may have gone already
}

// The dialects run at the same time: each has its own database, engines and log, and only
// the connections of its own engines are killed.
for (const dialect of testDialects().filter((d) => d !== 'sqlite')) {
  describe(`C6 server-side connection kills on ${dialect}`, { concurrent: true }, () => {
    const s = useScenario(dialect, 'c6');

    it('engines survive killed connections (no crash loop); runs finish; no invariant is violated', async (ctx) => {
      if (!s.db) return ctx.skip();
      const { fleet, store } = s;
      const engines = await Promise.all([0, 1, 2].map(() => fleet.start({ leaseMs: LEASE_MS, name: 'engine' })));
      const submitted: Submitted[] = await submitRuns(store, 30, { log: s.log, stepMs: 150 });

      const kills: Victim[] = [];
      const until = Date.now() + WINDOW_MS;
      const feeder = (async () => {
        while (Date.now() < until) {
          await sleep(2000);
          submitted.push(...(await submitRuns(store, 5, { log: s.log, stepMs: 150 })));
        }
      })();
      while (Date.now() < until) {
        await sleep(randInt(500, 2000));
        // every kind of connection in turn (pool, session lock, LISTEN, listener holder, peer watch), a random one of that kind
        const victims = await engineConnections(s, engines);
        const kinds = (['pool', 'lock', 'listen', 'hold', 'watch'] as const).filter((k) => victims.some((v) => v.kind === k));
        const kind = kinds[kills.length % Math.max(1, kinds.length)];
        const ofKind = victims.filter((v) => v.kind === kind);
        const v = ofKind[randInt(0, ofKind.length - 1)];
        if (!v) continue;
        await killConnection(s, v);
        kills.push(v);
      }
      await feeder;

      const dead = engines.filter((e) => !e.alive);
      for (const e of dead) console.error(`C6 ${dialect}: ${e.name} (pid ${e.pid}) exited ${JSON.stringify(e.exit)}; stderr:\n${e.stderr}`);
      // PostgreSQL: see the known bug below (an uncaught pg client 'error' mid-transaction)
      expect(
        dead.map((e) => `${e.name} pid ${e.pid} exited ${JSON.stringify(e.exit)}`),
        'engine processes that exited (crash loop)',
      ).toEqual([]);
      const open = await waitTerminal(
        store,
        submitted.map((r) => r.id),
        90_000,
      );
      expect(open, 'runs still active').toEqual([]);
      // every engine is registered and live again (under its latest id)
      await waitFor(
        async () => {
          const rows = await store.listEngines();
          return engines.every((e) => rows.some((r) => r.id === e.ids.at(-1) && r.state === 'alive'));
        },
        15_000,
        'every engine to be registered and live',
      );
      expect(engines.every((e) => e.alive)).toBe(true);
      const reRegistrations = engines.map((e) => e.ids.length - 1);
      const errors = engines.map((e) => (e.stderr.match(/engine error/g) ?? []).length);
      await fleet.terminateAll();
      expect(engines.map((e) => e.exit?.code)).toEqual([0, 0, 0]);

      const { verdict } = await verify(s, submitted, 'C6');
      const fencedStats = engines.reduce((n, p) => n + Number(p.stats?.fencedWrites ?? 0), 0);
      const kinds = kills.reduce<Record<string, number>>((m, k) => ({ ...m, [k.kind]: (m[k.kind] ?? 0) + 1 }), {});
      console.log(
        `C6 ${dialect}: ${kills.length} connections killed ${JSON.stringify(kinds)}; re-registrations per engine ${JSON.stringify(reRegistrations)}; ` +
          `engine errors logged ${JSON.stringify(errors)}; fenced writes ${verdict.stats.fencedWriteEvents} events / ${fencedStats} in stats; ${submitted.length} runs`,
      );
      expect(kills.filter((k) => k.kind === 'pool').length, 'pool connections killed').toBeGreaterThan(0);
      expect(kills.filter((k) => k.kind === 'lock').length, 'session-lock connections killed').toBeGreaterThan(0);
      expect(verdict.violations).toEqual([]);
    }, 150_000);
  });
}

const VICTIM = join(import.meta.dirname, '../fixtures/store-tx-victim.ts');

/** Runs the victim fixture, kills its connections from the server side while it idles in a transaction. */
async function killInsideTransaction(
  s: Scenario,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; killed: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', VICTIM, s.db!.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('in-tx')) resolve();
    });
    void exited.then(() => reject(new Error(`victim exited early: ${stderr}`)));
  });
  await sleep(200); // it is idle in its transaction now
  let killed = 0;
  if (s.dialect === 'postgres') {
    const rows = await s.db!.exec(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'stoker-victim' AND datname = current_database()`,
    );
    killed = rows.length;
  } else {
    const owners = clientPortsToPids(Number(new URL(mysqlAdminUrl()).port || 3306));
    const rows = await s.db!.exec(`SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()`);
    for (const r of rows) {
      if (owners.get(Number(String(r.HOST).split(':')[1])) !== child.pid) continue;
      await s.db!.exec(`KILL CONNECTION ${Number(r.ID)}`).catch(() => undefined);
      killed += 1;
    }
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const exit = await exited;
  clearTimeout(timer);
  return { ...exit, stdout, stderr, killed };
}

for (const dialect of testDialects().filter((d) => d !== 'sqlite')) {
  describe(`C6 a connection killed inside a transaction on ${dialect}`, () => {
    const s = useScenario(dialect, 'c6tx');
    // Regression: PostgresStore.transaction() once held a pool client without an 'error'
    // listener, so a server-side termination between statements killed the process.
    const test = it;
    test('rejects the transaction; the process survives', async (ctx) => {
      if (!s.db) return ctx.skip();
      const r = await killInsideTransaction(s);
      console.log(
        `C6 ${dialect}: killed ${r.killed} connection(s) of a store idle in a transaction → exit ${r.code ?? r.signal}; ${r.stdout.trim().replaceAll('\n', ' | ')}`,
      );
      if (r.code !== 0) console.error(`C6 ${dialect}: victim stderr:\n${r.stderr.slice(0, 1500)}`);
      expect(r.killed).toBeGreaterThan(0);
      expect(r.code, 'the process exits normally (no uncaught error)').toBe(0);
      expect(r.stdout).toMatch(/result rejected/);
    });
  });
}
