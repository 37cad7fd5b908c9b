/**
 * The locks of protocol 10 (ARCHITECTURE.md; docs/locks.md) on SQLite: one statement each,
 * run inside the store's usual `BEGIN IMMEDIATE` write (or a read for inspection).
 *
 * Times are INTEGER milliseconds by SQLite's clock, like every other table here.
 * `unixepoch('subsec')` is read once per statement (SQLite keeps 'now' fixed for one
 * `sqlite3_step`), so the expiry test and the new expiry in one acquire agree.
 *
 * @example
 * ```ts
 * const locks = new SqliteLockStatements(driver);
 * const got = await locks.acquireLock('nightly-report', 'host-a:4121', 30_000); // { token: 1, expiresAt } or null
 * ```
 */
import { acquiredLockFromRow, lockFromRow, lockListLimit, lockTtl } from '../lock-rows.js';
import { SQLITE } from '../sql/dialects.js';
import type { SqlDriver } from '../sql/driver.js';
import type { AcquiredLock, LockFilter, LockRow, LockStore } from '../store.js';

/** The database clock in ms. */
const NOW = SQLITE.now;

const LOCK_COLUMNS = `name, holder, token, acquired_at, expires_at, released_at,
  (released_at IS NULL AND expires_at > ${NOW}) AS held,
  CASE WHEN released_at IS NULL AND expires_at > ${NOW} THEN expires_at - ${NOW} ELSE 0 END AS remaining_ms`;

/**
 * Acquire: insert the lock with token 1, or take over a released or expired row and bump
 * its token. The upsert's WHERE leaves a held row alone, and then RETURNING yields nothing.
 */
const ACQUIRE = `INSERT INTO {p}locks (name, holder, token, acquired_at, expires_at, released_at)
  VALUES (?, ?, 1, ${NOW}, ${NOW} + ?, NULL)
  ON CONFLICT (name) DO UPDATE SET
    holder = excluded.holder, token = token + 1, acquired_at = excluded.acquired_at,
    expires_at = excluded.expires_at, released_at = NULL
  WHERE released_at IS NOT NULL OR expires_at <= excluded.acquired_at
  RETURNING token, expires_at`;

/** Extend: only the current token, only while the lease has not run out. */
const EXTEND = `UPDATE {p}locks SET expires_at = ${NOW} + ?
  WHERE name = ? AND token = ? AND released_at IS NULL AND expires_at > ${NOW}`;

/** Release: only the current token; the row and its token stay for the next acquire. */
const RELEASE = `UPDATE {p}locks SET released_at = ${NOW} WHERE name = ? AND token = ? AND released_at IS NULL`;

/** Lock statements over the store's driver: writes in `BEGIN IMMEDIATE`, reads behind its mutex. */
export class SqliteLockStatements implements LockStore {
  constructor(private readonly driver: Pick<SqlDriver, 'read' | 'write'>) {}

  acquireLock(name: string, holder: string, ttlMs: number): Promise<AcquiredLock | null> {
    return this.driver.write('acquire a lock', async (s) => {
      const row = await s.row('acquire a lock', ACQUIRE, [name, holder, lockTtl(ttlMs)]);
      return row ? acquiredLockFromRow(row) : null;
    });
  }

  extendLock(name: string, token: number, ttlMs: number): Promise<boolean> {
    return this.driver.write('extend a lock', async (s) => (await s.exec('extend a lock', EXTEND, [lockTtl(ttlMs), name, token])) === 1);
  }

  releaseLock(name: string, token: number): Promise<boolean> {
    return this.driver.write('release a lock', async (s) => (await s.exec('release a lock', RELEASE, [name, token])) === 1);
  }

  getLock(name: string): Promise<LockRow | null> {
    return this.driver.read('read a lock', async (s) => {
      const row = await s.row('read a lock', `SELECT ${LOCK_COLUMNS} FROM {p}locks WHERE name = ?`, [name]);
      return row ? lockFromRow(row) : null;
    });
  }

  listLocks(filter: LockFilter = {}): Promise<LockRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.heldOnly) where.push(`released_at IS NULL AND expires_at > ${NOW}`);
    if (filter.after !== undefined) {
      where.push('name > ?');
      params.push(filter.after);
    }
    const text = `SELECT ${LOCK_COLUMNS} FROM {p}locks ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY name LIMIT ?`;
    return this.driver.read('list locks', async (s) =>
      (await s.rows('list locks', text, [...params, lockListLimit(filter.limit)])).map(lockFromRow),
    );
  }
}
