/**
 * Statements on run rows, written once for the three dialects (fragments: ./dialect.ts):
 * the run lock a transaction starts with, the run update, and one-row writes that return
 * the row they wrote.
 */
import { TERMINAL_RUN_STATUSES } from '../states.js';
import { runFromRow, toJsonText } from '../rows.js';
import type { RunPatch, RunRow } from '../types.js';
import type { SqlDialect } from './dialect.js';
import { statement, textCache, type Binder } from './binder.js';
import type { Raw, SqlSession } from './driver.js';

const runColumnsByDialect = new Map<string, string>();

/**
 * The columns of a run row (never a graph: a graph can be megabytes and is stored once per
 * content, src/store/graphs.ts). PostgreSQL's named statements embed this text: keep it.
 */
export function runColumns(d: SqlDialect): string {
  let text = runColumnsByDialect.get(d.name);
  if (text === undefined) {
    text = `id, flow, version, ${d.keyColumn}, status, args, result, failure, parent_run_id, parent_atom,
  pending_atoms, revert_pending, atom_count, graph_hash, created_at, updated_at, finished_at`;
    runColumnsByDialect.set(d.name, text);
  }
  return text;
}

/**
 * Writes one row and returns `columns` of it: with `RETURNING` where the dialect has it;
 * else (MySQL) the write, then, when it matched one row, a read of that row, which the
 * write keeps locked until the transaction ends. Undefined when nothing matched.
 */
export function writeReturning(
  d: SqlDialect,
  s: SqlSession,
  purpose: string,
  columns: string,
  write: (b: Binder) => string,
  readBack: (b: Binder) => string,
): Promise<Raw | undefined> {
  if (d.returning) {
    const w = statement(d, (b) => `${write(b)} RETURNING ${columns}`);
    return s.row(purpose, w.text, w.params);
  }
  return (async () => {
    const w = statement(d, write);
    if ((await s.exec(purpose, w.text, w.params)) !== 1) return undefined;
    const r = statement(d, (b) => `SELECT ${columns} ${readBack(b)}`);
    return s.row(`${purpose} (read back)`, r.text, r.params);
  })();
}

/**
 * Locks the given runs, in id order (so every engine takes them in the same order), and
 * returns their rows. SQLite has no row locks: its write lock (`BEGIN IMMEDIATE`) already
 * serialises everything, and bumping `row_version` keeps the shape of the other dialects
 * (the first statement of a run transaction writes the run row).
 */
export async function lockRuns(d: SqlDialect, s: SqlSession, sortedIds: readonly string[]): Promise<Map<string, RunRow>> {
  const runs = new Map<string, RunRow>();
  if (sortedIds.length === 0) return runs;
  const columns = runColumns(d);
  if (d.forUpdate !== '') {
    const st = statement(
      d,
      (b) => `SELECT ${columns} FROM {p}runs WHERE ${d.inList(b, 'id', sortedIds, 'text')} ORDER BY id${d.forUpdate}`,
    );
    for (const r of await s.rows('lock runs', st.text, st.params)) runs.set(String(r.id), runFromRow(r));
    return runs;
  }
  for (const id of sortedIds) {
    const row = await lockRun(d, s, 'lock runs', id, columns);
    if (row) runs.set(id, runFromRow(row));
  }
  return runs;
}

const lockRunTexts = textCache();

/** Locks one run row (as {@link lockRuns}) and returns `columns` of it, or undefined when there is no such run. */
export function lockRun(d: SqlDialect, s: SqlSession, purpose: string, runId: string, columns: string): Promise<Raw | undefined> {
  const text = lockRunTexts(d, columns, (b) =>
    d.forUpdate !== ''
      ? `SELECT ${columns} FROM {p}runs WHERE id = ${b.bind('runId')}${d.forUpdate}`
      : `UPDATE {p}runs SET row_version = row_version + 1 WHERE id = ${b.bind('runId')} RETURNING ${columns}`,
  );
  return s.row(purpose, text, [runId]);
}

/** Applies a {@link RunPatch} to a locked run; returns the row after it (undefined: no such run). */
export async function updateRun(d: SqlDialect, s: SqlSession, runId: string, patch: RunPatch): Promise<RunRow | undefined> {
  const row = await writeReturning(
    d,
    s,
    'update a run',
    runColumns(d),
    (b) => {
      const sets: string[] = [`updated_at = ${d.now}`, 'row_version = row_version + 1'];
      if (patch.status !== undefined) {
        sets.push(`status = ${b.bind(patch.status)}`);
        if (TERMINAL_RUN_STATUSES.includes(patch.status)) sets.push('active_key = NULL', `finished_at = ${d.now}`);
      }
      if (patch.result !== undefined) sets.push(`result = ${d.json(b, toJsonText(patch.result))}`);
      if (patch.failure !== undefined) sets.push(`failure = ${d.json(b, toJsonText(patch.failure))}`);
      if (patch.pendingAtomsDelta) sets.push(`pending_atoms = pending_atoms + ${d.int(b, patch.pendingAtomsDelta)}`);
      // both given: set, then add (one assignment: PostgreSQL refuses two to one column)
      if (patch.revertPending !== undefined)
        sets.push(`revert_pending = ${d.int(b, patch.revertPending + (patch.revertPendingDelta ?? 0))}`);
      else if (patch.revertPendingDelta) sets.push(`revert_pending = revert_pending + ${d.int(b, patch.revertPendingDelta)}`);
      return `UPDATE {p}runs SET ${sets.join(', ')} WHERE id = ${b.bind(runId)}`;
    },
    (b) => `FROM {p}runs WHERE id = ${b.bind(runId)}`,
  );
  return row ? runFromRow(row) : undefined;
}
