/**
 * What one fast completion costs MariaDB, without an engine: a linear run of N atoms is
 * started and its first atom claimed through the store, then each atom is completed with
 * `store.fast.completeSuccess` claiming its successor (the call a linear flow makes per
 * atom, src/store/mysql/fast-completions.ts), one after another. Prints per call the
 * round trips the process sent, the session counters of the connections that made the
 * calls (CALLs, COMMITs, statements run inside procedures, handler reads and writes: read
 * on those connections themselves, so other users of the server do not count), the CPU of
 * their server threads (MariaDB runs a thread per connection; /proc of the server's pid,
 * `--server-pid`) and of this process. CPU times are counts; wall time (µs per call) is
 * noise on a loaded machine: quote `uptime` beside it.
 *
 * The procedure as migration 5 created it is installed beside the current one (as
 * `fast_success_m5`) and the two take turns, a run each per round, so that both see the
 * same load (`--against FILE`: the CREATE PROCEDURE {p}fast_success(…) in FILE instead of
 * migration 5's, to try a variant); each line is one run, the last two the medians per procedure (`--current-only`:
 * the current one alone, e.g. under `perf record`).
 *
 *   node --import tsx bench/mysql-call-probe.ts --server-pid $(pidof mariadbd) [--atoms 2000] [--rounds 4] [--current-only]
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2';
import type { FastCompletions } from '../src/store/ports.js';
import { MysqlFastCompletions } from '../src/store/mysql/fast-completions.js';
import type { MysqlDriver } from '../src/store/mysql/mysql-driver.js';
import { PROCEDURE_STATEMENTS } from '../src/store/mysql/procedures.js';
import { createTestStore } from '../test/helpers/databases.js';
import { newRun } from '../test/helpers/graphs.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const N = Number(opt('atoms', '2000'));
const rounds = Number(opt('rounds', '4'));
const serverPid = opt('server-pid', '');

type Conn = { threadId: number; query: (...a: unknown[]) => unknown };
let sent = 0;
/** the connections that made calls */
const callers = new Set<Conn>();
const proto = mysql.Connection.prototype as unknown as Conn;
const original = proto.query;
proto.query = function (this: Conn, ...a: unknown[]) {
  sent += 1;
  if (typeof a[0] === 'string' && a[0].startsWith('CALL')) callers.add(this);
  return original.apply(this, a);
};

const COUNTERS = [
  'Com_call_procedure',
  'Com_commit',
  'Queries',
  'Handler_read_key',
  'Handler_read_next',
  'Handler_read_rnd_next',
  'Handler_update',
  'Handler_write',
];
/** user + system CPU in µs (clock ticks of 10 ms) of the server threads (OS thread ids), or NaN */
const threadCpuUs = (tids: number[]): number => {
  if (!serverPid) return NaN;
  let ticks = 0;
  for (const tid of tids) {
    const fields = readFileSync(`/proc/${serverPid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 10_000;
};

const db = await createTestStore('mysql');
if (!db) throw new Error('mysql is not reachable');
const store = db.store;
// migration 5's fast_success under another name, called through the same client code
const against = opt('against', '');
const m5 = against ? readFileSync(against, 'utf8') : PROCEDURE_STATEMENTS.find((t) => t.startsWith('CREATE PROCEDURE {p}fast_success('))!;
await db.exec(m5.replace('{p}fast_success(', '{p}fast_success_m5(').replaceAll('{p}', 'stoker_'));
const driver = (store as unknown as { driver: MysqlDriver }).driver;
const renamed = {
  call: (purpose: string, text: string, params: readonly unknown[]) =>
    driver.call(purpose, text.replace('fast_success(', 'fast_success_m5('), params),
};
const versions: [string, FastCompletions][] = [
  ['current', store.fast!],
  [against ? 'against' : 'migration 5', new MysqlFastCompletions(renamed as unknown as MysqlDriver)],
];
const results = new Map<string, Record<string, number>[]>();
/** the session counters of the calling connections, summed (each read on its own connection, idle between calls) */
const counters = async (): Promise<Map<string, number>> => {
  const sum = new Map<string, number>();
  for (const c of callers) {
    const rows = await new Promise<Record<string, unknown>[]>((resolve, reject) =>
      c.query(
        `SHOW SESSION STATUS WHERE Variable_name IN (${COUNTERS.map((n) => `'${n}'`).join(', ')})`,
        (e: Error | null, r: Record<string, unknown>[]) => (e ? reject(e) : resolve(r)),
      ),
    );
    for (const r of rows) sum.set(String(r.Variable_name), (sum.get(String(r.Variable_name)) ?? 0) + Number(r.Value));
  }
  return sum;
};
const callerThreads = async (): Promise<number[]> => {
  const ids = [...callers].map((c) => c.threadId);
  const rows = await db.exec(`SELECT TID FROM information_schema.PROCESSLIST WHERE ID IN (${ids.join(', ')})`);
  return rows.map((r) => Number(r.TID));
};
try {
  const compared = args.includes('--current-only') ? versions.slice(0, 1) : versions;
  for (let round = 0; round < rounds * compared.length; round++) {
    const [version, fast] = compared[round % compared.length]!;
    const run = newRun({ predecessors: Array.from({ length: N }, (_, i) => (i === 0 ? [] : [i - 1])) });
    await store.startRun(run);
    const [first] = await store.claimAtoms('probe', 1);
    if (!first || first.runId !== run.id) throw new Error('the probe needs a database of its own');
    let epoch = first.epoch;
    const complete = (i: number) =>
      fast.completeSuccess({
        runId: run.id,
        index: i,
        epoch,
        result: null,
        journal: [],
        successors: [i + 1],
        claim: i + 1,
        engineId: 'probe',
      });
    // the first call opens the connection the others reuse
    const r0 = await complete(0);
    epoch = r0.claimed!.epoch;
    const tids = await callerThreads();
    const g0 = await counters();
    const m0 = threadCpuUs(tids);
    const s0 = sent;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    // the last atom would end the run: fast_finish's case, not this one's
    const calls = N - 2;
    for (let i = 1; i <= calls; i++) {
      const r = await complete(i);
      if (!r.handled || !r.claimed) throw new Error(`atom ${i}: not handled`);
      epoch = r.claimed.epoch;
    }
    const us = ((performance.now() - t0) * 1000) / calls;
    const cpu = process.cpuUsage(c0);
    const m1 = threadCpuUs(tids);
    const g1 = await counters();
    if (callers.size !== tids.length) throw new Error('the calls moved to another connection: counts incomplete');
    const server = Object.fromEntries([...g1].map(([k, v]) => [k, Number(((v - (g0.get(k) ?? 0)) / calls).toFixed(3))]));
    const line = {
      roundTripsPerCall: Number(((sent - s0) / calls).toFixed(3)),
      ...server,
      serverCpuUsPerCall: Math.round((m1 - m0) / calls),
      clientCpuUsPerCall: Math.round((cpu.user + cpu.system) / calls),
      wallUsPerCall: Math.round(us),
    };
    results.set(version, [...(results.get(version) ?? []), line]);
    console.log(JSON.stringify({ version, calls, ...line }));
  }
  for (const [version, lines] of results) {
    const median = Object.fromEntries(
      Object.keys(lines[0]!).map((k) => [k, lines.map((l) => l[k]!).sort((a, b) => a - b)[lines.length >> 1]]),
    );
    console.log(JSON.stringify({ version, median }));
  }
} finally {
  await db.drop();
}
