/**
 * Scenario f) of bench/cli.ts in turns (issue 11: free slots must not slow a chain down):
 * `stoker run linear5000 --wait` at the default concurrency (64) and at `--concurrency 1`,
 * one after the other, `--pairs` times, so that both see the same load. Per run it prints
 * atoms/s (created → finished, the database's clock), the command's CPU per atom (user +
 * system of the whole process, from /usr/bin/time: it includes Node's start and the V8
 * warm-up, as a user's command does), the database server's CPU per atom (/proc of
 * `--server-pid`: meaningful only while nothing else uses the server) and `uptime`'s load.
 *
 * With PRELOAD=<module> in the environment, each command preloads it (`node --import`) and
 * the line of its stderr that starts with `COUNTS` is printed (e.g. statements by kind,
 * counted on mysql2's Connection.query and written on exit).
 *
 *   node --import tsx bench/cli-wait-turns.ts [--dialect mysql] [--pairs 3] [--first 10|1] [--server-pid $(pidof mariadbd)]
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { buildCliAsync, json, migrateStore, tempDir, writeFile, type RunJson } from '../test/e2e/cli/harness.js';
import { createTestStore, type Dialect } from '../test/helpers/databases.js';
import { cpuTicks, TICK_US } from './common.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const dialect = opt('dialect', 'mysql') as Dialect;
const pairs = Number(opt('pairs', '3'));
/** the concurrency of the first run of each pair (the other one second) */
const first = Number(opt('first', '64'));
const serverPid = Number(opt('server-pid', '0'));
const N = 5000;

const built = await buildCliAsync();
const dir = tempDir('stoker-cli-turns-');
const flows = writeFile(
  dir.path,
  'flows.mjs',
  `import { linear, task } from ${JSON.stringify(built.flowIndexUrl)};
export default [linear('linear${N}', Array.from({ length: ${N} }, (_, i) => task({ name: 's' + i, execute: () => null })))];
`,
);
const db = await createTestStore(dialect);
if (!db) throw new Error(`${dialect} is not reachable`);
try {
  await migrateStore(db.url);
  for (let i = 0; i < pairs * 2; i++) {
    const concurrency = (i % 2 === 0) === (first === 10) ? 10 : 1;
    const s0 = serverPid ? cpuTicks(serverPid) : 0;
    // /usr/bin/time writes "user system" (seconds) as the last line of stderr
    const cmd = ['run', `linear${N}`, '--wait', '--concurrency', String(concurrency), '--store', db.url, '--flows', flows, '-f', 'json'];
    const done = spawnSync(
      '/usr/bin/time',
      ['-f', '%U %S', process.execPath, ...(process.env.PRELOAD ? ['--import', process.env.PRELOAD] : []), built.main, ...cmd],
      {
        cwd: dir.path,
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      },
    );
    const s1 = serverPid ? cpuTicks(serverPid) : 0;
    if (done.status !== 0) throw new Error(`stoker run --wait exited ${String(done.status)}: ${done.stderr.slice(-800)}`);
    const [user, system] = done.stderr.trim().split('\n').pop()!.split(' ').map(Number);
    if (process.env.PRELOAD) console.log(done.stderr.split('\n').find((l) => l.startsWith('COUNTS')));
    const run = json<RunJson>({ code: 0, signal: null, stdout: done.stdout, stderr: '' });
    const seconds = (Date.parse(run.finishedAt!) - Date.parse(run.createdAt)) / 1000;
    console.log(
      JSON.stringify({
        concurrency,
        atomsPerSec: Math.round(N / seconds),
        commandCpuUsPerAtom: Math.round(((user! + system!) * 1e6) / N),
        serverCpuUsPerAtom: serverPid ? Math.round(((s1 - s0) * TICK_US) / N) : null,
        load1: Number(loadavg()[0]!.toFixed(1)),
      }),
    );
  }
} finally {
  await db.drop();
  dir.remove();
  built.remove();
}
