/**
 * Retention (`Store.pruneRuns`) on PostgreSQL in one statement: the runs it takes are
 * locked with SKIP LOCKED (two pruners take different runs), and data-modifying CTEs
 * delete their events, atoms, signals and rows, and the engine rows left behind, counting
 * each. A dry run counts the same in one read.
 */
import { TERMINAL_RUN_STATUSES } from '../states.js';
import { pruneResult } from '../rows.js';
import type { PruneResult } from '../types.js';
import type { PruneRequest } from '../sql/retention.js';
import type { PostgresDriver } from './postgres-driver.js';

export async function prunePostgres(driver: PostgresDriver, o: PruneRequest): Promise<PruneResult> {
  const params = [o.olderThanMs, o.limit, [...TERMINAL_RUN_STATUSES]];
  const victims = `SELECT r.id FROM {p}runs r
      WHERE r.status = ANY($3::text[]) AND r.finished_at < now() - $1::bigint * interval '1 millisecond'
        AND NOT EXISTS (SELECT 1 FROM {p}runs p WHERE p.id = r.parent_run_id AND NOT (p.status = ANY($3::text[])))
        AND NOT EXISTS (SELECT 1 FROM {p}runs c WHERE c.parent_run_id = r.id AND NOT (c.status = ANY($3::text[])))
      LIMIT $2`;
  const engines = `{p}engines e WHERE e.lease_expires_at < now() - $1::bigint * interval '1 millisecond'
        AND NOT EXISTS (SELECT 1 FROM {p}atoms a WHERE a.claimed_by = e.id AND a.state IN ('RUNNING', 'REVERTING'))`;
  const text = o.dryRun
    ? `WITH v AS (${victims})
       SELECT (SELECT count(*) FROM v) AS runs,
              (SELECT count(*) FROM {p}atoms WHERE run_id IN (SELECT id FROM v)) AS atoms,
              (SELECT count(*) FROM {p}events WHERE run_id IN (SELECT id FROM v)) AS events,
              (SELECT count(*) FROM {p}signals WHERE run_id IN (SELECT id FROM v)) AS signals,
              (SELECT count(*) FROM ${engines}) AS engines`
    : `WITH v AS (${victims} FOR UPDATE OF r SKIP LOCKED),
         de AS (DELETE FROM {p}events WHERE run_id IN (SELECT id FROM v) RETURNING 1),
         da AS (DELETE FROM {p}atoms WHERE run_id IN (SELECT id FROM v) RETURNING 1),
         ds AS (DELETE FROM {p}signals WHERE run_id IN (SELECT id FROM v) RETURNING 1),
         dr AS (DELETE FROM {p}runs WHERE id IN (SELECT id FROM v) RETURNING 1),
         dg AS (DELETE FROM ${engines} RETURNING 1)
       SELECT (SELECT count(*) FROM dr) AS runs, (SELECT count(*) FROM da) AS atoms, (SELECT count(*) FROM de) AS events,
              (SELECT count(*) FROM ds) AS signals, (SELECT count(*) FROM dg) AS engines`;
  const rows = await driver.poolSession.rows(o.dryRun ? 'count runs to prune' : 'prune runs', text, params);
  return pruneResult(rows[0]!);
}
