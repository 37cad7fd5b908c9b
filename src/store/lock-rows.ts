/**
 * Row mapping for the locks table (protocol 10, ARCHITECTURE.md), shared by the three dialects'
 * `locks.ts`. Every lock statement returns the same column names, so one mapper serves all:
 * `held` and `remaining_ms` are computed by the database, against its own clock.
 */
import { dateColumn } from './rows.js';
import type { AcquiredLock, LockRow } from './store.js';

type Raw = Record<string, unknown>;

/** Most rows one {@link Store.listLocks} call returns, whatever `limit` asks for. */
export const MAX_LOCK_LIST = 1000;

/** `limit` of a lock listing, clamped to 1…{@link MAX_LOCK_LIST} (default 100). */
export function lockListLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return 100;
  return Math.min(MAX_LOCK_LIST, Math.max(1, Math.trunc(limit)));
}

/** The TTL bound into SQL: whole milliseconds, at least 1. */
export function lockTtl(ttlMs: number): number {
  return Math.max(1, Math.round(ttlMs));
}

export function acquiredLockFromRow(r: Raw): AcquiredLock {
  return { token: Number(r.token), expiresAt: dateColumn(r.expires_at) };
}

export function lockFromRow(r: Raw): LockRow {
  const held = r.held === true || Number(r.held) === 1;
  return {
    name: String(r.name),
    holder: String(r.holder),
    token: Number(r.token),
    acquiredAt: dateColumn(r.acquired_at),
    expiresAt: dateColumn(r.expires_at),
    releasedAt: r.released_at === null || r.released_at === undefined ? null : dateColumn(r.released_at),
    held,
    remainingMs: held ? Math.max(0, Number(r.remaining_ms)) : 0,
  };
}
