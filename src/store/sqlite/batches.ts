/**
 * The statements SQLite writes its own way: the claim (protocol 2, ARCHITECTURE.md) as one
 * `UPDATE … RETURNING` inside the write lock, which is also how a run transaction claims
 * more; the pending-count decrement, one `UPDATE … RETURNING` per entry; and the wake-up
 * at commit, a touch of the wake file (./wake-file.ts) once the transaction committed.
 */
import { atomFromRow, claimFromRow } from '../rows.js';
import type { AtomRow, ClaimedAtom } from '../types.js';
import type { SqlCore, StatementForms } from '../sql/core.js';
import { SQLITE } from '../sql/dialects.js';
import type { SqlSession } from '../sql/driver.js';
import type { SqliteDriver } from './sqlite-driver.js';

const NOW = SQLITE.now;

// RETURNING shows the new row only: the states the rows leave (for the events) are read
// first, under the same write lock, and the UPDATE takes exactly those rows.
const PICK = `SELECT run_id, idx, state FROM {p}atoms
  WHERE state IN ('READY', 'WAITING', 'REVERT_READY') AND ready_at <= ${NOW}
  ORDER BY ready_at LIMIT ?`;

const CLAIM = `UPDATE {p}atoms SET
    state = CASE state WHEN 'REVERT_READY' THEN 'REVERTING' ELSE 'RUNNING' END,
    execution = CASE state WHEN 'REVERT_READY' THEN execution ELSE execution + 1 END,
    claimed_by = ?, claimed_at = ${NOW}, epoch = epoch + 1, ready_at = NULL, updated_at = ${NOW}
  WHERE (run_id, idx) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))
    AND state IN ('READY', 'WAITING', 'REVERT_READY')
  RETURNING run_id, idx, state, epoch, attempt, execution, journal, failure`;

const DECREMENT = `UPDATE {p}atoms SET pending = pending - 1, skip = MAX(skip, ?),
    state = CASE WHEN pending = 1 AND skip = 0 AND ? = 0 THEN 'READY' ELSE state END,
    ready_at = CASE WHEN pending = 1 AND skip = 0 AND ? = 0 THEN ${NOW} ELSE ready_at END,
    updated_at = ${NOW}
  WHERE run_id = ? AND idx = ? AND state = 'PENDING' RETURNING *`;

/** The forms of a SQLite store. */
export function sqliteForms(driver: SqliteDriver, core: () => SqlCore): StatementForms {
  return {
    decrementPending,
    claimMore: (s, engineId, limit) => claimOn(s, core(), engineId, limit),
    announce: async () => {
      driver.wakeAtCommit = true;
    },
  };
}

/** Claims up to `limit` claimable atoms inside the write transaction of `s`, with their events. */
export async function claimOn(s: SqlSession, core: SqlCore, engineId: string, limit: number): Promise<ClaimedAtom[]> {
  const picked = await s.rows('pick claimable atoms', PICK, [limit]);
  if (picked.length === 0) return [];
  const from = new Map(picked.map((r) => [`${Number(r.idx)}:${String(r.run_id)}`, String(r.state)]));
  const keys = JSON.stringify(picked.map((r) => [String(r.run_id), Number(r.idx)]));
  const rows = await s.rows('claim atoms', CLAIM, [engineId, keys]);
  const claims = rows.map((r) => claimFromRow(r));
  await core.insertEvents(
    s,
    claims.map((c) => ({
      runId: c.runId,
      atom: c.index,
      kind: 'atom.claimed',
      fromState: from.get(`${c.index}:${c.runId}`) ?? null,
      toState: c.state,
      engineId,
      epoch: c.epoch,
    })),
  );
  return claims;
}

/**
 * One statement per entry, so each returned row shows the state after its own decrement
 * (the same atom may come twice). Reaching 0 without `skip` makes the atom READY in the
 * same statement (SQLite's SET expressions read the old row).
 */
async function decrementPending(s: SqlSession, runId: string, entries: readonly { index: number; disable: boolean }[]): Promise<AtomRow[]> {
  const out: AtomRow[] = [];
  for (const e of entries) {
    const disable = e.disable ? 1 : 0;
    const row = await s.row('decrement a pending counter', DECREMENT, [disable, disable, disable, runId, e.index]);
    if (row) out.push(atomFromRow(row));
  }
  return out;
}
