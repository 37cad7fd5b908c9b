/**
 * Helpers shared by the benchmarks (bench/run.ts, bench/engines.ts): rounding, progress
 * lines on stderr, the pgbench and mysqlslap references, and writing result files.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestStore } from '../test/helpers/databases.js';

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** A progress line on stderr: `[<tag> hh:mm:ss] message`. */
export function progressFor(tag: string): (msg: string) => void {
  return (msg) => process.stderr.write(`[${tag} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** The databases' own one-row commit rates, measured by their own tools. */
export type ReferenceDialect = 'postgres' | 'mysql';

/**
 * A one-row-commit reference that can be measured again and again in one run: its tool's
 * database is made once (and dropped by `close`). `rate(clients, seconds)` runs the tool for
 * about that long and returns its transactions per second.
 *
 * - PostgreSQL: pgbench, one-row UPDATE per transaction (bench/one-row-update.sql) on
 *   `pgbench -i -s 1`'s accounts.
 * - MySQL/MariaDB: mysqlslap, one-row autocommit UPDATE by a random primary key on a table of
 *   100,000 rows. mysqlslap binds no parameters, so the key is drawn in a one-row derived
 *   table the UPDATE joins on the primary key (`WHERE id = FLOOR(RAND() * …)` would scan the
 *   table, RAND() being evaluated per row); EXPLAIN shows a `const` primary-key lookup. The
 *   count of queries is sized from a short first run, since mysqlslap takes a count, not a
 *   duration.
 *
 * Why again and again: at one client both tools wait mostly for the disk's flush, whose
 * latency on this machine doubles or halves within the hour (pgbench 2,544 then 4,831 tps 30
 * minutes later), while Stoker's rates move little. A ratio is only meaningful against the
 * reference taken beside it (bench/cli.ts measures one before each linear run it reports).
 */
export interface CommitReference {
  /** the tool, for labels: `pgbench` or `mysqlslap` */
  readonly tool: string;
  rate(clients: number, seconds: number): Promise<number>;
  close(): Promise<void>;
}

export async function openCommitReference(dialect: ReferenceDialect): Promise<CommitReference> {
  return dialect === 'postgres' ? openPgbench() : openMysqlslap();
}

async function openPgbench(): Promise<CommitReference> {
  const dbName = `stoker_bench_ref_${process.pid}_${Date.now().toString(36)}`;
  const env = { ...process.env, PGHOST: '127.0.0.1', PGUSER: 'postgres' };
  const drop = (): void => {
    try {
      execFileSync('dropdb', ['--if-exists', dbName], { env, stdio: 'ignore' });
    } catch {
      /* best effort */
    }
  };
  try {
    execFileSync('createdb', [dbName], { env, stdio: 'ignore' });
    execFileSync('pgbench', ['-i', '-s', '1', '-q', dbName], { env, stdio: 'ignore' });
  } catch (e) {
    drop();
    throw e;
  }
  const script = join(import.meta.dirname, 'one-row-update.sql');
  return {
    tool: 'pgbench',
    rate: async (clients, seconds) => {
      const out = execFileSync(
        'pgbench',
        ['-n', '-f', script, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds), dbName],
        { env, encoding: 'utf8' },
      );
      const m = /tps = ([\d.]+)/.exec(out);
      if (!m) throw new Error(`unexpected pgbench output: ${out.trim().split('\n').at(-1) ?? ''}`);
      return Number(m[1]);
    },
    close: async () => drop(),
  };
}

async function openMysqlslap(): Promise<CommitReference> {
  const db = await createTestStore('mysql', { migrate: false });
  if (!db) throw new Error('MariaDB is not reachable');
  try {
    await db.exec('CREATE TABLE bench_accounts (id INT NOT NULL PRIMARY KEY, balance INT NOT NULL DEFAULT 0) ENGINE=InnoDB');
    // MariaDB's sequence engine: the 100,000 rows in one statement
    await db.exec('INSERT INTO bench_accounts (id) SELECT seq FROM seq_1_to_100000');
  } catch (e) {
    await db.drop();
    throw e;
  }
  const u = new URL(db.url);
  const database = decodeURIComponent(u.pathname.slice(1));
  const env = { ...process.env, MYSQL_PWD: decodeURIComponent(u.password) };
  const slap = (clients: number, queries: number): number => {
    const out = execFileSync(
      'mysqlslap',
      [
        `--host=${u.hostname}`,
        `--port=${u.port || '3306'}`,
        `--user=${decodeURIComponent(u.username) || 'root'}`,
        `--create-schema=${database}`,
        '--no-drop',
        `--concurrency=${clients}`,
        '--iterations=1',
        `--number-of-queries=${queries}`,
        '--query=UPDATE bench_accounts JOIN (SELECT FLOOR(1 + RAND() * 100000) AS k) r ON bench_accounts.id = r.k SET balance = balance + 1',
      ],
      { env, encoding: 'utf8' },
    );
    const m = /Average number of seconds to run all queries: ([\d.]+) seconds/.exec(out);
    if (!m || Number(m[1]) <= 0) throw new Error(`unexpected mysqlslap output: ${out.trim().split('\n')[0] ?? ''}`);
    return queries / Number(m[1]);
  };
  return {
    tool: 'mysqlslap',
    rate: async (clients, seconds) => {
      const probe = slap(clients, clients * 40);
      // --number-of-queries counts all clients' queries together
      return slap(clients, Math.max(clients * 100, Math.round((probe * seconds) / clients) * clients));
    },
    close: () => db.drop(),
  };
}

/**
 * The reference of a whole benchmark run: the dialect's tool at 1 and 16 clients, 3 s each
 * with `quick`, else 8 s. Returns `{ '<tool> one-row UPDATE, 1 client (tps)': …, '… 16
 * clients (tps)': … }`, or `{}` (after a progress line) when the tool or the server is not
 * available.
 */
export async function commitReference(
  dialect: ReferenceDialect,
  quick: boolean,
  progress: (msg: string) => void,
): Promise<Record<string, number>> {
  const reference: Record<string, number> = {};
  const tool = dialect === 'postgres' ? 'pgbench' : 'mysqlslap';
  let ref: CommitReference | null = null;
  try {
    ref = await openCommitReference(dialect);
    for (const clients of [1, 16]) {
      const tps = round(await ref.rate(clients, quick ? 3 : 8), 0);
      reference[`${tool} one-row UPDATE, ${clients} client${clients > 1 ? 's' : ''} (tps)`] = tps;
      progress(`${tool} ${clients} clients: ${tps} tps`);
    }
  } catch (e) {
    progress(`SKIP ${tool} reference: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    await ref?.close();
  }
  return reference;
}

/**
 * Writes bench/results/<prefix><timestamp>.json and .md and <prefix>latest.json / .md
 * (prefix '' for bench/run.ts).
 */
export function writeResults(prefix: string, json: unknown, md: string): void {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const text = JSON.stringify(json, null, 2);
  writeFileSync(join(dir, `${prefix}${stamp}.json`), text);
  writeFileSync(join(dir, `${prefix}${stamp}.md`), md + '\n');
  writeFileSync(join(dir, `${prefix}latest.json`), text);
  writeFileSync(join(dir, `${prefix}latest.md`), md + '\n');
}

/** µs of one /proc clock tick (USER_HZ, 100 on Linux) */
export const TICK_US = 10_000;

/** CPU time (user + system) of a process (or of one of its threads) so far, in clock ticks ({@link TICK_US}); 0 when it is gone */
export function cpuTicks(pid: number, thread?: number): number {
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/**
 * CPU ticks of the database's backends (PostgreSQL on this host) so far, by pid: with a
 * reading taken earlier, {@link backendTicksSince} gives what they spent in between.
 */
export async function backendTicks(
  admin: { query(sql: string, params: unknown[]): Promise<{ rows: Record<string, unknown>[] }> },
  dbName: string,
): Promise<Map<number, number>> {
  const pids = (await admin.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName])).rows.map((r) => Number(r.pid));
  return new Map(pids.map((p) => [p, cpuTicks(p)]));
}

/** ticks spent between two {@link backendTicks} readings (a backend opened in between counts from its start) */
export function backendTicksSince(before: Map<number, number>, now: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, t] of now) ticks += t - (before.get(pid) ?? 0);
  return ticks;
}
