/**
 * Peer libraries measured in the same benchmark run as Stoker, so that figures from a
 * shared, noisy machine are compared with a reference taken under the same conditions.
 *
 * They live in bench/peers/ with a lockfile of their own and are installed on first use
 * (`npm ci --prefix bench/peers`), never by the project's own `npm ci`: the library does
 * not depend on them, and CI does not run benchmarks. Each runs its worker as a process of
 * its own (the *-process.mjs files beside this one), so the comparison is process against
 * process; this process queues their jobs with their own APIs and watches their stores.
 *
 * - graphile-worker 0.16.6 at its defaults, and 0.17.3 (installed as `graphile-worker-0.17`:
 *   the release that brought batched fetch and completion) tuned as its performance page
 *   says (graphile-worker-process.mjs); 0.16.6 also serves bench/takeover.ts as an idle
 *   worker, where a job is added with its own SQL function `graphile_worker.add_job`, which
 *   is what its `addJob` calls: one statement, one commit, and a NOTIFY from its insert trigger.
 * - pg-boss 10 (the newest major whose engines accept Node 20) with batch fetch (pg-boss-process.mjs).
 * - BullMQ on the local Redis, with a high concurrency (bullmq-process.mjs).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGES = ['graphile-worker', 'graphile-worker-0.17', 'pg-boss', 'bullmq', 'ioredis'];
/** Loads a peer library from bench/peers/node_modules (untyped: the project does not depend on them). */
const peerRequire = createRequire(join(HERE, 'package.json'));

/** Installs the peers from their lockfile when one is missing; false (after a progress line) when that fails. */
export function ensurePeers(progress: (msg: string) => void): boolean {
  if (PACKAGES.every((p) => existsSync(join(HERE, 'node_modules', p, 'package.json')))) return true;
  progress('installing the peer libraries (npm ci --prefix bench/peers)');
  try {
    execFileSync('npm', ['ci', '--prefix', HERE, '--no-audit', '--no-fund', '--loglevel=error'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return true;
  } catch (e) {
    progress(`SKIP peers: could not install them: ${(e as Error).message.split('\n')[0]}`);
    return false;
  }
}

/** The installed version of a peer package (its package.json), for the labels of the figures. */
export function peerVersion(pkg: string): string {
  return (JSON.parse(readFileSync(join(HERE, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

const READY_TIMEOUT_MS = 60_000;
const DRAIN_TIMEOUT_MS = 600_000;

/** A peer's worker process, once it printed `ready` (killed, and an error, when it does not within a minute). */
class PeerProcess {
  private constructor(private readonly child: ChildProcess) {}

  static async start(script: string, args: string[]): Promise<PeerProcess> {
    const child = spawn(process.execPath, [join(HERE, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${script} not ready after ${READY_TIMEOUT_MS / 1000} s: ${stderr}`));
      }, READY_TIMEOUT_MS);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited (${code}) before it was ready: ${stderr}`));
      });
    });
    return new PeerProcess(child);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** SIGTERM (the peer stops its worker), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    this.child.kill('SIGKILL');
  }
}

/** An idle graphile-worker process and a connection that adds its jobs. */
export class GraphileWorkerPeer {
  private constructor(
    private readonly proc: PeerProcess,
    private readonly db: pg.Client,
  ) {}

  /**
   * Starts the worker against `url` (it installs its schema there), once it listens. Mode:
   * see graphile-worker-process.mjs (`idle`: poll 1 s like Stoker's idle engine; `defaults`; `tuned`).
   */
  static async start(url: string, log: string, mode: 'idle' | 'defaults' | 'tuned' = 'idle'): Promise<GraphileWorkerPeer> {
    const proc = await PeerProcess.start('graphile-worker-process.mjs', [url, log, mode]);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    return new GraphileWorkerPeer(proc, db);
  }

  /** Adds one `idle` job with payload `{ id }` (returns once committed). */
  async addJob(id: string): Promise<void> {
    await this.db.query(`SELECT graphile_worker.add_job('idle', json_build_object('id', $1::text))`, [id]);
  }

  async stop(): Promise<void> {
    await this.db.end().catch(() => undefined);
    await this.proc.stop();
  }
}

/** A peer's drain of scenario c): jobs/s over the jobs still open when its worker was ready. */
export interface DrainResult {
  jobsPerSec: number;
  seconds: number;
  /** jobs still open when the worker reported ready (those it took before are left out) */
  jobs: number;
}

/**
 * Times a drain the same way for every peer: `startWorker` once the jobs are queued, then
 * from the moment its process is ready until `open()` (the jobs not yet completed in the
 * peer's own store, read every 20 ms) is 0. Its process start-up (Node and its modules, its
 * connections, a few hundred ms) is left out, as Stoker's in-process engine, whose store is
 * open before its timing starts, pays none. pg-boss and BullMQ report ready before their
 * first fetch, so that it is timed as Stoker's first claim is; graphile-worker's `run()`
 * starts fetching before it returns, and the jobs it may complete before it reports ready
 * are left out of its count.
 */
async function timeDrain(startWorker: () => Promise<PeerProcess>, open: () => Promise<number>): Promise<DrainResult> {
  const worker = await startWorker();
  try {
    const t0 = performance.now();
    const jobs = await open();
    while ((await open()) > 0) {
      if (worker.exited) throw new Error('the worker process exited before the queue was drained');
      if (performance.now() - t0 > DRAIN_TIMEOUT_MS) throw new Error(`jobs still open after ${DRAIN_TIMEOUT_MS / 1000} s`);
      await new Promise((res) => setTimeout(res, 20));
    }
    const seconds = (performance.now() - t0) / 1000;
    return { jobsPerSec: Math.round(jobs / seconds), seconds: Math.round(seconds * 1000) / 1000, jobs };
  } finally {
    await worker.stop();
  }
}

/** With a client on `url`, closed afterwards. */
async function withClient<T>(url: string, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    return await fn(db);
  } finally {
    await db.end();
  }
}

const countOf = async (db: pg.Client, sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql)).rows[0]!.n);

/**
 * Scenario c) of bench/run.ts for graphile-worker on the fresh database `url`: `jobs` no-op
 * jobs queued in one statement, then one worker process (`defaults`: 0.16.6 as installed;
 * `tuned`: 0.17.3 with its batching, see graphile-worker-process.mjs) drains them.
 */
export async function graphileDrain(url: string, log: string, jobs: number, mode: 'defaults' | 'tuned' = 'defaults'): Promise<DrainResult> {
  // a first start installs graphile-worker's schema
  await (await GraphileWorkerPeer.start(url, log, mode)).stop();
  return withClient(url, async (db) => {
    await db.query(`SELECT graphile_worker.add_job('noop', '{}'::json) FROM generate_series(1, $1::int)`, [jobs]);
    // a job leaves graphile_worker.jobs once its completion is written
    return timeDrain(
      () => PeerProcess.start('graphile-worker-process.mjs', [url, log, mode]),
      () => countOf(db, 'SELECT count(*) AS n FROM graphile_worker.jobs'),
    );
  });
}

/**
 * pg-boss's settings in {@link pgBossDrain}: polling workers (`work()` calls) × jobs fetched
 * per poll (`batchSize`). A worker that drains its batch within the 0.5 s poll waits out the
 * rest, so these bound its rate at workers × batchSize / 0.5 s (4,000 jobs/s here); the batch
 * is the size of graphile-worker's local queue on that library's performance page.
 */
export const PG_BOSS_SETTINGS = { workers: 4, batchSize: 500 };

/**
 * Scenario c) for pg-boss on the fresh database `url`: `jobs` no-op jobs queued with its
 * `insert` (one statement), then one worker process with batch fetch (pg-boss-process.mjs)
 * drains them.
 */
export async function pgBossDrain(url: string, jobs: number): Promise<DrainResult> {
  const queue = 'noop';
  const PgBoss = peerRequire('pg-boss') as new (o: object) => {
    start(): Promise<unknown>;
    stop(o: object): Promise<void>;
    createQueue(name: string): Promise<void>;
    insert(jobs: { name: string }[]): Promise<unknown>;
  };
  // no maintenance or cron in this producer: it only installs the schema and queues
  const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
  await boss.start();
  try {
    await boss.createQueue(queue);
    await boss.insert(Array.from({ length: jobs }, () => ({ name: queue })));
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
  return withClient(url, (db) =>
    timeDrain(
      () => PeerProcess.start('pg-boss-process.mjs', [url, queue, String(PG_BOSS_SETTINGS.workers), String(PG_BOSS_SETTINGS.batchSize)]),
      // created, retry and active come before completed in its job_state enum
      () => countOf(db, `SELECT count(*) AS n FROM pgboss.job WHERE name = '${queue}' AND state < 'completed'`),
    ),
  );
}

export const REDIS_PORT = 6379;

/** True when something accepts connections on 127.0.0.1:`port` within a second. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, timeout: 1000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

/** BullMQ's settings in {@link bullmqDrain}. */
export const BULLMQ_SETTINGS = { concurrency: 50 };

interface BullQueue {
  addBulk(jobs: { name: string; data: object }[]): Promise<unknown>;
  getJobCountByTypes(...types: string[]): Promise<number>;
  obliterate(o: object): Promise<void>;
  close(): Promise<void>;
}

/**
 * Scenario c) for BullMQ on the local Redis: `jobs` no-op jobs queued with `addBulk` under a
 * key prefix of this process's own, then one worker process (bullmq-process.mjs) drains
 * them; the queue is obliterated afterwards. Also returns Redis's persistence setting
 * (`appendonly`), which decides what a completed job costs there.
 */
export async function bullmqDrain(jobs: number): Promise<DrainResult & { appendonly: string }> {
  const { Queue } = peerRequire('bullmq') as { Queue: new (name: string, o: object) => BullQueue };
  const Redis = peerRequire('ioredis') as new (o: object) => {
    config(op: string, key: string): Promise<string[]>;
    quit(): Promise<unknown>;
  };
  const connection = { host: '127.0.0.1', port: REDIS_PORT };
  const prefix = `stoker-bench-${process.pid}`;
  const name = `noop-${Date.now()}`;
  const redis = new Redis(connection);
  const appendonly = (await redis.config('GET', 'appendonly'))[1] ?? '?';
  await redis.quit();
  const queue = new Queue(name, { connection, prefix });
  try {
    for (let i = 0; i < jobs; i += 1000)
      await queue.addBulk(Array.from({ length: Math.min(1000, jobs - i) }, () => ({ name: 'noop', data: {} })));
    const drained = await timeDrain(
      () => PeerProcess.start('bullmq-process.mjs', [String(REDIS_PORT), prefix, name, String(BULLMQ_SETTINGS.concurrency)]),
      () => queue.getJobCountByTypes('wait', 'paused', 'prioritized', 'delayed', 'active'),
    );
    return { ...drained, appendonly };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}
