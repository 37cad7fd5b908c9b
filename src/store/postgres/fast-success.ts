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
 * the counter arithmetic see every committed change. Nothing else is read. A run's first
 * completion also moves it PENDING → RUNNING, with its `run.running` event first, as the
 * general path does. When the atom would finish the run, the run is neither PENDING nor
 * RUNNING, or the fence misses, the statement changes nothing and the caller takes the
 * general path. Callers must not use it for runs whose
 * graph has deciders (a skip cascade needs the general path).
 *
 * Plans: a named statement runs on a generic plan after a few executions, so every lookup is
 * written to be a primary-key probe whatever the planner thinks of the parameters: the run is
 * locked by `id` alone (its status is checked on the locked row, never through the status
 * index), and the successors are bounded by a range on the primary key's second column
 * (`idx BETWEEN lowest AND highest successor`), which every plan uses as an index condition.
 * Without the range, `idx = ANY($6)` alone was planned as a filter over all the run's atoms
 * (estimates taken while the table was small), so the cost per atom grew with the flow.
 * The completed atom's state is compared with a column of a MATERIALIZED CTE (`held`), not
 * with the literal 'RUNNING', which implies the predicate of the partial index
 * `atoms_running`: with statistics taken while no atom was running (a quiet moment, or a
 * large table whose sample holds none), the generic plans of this statement and of the batch
 * below read the atom through that index, that is every running atom of every engine for
 * each completion (test/integration/store/postgres-plans.test.ts; the finish statement
 * below, for the same reason).
 */
import type { JsonValue } from '../../core/json.js';
import type {
  ClaimedAtom,
  FastBatchResult,
  FastFinish,
  FastFinishResult,
  FastSuccess,
  FastSuccessBatch,
  FastSuccessResult,
  JournalEntry,
} from '../store.js';
import { claimFromRow, jsonColumn } from '../rows.js';
import { claimWithRun, withRunRows } from './claims.js';

export const FAST_SUCCESS_SQL = `
WITH r AS (
  SELECT id, status, pending_atoms, row_version FROM {p}runs WHERE id = $1 FOR UPDATE
), h AS MATERIALIZED (
  SELECT 'RUNNING'::text AS held
), a AS (
  UPDATE {p}atoms SET state = 'SUCCESS', result = $4::jsonb, journal = $5::jsonb, claimed_by = NULL,
         wait_kind = NULL, wait_ref = NULL, updated_at = now()
  FROM h
  WHERE run_id = $1 AND idx = $2 AND epoch = $3 AND state = h.held AND NOT revert_requested
    AND EXISTS (SELECT 1 FROM r WHERE status IN ('PENDING', 'RUNNING') AND pending_atoms > 1)
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
  UPDATE {p}runs SET status = 'RUNNING', pending_atoms = pending_atoms - 1, row_version = row_version + 1, updated_at = now()
  WHERE id = $1 AND EXISTS (SELECT 1 FROM a)
  RETURNING id
), e AS (
  INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
  SELECT $1, NULL::int, 'run.running', 'PENDING', 'RUNNING', $8, NULL::bigint, NULL::jsonb, now() FROM r WHERE status = 'PENDING' AND EXISTS (SELECT 1 FROM a)
  UNION ALL
  SELECT $1, $2, 'atom.success', 'RUNNING', 'SUCCESS', $8, $3::bigint, NULL::jsonb, now() FROM a
  UNION ALL
  SELECT $1, idx, 'atom.ready', 'PENDING', 'READY', $8, NULL::bigint, NULL::jsonb, now() FROM s WHERE state = 'READY'
  UNION ALL
  SELECT $1, idx, 'atom.claimed', 'PENDING', 'RUNNING', $8, epoch, '{"local":true}'::jsonb, now() FROM s WHERE state = 'RUNNING'
)
SELECT json_build_object(
  'done', (SELECT count(*) FROM a), 'run_version', (SELECT row_version FROM r),
  'next', (SELECT json_agg(json_build_object('run_id', run_id, 'idx', idx, 'state', state, 'epoch', epoch, 'attempt', attempt,
    'execution', execution, 'journal', journal, 'failure', failure)) FROM s)
)::text AS outcome`;

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

/**
 * The statement's answer is one JSON value (`outcome`: `done`, `run_version` and the
 * successors it wrote, `next`), not a row per successor with ten columns: `pg` builds a
 * parser and a template object per column of every result it receives, which cost about
 * 10 µs of the engine's CPU per atom for the ten columns (bench/cli-probe.ts, profiled).
 */
export function fastSuccessResult(rows: Record<string, unknown>[]): FastSuccessResult {
  const outcome = jsonColumn<{ done: number; run_version: number | null; next: Record<string, unknown>[] | null }>(rows[0]?.outcome);
  if (!outcome || outcome.done !== 1) return { handled: false, claimed: null, madeReady: 0 };
  let claimed: ClaimedAtom | null = null;
  let madeReady = 0;
  for (const row of outcome.next ?? []) {
    if (row.state === 'RUNNING') claimed = claimFromRow(row);
    else if (row.state === 'READY') madeReady += 1;
  }
  return { handled: true, claimed, madeReady, runVersion: Number(outcome.run_version) };
}

/**
 * The same for several successes of one run committed together (group commit), plus the
 * claims for the slots they free, in one statement. It is what unordered and wide graph
 * flows commit: before, the general path took seven round trips per batch.
 *
 * As in the single form, every atom lookup carries a range on the primary key's second
 * column (lowest to highest index of the batch, of its successors), which every plan uses
 * as an index condition: the rows read are bounded by the batch's span of indexes, never by
 * the size of the run. (Joining `unnest` to the atoms, even through LATERAL primary-key
 * lookups, was planned as a scan of all the run's atoms on a table whose statistics were
 * taken while it was small.)
 *
 * Unlike the single form, a partial fence miss is possible (another engine took one atom
 * of the batch over): every count is taken from the rows that were written (`a`), so the
 * database stays consistent, and the result names the atoms that were written; the
 * caller sends the others through the general path. Claims (`c`, `cu`) are made only when
 * something was written, for at most `$11` atoms of any run, like the claim statement.
 */
/**
 * CTEs `c` and `cu` that claim up to `limit` claimable atoms of any run for `engine`, like
 * the claim statement (rows taken by `ctid`: claims.ts says why), but only when CTE `a` wrote
 * something (the slots were freed).
 * Starts with `), ` and ends after `cu`'s closing parenthesis.
 */
function freedSlotClaims(engine: string, limit: string): string {
  return `), c AS (
  SELECT ctid AS tid, run_id, idx, state AS from_state FROM {p}atoms
  WHERE state IN ('READY', 'WAITING', 'REVERT_READY') AND ready_at <= now() AND EXISTS (SELECT 1 FROM a)
  ORDER BY ready_at LIMIT ${limit}
  FOR UPDATE SKIP LOCKED
), cu AS (
  UPDATE {p}atoms t SET
    state = CASE t.state WHEN 'REVERT_READY' THEN 'REVERTING' ELSE 'RUNNING' END,
    execution = CASE t.state WHEN 'REVERT_READY' THEN t.execution ELSE t.execution + 1 END,
    claimed_by = ${engine}, claimed_at = now(), epoch = t.epoch + 1, ready_at = NULL, updated_at = now()
  FROM c WHERE t.ctid = ANY(ARRAY(SELECT tid FROM c)) AND t.run_id = c.run_id AND t.idx = c.idx
  RETURNING t.run_id, t.idx, t.state, t.epoch, t.attempt, t.execution, t.journal, t.failure, c.from_state
)`;
}

export const FAST_BATCH_SQL = `
WITH r AS (
  SELECT id, status, pending_atoms, row_version FROM {p}runs WHERE id = $1 FOR UPDATE
), n AS MATERIALIZED (
  SELECT *, 'RUNNING'::text AS held FROM unnest($2::int[], $3::bigint[], $4::text[], $5::text[]) AS n(idx, epoch, result, journal)
), a AS (
  UPDATE {p}atoms t SET state = 'SUCCESS', result = n.result::jsonb, journal = n.journal::jsonb, claimed_by = NULL,
         wait_kind = NULL, wait_ref = NULL, updated_at = now()
  FROM n
  WHERE t.run_id = $1 AND t.idx BETWEEN $12 AND $13 AND t.idx = n.idx AND t.epoch = n.epoch AND t.state = n.held AND NOT t.revert_requested
    AND EXISTS (SELECT 1 FROM r WHERE status IN ('PENDING', 'RUNNING') AND pending_atoms > $6)
  RETURNING t.idx, t.epoch
), d AS (
  SELECT l.succ AS idx, count(*)::int AS cnt, bool_or(l.succ = ANY($9::int[])) AS claim
  FROM unnest($7::int[], $8::int[]) AS l(pred, succ) JOIN a ON a.idx = l.pred
  GROUP BY l.succ
), s AS (
  UPDATE {p}atoms t SET
    pending = t.pending - d.cnt,
    state = CASE WHEN t.pending = d.cnt THEN CASE WHEN d.claim THEN 'RUNNING' ELSE 'READY' END ELSE t.state END,
    ready_at = CASE WHEN t.pending = d.cnt AND NOT d.claim THEN now() ELSE t.ready_at END,
    claimed_by = CASE WHEN t.pending = d.cnt AND d.claim THEN $10 ELSE t.claimed_by END,
    claimed_at = CASE WHEN t.pending = d.cnt AND d.claim THEN now() ELSE t.claimed_at END,
    epoch = CASE WHEN t.pending = d.cnt AND d.claim THEN t.epoch + 1 ELSE t.epoch END,
    execution = CASE WHEN t.pending = d.cnt AND d.claim THEN t.execution + 1 ELSE t.execution END,
    updated_at = now()
  FROM d
  WHERE t.run_id = $1 AND t.idx BETWEEN $14 AND $15 AND t.idx = d.idx AND t.state = 'PENDING'
  RETURNING t.run_id, t.idx, t.state, t.epoch, t.attempt, t.execution, t.journal, t.failure
), u AS (
  UPDATE {p}runs SET status = 'RUNNING', pending_atoms = pending_atoms - (SELECT count(*) FROM a)::int, row_version = row_version + 1, updated_at = now()
  WHERE id = $1 AND EXISTS (SELECT 1 FROM a)
  RETURNING id
${freedSlotClaims('$10', '$11')}, e AS (
  INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
  SELECT $1, NULL::int, 'run.running', 'PENDING', 'RUNNING', $10, NULL::bigint, NULL::jsonb, now() FROM r WHERE status = 'PENDING' AND EXISTS (SELECT 1 FROM a)
  UNION ALL
  SELECT $1, idx, 'atom.success', 'RUNNING', 'SUCCESS', $10, epoch, NULL::jsonb, now() FROM a
  UNION ALL
  SELECT $1, idx, 'atom.ready', 'PENDING', 'READY', $10, NULL::bigint, NULL::jsonb, now() FROM s WHERE state = 'READY'
  UNION ALL
  SELECT $1, idx, 'atom.claimed', 'PENDING', 'RUNNING', $10, epoch, '{"local":true}'::jsonb, now() FROM s WHERE state = 'RUNNING'
  UNION ALL
  SELECT run_id, idx, 'atom.claimed', from_state, state, $10, epoch, NULL::jsonb, now() FROM cu
)
SELECT 'done' AS src, $1 AS run_id, idx, NULL::text AS state, epoch, NULL::int AS attempt, NULL::int AS execution, NULL::jsonb AS journal, NULL::jsonb AS failure,
       (SELECT count(*) FROM u)::int AS counted, (SELECT row_version FROM r) AS run_version
FROM a
UNION ALL
SELECT 'next', run_id, idx, state, epoch, attempt, execution, journal, failure, NULL, NULL FROM s
UNION ALL
SELECT 'claimed', run_id, idx, state, epoch, attempt, execution, journal, failure, NULL, NULL FROM cu`;

export function fastBatchParams(input: FastSuccessBatch): unknown[] {
  const preds: number[] = [];
  const succs: number[] = [];
  for (const s of input.successes) {
    for (const next of s.successors) {
      preds.push(s.index);
      succs.push(next);
    }
  }
  const indexes = input.successes.map((s) => s.index);
  return [
    input.runId,
    indexes,
    input.successes.map((s) => s.epoch),
    input.successes.map((s) => JSON.stringify(s.result satisfies JsonValue)),
    input.successes.map((s) => JSON.stringify(s.journal satisfies JournalEntry[])),
    input.successes.length,
    preds,
    succs,
    input.claim,
    input.engineId,
    input.claimMore,
    Math.min(...indexes),
    Math.max(...indexes),
    succs.length > 0 ? Math.min(...succs) : 0,
    succs.length > 0 ? Math.max(...succs) : -1,
  ];
}

export function fastBatchResult(rows: Record<string, unknown>[]): FastBatchResult {
  const written: number[] = [];
  const continuations: ClaimedAtom[] = [];
  let madeReady = 0;
  let claimedMore = 0;
  let runVersion: number | undefined;
  for (const row of rows) {
    if (row.src === 'done') {
      written.push(Number(row.idx));
      runVersion = Number(row.run_version);
    } else if (row.src === 'claimed') {
      continuations.push(claimFromRow(row));
      claimedMore += 1;
    } else if (row.state === 'RUNNING') continuations.push(claimFromRow(row));
    else if (row.state === 'READY') madeReady += 1;
  }
  return runVersion === undefined
    ? { written, continuations, madeReady, claimedMore }
    : { written, continuations, madeReady, claimedMore, runVersion };
}

/**
 * Successes that finish their runs (each the last open atom of a different run), for
 * several runs in one statement, with claims for the freed slots: what a queue of short
 * runs commits. The engine computes each run's outputs (it has the results they need);
 * the statement checks, on the locked run rows (locked in id order, like the general
 * path), that the run is PENDING or RUNNING with exactly this atom left and no parent to
 * wake, and on each atom its fence. What does not qualify is not written and goes through
 * the general path.
 *
 * A named statement, like the others of the hot path: sent unnamed, it was parsed and planned
 * on every call: 1.3-1.9 ms of the server's CPU for each (`EXPLAIN` alone, 80 times, load
 * 5), 10 of 133 µs per run at 64 runs a statement (A/B of the statement sent alone on one
 * connection, backend CPU from /proc/<pid>/schedstat, 7 December, load 4). Its generic plan
 * takes each run by `id = ANY($1)` and each atom by its primary key: the atom's state is
 * compared with a column of `n` (`held`), not with a literal, so that no plan can read the
 * atom through `atoms_running` instead (a literal implies that partial index's predicate;
 * `n` is MATERIALIZED so that the planner cannot see through it to the literal either).
 * With statistics taken while no atom was running, the generic plan did: it scanned every
 * running atom for each finished one (32 rows per probe at concurrency 64).
 *
 * The claims come back with the row of each run claimed from (beside its first atom), as
 * from the claim statement: a queue of one-task runs claims nothing but new runs, and
 * reading their rows before starting them was a round trip per commit between this
 * statement and the tasks (5,000 runs drained at concurrency 64: 78 `read runs` for 79
 * finishes, ~1.3 ms each, bench/drain-probe.ts).
 */
export const FAST_FINISH_SQL = fastFinishSql(
  'unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[], $6::text[])',
  'id = ANY($1::text[]) ORDER BY id',
);

/**
 * The same for one run, with scalar parameters, sent as a named statement: its generic plan
 * is primary-key probes whatever the planner knows of the tables (one-element arrays, whose
 * length the planner sees). What finishes a linear flow, or a graph whose runs end one at
 * a time: planning the array form on every call took about 1 ms of each.
 */
export const FAST_FINISH_ONE_SQL = fastFinishSql(
  'unnest(ARRAY[$1::text], ARRAY[$2::int], ARRAY[$3::bigint], ARRAY[$4::text], ARRAY[$5::text], ARRAY[$6::text])',
  'id = $1::text',
);

function fastFinishSql(finishes: string, runs: string): string {
  return `
WITH n AS MATERIALIZED (
  SELECT *, 'RUNNING'::text AS held FROM ${finishes} AS n(run_id, idx, epoch, result, journal, outputs)
), r AS (
  SELECT id, status, pending_atoms, parent_run_id FROM {p}runs WHERE ${runs} FOR UPDATE
), ok AS (
  SELECT id, status FROM r WHERE status IN ('PENDING', 'RUNNING') AND pending_atoms = 1 AND parent_run_id IS NULL
), a AS (
  UPDATE {p}atoms t SET state = 'SUCCESS', result = n.result::jsonb, journal = n.journal::jsonb, claimed_by = NULL,
         wait_kind = NULL, wait_ref = NULL, updated_at = now()
  FROM n JOIN ok ON ok.id = n.run_id
  WHERE t.run_id = n.run_id AND t.idx = n.idx AND t.epoch = n.epoch AND t.state = n.held AND NOT t.revert_requested
  RETURNING t.run_id, t.idx, t.epoch, ok.status AS run_status, n.outputs
), u AS (
  UPDATE {p}runs SET status = 'SUCCESS', result = a.outputs::jsonb, pending_atoms = 0, active_key = NULL,
         finished_at = now(), updated_at = now(), row_version = row_version + 1
  FROM a
  WHERE {p}runs.id = a.run_id
  RETURNING {p}runs.id
${freedSlotClaims('$7', '$8')}, e AS (
  INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
  SELECT run_id, atom, kind, from_state, to_state, $7, epoch, NULL::jsonb, now() FROM (
    SELECT run_id, NULL::int AS atom, 'run.running' AS kind, 'PENDING' AS from_state, 'RUNNING' AS to_state, NULL::bigint AS epoch, 1 AS ord
    FROM a WHERE run_status = 'PENDING'
    UNION ALL
    SELECT run_id, idx, 'atom.success', 'RUNNING', 'SUCCESS', epoch, 2 FROM a
    UNION ALL
    SELECT run_id, NULL, 'run.success', 'RUNNING', 'SUCCESS', NULL, 3 FROM a
    UNION ALL
    SELECT run_id, idx, 'atom.claimed', from_state, state, epoch, 4 FROM cu
  ) x ORDER BY x.ord, x.run_id
)
${withRunRows(
  `(
  SELECT 'done' AS src, run_id, idx, NULL::text AS state, epoch, NULL::int AS attempt, NULL::int AS execution, NULL::jsonb AS journal,
         NULL::jsonb AS failure, NULL::bigint AS nth
  FROM a
  UNION ALL
  SELECT 'claimed', run_id, idx, state, epoch, attempt, execution, journal, failure, row_number() OVER (PARTITION BY run_id ORDER BY idx)
  FROM cu
) o`,
  'o',
)}`;
}

/** Parameters of {@link FAST_FINISH_SQL}, or of {@link FAST_FINISH_ONE_SQL} for a single finish. */
export function fastFinishParams(input: FastFinish): unknown[] {
  if (input.finishes.length === 1) {
    const f = input.finishes[0]!;
    return [
      f.runId,
      f.index,
      f.epoch,
      JSON.stringify(f.result satisfies JsonValue),
      JSON.stringify(f.journal satisfies JournalEntry[]),
      JSON.stringify(f.outputs satisfies JsonValue),
      input.engineId,
      input.claimMore,
    ];
  }
  return [
    input.finishes.map((f) => f.runId),
    input.finishes.map((f) => f.index),
    input.finishes.map((f) => f.epoch),
    input.finishes.map((f) => JSON.stringify(f.result satisfies JsonValue)),
    input.finishes.map((f) => JSON.stringify(f.journal satisfies JournalEntry[])),
    input.finishes.map((f) => JSON.stringify(f.outputs satisfies JsonValue)),
    input.engineId,
    input.claimMore,
  ];
}

export function fastFinishResult(rows: Record<string, unknown>[]): FastFinishResult {
  const finished: { runId: string; index: number }[] = [];
  const continuations: ClaimedAtom[] = [];
  for (const row of rows) {
    if (row.src === 'done') finished.push({ runId: String(row.run_id), index: Number(row.idx) });
    else continuations.push(claimWithRun(row));
  }
  return { finished, continuations };
}
