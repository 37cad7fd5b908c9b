/**
 * Starting a run inside a transaction (protocol 1, ARCHITECTURE.md), written once: the key
 * lookup (idempotent start, conflict, supersede), the graph row (once per content), the
 * run row, its atoms and its `run.created` event, and the wake-up at commit. PostgreSQL
 * also starts a keyless run, and many at once, in one statement
 * (src/store/postgres/starts.ts).
 */
import { canonicalJson } from '../../core/canonical-json.js';
import type { JsonValue } from '../../core/json.js';
import { ConflictError } from '../../errors.js';
import { graphDigest } from '../graphs.js';
import { jsonColumn, runFromRow, supersededAtomEvents } from '../rows.js';
import type { NewRun, StartResult } from '../types.js';
import { chunks } from './chunks.js';
import type { SqlCore } from './core.js';
import { statement } from './binder.js';
import type { SqlSession } from './driver.js';
import { runColumns, writeReturning } from './runs.js';

/** The atom states a supersede cancels. */
const OPEN_STATES = `'PENDING', 'READY', 'WAITING', 'REVERT_PENDING', 'REVERT_READY'`;

/**
 * Starts `run` in the transaction of `s`, or returns the active run with the same key and
 * arguments. `wakeupByDefault` applies when the run does not say (true for a start of its
 * own, false inside a run transaction: the engine announces its whole commit).
 */
export async function startRunOn(core: SqlCore, s: SqlSession, run: NewRun, wakeupByDefault: boolean): Promise<StartResult> {
  const { d } = core;
  const columns = runColumns(d);
  const argsText = canonicalJson(run.args);
  let superseded: string | undefined;
  if (run.key !== null) {
    const key = run.key;
    if (run.supersede) await core.forms.queueSupersede?.(s, key);
    const find = statement(d, (b) => `SELECT ${columns} FROM {p}runs WHERE active_key = ${b.bind(key)}${d.forUpdate}`);
    const active = await s.row('find the active run of a key', find.text, find.params);
    if (active) {
      if (!run.supersede) {
        if (canonicalJson(jsonColumn(active.args) as JsonValue) === argsText && active.flow === run.flow) {
          return { run: runFromRow(active), created: false };
        }
        throw new ConflictError(
          'STOKER_RUN_KEY_CONFLICT',
          `run ${String(active.id)} with key "${key}" is still active with different arguments`,
          {
            details: { runId: String(active.id), key },
          },
        );
      }
      superseded = String(active.id);
      await core.supersede(s, superseded);
    }
  }
  const atoms = run.graph.atoms;
  const graph = graphDigest(run.graph);
  if (!core.graphs.has(graph.hash)) {
    const g = statement(d, (b) =>
      d.insertIgnore('{p}graphs', `(hash, graph, created_at) VALUES (${b.bind(graph.hash)}, ${b.bind(graph.text)}, ${d.now})`, 'hash'),
    );
    await s.exec('store a flow graph', g.text, g.params);
  }
  const row = await writeReturning(
    d,
    s,
    'insert a run',
    columns,
    (b) =>
      `INSERT INTO {p}runs (id, flow, version, ${d.keyColumn}, active_key, status, args, graph_hash, parent_run_id, parent_atom, pending_atoms, atom_count, created_at, updated_at)
       VALUES (${b.bind(run.id)}, ${b.bind(run.flow)}, ${b.bind(run.version)}, ${b.bind(run.key)}, ${b.bind(run.key)}, 'PENDING', ${d.json(b, argsText)},
               ${b.bind(graph.hash)}, ${b.bind(run.parentRunId ?? null)}, ${b.bind(run.parentAtom ?? null)}, ${b.bind(atoms.length)}, ${b.bind(atoms.length)},
               ${d.now}, ${d.now})`,
    (b) => `FROM {p}runs WHERE id = ${b.bind(run.id)}`,
  );
  await core.insertAtoms(s, run.id, atoms);
  await core.insertEvents(s, [
    { runId: run.id, atom: null, kind: 'run.created', toState: 'PENDING', data: superseded ? { supersedes: superseded } : null },
  ]);
  if ((run.wakeup ?? wakeupByDefault) && atoms.some((a) => a.predecessors.length === 0)) await core.forms.announce?.(s);
  return { run: runFromRow(row!), created: true, ...(superseded ? { superseded } : {}) };
}

/**
 * The shared supersede (protocol 7, ARCHITECTURE.md): the run becomes SUPERSEDED and its
 * open atoms CANCELLED, one write and one event each, like any other transition. The open
 * atoms are locked first (MySQL; SQLite holds its write lock), so the events name the
 * states they were really in: a claim may take a READY atom meanwhile, which is then
 * RUNNING and left alone.
 */
export async function supersedeRun(core: SqlCore, s: SqlSession, runId: string): Promise<void> {
  const { d } = core;
  const run = statement(
    d,
    (b) =>
      `UPDATE {p}runs SET status = 'SUPERSEDED', active_key = NULL, finished_at = ${d.now}, updated_at = ${d.now}, row_version = row_version + 1 WHERE id = ${b.bind(runId)}`,
  );
  await s.exec('supersede a run', run.text, run.params);
  const lock = statement(
    d,
    (b) => `SELECT idx, state FROM {p}atoms WHERE run_id = ${b.bind(runId)} AND state IN (${OPEN_STATES}) ORDER BY idx${d.forUpdate}`,
  );
  const open = await s.rows('lock the open atoms of a superseded run', lock.text, lock.params);
  for (const chunk of chunks(open, d.maxInList)) {
    if (chunk.length === 0) continue;
    const cancel = statement(
      d,
      (b) =>
        `UPDATE {p}atoms SET state = 'CANCELLED', ready_at = NULL, updated_at = ${d.now}
         WHERE run_id = ${b.bind(runId)} AND ${d.inList(
           b,
           'idx',
           chunk.map((a) => a.idx),
           'integer',
         )}`,
    );
    await s.exec('cancel the atoms of a superseded run', cancel.text, cancel.params);
  }
  await core.insertEvents(s, [
    ...supersededAtomEvents(runId, open),
    { runId, atom: null, kind: 'run.superseded', toState: 'SUPERSEDED', data: { cancelledAtoms: open.length } },
  ]);
}
