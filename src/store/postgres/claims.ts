/**
 * Protocol 2 (ARCHITECTURE.md) on PostgreSQL in one statement: SKIP LOCKED lets concurrent
 * claimers take different rows instead of queueing behind each other (a row that changed
 * while we waited is re-checked before it is locked); the UPDATE bumps epoch and
 * execution; the `atom.claimed` events are written too; and the row of each run claimed
 * from comes back with its first atom (saving the engine a read before the run's first
 * task). A named statement: planned once per connection.
 *
 * The UPDATE takes the rows `c` locked by their `ctid` (a TID scan, whatever the statistics
 * say), not by a join on the primary key: with the `LIMIT` a parameter, a plan estimates a
 * tenth of the table for `c` and hashed it against a scan of every atom, a cost that grows
 * with the table (5,000 runs drained at concurrency 64 by the finish statement, which claims
 * the same way: 143 -> 120 µs of the server's CPU per run, median of 5 A/B pairs, with
 * 5,000-40,000 atoms in the table; the statement sent alone on one connection, the
 * backend's CPU from /proc/<pid>/schedstat, 7 December, load 8). A locked row's `ctid` cannot change
 * before this transaction ends. One rare case differs: a row that another transaction
 * changed after this statement's snapshot and that still qualifies is locked and re-checked
 * by `c`, but the UPDATE's snapshot does not see that version: it stays unclaimed (and
 * unlocked after the commit) for the next claim, instead of being claimed now.
 */
import { claimFromRow, runFromRow } from '../rows.js';
import type { ClaimedAtom } from '../types.js';
import { POSTGRES } from '../sql/dialects.js';
import type { Raw, SqlSession } from '../sql/driver.js';
import { runColumns } from '../sql/runs.js';
import type { PostgresDriver } from './postgres-driver.js';

export const CLAIM_SQL = `WITH c AS (
  SELECT ctid AS tid, run_id, idx, state AS from_state FROM {p}atoms
  WHERE state IN ('READY', 'WAITING', 'REVERT_READY') AND ready_at <= now()
  ORDER BY ready_at LIMIT $2
  FOR UPDATE SKIP LOCKED),
u AS (
  UPDATE {p}atoms a SET
    state = CASE a.state WHEN 'REVERT_READY' THEN 'REVERTING' ELSE 'RUNNING' END,
    execution = CASE a.state WHEN 'REVERT_READY' THEN a.execution ELSE a.execution + 1 END,
    claimed_by = $1, claimed_at = now(), epoch = a.epoch + 1, ready_at = NULL, updated_at = now()
  FROM c WHERE a.ctid = ANY(ARRAY(SELECT tid FROM c)) AND a.run_id = c.run_id AND a.idx = c.idx
  RETURNING a.run_id, a.idx, a.state, a.epoch, a.attempt, a.execution, a.journal, a.failure, c.from_state),
e AS (
  INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, at)
  SELECT run_id, idx, 'atom.claimed', from_state, state, $1, epoch, now() FROM u),
n AS (SELECT u.*, row_number() OVER (PARTITION BY u.run_id ORDER BY u.idx) AS nth FROM u)
${withRunRows('n', 'n')}`;

/**
 * The end of a statement that claims atoms: the rows of `source` (a CTE or a subquery, named
 * `alias`, with `run_id` and `nth`, the atom's rank among its run's claims), each run's row beside its
 * first atom as `run_*` columns (read by {@link claimWithRun}), so that the engine starts
 * the atoms of a run it does not hold without reading the run first.
 */
export function withRunRows(source: string, alias: string): string {
  const columns = runColumns(POSTGRES)
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== 'id')
    .map((c) => `r.${c} AS run_${c}`)
    .join(', ');
  // a row that is not its run's first looks up no run (a NULL key), rather than one it drops
  return `SELECT ${alias}.*, ${columns}
FROM ${source} LEFT JOIN {p}runs r ON r.id = CASE WHEN ${alias}.nth = 1 THEN ${alias}.run_id END`;
}

/** Claims on their own (retried whole on a serialization failure) and inside a run transaction. */
export class PostgresClaims {
  constructor(private readonly driver: PostgresDriver) {}

  async claimAtoms(engineId: string, limit: number): Promise<ClaimedAtom[]> {
    this.driver.assertOpen();
    // One statement, one round trip. SKIP LOCKED: concurrent claimers take different rows
    // instead of queueing behind each other.
    const rows = await this.driver.retry(() => this.claimOn(this.driver.poolSession, engineId, limit));
    return rows.map(claimWithRun);
  }

  async claimMore(s: SqlSession, engineId: string, limit: number): Promise<ClaimedAtom[]> {
    return (await this.claimOn(s, engineId, limit)).map(claimWithRun);
  }

  private claimOn(s: SqlSession, engineId: string, limit: number): Promise<Raw[]> {
    return s.rows('claim atoms', CLAIM_SQL, [engineId, limit], 'claim');
  }
}

/** A row of {@link CLAIM_SQL} (or of {@link withRunRows}): the claimed atom, and its run's row (`run_*` columns) on the first atom of each run. */
export function claimWithRun(row: Raw): ClaimedAtom {
  if (row.run_flow === null || row.run_flow === undefined) return claimFromRow(row);
  const run: Raw = { id: row.run_id };
  for (const [k, v] of Object.entries(row)) if (k.startsWith('run_') && k !== 'run_id') run[k.slice(4)] = v;
  return claimFromRow(row, runFromRow(run));
}
