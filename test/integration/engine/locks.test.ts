/**
 * The public locks API (`createLocks`, protocol 10 in ARCHITECTURE.md) on every dialect:
 *
 * - inputs are checked before the database is touched, with STOKER_LOCK_* codes;
 * - `withLock` renews the lease while `fn` runs (others stay out well past one TTL),
 *   releases it afterwards, waits for a held lock only as long as asked
 *   (STOKER_LOCK_HELD), and fences itself: `fn`'s signal is aborted with STOKER_LOCK_LOST
 *   when a renewal is refused (taken over) or when none succeeds within 90 % of the TTL by
 *   the process's monotonic clock (the store is gone), and `withLock` then rejects with
 *   STOKER_LOCK_LOST without touching the successor's lock.
 *
 * The two-process SIGSTOP version is test/chaos/locks-zombie.test.ts.
 */
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { expect, it } from 'vitest';
import { createLocks, type LockContext } from '../../../src/engine/locks.js';
import { ValidationError, isStokerError } from '../../../src/errors.js';
import { describeEachDialect } from '../../helpers/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error,
  );
}

/** Resolves with the abort reason once `signal` aborts. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

await describeEachDialect('locks API', (ctx) => {
  it('checks names, holders, durations and tokens before touching the database', async () => {
    const locks = createLocks(ctx.store);
    const cases: [Promise<unknown>, string, Record<string, unknown>?][] = [
      [locks.acquire('', { ttlMs: 1000 }), 'STOKER_LOCK_NAME_INVALID'],
      [locks.acquire('has space', { ttlMs: 1000 }), 'STOKER_LOCK_NAME_INVALID'],
      [locks.acquire('-leading-dash', { ttlMs: 1000 }), 'STOKER_LOCK_NAME_INVALID'],
      [locks.acquire('x'.repeat(256), { ttlMs: 1000 }), 'STOKER_LOCK_NAME_INVALID'],
      [locks.acquire('ok', { ttlMs: 1000, holder: '' }), 'STOKER_LOCK_HOLDER_INVALID'],
      [locks.acquire('ok', { ttlMs: 1000, holder: 'a\nb' }), 'STOKER_LOCK_HOLDER_INVALID'],
      [locks.acquire('ok', { ttlMs: 99 }), 'STOKER_LOCK_TTL_INVALID', { option: 'ttlMs', min: 100 }],
      [locks.acquire('ok', { ttlMs: 1000.5 }), 'STOKER_LOCK_TTL_INVALID'],
      [locks.acquire('ok', { ttlMs: 86_400_001 }), 'STOKER_LOCK_TTL_INVALID'],
      [locks.withLock('ok', { ttlMs: 1000, renewMs: 600 }, () => 1), 'STOKER_LOCK_TTL_INVALID', { option: 'renewMs', max: 500 }],
      [locks.withLock('ok', { ttlMs: 1000, waitMs: -1 }, () => 1), 'STOKER_LOCK_TTL_INVALID', { option: 'waitMs' }],
      [locks.extend('ok', 0, 1000), 'STOKER_LOCK_TOKEN_INVALID'],
      [locks.release('ok', 1.5), 'STOKER_LOCK_TOKEN_INVALID'],
    ];
    for (const [p, code, details] of cases) {
      const e = await rejection(p);
      expect(e, code).toBeInstanceOf(ValidationError);
      expect(e.code).toBe(code);
      if (details) expect(e.details).toMatchObject(details);
    }
    expect(() => createLocks(ctx.store, { holder: 'x'.repeat(256) })).toThrow(
      expect.objectContaining({ code: 'STOKER_LOCK_HOLDER_INVALID' }),
    );
    // nothing reached the table
    expect(await ctx.store.getLock('ok')).toBeNull();
  });

  it('acquire, extend and release by token; the default holder is <hostname>:<pid>', async () => {
    const locks = createLocks(ctx.store);
    const lock = await locks.acquire('api/basic', { ttlMs: 1000 });
    expect(lock).toMatchObject({ name: 'api/basic', holder: `${hostname()}:${process.pid}`, token: 1 });
    expect(await locks.acquire('api/basic', { ttlMs: 1000, holder: 'other' })).toBeNull();
    expect(await locks.extend('api/basic', lock!.token, 20_000)).toBe(true);
    expect((await locks.get('api/basic'))!.remainingMs).toBeGreaterThan(19_000);
    expect(await locks.release('api/basic', lock!.token)).toBe(true);
    expect(await locks.release('api/basic', lock!.token)).toBe(false);
    expect((await locks.acquire('api/basic', { ttlMs: 1000, holder: 'other' }))!.token).toBe(2);
    expect((await locks.list({ heldOnly: true })).map((l) => l.name)).toContain('api/basic');
  });

  it('withLock hands fn the token and a live signal, returns its value and releases the lock', async () => {
    const locks = createLocks(ctx.store, { holder: 'worker-1' });
    let seen: LockContext | null = null;
    const value = await locks.withLock('api/with', { ttlMs: 5_000 }, async (lock) => {
      seen = lock;
      expect(await ctx.store.getLock('api/with')).toMatchObject({ holder: 'worker-1', token: lock.token, held: true });
      return 'done';
    });
    expect(value).toBe('done');
    expect(seen).toMatchObject({ name: 'api/with', holder: 'worker-1', token: 1 });
    expect(seen!.signal.aborted).toBe(false);
    expect(await ctx.store.getLock('api/with')).toMatchObject({ token: 1, held: false });

    // fn's own failure passes through, and the lock is released all the same
    const boom = new Error('boom');
    expect(
      await rejection(
        locks.withLock('api/with', { ttlMs: 5_000 }, () => {
          throw boom;
        }),
      ),
    ).toBe(boom);
    expect(await ctx.store.getLock('api/with')).toMatchObject({ token: 2, held: false });
  });

  it('withLock renews the lease while fn runs: others stay out for several TTLs', async () => {
    const locks = createLocks(ctx.store);
    const ttlMs = 500;
    const refused: boolean[] = [];
    await locks.withLock('api/renewed', { ttlMs }, async ({ token, signal }) => {
      const until = performance.now() + 4 * ttlMs;
      while (performance.now() < until) {
        refused.push((await ctx.store.acquireLock('api/renewed', 'intruder', 60_000)) === null);
        expect((await ctx.store.getLock('api/renewed'))!.token).toBe(token);
        await sleep(40);
      }
      expect(signal.aborted).toBe(false);
    });
    expect(refused.length).toBeGreaterThan(10);
    expect(refused.every(Boolean)).toBe(true);
    expect(await ctx.store.getLock('api/renewed')).toMatchObject({ token: 1, held: false });
  });

  it('withLock on a held lock fails with STOKER_LOCK_HELD at once, or waits until the lease runs out', async () => {
    const locks = createLocks(ctx.store, { holder: 'waiter' });
    const other = await ctx.store.acquireLock('api/busy', 'first-holder', 600);
    const e = await rejection(locks.withLock('api/busy', { ttlMs: 1000 }, () => 'never'));
    expect(isStokerError(e)).toBe(true);
    expect(e.code).toBe('STOKER_LOCK_HELD');
    expect(e.details).toMatchObject({ name: 'api/busy', holder: 'first-holder', token: other!.token });

    const t0 = performance.now();
    const token = await locks.withLock('api/busy', { ttlMs: 1000, waitMs: 5_000, pollMs: 20 }, ({ token }) => token);
    expect(token).toBe(other!.token + 1);
    expect(performance.now() - t0).toBeGreaterThan(300); // it really waited for the first lease

    await ctx.store.acquireLock('api/busy', 'first-holder', 60_000);
    const t1 = performance.now();
    expect((await rejection(locks.withLock('api/busy', { ttlMs: 1000, waitMs: 300, pollMs: 20 }, () => 0))).code).toBe('STOKER_LOCK_HELD');
    expect(performance.now() - t1).toBeGreaterThanOrEqual(290);
  });

  it('a lock taken over while fn runs: fn’s signal aborts with STOKER_LOCK_LOST and the successor keeps its lock', async () => {
    const locks = createLocks(ctx.store, { holder: 'victim' });
    let successorToken = 0;
    const e = await rejection(
      locks.withLock('api/stolen', { ttlMs: 1_000, renewMs: 100 }, async ({ token, signal }) => {
        // the lease "runs out" by the database clock, and someone else acquires it
        await ctx.db.exec(
          ctx.dialect === 'sqlite'
            ? `UPDATE stoker_locks SET expires_at = CAST(unixepoch('subsec') * 1000 AS INTEGER) - 1 WHERE name = 'api/stolen'`
            : ctx.dialect === 'postgres'
              ? `UPDATE stoker_locks SET expires_at = now() - interval '1 millisecond' WHERE name = 'api/stolen'`
              : `UPDATE stoker_locks SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 MICROSECOND WHERE name = 'api/stolen'`,
        );
        successorToken = (await ctx.store.acquireLock('api/stolen', 'successor', 60_000))!.token;
        expect(successorToken).toBe(token + 1);
        const reason = (await aborted(signal)) as { code?: string };
        expect(reason.code).toBe('STOKER_LOCK_LOST');
        return 'finished anyway';
      }),
    );
    // withLock does not pretend fn ran under the lock
    expect(e.code).toBe('STOKER_LOCK_LOST');
    expect(e.details).toMatchObject({ name: 'api/stolen', token: successorToken - 1 });
    // its release at the end was fenced by the token
    expect(await ctx.store.getLock('api/stolen')).toMatchObject({ holder: 'successor', token: successorToken, held: true });
  });

  it('no renewal within 90 % of the TTL (the store is gone): the holder fences itself by its monotonic clock', async () => {
    const own = await ctx.db.open();
    const locks = createLocks(own, { holder: 'cut-off' });
    const ttlMs = 600;
    let abortedAfter = 0;
    const t0 = performance.now();
    const e = await rejection(
      locks.withLock('api/cut-off', { ttlMs }, async ({ signal }) => {
        await own.close(); // every renewal now fails
        const reason = (await aborted(signal)) as { code?: string; message: string };
        abortedAfter = performance.now() - t0;
        expect(reason.code).toBe('STOKER_LOCK_LOST');
        expect(reason.message).toMatch(/monotonic clock/);
      }),
    );
    expect(e.code).toBe('STOKER_LOCK_LOST');
    // 0.9 × TTL from before the acquire was sent; no earlier, and not much later
    expect(abortedAfter).toBeGreaterThanOrEqual(0.9 * ttlMs - 60);
    expect(abortedAfter).toBeLessThan(3 * ttlMs); // generous: timers run late on a busy machine
    // the release could not be sent either: the lock is freed by its lease, by the database clock
    const row = await ctx.store.getLock('api/cut-off');
    expect(row).toMatchObject({ holder: 'cut-off', token: 1, releasedAt: null });
    await sleep(Math.max(0, row!.remainingMs) + 50);
    expect((await ctx.store.acquireLock('api/cut-off', 'next', 1_000))!.token).toBe(2);
  });

  it('the caller’s signal stops the wait, and aborts fn (the lock is then released normally)', async () => {
    const locks = createLocks(ctx.store);
    await ctx.store.acquireLock('api/cancel', 'blocker', 60_000);
    const waiting = new AbortController();
    const waited = rejection(locks.withLock('api/cancel', { ttlMs: 1_000, waitMs: 30_000, pollMs: 20, signal: waiting.signal }, () => 0));
    await sleep(100);
    waiting.abort(new Error('caller gave up'));
    expect((await waited).message).toBe('caller gave up');

    const running = new AbortController();
    const result = await locks.withLock('api/cancel-2', { ttlMs: 1_000, signal: running.signal }, async ({ signal }) => {
      setTimeout(() => running.abort(new Error('shutting down')), 50);
      return ((await aborted(signal)) as Error).message;
    });
    expect(result).toBe('shutting down');
    expect(await ctx.store.getLock('api/cancel-2')).toMatchObject({ token: 1, held: false });
  });
});
