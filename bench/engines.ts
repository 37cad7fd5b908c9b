/**
 * `npm run bench:engines`: throughput of 1, 2 and 4 engine processes sharing one
 * PostgreSQL database, and what each atom costs as engines are added.
 *
 *   node --import tsx bench/engines.ts [--quick] [--runs 2000] [--engines 1,2,4] [--concurrency 16] [--repeat 1]
 *
 * Per configuration (N engine processes), on a fresh database:
 * 1. `--runs` runs (2,000; 200 with --quick) of `graph10` (bench/fixtures/engines-flows.ts:
 *    ten no-op tasks with fan-out and fan-in) are started in bulk from this process (8
 *    concurrent clients) *before* any engine runs; that store is closed again.
 * 2. N engine processes (bench/engine-process.ts: the flows module loaded as `stoker engine
 *    --flows` loads it; `--concurrency` slots each, poll 200 ms, lease 30 s) are spawned;
 *    when all have loaded and opened the store they are released together (SIGUSR2).
 * 3. This process waits until every run has ended (one count query every 200 ms on its own
 *    connection), then stops the engines with SIGTERM (each reports its engine.stats).
 *
 * Measured, all from the database: wall time from the first `atom.claimed` event to the
 * last run's `finished_at`; atoms/s, and its ratio to the one-engine figure; commits per
 * atom, twice:
 * - counted by the engines: write transactions (completion groups, plus claim statements
 *   that claimed something), as bench/run.ts counts them;
 * - counted by PostgreSQL: `pg_stat_database.xact_commit` of the bench database from the
 *   release of the engines to their exit (read with no session open on that database, so
 *   the counters are flushed), minus this process's own polls. That counts every
 *   transaction: read-only ones, heartbeats, reaper sweeps, claims that found nothing,
 *   registration and shutdown.
 * And how the atoms spread over the engines (atoms each one executed, from `atom.success`
 * events by engine id), and when each engine made its first claim.
 *
 * `--repeat R` runs the configurations R times, in turn (1, 2, 4, 1, 2, 4, …), so that a
 * shared machine's load drifts over all of them alike; each configuration then reports its
 * median sample (by atoms/s), and the JSON keeps every sample.
 *
 * Results: bench/results/engines-<timestamp>.json and .md, engines-latest.json / .md.
 * `npm run bench` (bench/run.ts) runs it too, through {@link benchEngines}.
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry } from '../src/flow/index.js';
import { EngineProc, sleep } from '../test/chaos/harness.js';
import { createTestStore, postgresAdminUrl, type TestStore } from '../test/helpers/databases.js';
import { backendTicks, backendTicksSince, commitReference, progressFor, round, TICK_US, writeResults } from './common.js';
import flows from './fixtures/engines-flows.js';

const ENGINE_SCRIPT = join(import.meta.dirname, 'engine-process.ts');
const FLOWS_MODULE = join(import.meta.dirname, 'fixtures', 'engines-flows.ts');
const ATOMS_PER_RUN = 10;
const POLL_MS = 200;
const LEASE_MS = 30_000;
const STARTERS = 8;

export interface EnginesOptions {
  quick?: boolean;
  /** runs per configuration (default 2,000; 200 with quick) */
  runs?: number;
  /** engine process counts (default 1, 2, 4) */
  engines?: readonly number[];
  /** slots per engine process (default 16) */
  concurrency?: number;
  /** rounds over the configurations (default 1); each reports its median sample */
  repeat?: number;
  progress?: (msg: string) => void;
}

export interface EngineShare {
  pid: number;
  engineIds: string[];
  /** atoms whose success this engine recorded (`atom.success` events) */
  atoms: number;
  /** of all atoms */
  share: number;
  /** first `atom.claimed` of this engine after the first claim of any engine, ms */
  firstClaimAfterMs: number | null;
  /** engine.stats at exit */
  stats: Record<string, number | string> | null;
}

export interface EnginesRow {
  engines: number;
  concurrencyPerEngine: number;
  runs: number;
  atoms: number;
  /** first `atom.claimed` → last run's `finished_at` (DB clock) */
  seconds: number;
  atomsPerSec: number;
  ratioToOneEngine: number | null;
  /** engine-counted write transactions per atom */
  commitsPerAtom: number;
  /** pg_stat_database.xact_commit delta per atom (every transaction) */
  xactCommitsPerAtom: number;
  /** runs started per second before the engines ran (8 concurrent clients) */
  runsStartedPerSec: number;
  perEngine: EngineShare[];
  /** CPU time (user + system) of the engine processes from their release to their exit, per atom, ms */
  engineCpuMsPerAtom: number;
  /** CPU time of the bench database's backends from the engines' release to the last run's end, per atom, ms */
  backendCpuMsPerAtom: number;
  /** index entries read per atom (`pg_stat_user_indexes.idx_tup_read`, engines' lifetime), of the atoms and runs indexes */
  indexReadsPerAtom: Record<string, number>;
  /** Store method → calls per atom, summed over the engines (bench/engine-process.ts counts them) */
  storeCallsPerAtom: Record<string, number>;
  fencedWrites: number;
  loadavgBefore: number[];
}

export interface EnginesResult {
  at: string;
  quick: boolean;
  cpus: number;
  node: string;
  /** one per configuration: its median sample by atoms/s */
  rows: EnginesRow[];
  /** every sample, in the order measured */
  samples: EnginesRow[];
}

/** Runs the configurations; null when PostgreSQL is not reachable. */
export async function benchEngines(options: EnginesOptions = {}): Promise<EnginesResult | null> {
  const quick = options.quick ?? false;
  const runs = options.runs ?? (quick ? 200 : 2000);
  const counts = options.engines ?? [1, 2, 4];
  const concurrency = options.concurrency ?? 16;
  const repeat = options.repeat ?? 1;
  const progress = options.progress ?? progressFor('engines');
  const samples: EnginesRow[] = [];
  for (let pass = 1; pass <= repeat; pass++) {
    for (const n of counts) {
      const row = await oneConfiguration(n, runs, concurrency);
      if (!row) return null;
      samples.push(row);
      progress(
        `${repeat > 1 ? `round ${pass}/${repeat}, ` : ''}${n} engine${n > 1 ? 's' : ''}: ${row.atomsPerSec} atoms/s, ` +
          `${row.commitsPerAtom} commits/atom (engines), ${row.xactCommitsPerAtom} xact_commit/atom (PostgreSQL), ` +
          `${row.engineCpuMsPerAtom} ms engine CPU/atom, ${row.backendCpuMsPerAtom} ms backend CPU/atom, atoms per engine ${row.perEngine.map((e) => e.atoms).join(' / ')}`,
      );
    }
  }
  const rows = counts.map((n) => {
    const mine = samples.filter((r) => r.engines === n).sort((a, b) => a.atomsPerSec - b.atomsPerSec);
    return { ...mine[Math.floor((mine.length - 1) / 2)]! };
  });
  const one = rows.find((r) => r.engines === 1);
  for (const r of rows) r.ratioToOneEngine = one ? round(r.atomsPerSec / one.atomsPerSec, 2) : null;
  return { at: new Date().toISOString(), quick, cpus: cpus().length, node: process.version, rows, samples };
}

async function oneConfiguration(n: number, runs: number, concurrency: number): Promise<EnginesRow | null> {
  const db = await createTestStore('postgres');
  if (!db) return null;
  const dbName = decodeURIComponent(new URL(db.url).pathname.slice(1));
  const admin = new pg.Client({ connectionString: postgresAdminUrl() });
  admin.on('error', () => undefined);
  const procs: EngineProc[] = [];
  try {
    await admin.connect();
    const xactCommits = async () =>
      Number((await admin.query('SELECT xact_commit FROM pg_stat_database WHERE datname = $1', [dbName])).rows[0]?.xact_commit);
    // A session's statistics reach pg_stat_database when it ends at the latest: read the
    // counter only when no session is open on the bench database.
    const noSessions = async () => {
      for (const until = Date.now() + 30_000; ; await sleep(20)) {
        const open = Number((await admin.query('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [dbName])).rows[0]?.n);
        // a backend leaves pg_stat_activity a moment before its last statistics are flushed
        if (open === 0) return sleep(250);
        if (Date.now() > until) throw new Error(`${open} sessions still open on ${dbName}`);
      }
    };

    // 1. every run is started before any engine runs
    const loadavgBefore = loadavg().map((x) => round(x, 2));
    const runsStartedPerSec = await startRuns(db, runs);
    await db.store.close(); // drop() closes it again, harmlessly
    await noSessions();

    // 2. N engine processes, released together
    for (let i = 0; i < n; i++) {
      procs.push(
        new EngineProc(db.url, {
          script: ENGINE_SCRIPT,
          concurrency,
          leaseMs: LEASE_MS,
          name: `bench-engine-${i}`,
          env: { ENGINE_FLOWS: FLOWS_MODULE, ENGINE_POLL_MS: String(POLL_MS) },
        }),
      );
    }
    await Promise.all(procs.map((p) => p.waitForLine((l) => l === 'armed', 60_000)));
    const indexReads = async () =>
      new Map(
        (
          await db.exec(
            `SELECT indexrelname AS i, idx_tup_read AS n FROM pg_stat_user_indexes WHERE relname IN ('stoker_atoms', 'stoker_runs')`,
          )
        ).map((r) => [String(r.i), Number(r.n)]),
      );
    const readsBefore = await indexReads();
    const before = await xactCommits();
    for (const p of procs) p.signal('SIGUSR2');
    await Promise.all(procs.map((p) => p.ready));
    const backendsAtRelease = await backendTicks(admin, dbName);

    // 3. wait for the last run to end, then stop the engines
    const poll = new pg.Client({ connectionString: db.url });
    poll.on('error', () => undefined);
    await poll.connect();
    let polls = 0;
    try {
      for (const until = Date.now() + 30 * 60_000; ; await sleep(POLL_MS)) {
        polls += 1;
        const open = Number(
          (await poll.query(`SELECT count(*) AS n FROM stoker_runs WHERE status IN ('PENDING', 'RUNNING', 'REVERTING')`)).rows[0]?.n,
        );
        if (open === 0) break;
        if (Date.now() > until) throw new Error(`${open} runs still active after 30 minutes`);
        const dead = procs.find((p) => !p.alive);
        if (dead) throw new Error(`${dead.name} exited: ${dead.stderr.slice(-2000)}`);
      }
    } finally {
      await poll.end().catch(() => undefined);
    }
    const backendTicksSpent = backendTicksSince(backendsAtRelease, await backendTicks(admin, dbName));
    await Promise.all(procs.map((p) => p.terminate(60_000)));
    await noSessions();
    const xact = (await xactCommits()) - before - polls;
    const readsAfter = await indexReads();

    // what the database recorded (read after the counter)
    const q = async (sql: string) => db.exec(sql);
    const statuses = await q(`SELECT status, count(*)::int AS n FROM stoker_runs GROUP BY status`);
    const succeeded = Number(statuses.find((s) => s.status === 'SUCCESS')?.n ?? 0);
    if (succeeded !== runs) throw new Error(`${n} engines: runs by status ${JSON.stringify(statuses)}, expected ${runs} SUCCESS`);
    const atoms = Number((await q(`SELECT count(*)::int AS n FROM stoker_atoms WHERE state = 'SUCCESS'`))[0]!.n);
    if (atoms !== runs * ATOMS_PER_RUN) throw new Error(`${n} engines: ${atoms} atoms succeeded, expected ${runs * ATOMS_PER_RUN}`);
    const seconds = Number(
      (
        await q(`SELECT extract(epoch FROM (SELECT max(finished_at) FROM stoker_runs)
                   - (SELECT min(at) FROM stoker_events WHERE kind = 'atom.claimed'))::float8 AS s`)
      )[0]!.s,
    );
    const perId = await q(`SELECT engine_id,
        count(*) FILTER (WHERE kind = 'atom.success')::int AS atoms,
        extract(epoch FROM min(at) FILTER (WHERE kind = 'atom.claimed')
          - (SELECT min(at) FROM stoker_events WHERE kind = 'atom.claimed'))::float8 * 1000 AS first_ms
      FROM stoker_events WHERE engine_id IS NOT NULL GROUP BY engine_id`);
    const fencedEvents = Number((await q(`SELECT count(*)::int AS n FROM stoker_events WHERE kind = 'atom.fenced_write'`))[0]!.n);

    const perEngine: EngineShare[] = procs.map((p) => {
      const mine = perId.filter((r) => p.ids.includes(String(r.engine_id)));
      const mineAtoms = mine.reduce((s, r) => s + Number(r.atoms), 0);
      const firsts = mine.flatMap((r) => (r.first_ms === null ? [] : [Number(r.first_ms)]));
      return {
        pid: p.pid,
        engineIds: [...p.ids],
        atoms: mineAtoms,
        share: round(mineAtoms / atoms, 3),
        firstClaimAfterMs: firsts.length ? round(Math.min(...firsts), 1) : null,
        stats: p.stats,
      };
    });
    const missing = procs.find((p) => p.stats === null);
    if (missing) throw new Error(`${missing.name} reported no stats at exit: ${missing.stderr.slice(-2000)}`);
    const commits = procs.reduce((s, p) => s + Number(p.stats?.commits ?? NaN) + Number(p.stats?.claimCommits ?? NaN), 0);
    const calls: Record<string, number> = {};
    for (const p of procs) {
      const line = p.lines.find((l) => l.startsWith('calls '));
      if (!line) throw new Error(`${p.name} reported no store calls at exit`);
      for (const [k, v] of Object.entries(JSON.parse(line.slice(6)) as Record<string, number>)) calls[k] = (calls[k] ?? 0) + v;
    }
    let cpuMs = 0;
    for (const p of procs) {
      const line = p.lines.find((l) => l.startsWith('cpu '));
      if (!line) throw new Error(`${p.name} reported no CPU time at exit`);
      const cpu = JSON.parse(line.slice(4)) as { userMs: number; systemMs: number };
      cpuMs += cpu.userMs + cpu.systemMs;
    }
    const storeCallsPerAtom = Object.fromEntries(
      Object.entries(calls)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, round(v / atoms, 3)]),
    );
    const fencedWrites = fencedEvents + procs.reduce((s, p) => s + Number(p.stats?.fencedWrites ?? 0), 0);
    return {
      engines: n,
      concurrencyPerEngine: concurrency,
      runs,
      atoms,
      seconds: round(seconds, 3),
      atomsPerSec: round(atoms / seconds, 0),
      ratioToOneEngine: null,
      commitsPerAtom: round(commits / atoms, 3),
      xactCommitsPerAtom: round(xact / atoms, 3),
      runsStartedPerSec,
      perEngine,
      engineCpuMsPerAtom: round(cpuMs / atoms, 3),
      backendCpuMsPerAtom: round((backendTicksSpent * TICK_US) / 1000 / atoms, 3),
      indexReadsPerAtom: Object.fromEntries(
        [...readsAfter]
          .map(([k, v]) => [k.replace(/^stoker_/, ''), round((v - (readsBefore.get(k) ?? 0)) / atoms, 2)] as const)
          .filter(([, v]) => v > 0)
          .sort((a, b) => b[1] - a[1]),
      ),
      storeCallsPerAtom,
      fencedWrites,
      loadavgBefore,
    };
  } finally {
    for (const p of procs) p.signal('SIGKILL');
    await Promise.all(procs.map((p) => Promise.race([p.exited, sleep(5000)])));
    await admin.end().catch(() => undefined);
    await db.drop();
  }
}

/** Starts `runs` runs of graph10 from 8 concurrent clients; returns runs started per second. */
async function startRuns(db: TestStore, runs: number): Promise<number> {
  const registry = new FlowRegistry();
  for (const f of flows) registry.register(f);
  const client = new Engine({ store: db.store, flows: registry });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: STARTERS }, async () => {
      while (next < runs) {
        next += 1;
        await client.startRun('graph10', {});
      }
    }),
  );
  return round(runs / ((performance.now() - t0) / 1000), 0);
}

/** The markdown table of a result (and the notes that say how it was measured). */
export function enginesMarkdown(result: EnginesResult, reference: Record<string, number> = {}): string {
  const r0 = result.rows[0];
  const lines = [
    `### Engine processes on one PostgreSQL database: ${r0?.runs ?? 0} runs of graph10 (10 no-op tasks, fan-out and fan-in)`,
    '',
    '| engines | atoms | seconds | atoms/s | ÷ 1 engine | commits/atom (engines) | xact_commit/atom (PostgreSQL) | engine CPU ms/atom | backend CPU ms/atom | atoms per engine | first claim after (ms) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of result.rows) {
    lines.push(
      `| ${r.engines} × ${r.concurrencyPerEngine} slots | ${r.atoms} | ${r.seconds} | ${r.atomsPerSec} | ${r.ratioToOneEngine ?? ''} | ${r.commitsPerAtom} | ${r.xactCommitsPerAtom} | ${r.engineCpuMsPerAtom} | ${r.backendCpuMsPerAtom} | ` +
        `${r.perEngine.map((e) => `${e.atoms} (${Math.round(e.share * 100)} %)`).join(', ')} | ${r.perEngine.map((e) => e.firstClaimAfterMs ?? '–').join(', ')} |`,
    );
  }
  if (result.samples.length > result.rows.length) {
    lines.push(
      '',
      `Median of ${result.samples.length / result.rows.length} rounds; atoms/s of every sample: ` +
        result.rows
          .map(
            (r) =>
              `${r.engines} → ${result.samples
                .filter((x) => x.engines === r.engines)
                .map((x) => x.atomsPerSec)
                .join(', ')}`,
          )
          .join('; ') +
        '.',
    );
  }
  lines.push(
    '',
    `${result.cpus} CPUs, database on the same host. Runs started in bulk before the engines (8 clients; ` +
      `${result.rows.map((r) => r.runsStartedPerSec).join(' / ')} runs/s), then all engine processes released at once. ` +
      'Seconds: first `atom.claimed` → last run `finished_at` (database clock). commits/atom (engines): write transactions the ' +
      'engines counted (completion groups + claims that claimed something). xact_commit/atom: `pg_stat_database` delta over ' +
      "the engines' lifetime after release, every transaction included (heartbeats, reaper, empty claim polls, read-only " +
      `statements). Fenced writes: ${result.rows.map((r) => r.fencedWrites).join(' / ')}. Load average before each ` +
      `configuration: ${result.rows.map((r) => r.loadavgBefore[0]).join(' / ')}.`,
  );
  lines.push('', 'Store calls per atom (all engines; each is one round trip or transaction, or a few inside one):', '');
  for (const r of result.rows) {
    const top = Object.entries(r.storeCallsPerAtom).filter(([, v]) => v >= 0.005);
    lines.push(`- ${r.engines} engine${r.engines > 1 ? 's' : ''}: ${top.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  lines.push(
    '',
    "Index entries read per atom (`pg_stat_user_indexes.idx_tup_read`, the engines' lifetime; backend CPU: /proc, the " +
      "bench database's backends from the release to the last run's end):",
    '',
  );
  for (const r of result.rows) {
    const reads = Object.entries(r.indexReadsPerAtom ?? {});
    lines.push(`- ${r.engines} engine${r.engines > 1 ? 's' : ''}: ${reads.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  for (const [k, v] of Object.entries(reference)) lines.push('', `${k}: ${v}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const quick = args.includes('--quick');
  const progress = progressFor('engines');
  const reference = await commitReference('postgres', quick, progress);
  const result = await benchEngines({
    quick,
    ...(opt('--runs') ? { runs: Number(opt('--runs')) } : {}),
    ...(opt('--engines') ? { engines: opt('--engines')!.split(',').map(Number) } : {}),
    ...(opt('--concurrency') ? { concurrency: Number(opt('--concurrency')) } : {}),
    ...(opt('--repeat') ? { repeat: Number(opt('--repeat')) } : {}),
    progress,
  });
  if (!result) {
    progress('SKIP: PostgreSQL is not reachable');
    process.exit(0);
  }
  const md = enginesMarkdown(result, reference);
  writeResults('engines-', { ...result, reference }, md);
  process.stdout.write(md + '\n');
  process.exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
