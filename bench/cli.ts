/**
 * The CLI as users run it (issue 11, "Performance as users run it"): the built `stoker`
 * command at its default settings, in processes of its own, on each reachable dialect.
 *
 *   node --import tsx bench/cli.ts [--dialects sqlite,postgres,mysql] [--quick]
 *   (also `npm run bench -- --scenarios cli`)
 *
 * - e) An `stoker engine` process (defaults: concurrency 64, default poll and lease) that
 *   has already executed 10,000 atoms (two linear runs of 5,000, not reported); runs are
 *   started by `stoker run FLOW` from another process, as a user's script or cron job would.
 *   Measured: a linear flow of 5,000 no-op tasks (median of 3) and an unordered one of 1,000.
 * - f) `stoker run linear5000 --wait` alone: the command executes the run in its own engine,
 *   at the default concurrency and at `--concurrency 1` (free slots must not slow a chain).
 *
 * atoms/s is the run's atom count over its duration as the database recorded it (created →
 * finished, both the database's clock): what the engine sustains once the run exists. The
 * wall time also covers the `stoker run` process (Node's start, module loading, connecting),
 * which a user waits for too; it is reported beside it.
 */
import { performance } from 'node:perf_hooks';
import {
  buildCliAsync,
  json,
  migrateStore,
  runCli,
  startCli,
  tempDir,
  writeFile,
  type Built,
  type RunJson,
} from '../test/e2e/cli/harness.js';
import { createTestStore, type Dialect } from '../test/helpers/databases.js';
import { openCommitReference, progressFor, round, type CommitReference } from './common.js';

export interface CliBenchRow {
  dialect: string;
  scenario: string;
  atoms: number;
  /** created → finished, by the database's clock */
  seconds: number;
  atomsPerSec: number;
  /** from spawning `stoker run` until the run was seen finished (or the command exited) */
  wallSeconds: number;
  /**
   * e) linear on PostgreSQL and MySQL/MariaDB: the database's one-client commit rate
   * (pgbench, mysqlslap) measured for {@link BESIDE_SECONDS} s just before each linear run,
   * and the run's atoms/s over it; `ratio` is the median of those ratios
   */
  beside?: { tool: string; tps: number[]; ratios: number[]; ratio: number };
  note?: string;
}

const LINEAR = 5000;
const UNORDERED = 1000;
/** seconds of the one-client reference taken before each e) linear run (bench/common.ts, CommitReference) */
const BESIDE_SECONDS = 2;

/** The bench's flows module, importing the built package as a user's module would. */
function flowsModule(built: Built, dir: string): string {
  return writeFile(
    dir,
    'cli-bench-flows.mjs',
    `import { linear, task, unordered } from ${JSON.stringify(built.flowIndexUrl)};
const noop = (name) => task({ name, execute: () => null });
const steps = (n, p) => Array.from({ length: n }, (_, i) => noop(p + i));
export default [linear('linear${LINEAR}', steps(${LINEAR}, 's')), unordered('unordered${UNORDERED}', steps(${UNORDERED}, 'u'))];
`,
  );
}

function durationOf(run: RunJson): number {
  if (!run.finishedAt) throw new Error(`run ${run.id} has not finished`);
  return (Date.parse(run.finishedAt) - Date.parse(run.createdAt)) / 1000;
}

export async function benchCli(options: {
  dialects: readonly string[];
  quick: boolean;
  progress?: (msg: string) => void;
}): Promise<CliBenchRow[]> {
  const progress = options.progress ?? progressFor('bench cli');
  progress('building the CLI (tsc)');
  const built = await buildCliAsync();
  const dir = tempDir('stoker-bench-cli-');
  const flows = flowsModule(built, dir.path);
  const rows: CliBenchRow[] = [];
  try {
    for (const dialect of options.dialects) {
      const db = await createTestStore(dialect as Dialect);
      if (!db) {
        progress(`SKIP ${dialect}: not reachable`);
        continue;
      }
      try {
        await migrateStore(db.url);
        rows.push(...(await withEngineProcess(built, db.url, flows, dir.path, dialect, options.quick, progress)));
        rows.push(...(await runWaitAlone(built, db.url, flows, dir.path, dialect, progress)));
      } finally {
        await db.drop();
      }
    }
  } finally {
    dir.remove();
    built.remove();
  }
  return rows;
}

/** Starts `stoker run FLOW` (no --wait) and returns the finished run, read back with `stoker runs show`. */
async function startAndWatch(
  built: Built,
  url: string,
  flows: string,
  cwd: string,
  flow: string,
): Promise<{ run: RunJson; wallSeconds: number }> {
  const t0 = performance.now();
  const started = await runCli(built, ['run', flow, '--store', url, '--flows', flows, '-f', 'json'], { cwd });
  if (started.code !== 0) throw new Error(`stoker run ${flow} exited ${started.code}: ${started.stderr}`);
  const id = json<RunJson>(started).id;
  const { openStore } = await import('../src/store/open-store.js');
  const store = await openStore(url, { role: 'bench-watch' });
  try {
    for (;;) {
      const row = await store.getRun(id);
      if (row?.finishedAt) {
        const wallSeconds = (performance.now() - t0) / 1000;
        if (row.status !== 'SUCCESS') throw new Error(`run ${id} of ${flow} ended ${row.status}`);
        return {
          run: { ...(row as unknown as RunJson), createdAt: row.createdAt.toISOString(), finishedAt: row.finishedAt.toISOString() },
          wallSeconds,
        };
      }
      // Not faster: on 2 cores a read every 5 ms (this process and its backend) took CPU from
      // the engine it measures; the figure is the database's own created → finished anyway.
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    await store.close();
  }
}

async function withEngineProcess(
  built: Built,
  url: string,
  flows: string,
  cwd: string,
  dialect: string,
  quick: boolean,
  progress: (msg: string) => void,
): Promise<CliBenchRow[]> {
  const engine = startCli(built, ['engine', '--store', url, '--flows', flows], { cwd });
  const rows: CliBenchRow[] = [];
  try {
    // two linear runs of 5,000: the engine process has executed 10,000 atoms before any figure
    for (let i = 0; i < 2; i++) await startAndWatch(built, url, flows, cwd, `linear${LINEAR}`);
    progress(`${dialect}: engine process warmed up (10,000 atoms)`);
    const linearRuns: { seconds: number; wall: number; besideTps?: number }[] = [];
    const reference = await besideReference(dialect, progress);
    try {
      for (let i = 0; i < (quick ? 1 : 3); i++) {
        const besideTps = reference ? round(await reference.rate(1, BESIDE_SECONDS), 0) : undefined;
        const { run, wallSeconds } = await startAndWatch(built, url, flows, cwd, `linear${LINEAR}`);
        linearRuns.push({ seconds: durationOf(run), wall: wallSeconds, ...(besideTps ? { besideTps } : {}) });
      }
    } finally {
      await reference?.close();
    }
    const rates = linearRuns.map((r) => Math.round(LINEAR / r.seconds));
    const byDuration = [...linearRuns].sort((a, b) => a.seconds - b.seconds);
    const median = byDuration[byDuration.length >> 1]!;
    const linear = row(
      dialect,
      `e) linear ${LINEAR}: stoker engine (defaults) + stoker run`,
      LINEAR,
      median.seconds,
      median.wall,
      linearRuns.length > 1 ? `median of ${linearRuns.length} (${rates.join(', ')} atoms/s)` : undefined,
    );
    const tps = linearRuns.flatMap((r) => (r.besideTps ? [r.besideTps] : []));
    if (reference && tps.length === linearRuns.length) {
      const ratios = linearRuns.map((r, i) => round(rates[i]! / r.besideTps!, 3));
      const ratio = [...ratios].sort((a, b) => a - b)[ratios.length >> 1]!;
      linear.beside = { tool: reference.tool, tps, ratios, ratio };
    }
    rows.push(linear);
    const un = await startAndWatch(built, url, flows, cwd, `unordered${UNORDERED}`);
    rows.push(
      row(dialect, `e) unordered ${UNORDERED}: stoker engine (defaults) + stoker run`, UNORDERED, durationOf(un.run), un.wallSeconds),
    );
    for (const r of rows) progress(`${dialect} ${r.scenario}: ${r.atomsPerSec} atoms/s (wall ${r.wallSeconds} s)`);
  } finally {
    engine.kill('SIGTERM');
    const exit = await engine.exited;
    if (exit.code !== 0) progress(`${dialect}: stoker engine exited ${exit.code}: ${exit.stderr.slice(-500)}`);
  }
  return rows;
}

/** The dialect's one-client reference for e) linear, or null (SQLite has none; a tool missing is a progress line). */
async function besideReference(dialect: string, progress: (msg: string) => void): Promise<CommitReference | null> {
  if (dialect !== 'postgres' && dialect !== 'mysql') return null;
  try {
    return await openCommitReference(dialect);
  } catch (e) {
    progress(`${dialect}: no reference beside the linear runs: ${(e as Error).message.split('\n')[0]}`);
    return null;
  }
}

async function runWaitAlone(
  built: Built,
  url: string,
  flows: string,
  cwd: string,
  dialect: string,
  progress: (msg: string) => void,
): Promise<CliBenchRow[]> {
  const rows: CliBenchRow[] = [];
  for (const concurrency of [undefined, 1]) {
    const args = ['run', `linear${LINEAR}`, '--wait', '--store', url, '--flows', flows, '-f', 'json'];
    if (concurrency !== undefined) args.push('--concurrency', String(concurrency));
    const t0 = performance.now();
    const done = await runCli(built, args, { cwd, timeoutMs: 600_000 });
    const wall = (performance.now() - t0) / 1000;
    if (done.code !== 0) throw new Error(`stoker ${args.join(' ')} exited ${done.code}: ${done.stderr}`);
    const run = json<RunJson>(done);
    const label = concurrency === undefined ? 'default concurrency (64)' : `--concurrency ${concurrency}`;
    const r = row(dialect, `f) linear ${LINEAR}: stoker run --wait alone, ${label}`, LINEAR, durationOf(run), wall);
    progress(`${dialect} ${r.scenario}: ${r.atomsPerSec} atoms/s (wall ${r.wallSeconds} s)`);
    rows.push(r);
  }
  return rows;
}

function row(dialect: string, scenario: string, atoms: number, seconds: number, wallSeconds: number, note?: string): CliBenchRow {
  return {
    dialect,
    scenario,
    atoms,
    seconds: round(seconds, 3),
    atomsPerSec: round(atoms / seconds, 0),
    wallSeconds: round(wallSeconds, 2),
    ...(note ? { note } : {}),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--dialects');
  const dialects = (at >= 0 && args[at + 1] ? args[at + 1]! : 'sqlite,postgres,mysql').split(',');
  const rows = await benchCli({ dialects, quick: args.includes('--quick') });
  console.table(rows);
}
