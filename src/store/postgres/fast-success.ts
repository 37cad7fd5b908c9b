/**
 * The common completion on PostgreSQL in one statement: an atom succeeded, its run goes on.
 *
 * Why: the general path (lock the run, fenced write, successors, local claim, run counter,
 * events) costs seven round trips inside BEGIN…COMMIT; on this 2-core machine that capped a
 * linear flow near 360 atoms/s while `pgbench` commits about 2,900 one-row updates/s on one
 * connection (bench/results). One autocommit statement makes it one round trip and one commit.
 *
 * Correctness under READ COMMITTED: CTE `r` locks the run row first (the same lock order as
 * the general path) and re-checks `status` and `pending_atoms` on the newest row version;
 * the atom and successor UPDATEs re-check their predicates on the newest versions of the
 * rows they change (EvalPlanQual), so the fence (`epoch`, `state`, `revert_requested`) and
 * the counter arithmetic see every committed change. Nothing else is read. When the atom
 * would finish the run, the run is not RUNNING, or the fence misses, the statement changes
 * nothing and the caller takes the general path. Callers must not use it for runs whose
 * graph has deciders (a skip cascade needs the general path).
 *
 * Plans: a named statement runs on a generic plan after a few executions, so every lookup is
 * written to be a primary-key probe whatever the planner thinks of the parameters: the run is
 * locked by `id` alone (its status is checked on the locked row, never through the status
 * index), and the successors are bounded by a range on the primary key's second column
 * (`idx BETWEEN lowest AND highest successor`), which every plan uses as an index condition.
 * Without the range, `idx = ANY($6)` alone was planned as a filter over all the run's atoms
 * (estimates taken while the table was small), so the cost per atom grew with the flow.
 */
import type { JsonValue } from '../../core/json.js';
import type { ClaimedAtom, FastSuccess, FastSuccessResult, JournalEntry } from '../store.js';
import { claimFromRow } from '../rows.js';

export const FAST_SUCCESS_SQL = `
WITH r AS (
  SELECT id, status, pending_atoms FROM {p}runs WHERE id = $1 FOR UPDATE
), a AS (
  UPDATE {p}atoms SET state = 'SUCCESS', result = $4::jsonb, journal = $5::jsonb, claimed_by = NULL,
         wait_kind = NULL, wait_ref = NULL, updated_at = now()
  WHERE run_id = $1 AND idx = $2 AND epoch = $3 AND state = 'RUNNING' AND NOT revert_requested
    AND EXISTS (SELECT 1 FROM r WHERE status = 'RUNNING' AND pending_atoms > 1)
  RETURNING idx
), s AS (
  UPDATE {p}atoms t SET
    pending = t.pending - 1,
    state = CASE WHEN t.pending = 1 THEN CASE WHEN t.idx = $7 THEN 'RUNNING' ELSE 'READY' END ELSE t.state END,
    ready_at = CASE WHEN t.pending = 1 AND t.idx IS DISTINCT FROM $7 THEN now() ELSE t.ready_at END,
    claimed_by = CASE WHEN t.pending = 1 AND t.idx = $7 THEN $8 ELSE t.claimed_by END,
    claimed_at = CASE WHEN t.pending = 1 AND t.idx = $7 THEN now() ELSE t.claimed_at END,
    epoch = CASE WHEN t.pending = 1 AND t.idx = $7 THEN t.epoch + 1 ELSE t.epoch END,
    execution = CASE WHEN t.pending = 1 AND t.idx = $7 THEN t.execution + 1 ELSE t.execution END,
    updated_at = now()
  WHERE t.run_id = $1 AND t.idx BETWEEN $9 AND $10 AND t.idx = ANY($6::int[]) AND t.state = 'PENDING'
    AND EXISTS (SELECT 1 FROM a)
  RETURNING t.run_id, t.idx, t.state, t.epoch, t.attempt, t.execution, t.journal, t.failure
), u AS (
  UPDATE {p}runs SET pending_atoms = pending_atoms - 1, row_version = row_version + 1, updated_at = now()
  WHERE id = $1 AND EXISTS (SELECT 1 FROM a)
  RETURNING id
), e AS (
  INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
  SELECT $1, $2, 'atom.success', 'RUNNING', 'SUCCESS', $8, $3::bigint, NULL::jsonb, now() FROM a
  UNION ALL
  SELECT $1, idx, 'atom.ready', 'PENDING', 'READY', $8, NULL::bigint, NULL::jsonb, now() FROM s WHERE state <> 'PENDING'
  UNION ALL
  SELECT $1, idx, 'atom.claimed', 'READY', 'RUNNING', $8, epoch, '{"local":true}'::jsonb, now() FROM s WHERE state = 'RUNNING'
)
SELECT (SELECT count(*) FROM a)::int AS done, (SELECT count(*) FROM u)::int AS counted, s.*
FROM (SELECT 1) AS one LEFT JOIN s ON true`;

export function fastSuccessParams(input: FastSuccess): unknown[] {
  return [
    input.runId,
    input.index,
    input.epoch,
    JSON.stringify(input.result satisfies JsonValue),
    JSON.stringify(input.journal satisfies JournalEntry[]),
    input.successors,
    input.claim,
    input.engineId,
    // an empty range when there is no successor (a sink)
    input.successors.length > 0 ? Math.min(...input.successors) : 0,
    input.successors.length > 0 ? Math.max(...input.successors) : -1,
  ];
}

export function fastSuccessResult(rows: Record<string, unknown>[]): FastSuccessResult {
  const first = rows[0];
  if (!first || Number(first.done) !== 1) return { handled: false, claimed: null, madeReady: 0 };
  let claimed: ClaimedAtom | null = null;
  let madeReady = 0;
  for (const row of rows) {
    if (row.idx === null || row.idx === undefined) continue;
    if (row.state === 'RUNNING') claimed = claimFromRow(row);
    else if (row.state === 'READY') madeReady += 1;
  }
  return { handled: true, claimed, madeReady };
}
