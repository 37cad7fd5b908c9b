/**
 * The locks of DESIGN.md protocol 10 on SQLite: one statement each, run by
 * {@link SqliteStore} inside its usual `BEGIN IMMEDIATE` write (or a read for inspection).
 *
 * Times are INTEGER milliseconds by SQLite's clock, like every other table here.
 * `unixepoch('subsec')` is read once per statement (SQLite keeps 'now' fixed for one
 * `sqlite3_step`), so the expiry test and the new expiry in one acquire agree.
 *
 * @example
 * ```ts
 * const locks = new SqliteLockStatements((text) => db.prepare(text.replaceAll('{p}', 'stoker_')));
 * const got = locks.acquire('nightly-report', 'host-a:4121', 30_000); // { token: 1, expiresAt } or null
 * ```
 */
import type Database from 'better-sqlite3';
import { acquiredLockFromRow, lockFromRow, lockListLimit, lockTtl } from '../lock-rows.js';
import type { AcquiredLock, LockFilter, LockRow } from '../store.js';

/** The database clock in ms, as sqlite-store.ts reads it. */
const NOW = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`;

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

type Raw = Record<string, unknown>;

/** Lock statements over a statement source (the store's prepared-statement cache, `{p}` resolved). */
export class SqliteLockStatements {
  constructor(private readonly stmt: (text: string) => Database.Statement) {}

  acquire(name: string, holder: string, ttlMs: number): AcquiredLock | null {
    const row = this.stmt(ACQUIRE).get(name, holder, lockTtl(ttlMs)) as Raw | undefined;
    return row ? acquiredLockFromRow(row) : null;
  }

  extend(name: string, token: number, ttlMs: number): boolean {
    return this.stmt(EXTEND).run(lockTtl(ttlMs), name, token).changes === 1;
  }

  release(name: string, token: number): boolean {
    return this.stmt(RELEASE).run(name, token).changes === 1;
  }

  get(name: string): LockRow | null {
    const row = this.stmt(`SELECT ${LOCK_COLUMNS} FROM {p}locks WHERE name = ?`).get(name) as Raw | undefined;
    return row ? lockFromRow(row) : null;
  }

  list(filter: LockFilter = {}): LockRow[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.heldOnly) where.push(`released_at IS NULL AND expires_at > ${NOW}`);
    if (filter.after !== undefined) {
      where.push('name > ?');
      params.push(filter.after);
    }
    const text = `SELECT ${LOCK_COLUMNS} FROM {p}locks ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY name LIMIT ?`;
    return (this.stmt(text).all(...params, lockListLimit(filter.limit)) as Raw[]).map(lockFromRow);
  }
}
