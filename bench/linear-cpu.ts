/**
 * CPU per atom of a linear flow in one engine at its defaults (PostgreSQL by default):
 * warms up on two runs, then measures linear runs of 5,000 no-op tasks (by default):
 * process.cpuUsage() per atom (user + system, µs), statements sent per atom (counted on
 * pg's Client.query or mysql2's Connection.query), and atoms/s (noise on a loaded machine;
 * quote `uptime` beside it). On MySQL/MariaDB also the server's counters per atom (global
 * status deltas: CALLs, COMMITs, statements run inside procedures, handler reads and
 * writes, log fsyncs) and, when `--server-pid` names mysqld/mariadbd, its CPU per atom
 * (/proc): meaningful only while nothing else uses the server.
 *
 *   node --import tsx bench/linear-cpu.ts [--dialect postgres] [--runs 3] [--atoms 5000] [--warm-ups 2] [--server-pid PID] [--concurrency N]
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/linear-cpu.ts
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry, linear, task } from '../src/flow/index.js';
import { createTestStore, type Dialect } from '../test/helpers/databases.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const dialect = opt('dialect', 'postgres') as Dialect;
const runs = Number(opt('runs', '3'));
const N = Number(opt('atoms', '5000'));
const warmups = Number(opt('warm-ups', '2'));

let statements = 0;
/** statements sent, by the first 40 characters of their text */
const kinds = new Map<string, number>();
const count = (text: unknown): void => {
  statements += 1;
  const k =
    typeof text === 'string'
      ? text.replace(/\s+/g, ' ').trim().slice(0, 40)
      : String(
          (text as { name?: string; text?: string })?.name ??
            (text as { text?: string })?.text?.replace(/\s+/g, ' ').trim().slice(0, 40) ??
            '?',
        );
  kinds.set(k, (kinds.get(k) ?? 0) + 1);
};
if (dialect === 'postgres') {
  const pg = (await import('pg')).default;
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: unknown, ...a: unknown[]) {
    count(a[0]);
    return (original as (...x: unknown[]) => unknown).apply(this, a);
  } as typeof original;
}
if (dialect === 'mysql') {
  const mysql = (await import('mysql2')).default;
  const proto = mysql.Connection.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...a: unknown[]) {
    count(a[0]);
    return original.apply(this, a);
  };
}

/** MariaDB's global counters this probe reports per atom */
const SERVER_COUNTERS = [
  'Com_call_procedure',
  'Com_commit',
  'Queries',
  'Questions',
  'Handler_read_key',
  'Handler_read_next',
  'Handler_read_rnd_next',
  'Handler_update',
  'Handler_write',
  'Innodb_os_log_fsyncs',
  'Innodb_rows_read',
];
const serverPid = opt('server-pid', '');
/** user + system CPU of the server process in µs (clock ticks of 10 ms), or NaN */
const serverCpuUs = (): number => {
  if (!serverPid) return NaN;
  const fields = readFileSync(`/proc/${serverPid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
};

const registry = new FlowRegistry();
registry.register(
  linear(
    `linear${N}`,
    Array.from({ length: N }, (_, i) => task({ name: `s${i}`, execute: () => null })),
  ),
);
const db = await createTestStore(dialect);
if (!db) throw new Error(`${dialect} is not reachable`);
const concurrency = args.includes('--concurrency') ? Number(opt('concurrency', '')) : undefined;
const engine = new Engine({ store: db.store, flows: registry, ...(concurrency ? { concurrency } : {}) });
await engine.start();
try {
  // the end is seen through the engine's event, not by polling: no statement but the engine's
  const once = async (): Promise<void> => {
    let id = '';
    let ended: ((status: string) => void) | null = null;
    const finished = new Promise<string>((resolve) => (ended = resolve));
    const seen = new Map<string, string>();
    const listener = ({ runId, status }: { runId: string; status: string }): void => {
      if (runId === id) ended?.(status);
      else seen.set(runId, status);
    };
    engine.on('run.finished', listener);
    const { run } = await engine.startRun(`linear${N}`, {});
    id = run.id;
    const early = seen.get(id);
    const status = early ?? (await finished);
    engine.off('run.finished', listener);
    if (status !== 'SUCCESS') throw new Error(`ended ${status}`);
  };
  for (let i = 0; i < warmups; i++) await once();
  const counters = async (): Promise<Map<string, number>> => {
    if (dialect !== 'mysql') return new Map();
    const rows = await db.exec(`SHOW GLOBAL STATUS WHERE Variable_name IN (${SERVER_COUNTERS.map((c) => `'${c}'`).join(', ')})`);
    return new Map(rows.map((r) => [String(r.Variable_name), Number(r.Value)]));
  };
  for (let i = 0; i < runs; i++) {
    const g0 = await counters();
    const m0 = serverCpuUs();
    const s0 = statements;
    const k0 = new Map(kinds);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await once();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    const m1 = serverCpuUs();
    const g1 = await counters();
    const server = Object.fromEntries([...g1].map(([k, v]) => [k, Number(((v - (g0.get(k) ?? 0)) / N).toFixed(3))]));
    console.log(
      JSON.stringify({
        dialect,
        atoms: N,
        cpuUsPerAtom: Math.round((cpu.user + cpu.system) / N),
        userUsPerAtom: Math.round(cpu.user / N),
        systemUsPerAtom: Math.round(cpu.system / N),
        statementsPerAtom: Number(((statements - s0) / N).toFixed(3)),
        byKind: Object.fromEntries(
          [...kinds].filter(([k, v]) => v > (k0.get(k) ?? 0)).map(([k, v]) => [k, Number(((v - (k0.get(k) ?? 0)) / N).toFixed(3))]),
        ),
        atomsPerSec: Math.round(N / seconds),
        commits: engine.stats.commits,
        ...(dialect === 'mysql' ? { server, serverCpuUsPerAtom: Math.round((m1 - m0) / N) } : {}),
      }),
    );
  }
} finally {
  await engine.stop();
  await db.drop();
}
