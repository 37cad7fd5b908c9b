/**
 * The locks API under a real freeze (protocol 10 in ARCHITECTURE.md, docs/reliability.md R9 and §0): two
 * processes (test/fixtures/lock-holder.ts) contend for one lock on every dialect.
 *
 * 1. A acquires it (TTL 1.5 s) and writes the protected resource with its token.
 * 2. B asks for it and waits; while A is alive and renewing, B does not get it (2.5 TTLs).
 * 3. A SIGSTOPs itself just before a write. B gets the lock once A's lease has run out by
 *    the database clock (not before), with a higher token, and writes.
 * 4. A is continued and makes its write at once, as a zombie would. The row guarded by
 *    `WHERE fencing_token <= :token` refuses it; the unguarded row is overwritten — what a
 *    lock without a token check lets through. A's withLock signal is aborted
 *    (STOKER_LOCK_LOST), withLock rejects, and A's release cannot free B's lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { describeEachDialect } from '../helpers/databases.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/lock-holder.ts');
const TTL_A = 1_500;
const TTL_B = 3_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One lock-holder process and the lines it printed. */
class Holder {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  private partial = '';
  private readonly waiters = new Set<() => void>();

  constructor(url: string, lockName: string, holder: string, ttlMs: number) {
    this.child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, url, lockName, holder, String(ttlMs)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    all.add(this.child);
    this.child.stdout!.on('data', (d: Buffer) => {
      const text = this.partial + d.toString();
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      for (const w of [...this.waiters]) w();
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.once('exit', () => {
      for (const w of [...this.waiters]) w();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(command: string): void {
    this.child.stdin!.write(command + '\n');
  }

  /** The first printed line matching `re` (waiting up to `timeoutMs`). */
  async line(re: RegExp, timeoutMs: number): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((l) => re.test(l));
      if (found !== undefined) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() > until) {
        throw new Error(`no line ${String(re)} within ${timeoutMs} ms; got:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.waiters.delete(done);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(done, Math.max(1, until - Date.now()));
        this.waiters.add(done);
      });
    }
  }

  /** The process state letter from /proc (`T` = stopped). */
  state(): string | null {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return null;
    }
  }

  exited(): Promise<number | null> {
    if (this.child.exitCode !== null) return Promise.resolve(this.child.exitCode);
    return new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }
}

const all = new Set<ChildProcess>();
afterAll(() => {
  // nothing may be left behind, stopped or not (SIGKILL ends stopped processes too)
  for (const c of all) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

await describeEachDialect('locks: a holder frozen past its TTL', (ctx) => {
  it('the successor gets the lock after the lease; the zombie’s write is refused by the token, its signal aborted', async () => {
    for (const sql of [
      `CREATE TABLE lock_protected (id VARCHAR(32) PRIMARY KEY, value VARCHAR(64) NOT NULL, fencing_token BIGINT NOT NULL)`,
      `INSERT INTO lock_protected (id, value, fencing_token) VALUES ('guarded', 'initial', 0)`,
      `INSERT INTO lock_protected (id, value, fencing_token) VALUES ('unguarded', 'initial', 0)`,
    ])
      await ctx.db.exec(sql);
    const rows = async (): Promise<Record<string, { value: string; token: number }>> =>
      Object.fromEntries(
        (await ctx.db.exec(`SELECT id, value, fencing_token FROM lock_protected`)).map((r) => [
          String(r.id),
          { value: String(r.value), token: Number(r.fencing_token) },
        ]),
      );

    // 1. A holds the lock and writes with its token
    const a = new Holder(ctx.url, 'reports/nightly', 'holder-a', TTL_A);
    const tokenA = Number((await a.line(/^acquired /, 30_000)).split(' ')[1]);
    a.send('write A1');
    expect(await a.line(/^write A1 /, 10_000)).toBe('write A1 guarded=1 unguarded=1');

    // 2. B waits while A is alive and renewing
    const b = new Holder(ctx.url, 'reports/nightly', 'holder-b', TTL_B);
    await sleep(2.5 * TTL_A);
    expect(b.lines.filter((l) => l.startsWith('acquired'))).toEqual([]);
    expect(a.lines.filter((l) => l.startsWith('aborted'))).toEqual([]);
    expect(await ctx.store.getLock('reports/nightly')).toMatchObject({ holder: 'holder-a', token: tokenA, held: true });

    // 3. A freezes just before a write
    a.send('stop-then-write A2');
    await a.line(/^stop$/, 10_000);
    const stoppedAt = Date.now();
    for (let i = 0; a.state() !== 'T'; i++) {
      if (i > 200) throw new Error(`holder A (pid ${a.pid}) is not stopped: ${String(a.state())}`);
      await sleep(10);
    }
    await sleep(200); // a renewal in flight when it stopped has landed by now
    const lastOfA = (await ctx.store.getLock('reports/nightly'))!;
    expect(lastOfA).toMatchObject({ holder: 'holder-a', token: tokenA });

    const tokenB = Number((await b.line(/^acquired /, 10 * TTL_A)).split(' ')[1]);
    const takeoverMs = Date.now() - stoppedAt;
    expect(tokenB).toBeGreaterThan(tokenA);
    const ofB = (await ctx.store.getLock('reports/nightly'))!;
    expect(ofB).toMatchObject({ holder: 'holder-b', token: tokenB, held: true });
    // not before A's lease ran out, by the database clock
    expect(ofB.acquiredAt.getTime()).toBeGreaterThanOrEqual(lastOfA.expiresAt.getTime());
    expect(takeoverMs).toBeLessThan(TTL_A + 2_000);
    console.log(`locks zombie ${ctx.dialect}: A (token ${tokenA}) stopped; B acquired token ${tokenB} after ${takeoverMs} ms`);
    b.send('write B1');
    expect(await b.line(/^write B1 /, 10_000)).toBe('write B1 guarded=1 unguarded=1');
    expect(a.state()).toBe('T'); // still frozen

    // 4. A wakes up and writes at once, as it was about to
    a.child.kill('SIGCONT');
    await a.line(/^cont$/, 10_000);
    expect(await a.line(/^write A2 /, 10_000)).toBe('write A2 guarded=0 unguarded=1');
    expect(await a.line(/^aborted /, 10_000)).toBe('aborted STOKER_LOCK_LOST');
    expect(await rows()).toEqual({
      guarded: { value: 'B1', token: tokenB }, // the token check kept the zombie out
      unguarded: { value: 'A2', token: 0 }, // without it, the zombie overwrote B's work
    });

    a.send('finish');
    expect(await a.line(/^done /, 10_000)).toBe('done lost STOKER_LOCK_LOST');
    expect(await a.line(/^release /, 10_000)).toBe('release false');
    expect(await a.exited()).toBe(0);
    // neither withLock's release nor the explicit one freed B's lock
    expect(await ctx.store.getLock('reports/nightly')).toMatchObject({ holder: 'holder-b', token: tokenB, held: true });
    expect(b.lines.filter((l) => l.startsWith('aborted'))).toEqual([]);

    b.send('finish');
    expect(await b.line(/^done /, 10_000)).toBe('done ok');
    expect(await b.exited()).toBe(0);
    expect(await ctx.store.getLock('reports/nightly')).toMatchObject({ holder: 'holder-b', token: tokenB, held: false });
  });
});
