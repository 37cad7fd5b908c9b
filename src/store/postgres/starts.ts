/**
 * PostgreSQL's one-statement starts (protocol 1, ARCHITECTURE.md). A run without a key has
 * nothing to look up first, so its whole start (graph row once per content, run row,
 * atoms, `run.created`, the wake-up) is one statement: one round trip instead of six,
 * which is what bulk starters spend their time on. `startRuns` does the same for many runs
 * at once, all or none. A keyed start takes the shared transaction (src/store/sql/starts.ts).
 */
import { canonicalJson } from '../../core/canonical-json.js';
import { graphDigest } from '../graphs.js';
import { runFromRow } from '../rows.js';
import type { NewRun, RunRow, StartResult } from '../types.js';
import type { SqlCore } from '../sql/core.js';
import { POSTGRES } from '../sql/dialects.js';
import { runColumns } from '../sql/runs.js';
import type { PostgresDriver } from './postgres-driver.js';

const RUN_COLUMNS = runColumns(POSTGRES);

/** One keyless run; a named statement (planned once per connection). */
const START_RUN_SQL = `WITH g AS (
        INSERT INTO {p}graphs (hash, graph, created_at) SELECT $5, $14::text, now() WHERE $14::text IS NOT NULL
        ON CONFLICT (hash) DO NOTHING),
      r AS (
        INSERT INTO {p}runs (id, flow, version, key, active_key, status, args, graph_hash, parent_run_id, parent_atom, pending_atoms, atom_count, created_at, updated_at)
        VALUES ($1, $2, $3, NULL, NULL, 'PENDING', $4::jsonb, $5, $6, $7, $8, $8, now(), now())
        RETURNING ${RUN_COLUMNS}),
      a AS (
        INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at)
        SELECT $1, t.idx, t.name, CASE WHEN t.pending = 0 THEN 'READY' ELSE 'PENDING' END, t.pending,
               CASE WHEN t.pending = 0 THEN now() END, now()
        FROM unnest($9::integer[], $10::text[], $11::integer[]) AS t(idx, name, pending)),
      e AS (
        INSERT INTO {p}events (run_id, atom, kind, to_state, at) VALUES ($1, NULL, 'run.created', 'PENDING', now())),
      n AS (SELECT pg_notify($12, '') AS sent WHERE $13::boolean)
      SELECT r.*, (SELECT count(*) FROM n) AS notified FROM r`;

/** Many keyless runs in one statement; events in the order of the runs. */
const START_RUNS_SQL = `WITH g AS (
        INSERT INTO {p}graphs (hash, graph, created_at) SELECT h, t, now() FROM unnest($1::text[], $2::text[]) AS x(h, t)
        ON CONFLICT (hash) DO NOTHING),
      r AS (
        INSERT INTO {p}runs (id, flow, version, key, active_key, status, args, graph_hash, parent_run_id, parent_atom, pending_atoms, atom_count, created_at, updated_at)
        SELECT id, flow, version, NULL, NULL, 'PENDING', args::jsonb, hash, parent_run_id, parent_atom, n, n, now(), now()
        FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::int[])
             AS x(id, flow, version, args, hash, parent_run_id, parent_atom, n)
        RETURNING ${RUN_COLUMNS}),
      a AS (
        INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at)
        SELECT run_id, idx, name, CASE WHEN pending = 0 THEN 'READY' ELSE 'PENDING' END, pending,
               CASE WHEN pending = 0 THEN now() END, now()
        FROM unnest($11::text[], $12::int[], $13::text[], $14::int[]) AS x(run_id, idx, name, pending)),
      e AS (
        INSERT INTO {p}events (run_id, atom, kind, to_state, at)
        SELECT id, NULL, 'run.created', 'PENDING', now() FROM unnest($3::text[]) WITH ORDINALITY AS x(id, ord) ORDER BY ord),
      w AS (SELECT pg_notify($15, '') AS sent WHERE $16::boolean)
      SELECT r.*, (SELECT count(*) FROM w) AS notified FROM r`;

export class PostgresStarts {
  constructor(
    private readonly driver: PostgresDriver,
    private readonly core: SqlCore,
    /** the NOTIFY channel of this deployment */
    private readonly wakeChannel: string,
  ) {}

  /** A keyless run in one statement; the caller marks its graph committed. */
  async startAlone(run: NewRun): Promise<StartResult> {
    this.driver.assertOpen();
    const atoms = run.graph.atoms;
    const wake = (run.wakeup ?? true) && atoms.some((a) => a.predecessors.length === 0);
    const graph = graphDigest(run.graph);
    const params = [
      run.id,
      run.flow,
      run.version,
      canonicalJson(run.args),
      graph.hash,
      run.parentRunId ?? null,
      run.parentAtom ?? null,
      atoms.length,
      atoms.map((a) => a.index),
      atoms.map((a) => a.name),
      atoms.map((a) => a.predecessors.length),
      this.wakeChannel,
      wake,
      // the graph's text only until this store has seen it committed
      this.core.graphs.has(graph.hash) ? null : graph.text,
    ];
    const rows = await this.driver.retry(() => this.driver.poolSession.rows('start a run', START_RUN_SQL, params, 'start_run'));
    return { run: runFromRow(rows[0]!), created: true };
  }

  /** Keyless runs in one statement, all or none; marks the graphs it inserted committed. */
  async startMany(runs: readonly NewRun[]): Promise<RunRow[]> {
    // graphs this store has not seen committed yet, once each
    const newGraphs = new Map<string, string>();
    for (const r of runs) {
      const g = graphDigest(r.graph);
      if (!this.core.graphs.has(g.hash)) newGraphs.set(g.hash, g.text);
    }
    const atomRun: string[] = [];
    const atomIdx: number[] = [];
    const atomName: string[] = [];
    const atomPending: number[] = [];
    for (const r of runs) {
      for (const a of r.graph.atoms) {
        atomRun.push(r.id);
        atomIdx.push(a.index);
        atomName.push(a.name);
        atomPending.push(a.predecessors.length);
      }
    }
    const wake = runs.some((r) => (r.wakeup ?? true) && r.graph.atoms.some((a) => a.predecessors.length === 0));
    const params = [
      [...newGraphs.keys()],
      [...newGraphs.values()],
      runs.map((r) => r.id),
      runs.map((r) => r.flow),
      runs.map((r) => r.version),
      runs.map((r) => canonicalJson(r.args)),
      runs.map((r) => graphDigest(r.graph).hash),
      runs.map((r) => r.parentRunId ?? null),
      runs.map((r) => r.parentAtom ?? null),
      runs.map((r) => r.graph.atoms.length),
      atomRun,
      atomIdx,
      atomName,
      atomPending,
      this.wakeChannel,
      wake,
    ];
    const rows = await this.driver.retry(() => this.driver.poolSession.rows('start runs', START_RUNS_SQL, params));
    for (const h of newGraphs.keys()) this.core.graphs.committedHash(h);
    const byId = new Map(rows.map((row) => [String(row.id), runFromRow(row)]));
    return runs.map((r) => byId.get(r.id)!);
  }
}
