/**
 * `npm run bench`: throughput and cost per atom on every reachable dialect, with the
 * database's own one-row-commit rate (pgbench for PostgreSQL, mysqlslap for MySQL/MariaDB)
 * measured in the same run as the reference.
 *
 *   node --import tsx bench/run.ts [--dialects sqlite,postgres,mysql] [--scenarios core,cli,engines,stacks,amqp] [--quick] [--no-peers]
 *
 * Scenarios: `core`, scenarios a)–c) (and the memory figure) on each dialect, one engine in
 * this process; `cli`, e) and f), the built `stoker` command at its defaults in processes of
 * its own, as users run it (bench/cli.ts); `engines`, d) 1, 2 and 4 engine processes on PostgreSQL (bench/engines.ts,
 * also `npm run bench:engines` on its own); `stacks`, Heat stacks (bench/stacks.ts: a ResourceGroup
 * of N created, updated and deleted, a chain of 50, 1 and 2 engine processes, against a no-op
 * flow of the same shape); `amqp`, RabbitMQ wake-ups and remote workers (bench/amqp.ts). All by
 * default. On PostgreSQL, scenario c) is also measured for peer job queues in the same run,
 * each worker a process of its own draining the same number of queued no-op jobs (one job
 * per run): graphile-worker at its defaults and tuned as its docs recommend (high
 * concurrency, batched fetch and completion), pg-boss with batch fetch, and BullMQ on the
 * local Redis; the c) rows' notes give Stoker ÷ each (bench/peers/, installed on first use;
 * a peer that cannot be installed or whose service is missing is skipped; `--no-peers`
 * leaves them all out).
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
import { commitReference, progressFor, round, writeResults } from './common.js';
import { amqpMarkdown, benchAmqp, type AmqpResults } from './amqp.js';
import { benchCli } from './cli.js';
import { benchEngines, enginesMarkdown, type EnginesResult } from './engines.js';
import { benchStacks, stacksMarkdown, type StackBenchRow } from './stacks.js';
import {
  BULLMQ_SETTINGS,
  bullmqDrain,
  ensurePeers,
  graphileDrain,
  listening,
  PG_BOSS_SETTINGS,
  peerVersion,
  pgBossDrain,
  REDIS_PORT,
  type DrainResult,
} from './peers/peers.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const dialectArg = args[args.indexOf('--dialects') + 1];
const dialects = (args.includes('--dialects') && dialectArg ? dialectArg : 'sqlite,postgres,mysql').split(',');
const scenarioArg = args[args.indexOf('--scenarios') + 1];
const scenarios = (args.includes('--scenarios') && scenarioArg ? scenarioArg : 'core,cli,engines,stacks,amqp').split(',');
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
  /** MySQL/MariaDB rows: atoms/s ÷ mysqlslap's one-row UPDATEs/s at 1 and 16 clients */
  ratioToMysqlslap1?: number;
  ratioToMysqlslap16?: number;
  note?: string;
}

const rows: Row[] = [];
const reference: Record<string, number> = {};
const extra: Record<string, unknown> = {};
let peersMeasured = false;
const progress = progressFor('bench');

const noop = (name: string) => task({ name, execute: () => null });

function flows(): FlowRegistry {
  const r = new FlowRegistry();
  for (const n of [100, 1000, 10_000])
    r.register(
      linear(
        `linear${n}`,
        Array.from({ length: n }, (_, i) => noop(`s${i}`)),
      ),
    );
  r.register(
    unordered(
      'unordered1000',
      Array.from({ length: 1000 }, (_, i) => noop(`u${i}`)),
    ),
  );
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

/**
 * One measured scenario on a fresh engine. `body` runs with the engine started and is timed.
 * With `queue`, work is queued first, before the engine starts (its count of start commits is
 * returned), and the timing covers the engine's start and the drain: "started, then drained".
 */
async function scenario(
  dialect: string,
  db: TestStore,
  name: string,
  atoms: number,
  concurrency: number,
  body: (engine: Engine) => Promise<number | void>,
  queue?: (starter: Engine) => Promise<number>,
): Promise<Row> {
  const registry = flows();
  // a starter that never starts claiming: Engine.startRun needs only the store
  const queued = queue ? await queue(new Engine({ store: db.store, flows: registry })) : 0;
  const engine = new Engine({ store: db.store, flows: registry, concurrency, pollMs: 200, maxBatch: 256 });
  const t0q = performance.now();
  await engine.start();
  const before = commitsOf(engine);
  const t0 = queue ? t0q : performance.now();
  const starts = queued + ((await body(engine)) ?? (queue ? 0 : 1));
  const seconds = (performance.now() - t0) / 1000;
  const after = commitsOf(engine) + starts;
  await engine.stop();
  const row: Row = {
    dialect,
    scenario: name,
    atoms,
    seconds: round(seconds, 3),
    atomsPerSec: round(atoms / seconds, 0),
    commitsPerAtom: round((after - before) / atoms, 3),
  };
  progress(`${dialect} ${name}: ${row.atomsPerSec} atoms/s, ${row.commitsPerAtom} commits/atom`);
  rows.push(row);
  return row;
}

/** Runs a scenario `times` times and keeps only the row of the median run (by atoms/s), its note giving the range. */
async function medianOf(times: number, run: () => Promise<Row>): Promise<void> {
  if (times <= 1) {
    await run();
    return;
  }
  const all: Row[] = [];
  for (let i = 0; i < times; i++) {
    all.push(await run());
    rows.pop();
  }
  const sorted = [...all].sort((a, b) => a.atomsPerSec - b.atomsPerSec);
  const median = sorted[sorted.length >> 1]!;
  rows.push({ ...median, note: `median of ${times} runs (${sorted[0]!.atomsPerSec}–${sorted.at(-1)!.atomsPerSec})` });
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
    // The first linear run of 1,000 atoms on this dialect, reported as such: V8 optimizes the
    // engine's, the driver's and the store's hot paths over the first few thousand atoms of a
    // process (PostgreSQL: 1,700 -> 2,900 atoms/s over 8,000 atoms), so a process's first
    // work runs slower than a long-running engine's.
    await scenario(dialect, db, 'a0) linear 1000, first run on this dialect in the process (no warm-up)', 1000, 1, (e) =>
      runAndWait(e, 'linear1000'),
    );
    // Warm-up, not measured: one linear run of 10,000 atoms, so that a) measures what a
    // long-running engine does (optimized code, the connections' prepared statements and
    // catalog caches), as benchmarks of JIT-compiled code do.
    await scenario(dialect, db, 'warm-up (not reported)', quick ? 1000 : 10_000, 1, (e) =>
      runAndWait(e, quick ? 'linear1000' : 'linear10000'),
    );
    rows.pop();
    // A run of 100 atoms lasts ~40 ms, where one scheduling hiccup shows: the shorter runs
    // are repeated and the median run is reported, with the range in the note.
    for (const n of sizes)
      await medianOf(n <= 100 ? 9 : n <= 1000 ? 5 : 1, () =>
        scenario(dialect, db, `a) linear ${n}`, n, 1, (e) => runAndWait(e, `linear${n}`)),
      );
    await scenario(dialect, db, 'b) unordered 1000, concurrency 16', 1000, 16, (e) => runAndWait(e, 'unordered1000'));
    const runs = quick ? 1000 : 5000;
    // c): runs queued first, then drained by an engine started after them; the timing and
    // atoms/s cover the drain (from the engine's start), the start rates are reported apart
    const drain = () => waitAllDone(db.store);
    await scenario(
      dialect,
      db,
      `c) ${runs} one-task runs started (one at a time, 8 clients), then drained`,
      runs,
      16,
      drain,
      async (starter) => {
        const t0 = performance.now();
        // from 8 concurrent clients, as an application's request handlers would
        let next = 0;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < runs) {
              next += 1;
              await starter.startRun('one', {});
            }
          }),
        );
        extra[`${dialect}: runs started/s, one at a time from 8 clients`] = round(runs / ((performance.now() - t0) / 1000), 0);
        return runs;
      },
    );
    // the same runs from a bulk producer: Engine.startRuns, 500 per call (one statement each on PostgreSQL)
    const bulk = (label: string) => async (starter: Engine) => {
      const t0 = performance.now();
      for (let i = 0; i < runs; i += 500)
        await starter.startRuns(
          'one',
          Array.from({ length: Math.min(500, runs - i) }, () => ({})),
        );
      extra[`${dialect}: runs started/s, bulk (startRuns, 500 per call)${label}`] = round(runs / ((performance.now() - t0) / 1000), 0);
      return Math.ceil(runs / 500);
    };
    await scenario(dialect, db, `c') ${runs} one-task runs started in bulk (startRuns), then drained`, runs, 16, drain, bulk(''));
    // no-op tasks leave the engine waiting on the database: more slots mean bigger group commits
    await scenario(dialect, db, `c'') the same, engine concurrency 64`, runs, 64, drain, bulk(", before c'')"));
    if (dialect === 'postgres' && PEERS && ensurePeers(progress)) await peerDrains(runs);
    if (!quick) await memoryInFlight(dialect, db);
  } finally {
    await db.drop();
  }
}

/**
 * The same run's references for c) on PostgreSQL (bench/peers/): each peer's worker process
 * drains `runs` queued no-op jobs, one job per run. graphile-worker at its defaults and
 * tuned, pg-boss with batch fetch, each on a fresh database; BullMQ on the local Redis. A
 * peer that fails, or whose service is not there, is skipped with a progress line. The c)
 * rows get Stoker ÷ each peer in their note.
 */
async function peerDrains(runs: number): Promise<void> {
  const log = join(tmpdir(), `stoker-bench-graphile-${process.pid}.jsonl`);
  // a PostgreSQL peer gets a fresh database of its own
  const onPostgres = (label: string, drain: (url: string) => Promise<DrainResult>) => async () => {
    const peerDb = await createTestStore('postgres');
    if (!peerDb) throw new Error('PostgreSQL not reachable');
    try {
      return { ...(await drain(peerDb.url)), label: `postgres: ${label}` };
    } finally {
      await peerDb.drop();
    }
  };
  const gw = `graphile-worker ${peerVersion('graphile-worker')}`;
  const gwTuned = `graphile-worker ${peerVersion('graphile-worker-0.17')}`;
  // label: the store, the version and the settings, for the extra table
  const peers: { name: string; drain: () => Promise<DrainResult & { label: string }> }[] = [
    {
      name: 'graphile-worker (defaults)',
      drain: onPostgres(`${gw}, its defaults (concurrency 1)`, (url) => graphileDrain(url, log, runs, 'defaults')),
    },
    {
      name: 'graphile-worker (tuned)',
      drain: onPostgres(
        `${gwTuned}, tuned (concurrency 24, maxPoolSize 25, localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0)`,
        (url) => graphileDrain(url, log, runs, 'tuned'),
      ),
    },
    {
      name: 'pg-boss',
      drain: onPostgres(
        `pg-boss ${peerVersion('pg-boss')}, batch fetch (${PG_BOSS_SETTINGS.workers} work() workers × batchSize ${PG_BOSS_SETTINGS.batchSize}, pollingIntervalSeconds 0.5)`,
        (url) => pgBossDrain(url, runs),
      ),
    },
    {
      name: 'BullMQ',
      drain: async () => {
        if (!(await listening(REDIS_PORT))) throw new Error(`Redis not reachable on 127.0.0.1:${REDIS_PORT}`);
        const r = await bullmqDrain(runs);
        return {
          ...r,
          label: `redis: BullMQ ${peerVersion('bullmq')} (concurrency ${BULLMQ_SETTINGS.concurrency}, removeOnComplete; Redis appendonly ${r.appendonly})`,
        };
      },
    },
  ];
  const measured: { name: string; jobsPerSec: number }[] = [];
  for (const peer of peers) {
    try {
      const r = await peer.drain();
      extra[`${r.label}: drains ${runs} queued no-op jobs (jobs/s, from the worker process ready)`] = r.jobsPerSec;
      measured.push({ name: peer.name, jobsPerSec: r.jobsPerSec });
      progress(`postgres c) peer ${peer.name}: ${r.jobsPerSec} jobs/s (${r.jobs} jobs in ${r.seconds} s)`);
    } catch (e) {
      progress(`SKIP peer ${peer.name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  peersMeasured ||= measured.length > 0;
  for (const r of rows.filter((x) => x.dialect === 'postgres' && x.scenario.startsWith('c')))
    r.note = measured.map((p) => `÷ ${p.name} ${round(r.atomsPerSec / p.jobsPerSec, 2)}`).join(', ');
}

/** Resolves when no run is PENDING or RUNNING. */
async function waitAllDone(store: Store): Promise<void> {
  while ((await store.listRuns({ status: ['PENDING', 'RUNNING'], limit: 1 })).length > 0) await new Promise((r) => setTimeout(r, 20));
}

/** Peak RSS of an engine while 10,000 runs are in flight (each parked on a durable sleep, then finishing). */
async function memoryInFlight(dialect: string, db: TestStore): Promise<void> {
  // in a process of its own: this one's heap has grown with the scenarios before
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'memory.ts'), db.url], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  const m = JSON.parse(out.trim().split('\n').at(-1)!) as { peakRssMb: number; baselineRssMb: number };
  extra[`${dialect}: peak RSS with 10,000 runs in flight (MB; engine process, baseline ${m.baselineRssMb})`] = m.peakRssMb;
  progress(`${dialect} memory: peak RSS ${m.peakRssMb} MB (process baseline ${m.baselineRssMb} MB)`);
}

function table(): string {
  const p1 = reference['pgbench one-row UPDATE, 1 client (tps)'];
  const p16 = reference['pgbench one-row UPDATE, 16 clients (tps)'];
  const m1 = reference['mysqlslap one-row UPDATE, 1 client (tps)'];
  const m16 = reference['mysqlslap one-row UPDATE, 16 clients (tps)'];
  const lines = [
    '| dialect | scenario | atoms | seconds | atoms/s | commits/atom | ÷ pgbench 1 | ÷ pgbench 16 | ÷ mysqlslap 1 | ÷ mysqlslap 16 | note |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.dialect === 'postgres' && p1 && p16) {
      r.ratioToPgbench1 = round(r.atomsPerSec / p1, 3);
      r.ratioToPgbench16 = round(r.atomsPerSec / p16, 3);
    }
    if (r.dialect === 'mysql' && m1 && m16) {
      r.ratioToMysqlslap1 = round(r.atomsPerSec / m1, 3);
      r.ratioToMysqlslap16 = round(r.atomsPerSec / m16, 3);
    }
    lines.push(
      `| ${r.dialect} | ${r.scenario} | ${r.atoms} | ${r.seconds} | ${r.atomsPerSec} | ${r.commitsPerAtom ?? ''} | ${r.ratioToPgbench1 ?? ''} | ${r.ratioToPgbench16 ?? ''} | ${r.ratioToMysqlslap1 ?? ''} | ${r.ratioToMysqlslap16 ?? ''} | ${r.note ?? ''} |`,
    );
  }
  lines.push(
    '',
    "a0) is the first linear run on the dialect in this process. a) is measured after a warm-up (one linear run of 10,000 atoms, not reported): a long-running engine; at 100 and 1,000 atoms it is the median of 9 and 5 runs. c) runs are queued before the engine starts; seconds run from its start until no run is open; start rates are reported below. e) and f) run the built CLI at its defaults (bench/cli.ts): seconds are the run's own, created → finished by the database's clock; the note gives the wall time from spawning `stoker run`, which includes that process's start, and for e) linear the one-client reference (pgbench, mysqlslap) taken for 2 s just before each of its runs, with each run's ratio to it: the disk's flush latency, which the one-client references mostly measure, moves within minutes, so that ratio is the one to read beside the run's." +
      (peersMeasured
        ? " The peers in the c) rows' notes drain the same number of queued no-op jobs (one job per run), their worker a process of its own, timed from the moment it is ready until no job is open (jobs/s and settings below)."
        : ''),
  );
  lines.push('', '| reference / extra | value |', '|---|---|');
  for (const [k, v] of Object.entries({ ...reference, ...extra })) lines.push(`| ${k} | ${String(v)} |`);
  return lines.join('\n');
}

if (dialects.includes('postgres')) Object.assign(reference, await commitReference('postgres', quick, progress));
if (dialects.includes('mysql')) Object.assign(reference, await commitReference('mysql', quick, progress));
if (scenarios.includes('core')) for (const d of dialects) await benchDialect(d);
if (scenarios.includes('cli')) {
  // e), f): the built CLI at its defaults, engine and `stoker run` in processes of their own (bench/cli.ts)
  for (const r of await benchCli({ dialects, quick, progress })) {
    const beside = r.beside
      ? `; ${r.beside.tool} 1 client just before each run: ${r.beside.tps.join(', ')} tps, ratios ${r.beside.ratios.join(', ')}: **${r.beside.ratio}** (median)`
      : '';
    const note = `wall ${r.wallSeconds} s from spawning stoker run${r.note ? `; ${r.note}` : ''}${beside}`;
    rows.push({
      dialect: r.dialect,
      scenario: r.scenario,
      atoms: r.atoms,
      seconds: r.seconds,
      atomsPerSec: r.atomsPerSec,
      commitsPerAtom: null,
      note,
    });
  }
}
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
let stacks: StackBenchRow[] | null = null;
if (scenarios.includes('stacks')) stacks = await benchStacks({ quick, dialects, progress });
// RabbitMQ (bench/amqp.ts): idle start latency on MariaDB with and without AMQP wake-ups,
// remote workers on PostgreSQL; also written to bench/results/amqp-latest.md
let amqp: AmqpResults | null = null;
if (scenarios.includes('amqp') && (dialects.includes('mysql') || dialects.includes('postgres'))) {
  amqp = await benchAmqp({
    quick,
    dialects: dialects.includes('mysql') ? ['mysql'] : [],
    ...(dialects.includes('postgres') ? {} : { only: 'idle' as const }),
  });
  writeResults('amqp-', { quick, ...amqp }, `# RabbitMQ: wake-ups and remote workers\n\n${amqpMarkdown(amqp)}\n`);
}
const md =
  table() +
  (engines ? '\n\n' + enginesMarkdown(engines) : '') +
  (stacks ? '\n\n' + stacksMarkdown(stacks) : '') +
  (amqp && amqp.idle.length + amqp.remote.length > 0 ? '\n\n' + amqpMarkdown(amqp) : '');
const at = new Date().toISOString();
writeResults(
  '',
  {
    at,
    quick,
    node: process.version,
    reference,
    extra,
    rows,
    ...(engines ? { engines } : {}),
    ...(stacks ? { stacks } : {}),
    ...(amqp ? { amqp } : {}),
  },
  md,
);
process.stdout.write(md + '\n');
