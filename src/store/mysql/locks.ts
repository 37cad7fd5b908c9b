/**
 * The locks of protocol 10 (ARCHITECTURE.md; docs/locks.md) on MySQL 8 / MariaDB 10.6+,
 * run through the MySQL driver's connection handling (session settings, error wrapping,
 * retry of the whole transaction on a deadlock or lock wait timeout).
 *
 * Times are `DATETIME(6)` from `NOW(6)`, the database clock, as for engine leases.
 * Neither server has `UPDATE … RETURNING`, so the acquire is one short transaction:
 *
 * 1. `INSERT … ON DUPLICATE KEY UPDATE` makes sure the row exists — a new one as a
 *    *released* lock with token 0 — and takes its exclusive row lock;
 * 2. the conditional `UPDATE` takes it over if it is released or expired, bumping the token;
 *    sessions run READ COMMITTED, so it judges the latest committed row (docs/reliability.md R4);
 * 3. when it matched, the row (still locked by us) is read back for the token and expiry.
 *
 * Extend and release are single conditional UPDATEs. Connections use FOUND_ROWS, so the
 * count is of *matched* rows and 0 always means "not yours any more".
 *
 * @example
 * ```ts
 * const locks = new MysqlLockStatements(driver);
 * const got = await locks.acquireLock('nightly-report', 'host-a:4121', 30_000);
 * ```
 */
import { acquiredLockFromRow, lockFromRow, lockListLimit, lockTtl } from '../lock-rows.js';
import type { SqlDriver } from '../sql/driver.js';
import type { AcquiredLock, LockFilter, LockRow, LockStore } from '../store.js';

const HELD = `(released_at IS NULL AND expires_at > NOW(6))`;
const LOCK_COLUMNS = `name, holder, token, acquired_at, expires_at, released_at, ${HELD} AS held,
  CASE WHEN ${HELD} THEN CEIL(TIMESTAMPDIFF(MICROSECOND, NOW(6), expires_at) / 1000) ELSE 0 END AS remaining_ms`;

const ENSURE_ROW = `INSERT INTO {p}locks (name, holder, token, acquired_at, expires_at, released_at)
  VALUES (?, ?, 0, NOW(6), NOW(6), NOW(6))
  ON DUPLICATE KEY UPDATE token = token`;

const TAKE_OVER = `UPDATE {p}locks SET holder = ?, token = token + 1, acquired_at = NOW(6),
    expires_at = DATE_ADD(NOW(6), INTERVAL ? MICROSECOND), released_at = NULL
  WHERE name = ? AND (released_at IS NOT NULL OR expires_at <= NOW(6))`;

/** Extend: only the current token, only while the lease has not run out. */
const EXTEND = `UPDATE {p}locks SET expires_at = DATE_ADD(NOW(6), INTERVAL ? MICROSECOND)
  WHERE name = ? AND token = ? AND released_at IS NULL AND expires_at > NOW(6)`;

/** Release: only the current token; the row and its token stay for the next acquire. */
const RELEASE = `UPDATE {p}locks SET released_at = NOW(6) WHERE name = ? AND token = ? AND released_at IS NULL`;

/** Lock statements over the store's driver. */
export class MysqlLockStatements implements LockStore {
  constructor(private readonly runner: Pick<SqlDriver, 'read' | 'transaction'>) {}

  acquireLock(name: string, holder: string, ttlMs: number): Promise<AcquiredLock | null> {
    return this.runner.transaction('acquire a lock', async (q) => {
      await q.exec('acquire a lock: ensure the row', ENSURE_ROW, [name, holder]);
      const taken = await q.exec('acquire a lock: take it', TAKE_OVER, [holder, lockTtl(ttlMs) * 1000, name]);
      if (taken !== 1) return null;
      const rows = await q.rows('acquire a lock: read it back', `SELECT token, expires_at FROM {p}locks WHERE name = ?`, [name]);
      return rows[0] ? acquiredLockFromRow(rows[0]) : null;
    });
  }

  extendLock(name: string, token: number, ttlMs: number): Promise<boolean> {
    return this.runner.read(
      'extend a lock',
      async (q) => (await q.exec('extend a lock', EXTEND, [lockTtl(ttlMs) * 1000, name, token])) === 1,
    );
  }

  releaseLock(name: string, token: number): Promise<boolean> {
    return this.runner.read('release a lock', async (q) => (await q.exec('release a lock', RELEASE, [name, token])) === 1);
  }

  getLock(name: string): Promise<LockRow | null> {
    return this.runner.read('read a lock', async (q) => {
      const rows = await q.rows('read a lock', `SELECT ${LOCK_COLUMNS} FROM {p}locks WHERE name = ?`, [name]);
      return rows[0] ? lockFromRow(rows[0]) : null;
    });
  }

  listLocks(filter: LockFilter = {}): Promise<LockRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.heldOnly) where.push(HELD);
    if (filter.after !== undefined) {
      where.push('name > ?');
      params.push(filter.after);
    }
    params.push(lockListLimit(filter.limit));
    const text = `SELECT ${LOCK_COLUMNS} FROM {p}locks ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY name LIMIT ?`;
    return this.runner.read('list locks', async (q) => (await q.rows('list locks', text, params)).map(lockFromRow));
  }
}
