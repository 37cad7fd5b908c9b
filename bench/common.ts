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

/**
 * pgbench, one-row UPDATE per transaction, 1 and 16 clients: the machine's commit ceiling.
 * Returns `{ 'pgbench one-row UPDATE, 1 client (tps)': …, '… 16 clients (tps)': … }`, or
 * `{}` (after a progress line) when pgbench or the server is not available.
 */
export function pgbenchReference(quick: boolean, progress: (msg: string) => void): Record<string, number> {
  const reference: Record<string, number> = {};
  const dbName = `stoker_bench_ref_${process.pid}`;
  const env = { ...process.env, PGHOST: '127.0.0.1', PGUSER: 'postgres' };
  try {
    execFileSync('createdb', [dbName], { env, stdio: 'ignore' });
    execFileSync('pgbench', ['-i', '-s', '1', '-q', dbName], { env, stdio: 'ignore' });
    const script = join(process.cwd(), 'bench', 'one-row-update.sql');
    for (const clients of [1, 16]) {
      const out = execFileSync(
        'pgbench',
        ['-n', '-f', script, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', quick ? '3' : '8', dbName],
        { env, encoding: 'utf8' },
      );
      const m = /tps = ([\d.]+)/.exec(out);
      if (m) reference[`pgbench one-row UPDATE, ${clients} client${clients > 1 ? 's' : ''} (tps)`] = round(Number(m[1]), 0);
      progress(`pgbench ${clients} clients: ${m?.[1] ?? '?'} tps`);
    }
  } catch (e) {
    progress(`SKIP pgbench reference: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    try {
      execFileSync('dropdb', ['--if-exists', dbName], { env, stdio: 'ignore' });
    } catch {
      /* best effort */
    }
  }
  return reference;
}

/**
 * mysqlslap, one-row autocommit UPDATE by a random primary key on a table of 100,000 rows,
 * 1 and 16 clients, in a database of its own (created and dropped here): MariaDB's commit
 * ceiling, measured as pgbench measures PostgreSQL's. mysqlslap binds no parameters, so the
 * key is drawn in a one-row derived table the UPDATE joins on the primary key (`WHERE id =
 * FLOOR(RAND() * …)` would scan the table, RAND() being evaluated per row); EXPLAIN shows a
 * `const` primary-key lookup. Each count of queries is sized from a short first run to take
 * about as long as pgbench's runs (3 s with `quick`, else 8 s). Returns `{ 'mysqlslap one-row
 * UPDATE, 1 client (tps)': …, '… 16 clients (tps)': … }`, or `{}` (after a progress line)
 * when mysqlslap or the server is not available.
 */
export async function mysqlslapReference(quick: boolean, progress: (msg: string) => void): Promise<Record<string, number>> {
  const reference: Record<string, number> = {};
  const db = await createTestStore('mysql', { migrate: false }).catch((e: unknown) => {
    progress(`SKIP mysqlslap reference: ${(e as Error).message.split('\n')[0]}`);
    return null;
  });
  if (!db) return reference;
  try {
    const u = new URL(db.url);
    const database = decodeURIComponent(u.pathname.slice(1));
    await db.exec('CREATE TABLE bench_accounts (id INT NOT NULL PRIMARY KEY, balance INT NOT NULL DEFAULT 0) ENGINE=InnoDB');
    // MariaDB's sequence engine: the 100,000 rows in one statement
    await db.exec('INSERT INTO bench_accounts (id) SELECT seq FROM seq_1_to_100000');
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
    const seconds = quick ? 3 : 8;
    for (const clients of [1, 16]) {
      const probe = slap(clients, clients * 40);
      // --number-of-queries counts all clients' queries together
      const queries = Math.max(clients * 100, Math.round((probe * seconds) / clients) * clients);
      const tps = slap(clients, queries);
      reference[`mysqlslap one-row UPDATE, ${clients} client${clients > 1 ? 's' : ''} (tps)`] = round(tps, 0);
      progress(`mysqlslap ${clients} clients: ${round(tps, 0)} tps (${queries} queries)`);
    }
  } catch (e) {
    progress(`SKIP mysqlslap reference: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    await db.drop();
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
