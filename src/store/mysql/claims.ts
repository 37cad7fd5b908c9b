/**
 * Protocol 2 (ARCHITECTURE.md) on MySQL/MariaDB, which has no `UPDATE … RETURNING`: in one
 * short transaction, `SELECT … FOR UPDATE SKIP LOCKED` picks the atoms (concurrent
 * claimers take different rows), an UPDATE claims them, and a read gets them back (they
 * stay locked, so what is read is what was written); then the `atom.claimed` events. Keys
 * go in chunks as `(run_id = ? AND idx = ?) OR …`, which the range optimizer reads as
 * point lookups.
 */
import { claimFromRow } from '../rows.js';
import type { ClaimedAtom } from '../types.js';
import { CLAIM_COLUMNS } from '../sql/atoms.js';
import { chunks } from '../sql/chunks.js';
import type { SqlCore } from '../sql/core.js';
import type { SqlDriver } from '../sql/driver.js';

/** keys per `(run_id, idx)` list: keeps statements well inside the range optimizer's limits */
export const KEYS_PER_STATEMENT = 200;

/** `(run_id = ? AND idx = ?) OR …`: a list of primary keys the range optimizer reads as point lookups. */
export function keyList(keys: readonly { runId: string; index: number }[]): { text: string; params: unknown[] } {
  return {
    text: keys.map(() => '(run_id = ? AND idx = ?)').join(' OR '),
    params: keys.flatMap((k) => [k.runId, k.index]),
  };
}

export async function claimAtomsMysql(driver: SqlDriver, core: SqlCore, engineId: string, limit: number): Promise<ClaimedAtom[]> {
  return driver.transaction('claim atoms', async (s) => {
    // SKIP LOCKED (MariaDB 10.6+, MySQL 8): concurrent claimers take different rows.
    const picked = await s.rows(
      'pick claimable atoms',
      `SELECT run_id, idx, state FROM {p}atoms
       WHERE state IN ('READY', 'WAITING', 'REVERT_READY') AND ready_at <= NOW(6)
       ORDER BY ready_at LIMIT ? FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    if (picked.length === 0) return [];
    const keys = picked.map((r) => ({ runId: String(r.run_id), index: Number(r.idx), from: String(r.state) }));
    const byKey = new Map<string, ClaimedAtom>();
    for (const chunk of chunks(keys, KEYS_PER_STATEMENT)) {
      const where = keyList(chunk);
      // MySQL evaluates SET left to right, each seeing the new values of the ones before:
      // `execution` must read `state` before `state` changes.
      await s.exec(
        'claim the picked atoms',
        `UPDATE {p}atoms SET
           execution = CASE state WHEN 'REVERT_READY' THEN execution ELSE execution + 1 END,
           state = CASE state WHEN 'REVERT_READY' THEN 'REVERTING' ELSE 'RUNNING' END,
           claimed_by = ?, claimed_at = NOW(6), epoch = epoch + 1, ready_at = NULL, updated_at = NOW(6)
         WHERE ${where.text}`,
        [engineId, ...where.params],
      );
      for (const r of await s.rows('read the claimed atoms', `SELECT ${CLAIM_COLUMNS} FROM {p}atoms WHERE ${where.text}`, where.params)) {
        const claim = claimFromRow(r);
        byKey.set(`${claim.index}:${claim.runId}`, claim);
      }
    }
    // the events name the state each row left (read under the row lock taken by the pick)
    const claimed = keys.flatMap((k) => {
      const claim = byKey.get(`${k.index}:${k.runId}`);
      return claim ? [{ claim, from: k.from }] : [];
    });
    await core.insertEvents(
      s,
      claimed.map(({ claim: cl, from }) => ({
        runId: cl.runId,
        atom: cl.index,
        kind: 'atom.claimed',
        fromState: from,
        toState: cl.state,
        engineId,
        epoch: cl.epoch,
      })),
    );
    return claimed.map((c) => c.claim);
  });
}
