/**
 * The lock statements of the Store port (protocol 10 in ARCHITECTURE.md), run unchanged against
 * every dialect:
 *
 * - acquire is refused while the lease runs, to everyone (the holder's name grants nothing),
 *   and succeeds once the lock is released or has expired by the database clock;
 * - every acquire bumps the token: tokens strictly increase across holders, stores and
 *   re-acquires, and are never reused (rows stay after release);
 * - extend and release are conditional on the token: a stale holder can neither extend nor
 *   release the next holder's lock, and an expired lease is never revived;
 * - expiry is `now() + ttl` by the database clock and is judged on the stored time against
 *   the database's `now()` (moving `expires_at` with the database's own clock moves it);
 * - concurrent acquirers of one free lock: exactly one wins.
 *
 * Each test uses lock names of its own, so the tests share one database.
 */
import { expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { describeEachDialect, type Dialect } from '../../helpers/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SQL, run outside the store, that moves a lock's expiry by `deltaMs` from the database's own clock. */
function moveExpirySql(dialect: Dialect, table: string, name: string, deltaMs: number): string {
  switch (dialect) {
    case 'sqlite':
      return `UPDATE ${table} SET expires_at = CAST(unixepoch('subsec') * 1000 AS INTEGER) + (${deltaMs}) WHERE name = '${name}'`;
    case 'postgres':
      return `UPDATE ${table} SET expires_at = now() + (${deltaMs}) * interval '1 millisecond' WHERE name = '${name}'`;
    case 'mysql':
      // the admin session's time zone is the server's: the stored times are UTC
      return `UPDATE ${table} SET expires_at = DATE_ADD(UTC_TIMESTAMP(6), INTERVAL ${deltaMs * 1000} MICROSECOND) WHERE name = '${name}'`;
  }
}

await describeEachDialect('store locks', (ctx) => {
  const s = (): Store => ctx.store;

  it('migration 3 creates the locks table', async () => {
    const rows = await ctx.db.exec(`SELECT version, name FROM stoker_schema_migrations WHERE module = 'core' AND version = 3`);
    expect(rows.map((r) => [Number(r.version), String(r.name)])).toEqual([[3, 'locks']]);
  });

  it('a first acquire gets token 1 and a lease of ttl from now by the database clock', async () => {
    const before = await s().now();
    const got = await s().acquireLock('first', 'holder-a', 5_000);
    const after = await s().now();
    expect(got).not.toBeNull();
    expect(got!.token).toBe(1);
    // JS dates have ms resolution; PostgreSQL and MySQL keep µs
    expect(got!.expiresAt.getTime()).toBeGreaterThanOrEqual(before.getTime() + 5_000 - 1);
    expect(got!.expiresAt.getTime()).toBeLessThanOrEqual(after.getTime() + 5_000 + 1);

    const row = await s().getLock('first');
    expect(row).toMatchObject({ name: 'first', holder: 'holder-a', token: 1, held: true, releasedAt: null });
    expect(row!.expiresAt.getTime()).toBe(got!.expiresAt.getTime());
    expect(row!.remainingMs).toBeGreaterThan(3_000);
    expect(row!.remainingMs).toBeLessThanOrEqual(5_000);
    expect(await s().getLock('never-acquired')).toBeNull();
  });

  it('a held lock is refused to everyone, its own holder included, until released', async () => {
    const a = await s().acquireLock('contended', 'a', 60_000);
    expect(a!.token).toBe(1);
    expect(await s().acquireLock('contended', 'b', 60_000)).toBeNull();
    expect(await s().acquireLock('contended', 'a', 60_000)).toBeNull();
    expect(await s().getLock('contended')).toMatchObject({ holder: 'a', token: 1, held: true });

    expect(await s().releaseLock('contended', 2)).toBe(false); // a token nobody got
    expect(await s().releaseLock('contended', 1)).toBe(true);
    expect(await s().releaseLock('contended', 1)).toBe(false); // already released
    const released = await s().getLock('contended');
    expect(released).toMatchObject({ holder: 'a', token: 1, held: false, remainingMs: 0 });
    expect(released!.releasedAt).toBeInstanceOf(Date);

    const b = await s().acquireLock('contended', 'b', 60_000);
    expect(b!.token).toBe(2);
    expect(await s().getLock('contended')).toMatchObject({ holder: 'b', token: 2, held: true, releasedAt: null });
  });

  it('tokens strictly increase across holders, stores and re-acquires, and are never reused', async () => {
    const other = await ctx.db.open(); // another "process" on the same tables
    const tokens: number[] = [];
    for (let i = 0; i < 8; i++) {
      const store = i % 2 === 0 ? s() : other;
      const got = await store.acquireLock('sequence', `holder-${i % 3}`, 60_000);
      expect(got, `round ${i}`).not.toBeNull();
      tokens.push(got!.token);
      if (i % 3 === 2) {
        // sometimes the lease runs out instead of being released: the token still moves on
        await ctx.db.exec(moveExpirySql(ctx.dialect, 'stoker_locks', 'sequence', -1_000));
      } else {
        expect(await store.releaseLock('sequence', got!.token)).toBe(true);
      }
    }
    expect(tokens).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('an expired lease is free by the database clock, and the next acquire bumps the token', async () => {
    const a = await s().acquireLock('expiring', 'a', 300);
    expect(await s().acquireLock('expiring', 'b', 300)).toBeNull();
    await sleep(450);
    expect(await s().getLock('expiring')).toMatchObject({ holder: 'a', token: a!.token, held: false, remainingMs: 0, releasedAt: null });
    const b = await s().acquireLock('expiring', 'b', 60_000);
    expect(b!.token).toBe(a!.token + 1);
  });

  it('expiry is judged on the stored time against the database now(), not on the TTL the caller remembers', async () => {
    // a long lease made to run out by the database's clock is free at once ...
    const a = await s().acquireLock('moved-back', 'a', 3_600_000);
    await ctx.db.exec(moveExpirySql(ctx.dialect, 'stoker_locks', 'moved-back', -1_000));
    expect(await s().getLock('moved-back')).toMatchObject({ held: false });
    expect((await s().acquireLock('moved-back', 'b', 60_000))!.token).toBe(a!.token + 1);

    // ... and a short lease moved an hour ahead is still held after its TTL has passed
    const c = await s().acquireLock('moved-ahead', 'c', 200);
    await ctx.db.exec(moveExpirySql(ctx.dialect, 'stoker_locks', 'moved-ahead', 3_600_000));
    await sleep(300);
    expect(await s().acquireLock('moved-ahead', 'd', 60_000)).toBeNull();
    const row = await s().getLock('moved-ahead');
    expect(row).toMatchObject({ holder: 'c', token: c!.token, held: true });
    expect(row!.remainingMs).toBeGreaterThan(3_500_000);
  });

  it('extend moves the expiry for the current token only, and never revives an expired lease', async () => {
    const a = await s().acquireLock('extended', 'a', 1_000);
    await sleep(50);
    expect(await s().extendLock('extended', a!.token, 10_000)).toBe(true);
    const row = await s().getLock('extended');
    expect(row!.expiresAt.getTime()).toBeGreaterThanOrEqual(a!.expiresAt.getTime() + 9_000);
    expect(row!.remainingMs).toBeGreaterThan(9_000);
    expect(await s().extendLock('extended', a!.token + 1, 10_000)).toBe(false);
    expect(await s().releaseLock('extended', a!.token)).toBe(true);
    expect(await s().extendLock('extended', a!.token, 10_000)).toBe(false); // released

    const b = await s().acquireLock('lapsed', 'b', 200);
    await sleep(300);
    expect(await s().extendLock('lapsed', b!.token, 10_000)).toBe(false);
    expect(await s().getLock('lapsed')).toMatchObject({ token: b!.token, held: false });
  });

  it('a stale token can neither extend nor release the next holder’s lock', async () => {
    const stale = await s().acquireLock('fenced', 'zombie', 200);
    await sleep(300); // the zombie "froze" past its TTL
    const next = await s().acquireLock('fenced', 'successor', 60_000);
    expect(next!.token).toBe(stale!.token + 1);

    expect(await s().extendLock('fenced', stale!.token, 60_000)).toBe(false);
    expect(await s().releaseLock('fenced', stale!.token)).toBe(false);
    const row = await s().getLock('fenced');
    expect(row).toMatchObject({ holder: 'successor', token: next!.token, held: true, releasedAt: null });
    expect(row!.expiresAt.getTime()).toBe(next!.expiresAt.getTime());
  });

  it('concurrent acquirers of one free lock: exactly one wins, with the next token', async () => {
    // PostgreSQL and MySQL: two pools, many connections, truly concurrent statements.
    // SQLite has one writer: each store serialises its own callers.
    const stores = s().capabilities.singleWriter ? [s()] : [s(), await ctx.db.open({ poolSize: 10 })];
    for (const expected of [1, 2, 3]) {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => stores[i % stores.length]!.acquireLock('race', `racer-${i}`, 60_000)),
      );
      const winners = results.filter((r) => r !== null);
      expect(winners, `round ${expected}`).toHaveLength(1);
      expect(winners[0]!.token).toBe(expected);
      expect(await s().releaseLock('race', expected)).toBe(true);
    }
  });

  it('lists locks in name order, held ones only on request, with keyset pagination', async () => {
    const own = await ctx.db.open({ tablePrefix: 'lst_' });
    for (const name of ['b/2', 'a/1', 'c/3']) await own.acquireLock(name, `owner of ${name}`, 60_000);
    await own.releaseLock('b/2', 1);

    const all = await own.listLocks();
    expect(all.map((l) => [l.name, l.held])).toEqual([
      ['a/1', true],
      ['b/2', false],
      ['c/3', true],
    ]);
    expect(all[0]).toMatchObject({ holder: 'owner of a/1', token: 1, releasedAt: null });
    expect((await own.listLocks({ heldOnly: true })).map((l) => l.name)).toEqual(['a/1', 'c/3']);
    expect((await own.listLocks({ after: 'a/1', limit: 1 })).map((l) => l.name)).toEqual(['b/2']);
    expect((await own.listLocks({ after: 'c/3' })).map((l) => l.name)).toEqual([]);
  });
});
