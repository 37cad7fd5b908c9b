/**
 * RabbitMQ (docs/amqp.md), issue 12's benchmarks, each against a reference measured in the
 * same run:
 *
 * 1. Idle start latency on MariaDB ("Wake-ups"), from `startRun` in this process to the task
 *    starting to execute in an idle engine process, with the engine polling every second
 *    (the default) and either AMQP wake-ups or none. Without AMQP the engine hears the
 *    store's own wake-ups (on MariaDB a killed sleep, ARCHITECTURE.md protocol 6), else
 *    its poll. On MariaDB also the same with AMQP as before migration 11: the wake-up sent
 *    after the start's commit, the task started after its claim's (the same-run reference
 *    for "Claims seen before their commit", ARCHITECTURE.md). Beside them, what one durable
 *    commit and one `SELECT 1` cost at such idle moments and back to back (FlushRow): the
 *    price of waking an idle server, paid at each hop of the path.
 * 2. Remote workers on PostgreSQL ("Remote tasks"): the unordered flow of 1,000 remote
 *    no-op tasks (bench/fixtures/amqp-flows.ts) through one engine in this process and 1, 2
 *    and 4 `stoker worker` processes at their default settings, against the same flow
 *    executed in the engine (no RabbitMQ): atoms/s and the ratio; the messages per atom.
 *    Each task has a queue of its own (`remote1000`, the default case), then, with the same
 *    workers, all 1,000 share one (`remote1000shared`, `remote: { queue }`).
 *    Each set of workers (and the engine's reference) has one untimed warm-up run per flow first.
 * 3. 2,000 runs of one remote task that sleeps 100 ms, 4 workers × `--concurrency 50`:
 *    seconds, against the ideal 2,000 × 0.1 s / 200 slots = 1 s.
 *
 *   node --import tsx bench/amqp.ts [--quick] [--dialects mysql,sqlite] [--only idle|remote]
 *
 * Needs RabbitMQ on 127.0.0.1:5672 with rabbitmqctl (a virtual host is made and deleted).
 * Writes bench/results/amqp-<date>.{json,md} and amqp-latest.{json,md}, with the load
 * average (the machine is shared: figures taken under load are not comparable).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/engine/engine.js';
import { RunClient } from '../src/engine/run-client.js';
import { WakeHub, type WakeRelay } from '../src/engine/wake-hub.js';
import { FlowRegistry } from '../src/flow/index.js';
import { openAmqp, type Amqp } from '../src/runtime/amqp.js';
import { EngineProc, percentile, readEffects, sleep } from '../test/chaos/harness.js';
import chaosFlows from '../test/fixtures/chaos-flows.js';
import { createTestStore, type Dialect, type TestStore } from '../test/helpers/databases.js';
import { createTestVhost } from '../test/helpers/rabbitmq.js';
import mysql from 'mysql2/promise';
import { progressFor, round, writeResults } from './common.js';
import remoteFlows, { REMOTE_ATOMS, SLEEP_MS } from './fixtures/amqp-flows.js';

const progress = progressFor('amqp');

/** the `p`th percentile of `xs` (unsorted), rounded to `digits` */
function percentileOf(xs: readonly number[], p: number, digits: number): number {
  return round(
    percentile(
      [...xs].sort((a, b) => a - b),
      p,
    ),
    digits,
  );
}
const wallMs = (): number => performance.timeOrigin + performance.now();

export interface AmqpIdleRow {
  dialect: Dialect;
  /**
   * `amqp-after-commits`: with AMQP as before migration 11 (MySQL only, the same-run
   * reference): the wake-up sent once the start committed, the task started once its claim
   * committed
   */
  mode: 'amqp' | 'amqp-after-commits' | 'poll';
  n: number;
  /** from the `startRun` call to the task executing */
  medianMs: number;
  p99Ms: number;
  maxMs: number;
  /** the part of it after `startRun` returned (its commit): the wake-up, the claim and the task's start */
  afterCommitMedianMs: number;
  afterCommitP99Ms: number;
  /** the `startRun` call itself (the run's transaction on the database) */
  startRunMedianMs: number;
  /**
   * Where the time after the commit goes, medians over the starts (AMQP only: the engine
   * process's trace lines, test/fixtures/engine-process.ts `ENGINE_TRACE`, on the same wall
   * clock): `startRun` returned → the engine heard the wake-up; → its claim statement sent;
   * → its claims seen (before the commit, on MySQL/MariaDB: test/fixtures/engine-process.ts
   * `visible`) or returned; → the task executing.
   */
  hops: { heardMs: number; claimSentMs: number; claimedMs: number; executingMs: number } | null;
}

async function idleLatency(
  dialect: Dialect,
  withAmqp: boolean,
  amqpUrl: string,
  starts: number,
  afterCommits = false,
): Promise<AmqpIdleRow | null> {
  const db = await createTestStore(dialect);
  if (!db) return null;
  const dir = mkdtempSync(join(tmpdir(), 'stoker-bench-amqp-'));
  const log = join(dir, 'effects.jsonl');
  const engine = new EngineProc(db.url, {
    concurrency: 4,
    leaseMs: 10_000,
    env: {
      ENGINE_POLL_MS: '1000',
      ENGINE_TRACE: '1',
      ...(withAmqp ? { ENGINE_AMQP: amqpUrl } : {}),
      ...(afterCommits ? { ENGINE_VISIBLE_CLAIMS: '0' } : {}),
    },
  });
  const amqp = withAmqp ? await openAmqp({ url: amqpUrl }) : null;
  try {
    await engine.ready;
    await sleep(1500);
    const flows = new FlowRegistry();
    for (const f of chaosFlows) flows.register(f);
    const hub = new WakeHub();
    // the reference's relay cannot send a message before the start's commit (no notifyStarting)
    const relay: WakeRelay | null =
      amqp && afterCommits
        ? { notify: () => amqp.wakeups.notify(), subscribe: (fn) => amqp.wakeups.subscribe(fn) }
        : (amqp?.wakeups ?? null);
    if (relay) hub.attach(relay);
    const client = new RunClient({ store: db.store, flows, wakeHub: hub });
    const ms: number[] = [];
    const afterCommit: number[] = [];
    const startRun: number[] = [];
    const heard: number[] = [];
    const claimSent: number[] = [];
    const claimed: number[] = [];
    const executing: number[] = [];
    for (let i = 0; i < starts; i++) {
      const seen = engine.lines.length;
      const t0 = wallMs();
      const { run } = await client.startRun('chaosHold', { log, holdMs: 0 });
      const t1 = wallMs();
      for (;;) {
        const line = readEffects(log).find((l) => l.run === run.id && l.phase === 'start');
        if (line) {
          ms.push(line.hr - t0);
          afterCommit.push(line.hr - t1);
          startRun.push(t1 - t0);
          // the engine's trace: the first wake-up heard since this start began, its claim
          const lines = engine.lines.slice(seen).map((l) => l.split(' '));
          const woken = lines.find((l) => l[0] === 'woken' && Number(l[1]) >= t0);
          // where the claim shows its claims before its commit (MySQL/MariaDB), the task
          // starts from there: that is when it counts as claimed
          const claim =
            lines.find((l) => l[0] === 'visible' && l[1] === run.id) ?? lines.find((l) => l[0] === 'claimed' && l[1] === run.id);
          // the claim statement that claimed it: the last one sent before it returned
          const sent = lines.findLast((l) => l[0] === 'claiming' && claim !== undefined && Number(l[1]) <= Number(claim[3]));
          // (SQLite's wake file may wake the engine before the message: no AMQP hop to show)
          if (woken && claim && sent && Number(sent[1]) >= Number(woken[1])) {
            heard.push(Number(woken[1]) - t1);
            claimSent.push(Number(sent[1]) - Number(woken[1]));
            claimed.push(Number(claim[3]) - Number(sent[1]));
            executing.push(line.hr - Number(claim[3]));
          }
          break;
        }
        await sleep(1);
      }
      // starts at random points of the engine's poll cycle
      await sleep(50 + Math.random() * 1200);
    }
    const at = (xs: number[], p: number): number => percentileOf(xs, p, 1);
    return {
      dialect,
      mode: withAmqp ? (afterCommits ? 'amqp-after-commits' : 'amqp') : 'poll',
      n: ms.length,
      medianMs: at(ms, 50),
      p99Ms: at(ms, 99),
      maxMs: round(Math.max(...ms), 1),
      afterCommitMedianMs: at(afterCommit, 50),
      afterCommitP99Ms: at(afterCommit, 99),
      startRunMedianMs: at(startRun, 50),
      hops:
        heard.length > 0
          ? { heardMs: at(heard, 50), claimSentMs: at(claimSent, 50), claimedMs: at(claimed, 50), executingMs: at(executing, 50) }
          : null,
    };
  } finally {
    engine.signal('SIGKILL');
    await engine.exited;
    await amqp?.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const ROOT = join(import.meta.dirname, '..');
const FLOWS_MODULE = join(import.meta.dirname, 'fixtures', 'amqp-flows.ts');
export const KEY = 'bench-amqp-key-0123456789';
const ENGINE_CONCURRENCY = 16;

/** A `stoker worker` process (the CLI from source, at its defaults unless `concurrency`). */
class WorkerProc {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  private stderr = '';
  private readonly exited: Promise<void>;

  constructor(amqpUrl: string, concurrency?: number) {
    const args = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'worker', '--amqp', amqpUrl, '--flows', FLOWS_MODULE];
    if (concurrency !== undefined) args.push('--concurrency', String(concurrency));
    const env: NodeJS.ProcessEnv = { ...process.env, STOKER_AMQP_KEY: KEY };
    delete env.STOKER_AMQP;
    delete env.STOKER_CONCURRENCY;
    this.child = spawn(process.execPath, [...(process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean), ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.ready = new Promise((resolve, reject) => {
      this.child.stderr!.on('data', (b: Buffer) => {
        this.stderr += b.toString('utf8');
        if (this.stderr.includes('worker started')) resolve();
      });
      void this.exited.then(() => reject(new Error(`worker exited: ${this.stderr.trim()}`)));
    });
  }

  /** SIGTERM; resolves with the worker's closing line (its counters). */
  async stop(): Promise<string> {
    this.child.kill('SIGTERM');
    await this.exited;
    return /worker stopped[^\n]*/.exec(this.stderr)?.[0] ?? this.stderr.trim();
  }
}

export interface AmqpRemoteRow {
  scenario: string;
  workers: number;
  atoms: number;
  seconds: number;
  atomsPerSec: number;
  /** atoms/s ÷ the same flow executed in the engine, same run */
  ratio: number | null;
  /** requests the engine published per atom (1: no re-publish) */
  requestsPerAtom: number | null;
  /** request messages that carried them, per atom (fewer than the requests when batched) */
  requestMessagesPerAtom?: number | null;
  note?: string;
}

/** Runs `flow` (`remote1000` or `remote1000shared`) once on `engine` and returns the seconds from its start to its end. */
async function oneRun(engine: Engine, flow = 'remote1000'): Promise<number> {
  const t0 = performance.now();
  const { run } = await engine.startRun(flow, {});
  const done = await engine.waitForRun(run.id, { timeoutMs: 600_000, pollMs: 20 });
  if (done.status !== 'SUCCESS') throw new Error(`${flow} ended ${done.status}`);
  return (performance.now() - t0) / 1000;
}

/** The median of `times` runs (seconds), with the range. */
async function medianRuns(times: number, run: () => Promise<number>): Promise<{ seconds: number; note: string }> {
  const all: number[] = [];
  for (let i = 0; i < times; i++) all.push(await run());
  const sorted = [...all].sort((a, b) => a - b);
  const range = `${round(REMOTE_ATOMS / sorted.at(-1)!, 0)}–${round(REMOTE_ATOMS / sorted[0]!, 0)}`;
  return { seconds: sorted[sorted.length >> 1]!, note: `median of ${times} runs (${range} atoms/s)` };
}

/** CPU time (user + system, ms at 100 Hz) a process has used so far, from /proc; 0 when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/** The broker's processes (Erlang's `beam`), whose CPU time the probes count. */
export function beamPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/comm`, 'utf8').startsWith('beam');
      } catch {
        return false;
      }
    })
    .map(Number);
}

export async function startWorkers(url: string, n: number, concurrency?: number): Promise<WorkerProc[]> {
  const workers = Array.from({ length: n }, () => new WorkerProc(url, concurrency));
  try {
    await Promise.all(workers.map((w) => w.ready));
  } catch (e) {
    await stopWorkers(workers);
    throw e;
  }
  return workers;
}

export async function stopWorkers(workers: readonly WorkerProc[]): Promise<string[]> {
  return Promise.all(workers.map((w) => w.stop()));
}

/** Starts `runs` runs of `remoteSleep` (500 per call) and returns the seconds until the last one ended. */
export async function sleepingRuns(engine: Engine, runs: number): Promise<number> {
  let ended = 0;
  let allEnded!: () => void;
  const done = new Promise<void>((resolve) => (allEnded = resolve));
  const onEnd = (): void => {
    ended += 1;
    if (ended === runs) allEnded();
  };
  engine.on('run.finished', onEnd);
  const t0 = performance.now();
  for (let i = 0; i < runs; i += 500)
    await engine.startRuns(
      'remoteSleep',
      Array.from({ length: Math.min(500, runs - i) }, () => ({})),
    );
  await done;
  engine.off('run.finished', onEnd);
  return (performance.now() - t0) / 1000;
}

/** Remote no-op tasks through 1, 2, 4 workers, and 2,000 sleeping tasks, on PostgreSQL. */
async function remoteWorkers(amqpUrl: string, quick: boolean): Promise<AmqpRemoteRow[]> {
  const db: TestStore | null = await createTestStore('postgres');
  if (!db) return [];
  const rows: AmqpRemoteRow[] = [];
  const times = quick ? 1 : 3;
  const registry = (): FlowRegistry => {
    const r = new FlowRegistry();
    for (const f of remoteFlows) r.register(f);
    return r;
  };
  let amqp: Amqp | null = null;
  try {
    // the reference: the same flow executed in an engine without RabbitMQ (remote tasks run in process)
    progress('postgres: remote1000 executed in the engine (reference)');
    const local = new Engine({ store: db.store, flows: registry(), concurrency: ENGINE_CONCURRENCY, pollMs: 200, maxBatch: 256 });
    await local.start();
    await oneRun(local); // warm-up
    const ref = await medianRuns(times, () => oneRun(local));
    await local.stop();
    const refRate = REMOTE_ATOMS / ref.seconds;
    rows.push({
      scenario: `unordered ${REMOTE_ATOMS} no-op tasks in the engine, concurrency ${ENGINE_CONCURRENCY}`,
      workers: 0,
      atoms: REMOTE_ATOMS,
      seconds: round(ref.seconds, 3),
      atomsPerSec: round(refRate, 0),
      ratio: 1,
      requestsPerAtom: null,
      note: ref.note,
    });

    amqp = await openAmqp({ url: amqpUrl, key: KEY, name: 'bench-engine' });
    const engine = new Engine({ store: db.store, flows: registry(), amqp, concurrency: ENGINE_CONCURRENCY, pollMs: 200, maxBatch: 256 });
    await engine.start();
    for (const n of [1, 2, 4]) {
      const workers = await startWorkers(amqpUrl, n);
      let lines: string[] = [];
      try {
        // a queue per task (the default), then all tasks on one shared queue, with the same workers
        for (const flow of ['remote1000', 'remote1000shared']) {
          progress(`postgres: ${flow} through ${n} worker process${n > 1 ? 'es' : ''}`);
          // warm-up, untimed, with each set of workers: the first declares the task queues;
          // in every one the new worker processes compile their code paths, as long-running
          // workers have long done (the engine's reference has its warm-up too)
          await oneRun(engine, flow);
          const before = amqp.remote!.snapshot();
          const m = await medianRuns(times, () => oneRun(engine, flow));
          const after = amqp.remote!.snapshot();
          const atoms = REMOTE_ATOMS * times;
          rows.push({
            scenario: `unordered ${REMOTE_ATOMS} remote no-op tasks, ${flow === 'remote1000' ? 'a queue each' : 'one shared queue'}, engine concurrency ${ENGINE_CONCURRENCY}`,
            workers: n,
            atoms: REMOTE_ATOMS,
            seconds: round(m.seconds, 3),
            atomsPerSec: round(REMOTE_ATOMS / m.seconds, 0),
            ratio: round(ref.seconds / m.seconds, 3),
            requestsPerAtom: round((after.published - before.published) / atoms, 3),
            requestMessagesPerAtom: round((after.requestMessages - before.requestMessages) / atoms, 3),
            note: m.note,
          });
          progress(`  ${rows.at(-1)!.atomsPerSec} atoms/s`);
        }
        lines = await stopWorkers(workers);
      } finally {
        if (lines.length === 0) await stopWorkers(workers);
      }
      progress(`  ${lines.join(' | ')}`);
    }

    const runs = quick ? 500 : 2000;
    progress(`postgres: ${runs} remote tasks sleeping ${SLEEP_MS} ms, 4 workers × concurrency 50`);
    const workers = await startWorkers(amqpUrl, 4, 50);
    try {
      const seconds = await sleepingRuns(engine, runs);
      const ideal = (runs * SLEEP_MS) / 1000 / 200;
      rows.push({
        scenario: `${runs} runs of one remote task sleeping ${SLEEP_MS} ms, 4 workers × concurrency 50 (ideal ${ideal} s)`,
        workers: 4,
        atoms: runs,
        seconds: round(seconds, 3),
        atomsPerSec: round(runs / seconds, 0),
        ratio: round(ideal / seconds, 3),
        requestsPerAtom: null,
      });
      progress(`  ${round(seconds, 2)} s (ideal ${ideal} s)`);
    } finally {
      await stopWorkers(workers);
    }
    await engine.stop();
  } finally {
    await amqp?.close();
    await db.drop();
  }
  return rows;
}

export interface AmqpResults {
  idle: AmqpIdleRow[];
  /** MariaDB's cost of one durable commit at idle moments (the floor of an idle start: two of them) */
  flush: FlushRow[];
  remote: AmqpRemoteRow[];
  /** `uptime`'s load averages (1, 5, 15 min) when the bench started and ended */
  load: { start: number[]; end: number[] };
}

/**
 * What one durable commit costs on this server while the path is idle, as in the idle starts
 * (a start and a claim each end in one): a one-row autocommit UPDATE on a connection of its
 * own, timed after a pause like those between starts (50–1,250 ms), the same UPDATE rolled
 * back after such a pause (no flush), and the UPDATE committed back to back.
 */
export interface FlushRow {
  dialect: Dialect;
  n: number;
  commitAfterPauseMs: number;
  rollbackAfterPauseMs: number;
  commitBackToBackMs: number;
  /** a `SELECT 1` round trip after such a pause, and back to back: what waking an idle server costs, with nothing to write */
  selectAfterPauseMs: number;
  selectBackToBackMs: number;
}

async function flushCost(n: number): Promise<FlushRow | null> {
  const db = await createTestStore('mysql', { migrate: false });
  if (!db) return null;
  const u = new URL(db.url);
  const c = await mysql.createConnection({
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
  });
  try {
    await c.query('CREATE TABLE flush_probe (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB');
    await c.query('INSERT INTO flush_probe VALUES (1, 0)');
    const update = 'UPDATE flush_probe SET n = n + 1 WHERE id = 1';
    const timed = async (fn: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    const afterPause: number[] = [];
    const rolledBack: number[] = [];
    const backToBack: number[] = [];
    const selectAfterPause: number[] = [];
    const selectBackToBack: number[] = [];
    for (let i = 0; i < n; i++) {
      await sleep(50 + Math.random() * 1200);
      afterPause.push(await timed(() => c.query(update)));
      await sleep(50 + Math.random() * 1200);
      await c.query('START TRANSACTION');
      rolledBack.push(await timed(() => c.query(update)));
      await c.query('ROLLBACK');
      await sleep(50 + Math.random() * 1200);
      selectAfterPause.push(await timed(() => c.query('SELECT 1')));
    }
    for (let i = 0; i < n; i++) backToBack.push(await timed(() => c.query(update)));
    for (let i = 0; i < n; i++) selectBackToBack.push(await timed(() => c.query('SELECT 1')));
    const median = (xs: number[]): number => percentileOf(xs, 50, 2);
    return {
      dialect: 'mysql',
      n,
      commitAfterPauseMs: median(afterPause),
      rollbackAfterPauseMs: median(rolledBack),
      commitBackToBackMs: median(backToBack),
      selectAfterPauseMs: median(selectAfterPause),
      selectBackToBackMs: median(selectBackToBack),
    };
  } finally {
    await c.end();
    await db.drop();
  }
}

/** Idle start latency with and without AMQP wake-ups per dialect (and MariaDB's flush cost), then the remote-worker scenarios. */
export async function benchAmqp(options: { quick: boolean; dialects: readonly Dialect[]; only?: 'idle' | 'remote' }): Promise<AmqpResults> {
  const load = { start: loadavg().map((l) => round(l, 2)), end: [] as number[] };
  const broker = await createTestVhost();
  if (!broker) return { idle: [], flush: [], remote: [], load };
  const idle: AmqpIdleRow[] = [];
  const flush: FlushRow[] = [];
  let remote: AmqpRemoteRow[] = [];
  try {
    if (options.only !== 'remote') {
      for (const d of options.dialects) {
        for (const withAmqp of [true, false]) {
          progress(`${d}: idle starts ${withAmqp ? 'with AMQP wake-ups' : 'without AMQP (the store wake-ups, poll 1 s)'}`);
          const row = await idleLatency(d, withAmqp, broker.url, options.quick ? 20 : 100);
          if (row) idle.push(row);
        }
        if (d === 'mysql') {
          // the same-run reference for the wake-up sent and the claims seen before their commits
          progress('mysql: idle starts with AMQP as before migration 11 (wake-up and task start after the commits)');
          const row = await idleLatency(d, true, broker.url, options.quick ? 20 : 100, true);
          if (row) idle.push(row);
        }
        if (d === 'mysql') {
          progress('mysql: one-row commits after pauses, rolled back, back to back');
          const row = await flushCost(options.quick ? 15 : 40);
          if (row) flush.push(row);
        }
      }
    }
    if (options.only !== 'idle') remote = await remoteWorkers(broker.url, options.quick);
  } finally {
    await broker.drop();
  }
  load.end = loadavg().map((l) => round(l, 2));
  return { idle, flush, remote, load };
}

const IDLE_MODES: Record<AmqpIdleRow['mode'], string> = {
  amqp: 'AMQP',
  'amqp-after-commits': 'AMQP, wake-up and task after the commits (before migration 11)',
  poll: 'none (store wake-ups, poll 1 s)',
};

export function amqpMarkdown(r: AmqpResults): string {
  const out = [
    `Load average (1, 5, 15 min) at the start: ${r.load.start.join(', ')}; at the end: ${r.load.end.join(', ')}.`,
    '',
    '| dialect | wake-up | idle startRun → task executing: median / p99 / max (ms) | of which after the commit: median / p99 (ms) | startRun itself: median (ms) | after the commit: wake-up heard / claim sent / claimed / task executing (medians, ms) | n |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...r.idle.map(
      (i) =>
        `| ${i.dialect} | ${IDLE_MODES[i.mode]} | ${i.medianMs} / ${i.p99Ms} / ${i.maxMs} | ${i.afterCommitMedianMs} / ${i.afterCommitP99Ms} | ${i.startRunMedianMs} | ${i.hops ? `${i.hops.heardMs} / +${i.hops.claimSentMs} / +${i.hops.claimedMs} / +${i.hops.executingMs}` : ''} | ${i.n} |`,
    ),
  ];
  for (const f of r.flush)
    out.push(
      '',
      `${f.dialect}: one-row autocommit UPDATE after a pause of 50–1,250 ms: median ${f.commitAfterPauseMs} ms; the same rolled back (no flush): ${f.rollbackAfterPauseMs} ms; committed back to back: ${f.commitBackToBackMs} ms (n = ${f.n} each). A \`SELECT 1\` after such a pause: ${f.selectAfterPauseMs} ms, back to back ${f.selectBackToBackMs} ms: what waking an idle server costs, paid at each process an idle start wakes in turn (MariaDB, RabbitMQ, the engine, MariaDB again); its commits are no longer on that path (ARCHITECTURE.md, "Claims seen before their commit").`,
    );
  if (r.remote.length > 0) {
    out.push(
      '',
      '| PostgreSQL | workers | atoms | seconds | atoms/s | ratio | requests/atom | request messages/atom | note |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...r.remote.map(
        (x) =>
          `| ${x.scenario} | ${x.workers || 'in engine'} | ${x.atoms} | ${x.seconds} | ${x.atomsPerSec} | ${x.ratio ?? ''} | ${x.requestsPerAtom ?? ''} | ${x.requestMessagesPerAtom ?? ''} | ${x.note ?? ''} |`,
      ),
      '',
      'ratio: atoms/s ÷ the same flow executed in the engine, in the same run (target for 4 workers: ≥ 0.5); for the sleeping tasks, the ideal seconds ÷ the measured ones.',
    );
  }
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const dialects = (args.includes('--dialects') ? args[args.indexOf('--dialects') + 1]! : 'mysql').split(',') as Dialect[];
  const only = args.includes('--only') ? (args[args.indexOf('--only') + 1] as 'idle' | 'remote') : undefined;
  const results = await benchAmqp({ quick, dialects, ...(only ? { only } : {}) });
  const md = `# RabbitMQ: wake-ups and remote workers\n\n${amqpMarkdown(results)}\n`;
  console.log(md);
  writeResults('amqp-', { quick, ...results }, md);
}
