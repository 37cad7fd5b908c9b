/**
 * The statement forms MySQL writes its own way (src/store/sql/core.ts, StatementForms):
 * the pending-count decrement, which has to lock its rows first (no RETURNING) and order
 * its assignments for MySQL's left-to-right SET evaluation; and no claims inside a run
 * transaction. Everything else takes the shared forms.
 */
import type { AtomRow } from '../types.js';
import { getAtoms } from '../sql/atoms.js';
import type { StatementForms } from '../sql/core.js';
import { MYSQL } from '../sql/dialects.js';
import type { SqlSession } from '../sql/driver.js';

export const mysqlForms: StatementForms = {
  decrementPending,
  // Claims stay in their own transaction here: a claim inside the completion commit would
  // hold the runs' row locks while it looks for claimable atoms (MySQL locks the index
  // ranges it reads). The engine claims again right after the commit.
  claimMore: async () => [],
};

async function decrementPending(s: SqlSession, runId: string, entries: readonly { index: number; disable: boolean }[]): Promise<AtomRow[]> {
  const indexes = entries.map((e) => e.index);
  if (new Set(indexes).size !== indexes.length) {
    // The same atom twice: one statement per entry, so each returned row shows the state
    // after its own decrement, exactly as the SQLite adapter reports it.
    const out: AtomRow[] = [];
    for (const e of entries) out.push(...(await decrementPending(s, runId, [e])));
    return out;
  }
  // No RETURNING: lock the rows that are still PENDING first, so that what is read back
  // afterwards is exactly the set this statement changed (SQLite returns only those).
  const pendingNow = new Set(
    (
      await s.rows('lock pending successors', `SELECT idx FROM {p}atoms WHERE run_id = ? AND idx IN (?) AND state = 'PENDING' FOR UPDATE`, [
        runId,
        indexes,
      ])
    ).map((r) => Number(r.idx)),
  );
  const todo = entries.filter((e) => pendingNow.has(e.index));
  if (todo.length === 0) return [];
  const targets = todo.map((e) => e.index);
  const disabled = todo.filter((e) => e.disable).map((e) => e.index);
  // Reaching 0 without `skip` makes the atom READY in the same statement. MySQL evaluates
  // SET left to right, each assignment seeing the ones before it: `ready_at` and `state`
  // come first so that they read the old `pending` and `skip`.
  const becomesReady = `pending = 1 AND skip = 0${disabled.length > 0 ? ' AND idx NOT IN (?)' : ''}`;
  await s.exec(
    'decrement pending counters',
    `UPDATE {p}atoms SET
       ready_at = CASE WHEN ${becomesReady} THEN NOW(6) ELSE ready_at END,
       state = CASE WHEN ${becomesReady} THEN 'READY' ELSE state END,
       pending = pending - 1,
       ${disabled.length > 0 ? 'skip = CASE WHEN idx IN (?) THEN 1 ELSE skip END,' : ''}
       updated_at = NOW(6)
     WHERE run_id = ? AND idx IN (?) AND state = 'PENDING'`,
    disabled.length > 0 ? [disabled, disabled, disabled, runId, targets] : [runId, targets],
  );
  const byIndex = new Map((await getAtoms(MYSQL, s, runId, targets)).map((a) => [a.index, a]));
  return todo.flatMap((e) => byIndex.get(e.index) ?? []);
}
