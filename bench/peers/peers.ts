/**
 * Peer libraries measured in the same benchmark run as Stoker, so that figures from a
 * shared, noisy machine are compared with a reference taken under the same conditions.
 *
 * They live in bench/peers/ with a lockfile of their own and are installed on first use
 * (`npm ci --prefix bench/peers`), never by the project's own `npm ci`: the library does
 * not depend on them, and CI does not run benchmarks.
 *
 * graphile-worker (0.16.6, the newest release that supports Node 20) runs as an idle worker
 * process (graphile-worker-process.mjs); a job is added with its own SQL function
 * `graphile_worker.add_job`, which is what its `addJob` calls: one statement, one commit,
 * and a NOTIFY from its insert trigger.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Installs the peers from their lockfile when missing; false (after a progress line) when that fails. */
export function ensurePeers(progress: (msg: string) => void): boolean {
  if (existsSync(join(HERE, 'node_modules', 'graphile-worker', 'package.json'))) return true;
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

/** An idle graphile-worker process and a connection that adds its jobs. */
export class GraphileWorkerPeer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly db: pg.Client,
  ) {}

  /**
   * Starts the worker against `url` (it installs its schema there), once it listens. Mode:
   * see graphile-worker-process.mjs (`idle`: poll 1 s like Stoker's idle engine; `defaults`).
   */
  static async start(url: string, log: string, mode: 'idle' | 'defaults' = 'idle'): Promise<GraphileWorkerPeer> {
    const child = spawn(process.execPath, [join(HERE, 'graphile-worker-process.mjs'), url, log, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`graphile-worker exited (${code}) before it was ready: ${stderr}`)));
    });
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    return new GraphileWorkerPeer(child, db);
  }

  /** Adds one `idle` job with payload `{ id }` (returns once committed). */
  async addJob(id: string): Promise<void> {
    await this.db.query(`SELECT graphile_worker.add_job('idle', json_build_object('id', $1::text))`, [id]);
  }

  async stop(): Promise<void> {
    await this.db.end().catch(() => undefined);
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    this.child.kill('SIGKILL');
  }
}

/**
 * Scenario c) of bench/run.ts for graphile-worker, with its defaults: `jobs` no-op jobs
 * queued (one statement), then one worker process started and timed from the moment it is
 * ready until the queue is empty, over the jobs still queued then. Its process start-up
 * (Node and its modules, a few hundred ms) is left out, as Stoker's in-process engine pays
 * none; the jobs it may take before it reports ready are left out with it.
 */
export async function graphileDrain(url: string, log: string, jobs: number): Promise<{ jobsPerSec: number; seconds: number }> {
  // a first start installs graphile-worker's schema
  await (await GraphileWorkerPeer.start(url, log, 'defaults')).stop();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(`SELECT graphile_worker.add_job('noop', '{}'::json) FROM generate_series(1, $1::int)`, [jobs]);
    const worker = await GraphileWorkerPeer.start(url, log, 'defaults');
    const t0 = performance.now();
    const queued = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM graphile_worker.jobs')).rows[0]!.n);
    const atReady = await queued();
    try {
      while ((await queued()) > 0) await new Promise((res) => setTimeout(res, 20));
      const seconds = (performance.now() - t0) / 1000;
      return { jobsPerSec: Math.round(atReady / seconds), seconds: Math.round(seconds * 1000) / 1000 };
    } finally {
      await worker.stop();
    }
  } finally {
    await db.end();
  }
}
