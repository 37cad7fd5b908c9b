/**
 * What one atom costs PostgreSQL when one or two engine processes share the work
 * (issue "Heat-compatible orchestration", benchmark: two engines faster than one).
 *
 *   node --import tsx bench/claim-probe.ts [--engines 1,2] [--workload stack|stack-update|stack-delete|unordered] [--size 1000] [--runs 1] [--warm] [--warm-rounds 3] [--explain] [--cpu-prof] [--statements] [--generic-plans] [--slow-ms 20] [--engine-args '--concurrency 32'] [--keep]
 *
 * Per configuration, on a fresh database: N `stoker engine` processes at their default
 * settings; this process (no engine of its own) creates a stack holding one
 * OS::Heat::ResourceGroup of `--size` OS::Heat::TestResource (`stack`), updates every value of
 * such a stack created before (`stack-update`; the create is in the index and xact counts), deletes one (`stack-delete`), or starts one
 * unordered no-op flow of that size (`unordered`), and waits for it. Then everything is
 * stopped, so that every session's statistics have reached PostgreSQL, and it prints per
 * atom of the workload (the stack's resource steps, or the flow's atoms):
 * - index entries read per index (`pg_stat_user_indexes.idx_tup_read`) and scans, for the
 *   atoms table's indexes and the busiest others;
 * - atoms-table updates, of which HOT (no new index entries), and transactions
 *   (`xact_commit`) — these cover the engines' whole lifetime (start, idle polls, stop);
 * - CPU of the engine processes and of the database's backends from just before the
 *   workload to its end (/proc, 10 ms ticks), µs; the engines' split between their main
 *   threads and the others (V8's optimising compiler and garbage collector helpers);
 * - what the database's active backends wait for (`pg_stat_activity`, sampled every ~5 ms;
 *   the peer watch's waits for the other engine's session lock show as `Lock:advisory`).
 *
 * `--statements` logs every statement of the bench database (`log_statement = all`) and counts
 * them per atom from the server's log (PostgreSQL's log file, `--log` to name another), by
 * connection and the first line of their text, from just before the workload to its end.
 * Also printed: each engine's stop line (its claim statements, the empty ones, the wake-ups
 * it heard), the engines' context switches and the backends' CPU by connection, per atom.
 * `--slow-ms N` lists the workload's statements that took longer than N ms, with the time
 * each ended (`log_min_duration_statement` on the bench database; the same log file).
 *
 * `--explain` logs every statement's plan with its buffers to the server log (auto_explain,
 * set on the bench database only); `--cpu-prof` writes the engines' CPU profiles to
 * /tmp/claim-probe-prof; `--keep` leaves the database for a look afterwards.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import pg from 'pg';
import { createTestStore, postgresAdminUrl } from '../test/helpers/databases.js';
import { backendTicks, backendTicksSince, cpuTicks, TICK_US } from './common.js';
import { group, stackClient, startEngine } from './stacks.js';

/** the server's log file (`--statements`) */
const logFile = (): string => arg('--log', '/var/log/postgresql/postgresql-15-main.log');

async function probe(engines: number, workload: string, size: number): Promise<void> {
  // --runs N: N stacks (`stack`) or runs (`unordered`) of `size` at once; figures are per atom of all of them
  const runs = workload === 'stack' || workload === 'unordered' ? Number(arg('--runs', '1')) : 1;
  const atomCount = size * runs;
  const db = (await createTestStore('postgres'))!;
  const dbName = decodeURIComponent(new URL(db.url).pathname.slice(1));
  const admin = new pg.Client({ connectionString: postgresAdminUrl() });
  await admin.connect();
  const procs: ChildProcess[] = [];
  const backendPids = async () =>
    (await admin.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName])).rows.map((r) => Number(r.pid));
  try {
    if (args.includes('--explain'))
      for (const set of [
        "session_preload_libraries = 'auto_explain'",
        'auto_explain.log_min_duration = 0',
        'auto_explain.log_analyze = on',
        'auto_explain.log_buffers = on',
      ])
        await admin.query(`ALTER DATABASE ${dbName} SET ${set}`);
    if (args.includes('--statements')) await admin.query(`ALTER DATABASE ${dbName} SET log_statement = 'all'`);
    if (args.includes('--slow-ms'))
      await admin.query(`ALTER DATABASE ${dbName} SET log_min_duration_statement = ${Number(arg('--slow-ms', '20'))}`);
    // every named statement on its generic plan from its first execution (instead of five custom plans per connection)
    if (args.includes('--generic-plans')) await admin.query(`ALTER DATABASE ${dbName} SET plan_cache_mode = force_generic_plan`);
    // each engine's last line (`stoker engine` counts its claim statements, empty ones and wake-ups heard)
    const stopLines: string[] = [];
    for (let i = 0; i < engines; i++) {
      const p = await startEngine(db.url, args.includes('--cpu-prof') ? ['--cpu-prof', '--cpu-prof-dir=/tmp/claim-probe-prof'] : [], [
        ...(args.includes('--no-watch-peers') ? ['--no-watch-peers'] : []),
        ...arg('--engine-args', '').split(' ').filter(Boolean),
      ]);
      let err = '';
      p.stderr!.on('data', (d: string) => (err += d));
      p.on('exit', () => stopLines.push(/stopped after .*/.exec(err)?.[0] ?? '(no stop line)'));
      procs.push(p);
    }
    const rt = await stackClient(db.url);
    const load = loadavg()[0]!.toFixed(1);
    const settle = async (id: string) => {
      for (;;) {
        const s = await rt.stacks!.get(id);
        if (s.status !== 'IN_PROGRESS') {
          if (s.status !== 'COMPLETE') throw new Error(`stack ended ${s.action}_${s.status}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    // an update is measured on a stack created before (its create's counts are in the totals)
    const settleDeleted = async (id: string) => {
      for (;;) {
        const s = await rt.stacks!.get(id, undefined, { deleted: true });
        if (s.status !== 'IN_PROGRESS') {
          if (s.status !== 'COMPLETE') throw new Error(`stack ended ${s.action}_${s.status}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    // --warm: the engines first create and delete a group of the same size (their code warmed up by V8);
    // --warm-rounds N: N creates, updates and deletes (after one round V8 still compiled the step's code in
    // the measured window: 150-250 µs per step on the engine's other threads, 50-70 after three or four)
    const rounds = args.includes('--warm-rounds') ? Number(arg('--warm-rounds', '3')) : args.includes('--warm') ? 1 : 0;
    for (let i = 0; i < rounds; i++) {
      const w = (await rt.stacks!.create('warm', { template: group(size) })).id;
      await settle(w);
      if (args.includes('--warm-rounds')) {
        await rt.stacks!.update('warm', { existing: true, parameters: { value: `warm${i}` } });
        await settle(w);
      }
      await rt.stacks!.delete('warm');
      await settleDeleted(w);
    }
    let created = '';
    if (workload === 'stack-update' || workload === 'stack-delete')
      await settle((created = (await rt.stacks!.create('g', { template: group(size) })).id));
    const logAt0 = args.includes('--statements') || args.includes('--slow-ms') ? statSync(logFile()).size : 0;
    const backends0 = await backendTicks(admin, dbName);
    const eng0 = procs.map((p) => cpuTicks(p.pid!));
    const main0 = procs.map((p) => cpuTicks(p.pid!, p.pid!));
    const machine0 = machineTicks();
    const client0 = process.cpuUsage();
    const switches0 = procs.map((p) => contextSwitches(p.pid!));
    const t0 = performance.now();
    const t0Wall = (await admin.query('SELECT extract(epoch FROM clock_timestamp()) * 1000 AS ms')).rows[0].ms as string;
    // the workload's window on the monotonic clock that --cpu-prof's sample times use (µs)
    const mono0 = process.hrtime.bigint() / 1000n;
    // what the database's backends are doing, every few ms: waits for locks, for the WAL, or working
    const waits = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      const c = new pg.Client({ connectionString: postgresAdminUrl() });
      await c.connect();
      while (sampling) {
        const rows = (
          await c.query(
            `SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu') ||
                    CASE WHEN wait_event_type = 'Lock' THEN coalesce(' on ' || (SELECT string_agg(DISTINCT coalesce(l.relation::regclass::text, l.locktype), ',') FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted), '') ELSE '' END ||
                    CASE WHEN wait_event = 'transactionid' OR wait_event = 'tuple' THEN ' (' || left(regexp_replace(query, '\\s+', ' ', 'g'), 40) || ')' ELSE '' END AS w
             FROM pg_stat_activity a WHERE datname = $1 AND state = 'active'`,
            [dbName],
          )
        ).rows;
        for (const r of rows) waits.set(String(r.w), (waits.get(String(r.w)) ?? 0) + 1);
        waits.set('(samples)', (waits.get('(samples)') ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 5));
      }
      await c.end();
    })();
    if (workload === 'stack')
      await Promise.all(
        Array.from({ length: runs }, async (_, i) =>
          settle((await rt.stacks!.create(i === 0 ? 'g' : `g${i}`, { template: group(size) })).id),
        ),
      );
    else if (workload === 'stack-update') await settle((await rt.stacks!.update('g', { existing: true, parameters: { value: 'two' } })).id);
    else if (workload === 'stack-delete') {
      await rt.stacks!.delete('g');
      await settleDeleted(created);
    } else {
      await Promise.all(
        Array.from({ length: runs }, async () => {
          const { run } = await rt.client.startRun(`unordered${size}`, {});
          const done = await rt.client.waitForRun(run.id, { pollMs: 10 });
          if (done.status !== 'SUCCESS') throw new Error(`flow ended ${done.status}`);
        }),
      );
    }
    const seconds = (performance.now() - t0) / 1000;
    if (args.includes('--cpu-prof')) process.stdout.write(`cpu-prof window (µs, monotonic): ${mono0}-${process.hrtime.bigint() / 1000n}\n`);
    sampling = false;
    await sampler;
    const machine = machineTicks().map((n, i) => n - machine0[i]!);
    const client = process.cpuUsage(client0);
    const engCpu = procs.reduce((s, p, i) => s + cpuTicks(p.pid!) - eng0[i]!, 0);
    const engMain = procs.reduce((s, p, i) => s + cpuTicks(p.pid!, p.pid!) - main0[i]!, 0);
    const switches = procs.map((p, i) => contextSwitches(p.pid!).map((n, k) => n - switches0[i]![k]!));
    const backends1 = await backendTicks(admin, dbName);
    const beCpu = backendTicksSince(backends0, backends1);
    // the backends' CPU by connection (application_name: stoker-<role>[-hot|-listen|-watch|…])
    const byApp = new Map<string, number>();
    const appOf = new Map<number, string>();
    for (const r of (await admin.query('SELECT pid, application_name AS app FROM pg_stat_activity WHERE datname = $1', [dbName])).rows) {
      const ticks = (backends1.get(Number(r.pid)) ?? 0) - (backends0.get(Number(r.pid)) ?? 0);
      const app = String(r.app || '(none)');
      appOf.set(Number(r.pid), app);
      byApp.set(app, (byApp.get(app) ?? 0) + ticks);
    }
    const statements =
      (args.includes('--statements') ? countStatements(dbName, logAt0, atomCount, appOf) : '') +
      (args.includes('--slow-ms') ? slowStatements(dbName, logAt0, appOf) : '');
    await rt.stop({ timeoutMs: 5_000 });
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on('exit', r)))));
    for (let i = 0; i < 100 && (await backendPids()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    const stats = new pg.Client({ connectionString: db.url });
    await stats.connect();
    const timeline = await runTimeline(stats, t0Wall);
    const idx = (
      await stats.query(
        `SELECT relname, indexrelname, idx_scan, idx_tup_read, idx_tup_fetch FROM pg_stat_user_indexes ORDER BY idx_tup_read DESC`,
      )
    ).rows;
    const atoms = (
      await stats.query(
        `SELECT n_tup_upd, n_tup_hot_upd, n_tup_ins, seq_scan, seq_tup_read FROM pg_stat_user_tables WHERE relname ~ '(^|_)atoms$' ORDER BY relname LIMIT 1`,
      )
    ).rows[0];
    // rows read by sequential scans, per table (a scan of a stack's every row per step shows here)
    const seqScans = (
      await stats.query(
        `SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables WHERE seq_tup_read > 0 ORDER BY seq_tup_read DESC LIMIT 6`,
      )
    ).rows;
    await stats.end();
    const xact = (await admin.query('SELECT xact_commit FROM pg_stat_database WHERE datname = $1', [dbName])).rows[0];
    const per = (n: unknown) => (Number(n) / atomCount).toFixed(2);
    process.stdout.write(
      `\n## ${engines} engine(s), ${workload} ${size}${runs > 1 ? ` ×${runs}` : ''}: ${seconds.toFixed(2)} s, load ${load}\n` +
        `active backends per sample (${waits.get('(samples)')} samples): ${[...waits]
          .filter(([k]) => k !== '(samples)')
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${(v / waits.get('(samples)')!).toFixed(2)}`)
          .join(', ')}\n` +
        `engine CPU ${((engCpu * TICK_US) / atomCount).toFixed(0)} µs/atom (main threads ${((engMain * TICK_US) / atomCount).toFixed(0)}), backends ${((beCpu * TICK_US) / atomCount).toFixed(0)} µs/atom, client ${((client.user + client.system) / atomCount).toFixed(0)} µs/atom\n` +
        `cores busy (whole machine, of 2): ${((2 * machine[0]!) / (machine[0]! + machine[1]!)).toFixed(2)}; engines ${((engCpu * TICK_US) / 1e6 / seconds).toFixed(2)}, backends ${((beCpu * TICK_US) / 1e6 / seconds).toFixed(2)}, client ${((client.user + client.system) / 1e6 / seconds).toFixed(2)}\n` +
        timeline +
        `engines: ${stopLines.join('; ')}\n` +
        `engine context switches per atom (voluntary, involuntary): ${switches.map(([v, n]) => `${(v! / atomCount).toFixed(2)}, ${(n! / atomCount).toFixed(2)}`).join('; ')}\n` +
        `backends by connection, µs/atom: ${[...byApp]
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${((v * TICK_US) / atomCount).toFixed(0)}`)
          .join(', ')}\n` +
        statements +
        `atoms: updates ${per(atoms.n_tup_upd)}/atom, HOT ${per(atoms.n_tup_hot_upd)}, seq scans ${atoms.seq_scan} (${per(atoms.seq_tup_read)} rows/atom); xact_commit ${per(xact.xact_commit)}/atom (whole lifetime)\n` +
        `rows read by sequential scans: ${seqScans.map((r) => `${r.relname} ${per(r.seq_tup_read)}/atom (${r.seq_scan} scans)`).join(', ')}\n` +
        idx
          .filter((r) => Number(r.idx_tup_read) > 0)
          .slice(0, 14)
          .map(
            (r) =>
              `  ${r.indexrelname}: read ${per(r.idx_tup_read)}/atom, scans ${per(r.idx_scan)}/atom, fetched ${per(r.idx_tup_fetch)}/atom`,
          )
          .join('\n') +
        '\n',
    );
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await admin.end();
    if (args.includes('--keep')) process.stdout.write(`kept database ${dbName}\n`);
    else await db.drop();
  }
}

/** The whole machine's busy and idle ticks so far (/proc/stat, first line; iowait counts as idle). */
function machineTicks(): [number, number] {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  return [f.slice(0, 8).reduce((a, b) => a + b, 0) - idle, idle];
}

/**
 * Where the workload's wall time went, by the database clock (ms after its start): each run
 * started in the window (the stack's run, the group's nested run…), its first and last
 * atom success, and its end. What lies outside the members' span cannot be shared.
 */
async function runTimeline(c: pg.Client, t0Ms: string): Promise<string> {
  const rows = (
    await c.query(
      `SELECT r.flow, r.atom_count,
              extract(epoch FROM r.created_at) * 1000 - $1 AS created,
              (SELECT extract(epoch FROM min(e.at)) * 1000 - $1 FROM stoker_events e WHERE e.run_id = r.id AND e.kind = 'atom.claimed') AS first_claim,
              (SELECT extract(epoch FROM max(e.at)) * 1000 - $1 FROM stoker_events e WHERE e.run_id = r.id AND e.kind = 'atom.success') AS last_success,
              extract(epoch FROM r.finished_at) * 1000 - $1 AS finished
       FROM stoker_runs r WHERE r.created_at >= to_timestamp($1 / 1000.0) ORDER BY r.created_at`,
      [Number(t0Ms)],
    )
  ).rows;
  const ms = (v: unknown) => (v === null ? '-' : Number(v).toFixed(0));
  return rows
    .map(
      (r) =>
        `  run ${r.flow} (${r.atom_count} atoms): started ${ms(r.created)}, first claim ${ms(r.first_claim)}, last success ${ms(r.last_success)}, ended ${ms(r.finished)} ms\n`,
    )
    .join('');
}

/** A process's voluntary and involuntary context switches, all its threads (/proc). */
function contextSwitches(pid: number): [number, number] {
  let v = 0;
  let n = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
    v += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
    n += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return [v, n];
}

/** `--slow-ms`: the statements of `dbName` that took longer, in the order they ended, with the server's timestamp. */
function slowStatements(dbName: string, from: number, appOf: ReadonlyMap<number, string>): string {
  const text = readFileSync(logFile()).subarray(from).toString('utf8');
  const re = new RegExp(
    `^\\S+ (\\S+) UTC \\[(\\d+)\\] [^ ]*@${dbName} LOG:  duration: ([\\d.]+) ms  (?:execute [^:]*|statement): (.*)$`,
    'gm',
  );
  const lines = [...text.matchAll(re)].map(
    (m) => `  ${m[1]} ${m[3]!.padStart(9)} ms [${appOf.get(Number(m[2])) ?? 'gone'}] ${m[4]!.replace(/\s+/g, ' ').slice(0, 90)}\n`,
  );
  return `slow statements (ended at, duration):\n${lines.join('')}`;
}

/** Statements of `dbName` in the server log from byte `from` on, per atom, by their first line. */
function countStatements(dbName: string, from: number, size: number, appOf: ReadonlyMap<number, string>): string {
  const buf = readFileSync(logFile());
  const text = buf.subarray(from).toString('utf8');
  const counts = new Map<string, number>();
  const re = new RegExp(`\\[(\\d+)\\] [^ ]*@${dbName} LOG:  (?:execute [^:]*|statement): (.*)`, 'g');
  for (const m of text.matchAll(re)) {
    const key = `[${appOf.get(Number(m[1])) ?? 'gone'}] ${m[2]!.replace(/\s+/g, ' ').slice(0, 80)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return (
    `statements ${(total / size).toFixed(2)}/atom:\n` +
    [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 16)
      .map(([k, v]) => `  ${(v / size).toFixed(3)} ${k}\n`)
      .join('')
  );
}

const args = process.argv.slice(2);
const arg = (flag: string, dflt: string) => {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
for (const n of arg('--engines', '1,2').split(',').map(Number)) await probe(n, arg('--workload', 'stack'), Number(arg('--size', '1000')));
process.exit(0);
