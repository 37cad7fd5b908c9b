/**
 * Counts per atom of bench/cli.ts scenario e) (issue 11): a `stoker engine` process at its
 * defaults, warmed up on 10,000 atoms, runs linear flows of 5,000 no-op tasks started by
 * `stoker run` from another process. For each measured run it prints, per atom: the engine
 * process's statements by kind (counted in the process, bench/fixtures/count-statements.mjs)
 * and CPU (user + system µs), the CPU of the database's backends serving the test database
 * (/proc, so the server must run on this host), the transactions committed in the test
 * database and the rows written (pg_stat_user_tables), and atoms/s by the database's clock
 * (noise on a loaded machine: quote `uptime` beside it).
 *
 *   node --import tsx bench/cli-probe.ts [--runs 3] [--prof /tmp/prof]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCliAsync, migrateStore, runCli, tempDir, writeFile, ROOT, json, type RunJson } from '../test/e2e/cli/harness.js';
import { createTestStore } from '../test/helpers/databases.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const runs = Number(opt('runs') ?? 3);
const prof = opt('prof');
const N = 5000;

const built = await buildCliAsync();
const dir = tempDir('stoker-cli-probe-');
const flows = writeFile(
  dir.path,
  'flows.mjs',
  `import { linear, task } from ${JSON.stringify(built.flowIndexUrl)};
export default [linear('linear${N}', Array.from({ length: ${N} }, (_, i) => task({ name: 's' + i, execute: () => null })))];
`,
);
const db = await createTestStore('postgres');
if (!db) throw new Error('postgres is not reachable');
await migrateStore(db.url);
const dbName = new URL(db.url).pathname.slice(1);

const nodeArgs = ['--import', join(ROOT, 'bench', 'fixtures', 'count-statements.mjs')];
if (prof) nodeArgs.unshift('--cpu-prof', `--cpu-prof-dir=${prof}`);
const engine = spawn(process.execPath, [...nodeArgs, built.main, 'engine', '--store', db.url, '--flows', flows], {
  cwd: dir.path,
  stdio: ['ignore', 'ignore', 'pipe'],
});
let stderr = '';
const probes: ((line: string) => void)[] = [];
engine.stderr.setEncoding('utf8').on('data', (d: string) => {
  stderr += d;
  for (const line of d.split('\n')) if (line.startsWith('PROBE ')) probes.shift()?.(line.slice(6));
});
const exited = new Promise<number | null>((resolve) => engine.on('close', (code) => resolve(code)));

interface Probe {
  counts: Record<string, number>;
  user: number;
  system: number;
  turnaroundUs: number | null;
  roundTripUs: number | null;
}
const probe = (): Promise<Probe> =>
  new Promise((resolve) => {
    probes.push((line) => resolve(JSON.parse(line) as Probe));
    engine.kill('SIGUSR2');
  });

const TICK_US = 10_000; // /proc/<pid>/stat reports clock ticks (USER_HZ = 100)
async function backendCpu(): Promise<Map<number, number>> {
  const rows = await db!.exec(`SELECT pid FROM pg_stat_activity WHERE datname = '${dbName}'`);
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      const f = readFileSync(`/proc/${String(pid)}/stat`, 'utf8')
        .split(') ')[1]!
        .split(' ');
      out.set(Number(pid), (Number(f[11]) + Number(f[12])) * TICK_US);
    } catch {
      /* gone */
    }
  }
  return out;
}
async function dbCounters(): Promise<{ commits: number; ins: number; upd: number; del: number; hot: number }> {
  const [t] = await db!.exec(`SELECT xact_commit::bigint AS c FROM pg_stat_database WHERE datname = '${dbName}'`);
  const [r] = await db!.exec(
    `SELECT sum(n_tup_ins)::bigint AS ins, sum(n_tup_upd)::bigint AS upd, sum(n_tup_del)::bigint AS del, sum(n_tup_hot_upd)::bigint AS hot FROM pg_stat_user_tables`,
  );
  return { commits: Number(t!.c), ins: Number(r!.ins), upd: Number(r!.upd), del: Number(r!.del), hot: Number(r!.hot) };
}

async function runOnce(): Promise<RunJson> {
  const started = await runCli(built, ['run', `linear${N}`, '--store', db!.url, '--flows', flows, '-f', 'json'], { cwd: dir.path });
  if (started.code !== 0) throw new Error(`stoker run exited ${started.code}: ${started.stderr}`);
  const id = json<RunJson>(started).id;
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const [row] = await db!.exec(`SELECT status, created_at, finished_at FROM stoker_runs WHERE id = '${id}'`);
    if (row?.finished_at) {
      if (row.status !== 'SUCCESS') throw new Error(`run ended ${String(row.status)}`);
      return {
        id,
        createdAt: String((row.created_at as Date).toISOString()),
        finishedAt: (row.finished_at as Date).toISOString(),
      } as RunJson;
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
try {
  for (let i = 0; i < 2; i++) await runOnce();
  for (let i = 0; i < runs; i++) {
    await sleep(1500); // the server's table statistics are flushed about once a second
    const [p0, b0, d0] = [await probe(), await backendCpu(), await dbCounters()];
    const run = await runOnce();
    await sleep(1500);
    const [p1, b1, d1] = [await probe(), await backendCpu(), await dbCounters()];
    let backend = 0;
    for (const [pid, us] of b1) backend += us - (b0.get(pid) ?? 0);
    const perAtom = (n: number) => Number((n / N).toFixed(3));
    const statements: Record<string, number> = {};
    for (const [k, v] of Object.entries(p1.counts)) if (v - (p0.counts[k] ?? 0) > 0) statements[k] = perAtom(v - (p0.counts[k] ?? 0));
    const seconds = (Date.parse(run.finishedAt!) - Date.parse(run.createdAt)) / 1000;
    console.log(
      JSON.stringify({
        atomsPerSec: Math.round(N / seconds),
        engineCpuUs: Math.round((p1.user + p1.system - p0.user - p0.system) / N),
        engineUserUs: Math.round((p1.user - p0.user) / N),
        turnaroundUs: p1.turnaroundUs,
        roundTripUs: p1.roundTripUs,
        backendCpuUs: Math.round(backend / N),
        commits: perAtom(d1.commits - d0.commits),
        rowsInserted: perAtom(d1.ins - d0.ins),
        rowsUpdated: perAtom(d1.upd - d0.upd),
        hotUpdates: perAtom(d1.hot - d0.hot),
        statements,
      }),
    );
  }
} finally {
  engine.kill('SIGTERM');
  const code = await exited;
  if (code !== 0) console.error(`engine exited ${code}: ${stderr.slice(-800)}`);
  await db.drop();
  dir.remove();
  built.remove();
}
