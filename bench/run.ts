/**
 * `npm run bench`: throughput and cost per atom on every reachable dialect, with the
 * database's own one-row-commit rate (pgbench) measured in the same run as the reference.
 *
 *   node --import tsx bench/run.ts [--dialects sqlite,postgres,mysql] [--scenarios core,engines] [--quick] [--no-peers]
 *
 * Scenarios: `core`, scenarios a)–c) (and the memory figure) on each dialect, one engine in
 * this process; `engines`, d) 1, 2 and 4 engine processes on PostgreSQL (bench/engines.ts,
 * also `npm run bench:engines` on its own). Both by default. On PostgreSQL, scenario c) is
 * also measured for graphile-worker with its defaults, in the same run (bench/peers/,
 * installed on first use; `--no-peers` leaves it out).
 *
 * Results: bench/results/<timestamp>.json and .md (and latest.json / latest.md).
 */
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry, linear, task, unordered } from '../src/flow/index.js';
import type { Store } from '../src/store/store.js';
import { createTestStore, type TestStore } from '../test/helpers/databases.js';
import { pgbenchReference, progressFor, round, writeResults } from './common.js';
import { benchEngines, enginesMarkdown, type EnginesResult } from './engines.js';
import { ensurePeers, graphileDrain } from './peers/peers.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const dialectArg = args[args.indexOf('--dialects') + 1];
const dialects = (args.includes('--dialects') && dialectArg ? dialectArg : 'sqlite,postgres,mysql').split(',');
const scenarioArg = args[args.indexOf('--scenarios') + 1];
const scenarios = (args.includes('--scenarios') && scenarioArg ? scenarioArg : 'core,engines').split(',');
const PEERS = !args.includes('--no-peers');

interface Row {
  dialect: string;
  scenario: string;
  atoms: number;
  seconds: number;
  atomsPerSec: number;
  commitsPerAtom: number | null;
  ratioToPgbench1?: number;
  ratioToPgbench16?: number;
  note?: string;
}

const rows: Row[] = [];
const reference: Record<string, number> = {};
const extra: Record<string, unknown> = {};
const progress = progressFor('bench');

const noop = (name: string) => task({ name, execute: () => null });

function flows(): FlowRegistry {
  const r = new FlowRegistry();
  for (const n of [100, 1000, 10_000]) r.register(linear(`linear${n}`, Array.from({ length: n }, (_, i) => noop(`s${i}`))));
  r.register(unordered('unordered1000', Array.from({ length: 1000 }, (_, i) => noop(`u${i}`))));
  r.register(linear('one', [noop('only')]));
  return r;
}

/**
 * Write transactions the engine committed: completion transactions (general or fast path)
 * plus claim statements that claimed something, plus run starts made by the scenario.
 * (pg_stat_database's xact_commit also counts read-only statements, so it overstates.)
 */
function commitsOf(engine: Engine): number {
  return engine.stats.commits + engine.stats.claimCommits;
}

async function scenario(dialect: string, db: TestStore, name: string, atoms: number, concurrency: number, body: (engine: Engine) => Promise<number | void>): Promise<Row> {
  const registry = flows();
  const engine = new Engine({ store: db.store, flows: registry, concurrency, pollMs: 200, maxBatch: 256 });
  await engine.start();
  const before = commitsOf(engine);
  const t0 = performance.now();
  const starts = (await body(engine)) ?? 1;
  const seconds = (performance.now() - t0) / 1000;
  const after = commitsOf(engine) + starts;
  await engine.stop();
  const row: Row = { dialect, scenario: name, atoms, seconds: round(seconds, 3), atomsPerSec: round(atoms / seconds, 0), commitsPerAtom: round((after - before) / atoms, 3) };
  progress(`${dialect} ${name}: ${row.atomsPerSec} atoms/s, ${row.commitsPerAtom} commits/atom`);
  rows.push(row);
  return row;
}

async function runAndWait(engine: Engine, flow: string): Promise<void> {
  const { run } = await engine.startRun(flow, {});
  const done = await engine.waitForRun(run.id, { timeoutMs: 600_000, pollMs: 20 });
  if (done.status !== 'SUCCESS') throw new Error(`${flow} ended ${done.status}`);
}

async function benchDialect(dialect: string): Promise<void> {
  const db = await createTestStore(dialect as 'sqlite' | 'postgres' | 'mysql');
  if (!db) {
    progress(`SKIP ${dialect}: not reachable`);
    return;
  }
  try {
    const sizes = quick ? [100, 1000] : [100, 1000, 10_000];
    for (const n of sizes) await scenario(dialect, db, `a) linear ${n}`, n, 1, (e) => runAndWait(e, `linear${n}`));
    await scenario(dialect, db, 'b) unordered 1000, concurrency 16', 1000, 16, (e) => runAndWait(e, 'unordered1000'));
    const runs = quick ? 1000 : 5000;
    await scenario(dialect, db, `c) ${runs} one-task runs, start then drain`, runs, 16, async (e) => {
      const ids: string[] = [];
      const t0 = performance.now();
      // start from 8 concurrent clients, as an application's request handlers would
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < runs) {
            next += 1;
            ids.push((await e.startRun('one', {})).run.id);
          }
        }),
      );
      extra[`${dialect}: runs started/s`] = round(runs / ((performance.now() - t0) / 1000), 0);
      await waitAllDone(db.store, ids);
      return runs;
    });
    // the same runs from a bulk producer: Engine.startRuns, 500 per call (one statement each on PostgreSQL)
    const bulk = (label: string) => async (e: Engine) => {
      const t0 = performance.now();
      for (let i = 0; i < runs; i += 500) await e.startRuns('one', Array.from({ length: Math.min(500, runs - i) }, () => ({})));
      extra[`${dialect}: runs started/s, bulk${label}`] = round(runs / ((performance.now() - t0) / 1000), 0);
      await waitAllDone(db.store, []);
      return Math.ceil(runs / 500);
    };
    await scenario(dialect, db, `c') ${runs} one-task runs, bulk start (startRuns) then drain`, runs, 16, bulk(''));
    // no-op tasks leave the engine waiting on the database: more slots mean bigger group commits
    await scenario(dialect, db, `c'') the same, engine concurrency 64`, runs, 64, bulk(', concurrency 64'));
    if (dialect === 'postgres' && PEERS && ensurePeers(progress)) {
      // the same run's reference for c): graphile-worker with its defaults (concurrency 1)
      const peerDb = await createTestStore('postgres');
      if (peerDb) {
        try {
          const g = await graphileDrain(peerDb.url, join(tmpdir(), `stoker-bench-graphile-${process.pid}.jsonl`), runs);
          extra[`postgres: graphile-worker 0.16.6, its defaults, drains ${runs} queued no-op jobs (jobs/s)`] = g.jobsPerSec;
          progress(`postgres graphile-worker drain: ${g.jobsPerSec} jobs/s`);
        } finally {
          await peerDb.drop();
        }
      }
    }
    if (!quick) await memoryInFlight(dialect, db);
  } finally {
    await db.drop();
  }
}

async function waitAllDone(store: Store, ids: string[]): Promise<void> {
  for (;;) {
    const left = await store.listRuns({ status: ['PENDING', 'RUNNING'], limit: 1 });
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  void ids;
}

/** Peak RSS of an engine while 10,000 runs are in flight (each parked on a durable sleep, then finishing). */
async function memoryInFlight(dialect: string, db: TestStore): Promise<void> {
  // in a process of its own: this one's heap has grown with the scenarios before
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'memory.ts'), db.url], { encoding: 'utf8', timeout: 600_000 });
  const m = JSON.parse(out.trim().split('\n').at(-1)!) as { peakRssMb: number; baselineRssMb: number };
  extra[`${dialect}: peak RSS with 10,000 runs in flight (MB; engine process, baseline ${m.baselineRssMb})`] = m.peakRssMb;
  progress(`${dialect} memory: peak RSS ${m.peakRssMb} MB (process baseline ${m.baselineRssMb} MB)`);
}

function table(): string {
  const p1 = reference['pgbench one-row UPDATE, 1 client (tps)'];
  const p16 = reference['pgbench one-row UPDATE, 16 clients (tps)'];
  const lines = ['| dialect | scenario | atoms | seconds | atoms/s | commits/atom | ÷ pgbench 1 | ÷ pgbench 16 |', '|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    if (r.dialect === 'postgres' && p1 && p16) {
      r.ratioToPgbench1 = round(r.atomsPerSec / p1, 3);
      r.ratioToPgbench16 = round(r.atomsPerSec / p16, 3);
    }
    lines.push(`| ${r.dialect} | ${r.scenario} | ${r.atoms} | ${r.seconds} | ${r.atomsPerSec} | ${r.commitsPerAtom ?? ''} | ${r.ratioToPgbench1 ?? ''} | ${r.ratioToPgbench16 ?? ''} |`);
  }
  lines.push('', '| reference / extra | value |', '|---|---|');
  for (const [k, v] of Object.entries({ ...reference, ...extra })) lines.push(`| ${k} | ${String(v)} |`);
  return lines.join('\n');
}

if (dialects.includes('postgres')) Object.assign(reference, pgbenchReference(quick, progress));
if (scenarios.includes('core')) for (const d of dialects) await benchDialect(d);
let engines: EnginesResult | null = null;
if (scenarios.includes('engines') && dialects.includes('postgres')) {
  // d) several engine processes on one PostgreSQL database (bench/engines.ts)
  engines = await benchEngines({ quick, progress });
  for (const r of engines?.rows ?? []) {
    rows.push({
      dialect: 'postgres',
      scenario: `d) ${r.runs} runs of graph10, ${r.engines} engine process${r.engines > 1 ? 'es' : ''} × ${r.concurrencyPerEngine} slots`,
      atoms: r.atoms,
      seconds: r.seconds,
      atomsPerSec: r.atomsPerSec,
      commitsPerAtom: r.commitsPerAtom,
      note: `${r.ratioToOneEngine ?? '–'}× one engine; ${r.xactCommitsPerAtom} xact_commit/atom; atoms per engine ${r.perEngine.map((e) => e.atoms).join(' / ')}`,
    });
  }
}
const md = table() + (engines ? '\n\n' + enginesMarkdown(engines) : '');
const at = new Date().toISOString();
writeResults('', { at, quick, node: process.version, reference, extra, rows, ...(engines ? { engines } : {}) }, md);
process.stdout.write(md + '\n');
