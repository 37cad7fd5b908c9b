/**
 * The locks of protocol 10 (ARCHITECTURE.md; docs/locks.md) on PostgreSQL: each operation is one autocommit
 * statement, run by {@link PostgresStore} through its usual query path (errors wrapped,
 * statement named in them, values never).
 *
 * Times are `timestamptz` from `now()`, the database clock, as for engine leases. The
 * acquire is `INSERT … ON CONFLICT DO UPDATE … WHERE`: PostgreSQL guarantees an insert or
 * an update for it even under concurrency, and under READ COMMITTED the WHERE is checked
 * against the latest committed row after waiting for its lock, so two acquirers of one
 * free lock never both win.
 *
 * @example
 * ```ts
 * const locks = new PostgresLockStatements((purpose, text, params) => query(purpose, text, params));
 * const got = await locks.acquireLock('nightly-report', 'host-a:4121', 30_000);
 * ```
 */
import { acquiredLockFromRow, lockFromRow, lockListLimit, lockTtl } from '../lock-rows.js';
import type { AcquiredLock, LockFilter, LockRow, LockStore } from '../store.js';

type Raw = Record<string, unknown>;

/** Runs one statement (`{p}` is the table prefix) and returns its rows; `purpose` names it in errors. */
export type PostgresLockQuery = (purpose: string, text: string, params: readonly unknown[]) => Promise<Raw[]>;

const HELD = `(released_at IS NULL AND expires_at > now())`;
const LOCK_COLUMNS = `name, holder, token, acquired_at, expires_at, released_at, ${HELD} AS held,
  CASE WHEN ${HELD} THEN ceil(extract(epoch FROM expires_at - now()) * 1000)::bigint ELSE 0 END AS remaining_ms`;

/** Acquire: insert with token 1, or take over a released or expired row and bump its token. */
const ACQUIRE = `INSERT INTO {p}locks AS l (name, holder, token, acquired_at, expires_at, released_at)
  VALUES ($1, $2, 1, now(), now() + $3::bigint * interval '1 millisecond', NULL)
  ON CONFLICT (name) DO UPDATE SET
    holder = EXCLUDED.holder, token = l.token + 1, acquired_at = EXCLUDED.acquired_at,
    expires_at = EXCLUDED.expires_at, released_at = NULL
  WHERE l.released_at IS NOT NULL OR l.expires_at <= now()
  RETURNING l.token, l.expires_at`;

/** Extend: only the current token, only while the lease has not run out. */
const EXTEND = `UPDATE {p}locks SET expires_at = now() + $3::bigint * interval '1 millisecond'
  WHERE name = $1 AND token = $2 AND released_at IS NULL AND expires_at > now()
  RETURNING 1 AS ok`;

/** Release: only the current token; the row and its token stay for the next acquire. */
const RELEASE = `UPDATE {p}locks SET released_at = now() WHERE name = $1 AND token = $2 AND released_at IS NULL RETURNING 1 AS ok`;

/** Lock statements over the store's query function. */
export class PostgresLockStatements implements LockStore {
  constructor(private readonly query: PostgresLockQuery) {}

  async acquireLock(name: string, holder: string, ttlMs: number): Promise<AcquiredLock | null> {
    const rows = await this.query('acquire a lock', ACQUIRE, [name, holder, lockTtl(ttlMs)]);
    return rows[0] ? acquiredLockFromRow(rows[0]) : null;
  }

  async extendLock(name: string, token: number, ttlMs: number): Promise<boolean> {
    return (await this.query('extend a lock', EXTEND, [name, token, lockTtl(ttlMs)])).length === 1;
  }

  async releaseLock(name: string, token: number): Promise<boolean> {
    return (await this.query('release a lock', RELEASE, [name, token])).length === 1;
  }

  async getLock(name: string): Promise<LockRow | null> {
    const rows = await this.query('read a lock', `SELECT ${LOCK_COLUMNS} FROM {p}locks WHERE name = $1`, [name]);
    return rows[0] ? lockFromRow(rows[0]) : null;
  }

  async listLocks(filter: LockFilter = {}): Promise<LockRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.heldOnly) where.push(HELD);
    if (filter.after !== undefined) {
      params.push(filter.after);
      where.push(`name > $${params.length}`);
    }
    params.push(lockListLimit(filter.limit));
    const text = `SELECT ${LOCK_COLUMNS} FROM {p}locks ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY name LIMIT $${params.length}`;
    return (await this.query('list locks', text, params)).map(lockFromRow);
  }
}
