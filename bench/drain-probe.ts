/**
 * What one run costs when a queue of one-task runs is drained on PostgreSQL (issue 11,
 * "Performance as users run it": bench/run.ts scenario c'', one-task runs drained, against
 * graphile-worker, BullMQ and pg-boss).
 *
 *   node --import tsx bench/drain-probe.ts [--runs 5000] [--concurrency 64] [--max-batch 256] [--rounds 3]
 *
 * Per round, on one fresh database: `--runs` one-task no-op runs are started with
 * `startRuns` (500 a call, by a store of their own that is closed before the drain), then
 * one engine in this process, with a store of its own, drains them at `--concurrency` and
 * `--max-batch`; the round ends when the engine has reported every run finished (no
 * polling of the database). The last round is the one reported (the first ones warm V8 up),
 * per run:
 * - the statements this process sent, by purpose (a wrapper on PostgresDriver's `query`
 *   and `hotRows`; a statement `hotRows` sends through the pool counts once), and the round
 *   trips in all (every `pg.Client#query`), with the mean time from send to answer (secondary);
 * - CPU of this process (the engine) and of the database's backends from the engine's
 *   start to the last run's end (/proc, 10 ms ticks), µs;
 * - rows written per table (`pg_stat_user_tables`: inserted, updated, of which HOT,
 *   deleted), read once the engine's store is closed so that its sessions have reported;
 * - the drain rate (runs/s, with the load average: secondary, the machine is shared).
 */
import { loadavg } from 'node:os';
import pg from 'pg';
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry, linear, task } from '../src/flow/index.js';
import { openStore } from '../src/store/open-store.js';
import { PostgresDriver } from '../src/store/postgres/postgres-driver.js';
import { createTestStore } from '../test/helpers/databases.js';
import { backendTicks, backendTicksSince, TICK_US } from './common.js';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log('node --import tsx bench/drain-probe.ts [--runs 5000] [--concurrency 64] [--max-batch 256] [--rounds 3]');
  process.exit(0);
}
const opt = (flag: string, dflt: number): number => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const runs = opt('--runs', 5000);
const concurrency = opt('--concurrency', 64);
const maxBatch = opt('--max-batch', 256);
const rounds = opt('--rounds', 3);

// statements by purpose, and round trips, while recording
let recording = false;
const byPurpose = new Map<string, { n: number; ms: number }>();
let roundTrips = 0;
let inHot = false;
type Method = (this: PostgresDriver, purpose: string, ...rest: unknown[]) => unknown;
const proto = PostgresDriver.prototype as unknown as Record<'query' | 'hotRows', Method>;
for (const method of ['query', 'hotRows'] as const) {
  const original = proto[method];
  proto[method] = function (this: PostgresDriver, purpose: string, ...rest: unknown[]) {
    // a hot statement that finds the connection busy goes through `query`: counted once
    const counted = recording && !inHot;
    const t0 = performance.now();
    let out: unknown;
    if (method === 'query') out = original.call(this, purpose, ...rest);
    else {
      inHot = true;
      try {
        out = original.call(this, purpose, ...rest);
      } finally {
        inHot = false;
      }
    }
    if (counted) {
      const e = byPurpose.get(purpose) ?? { n: 0, ms: 0 };
      e.n += 1;
      byPurpose.set(purpose, e);
      (out as Promise<unknown>).then(
        () => (e.ms += performance.now() - t0),
        () => undefined,
      );
    }
    return out;
  };
}
const clientQuery = pg.Client.prototype.query as (...a: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown }).query = function (this: pg.Client, ...a: unknown[]) {
  if (recording) roundTrips += 1;
  return clientQuery.apply(this, a);
};

const db = (await createTestStore('postgres'))!;
const dbName = decodeURIComponent(new URL(db.url).pathname.slice(1));
const flows = new FlowRegistry();
flows.register(linear('one', [task({ name: 'only', execute: () => null })]));
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();

type TableRows = Map<string, { ins: number; upd: number; hot: number; del: number }>;
async function tableRows(): Promise<TableRows> {
  await admin.query('SELECT pg_stat_clear_snapshot()');
  const rows = (
    await admin.query(`SELECT relname, n_tup_ins AS ins, n_tup_upd AS upd, n_tup_hot_upd AS hot, n_tup_del AS del FROM pg_stat_user_tables`)
  ).rows;
  return new Map(rows.map((r) => [String(r.relname), { ins: Number(r.ins), upd: Number(r.upd), hot: Number(r.hot), del: Number(r.del) }]));
}
/** table statistics once every closed session has reported (they arrive shortly after the session ends) */
async function settledTableRows(): Promise<TableRows> {
  let last = JSON.stringify([...(await tableRows())]);
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await tableRows();
    const text = JSON.stringify([...now]);
    if (text === last) return now;
    last = text;
  }
  return tableRows();
}

async function round(n: number): Promise<void> {
  const starts = await openStore(db.url);
  const starter = new Engine({ store: starts, flows });
  for (let i = 0; i < runs; i += 500)
    await starter.startRuns(
      'one',
      Array.from({ length: Math.min(500, runs - i) }, () => ({})),
    );
  await starts.close();
  const rows0 = await settledTableRows();
  const last = n === rounds - 1;
  byPurpose.clear();
  roundTrips = 0;
  recording = last;
  const store = await openStore(db.url);
  const engine = new Engine({ store, flows, concurrency, maxBatch, pollMs: 200 });
  let finished = 0;
  let allDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allDone = resolve));
  engine.on('run.finished', () => {
    if (++finished === runs) allDone();
  });
  const load = loadavg()[0]!.toFixed(1);
  const backends0 = await backendTicks(admin, dbName);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await engine.start();
  await done;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const backendUs = backendTicksSince(backends0, await backendTicks(admin, dbName)) * TICK_US;
  recording = false;
  const stats = { ...engine.stats };
  await engine.stop();
  await store.close();
  const rows1 = await settledTableRows();
  const perRun = (v: number) => (v / runs).toFixed(3);
  console.log(
    `round ${n + 1}/${rounds}: ${runs} runs drained in ${ms.toFixed(0)} ms = ${Math.round(runs / (ms / 1000))} runs/s (load ${load}); ` +
      `CPU per run: engine ${Math.round((cpu.user + cpu.system) / runs)} µs, backends ${Math.round(backendUs / runs)} µs; ` +
      `commits ${stats.commits}, claim statements ${stats.claimCommits}`,
  );
  if (!last) return;
  console.log(`statements per run (round trips ${perRun(roundTrips)}):`);
  for (const [purpose, { n: count, ms: spent }] of [...byPurpose].sort((a, b) => b[1].n - a[1].n))
    console.log(`  ${perRun(count)}  ${count}× ${purpose} (${(spent / count).toFixed(2)} ms each, from send to answer)`);
  console.log('rows written per run (inserted, updated of which HOT, deleted):');
  for (const [table, r] of rows1) {
    const b = rows0.get(table) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
    const d = { ins: r.ins - b.ins, upd: r.upd - b.upd, hot: r.hot - b.hot, del: r.del - b.del };
    if (d.ins + d.upd + d.del === 0) continue;
    console.log(`  ${table}: ${perRun(d.ins)} ins, ${perRun(d.upd)} upd (${perRun(d.hot)} HOT), ${perRun(d.del)} del`);
  }
}

try {
  for (let n = 0; n < rounds; n++) await round(n);
} finally {
  await admin.end();
  await db.drop();
}
