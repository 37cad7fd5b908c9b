/**
 * Helpers shared by the benchmarks (bench/run.ts, bench/engines.ts): rounding, progress
 * lines on stderr, the pgbench reference, and writing result files.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
