/**
 * What engine processes sharing the atoms of one run cost each other, in counts: the
 * reference flow of the stacks benchmark (an unordered no-op flow of N atoms,
 * bench/fixtures/stack-bench-flows.ts) run by 1, then 2 engine processes at the engine's
 * defaults (concurrency 64, poll 1 s, lease 10 s).
 *
 *   node --import tsx bench/shared-run.ts [--engines 1,2] [--atoms 1000] [--runs 3]
 *
 * Per configuration, on a fresh PostgreSQL database: the engines are started and released
 * together, then `--runs` runs of the flow are started one after the other (each once the
 * previous one ended). Printed per engine: claim statements, empty ones, atoms per claim,
 * commits, continuations, wake-ups received, statements sent (by name), errors by SQLSTATE,
 * CPU ms per atom; for all: how often a sample of `pg_stat_activity` (one every 2 ms, on a
 * connection of this process) found a backend of the bench database waiting for a lock,
 * by what it waited for (a row lock shows as `transactionid` or `tuple`). Timings are
 * printed with the load average next to them: on a shared machine they are noise.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { EngineProc } from '../test/chaos/harness.js';
import { createTestStore } from '../test/helpers/databases.js';
import { RunClient } from '../src/engine/run-client.js';
import { FlowRegistry } from '../src/flow/index.js';
import { loadFlowsModule } from '../src/runtime/load-flows.js';
import { openStore } from '../src/store/open-store.js';

const FLOWS = join(import.meta.dirname, 'fixtures', 'stack-bench-flows.ts');
const SCRIPT = join(import.meta.dirname, 'engine-process.ts');

const args = process.argv.slice(2);
const opt = (flag: string, dflt: string): string => {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const engineCounts = opt('--engines', '1,2').split(',').map(Number);
const atoms = Number(opt('--atoms', '1000'));
const runs = Number(opt('--runs', '3'));
const concurrency = opt('--concurrency', '64');

for (const n of engineCounts) {
  const db = await createTestStore('postgres');
  if (!db) throw new Error('no PostgreSQL');
  const procs: EngineProc[] = [];
  const sampler = new pg.Client({ connectionString: db.url });
  await sampler.connect();
  const waits: Record<string, number> = {};
  /** samples of backends waiting for a row (an updated row: `transactionid`; a row being locked: `tuple`) */
  const rowWaits = (): number =>
    Object.entries(waits)
      .filter(([k]) => k.startsWith('transactionid') || k.startsWith('tuple'))
      .reduce((a, [, v]) => a + v, 0);
  let samples = 0;
  let sampling = true;
  const sample = (async () => {
    while (sampling) {
      const r = await sampler.query<{ w: string; q: string }>(
        `SELECT wait_event AS w, left(regexp_replace(query, '\\s+', ' ', 'g'), 30) AS q FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`,
      );
      samples += 1;
      for (const row of r.rows) waits[`${row.w}: ${row.q}`] = (waits[`${row.w}: ${row.q}`] ?? 0) + 1;
      await new Promise((res) => setTimeout(res, 2));
    }
  })();
  const flows = new FlowRegistry();
  await loadFlowsModule(FLOWS, flows);
  const store = await openStore(db.url, { role: 'probe-client' });
  try {
    for (let i = 0; i < n; i++)
      procs.push(
        new EngineProc(db.url, {
          script: SCRIPT,
          concurrency: Number(concurrency),
          leaseMs: 10_000,
          env: { ENGINE_FLOWS: FLOWS, ENGINE_POLL_MS: '1000' },
          name: `engine${i}`,
        }),
      );
    await Promise.all(procs.map((p) => p.waitForLine((l) => l === 'armed', 60_000)));
    for (const p of procs) p.signal('SIGUSR2');
    await Promise.all(procs.map((p) => p.waitForLine((l) => l.startsWith('ready '), 60_000)));
    const client = new RunClient({ store, flows });
    // CPU of the engines' PostgreSQL backends (same host): utime + stime from /proc, in ms
    const backendMs = async (): Promise<number> => {
      const backends = await sampler.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'stoker-bench-engine%'`,
      );
      let ticks = 0;
      for (const { pid } of backends.rows) {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          ticks += Number(fields[11]) + Number(fields[12]);
        } catch {
          // the backend ended
        }
      }
      return ticks * 10;
    };
    const engineNow = async (): Promise<{ ms: number; statements: number }> => {
      const out = { ms: 0, statements: 0 };
      for (const p of procs) {
        const seen = p.lines.length;
        p.signal('SIGUSR1');
        const line = await p.waitForLine((l) => l.startsWith('cpu-now ') && p.lines.indexOf(l, seen) >= seen, 10_000);
        const v = JSON.parse(line.slice(8)) as { ms: number; statements: number };
        out.ms += v.ms;
        out.statements += v.statements;
      }
      return out;
    };
    for (let k = 0; k < runs; k++) {
      const pg0 = await backendMs();
      const en0 = await engineNow();
      const waits0 = rowWaits();
      const samples0 = samples;
      const t0 = performance.now();
      const { run } = await client.startRun(`unordered${atoms}`, {});
      const done = await client.waitForRun(run.id, { pollMs: 10 });
      if (done.status !== 'SUCCESS') throw new Error(`run ended ${done.status}`);
      const s = (performance.now() - t0) / 1000;
      const pg1 = await backendMs();
      const en1 = await engineNow();
      console.log(
        `  run ${k + 1}: engines CPU ${((en1.ms - en0.ms) / atoms).toFixed(3)} ms/atom, their PostgreSQL backends ${((pg1 - pg0) / atoms).toFixed(3)} ms/atom, ` +
          `statements ${((en1.statements - en0.statements) / atoms).toFixed(3)}/atom; ` +
          `samples with a backend waiting for a row lock ${rowWaits() - waits0} of ${samples - samples0}`,
      );
      console.log(
        `${n} engine(s), run ${k + 1}: ${Math.round(atoms / s)} atoms/s (${s.toFixed(2)} s, load ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')})`,
      );
    }
    sampling = false;
    await sample;
    if (process.env.PROBE_BACKENDS === '1') {
      const rows = await sampler.query<{ pid: number; application_name: string; q: string }>(
        `SELECT pid, application_name, left(regexp_replace(query, '\\s+', ' ', 'g'), 40) AS q FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'stoker-bench-engine%'`,
      );
      for (const r of rows.rows) {
        const stat = readFileSync(`/proc/${r.pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        console.log(`    backend ${r.pid} ${r.application_name}: ${(Number(f[11]) + Number(f[12])) * 10} ms, last: ${r.q}`);
      }
    }
    await Promise.all(procs.map((p) => p.terminate()));
    for (const p of procs) {
      const line = (kind: string) =>
        JSON.parse(p.lines.find((l) => l.startsWith(`${kind} `))!.slice(kind.length + 1)) as Record<string, unknown>;
      const stats = line('stats') as Record<string, number>;
      const counts = line('counts') as {
        claims: number;
        emptyClaims: number;
        claimedAtoms: number;
        wakeups: number;
        statements: Record<string, number>;
        errors: Record<string, number>;
      };
      const cpu = line('cpu') as { userMs: number; systemMs: number };
      const executed = stats.executed!;
      const statements = Object.values(counts.statements).reduce((a, b) => a + b, 0);
      console.log(
        `  ${p.name}: executed ${executed}, claim statements ${counts.claims} (empty ${counts.emptyClaims}, ` +
          `${(counts.claimedAtoms / Math.max(1, counts.claims - counts.emptyClaims)).toFixed(1)} atoms per non-empty claim), ` +
          `claimed in completions ${stats.claimed! - counts.claimedAtoms - stats.continuations!}, continuations ${stats.continuations}, ` +
          `commits ${stats.commits}, fenced ${stats.fencedWrites}, wake-ups ${counts.wakeups} (${(counts.wakeups / executed).toFixed(3)}/atom), ` +
          `statements ${statements} (${(statements / executed).toFixed(2)}/atom), ` +
          `CPU ${((cpu.userMs + cpu.systemMs) / executed).toFixed(3)} ms/atom`,
      );
      console.log(`    statements: ${JSON.stringify(counts.statements)}`);
      if (Object.keys(counts.errors).length > 0) console.log(`    errors: ${JSON.stringify(counts.errors)}`);
    }
    // what the statements read, per atom: index entries returned by scans, buffers visited
    // (counted by PostgreSQL once the engines' sessions ended and flushed their statistics)
    await new Promise((res) => setTimeout(res, 1500));
    const idx = await sampler.query<{ indexrelname: string; idx_scan: string; idx_tup_read: string; idx_tup_fetch: string }>(
      `SELECT indexrelname, idx_scan, idx_tup_read, idx_tup_fetch FROM pg_stat_user_indexes WHERE relname IN ('stoker_atoms', 'stoker_runs', 'stoker_events')`,
    );
    const total = atoms * runs;
    console.log(
      `  index use per atom: ${idx.rows
        .filter((r) => Number(r.idx_scan) > 0)
        .map(
          (r) =>
            `${r.indexrelname} scans ${(Number(r.idx_scan) / total).toFixed(2)} entries read ${(Number(r.idx_tup_read) / total).toFixed(2)} rows fetched ${(Number(r.idx_tup_fetch) / total).toFixed(2)}`,
        )
        .join('; ')}`,
    );
    const io = await sampler.query<{ relname: string; heap: string; idx: string }>(
      `SELECT relname, heap_blks_hit + heap_blks_read AS heap, coalesce(idx_blks_hit, 0) + coalesce(idx_blks_read, 0) AS idx FROM pg_statio_user_tables WHERE relname IN ('stoker_atoms', 'stoker_runs', 'stoker_events')`,
    );
    console.log(
      `  buffers visited per atom: ${io.rows.map((r) => `${r.relname} heap ${(Number(r.heap) / total).toFixed(1)} index ${(Number(r.idx) / total).toFixed(1)}`).join('; ')}`,
    );
    console.log(`  lock waits in ${samples} samples of pg_stat_activity: ${JSON.stringify(waits)}`);
  } finally {
    sampling = false;
    await sample.catch(() => undefined);
    await sampler.end().catch(() => undefined);
    for (const p of procs) if (p.alive) await p.kill9();
    await store.close();
    await db.drop();
  }
}
