/**
 * Statements on atom rows, written once for the three dialects (fragments: ./dialect.ts):
 * reads by index and state, the conditional atom write (the fenced write for a claim when
 * it carries an epoch), the local-continuation claim, and the shared form of a new run's
 * atom rows. PostgreSQL sends several of them as one unnest statement instead
 * (src/store/postgres/batches.ts).
 */
import type { JsonValue } from '../../core/json.js';
import type { FlowGraph } from '../../flow/graph.js';
import type { AtomState } from '../states.js';
import { ATOM_PATCH_COLUMNS, atomFromRow, claimFromRow, jsonColumn, toJsonText } from '../rows.js';
import type { AtomRow, AtomUpdate, ClaimedAtom } from '../types.js';
import { chunks } from './chunks.js';
import type { SqlDialect } from './dialect.js';
import { statement, textCache, type Binder, type Statement } from './binder.js';
import type { Raw, SqlSession } from './driver.js';

/** The columns a claim hands to the engine ({@link claimFromRow}). */
export const CLAIM_COLUMNS = 'run_id, idx, state, epoch, attempt, execution, journal, failure';

/** Patch fields stored as JSON text, and as booleans. */
export const JSON_FIELDS: ReadonlySet<string> = new Set(['result', 'failure', 'journal']);
export const BOOLEAN_FIELDS: ReadonlySet<string> = new Set(['skip', 'revertRequested']);

/** Each patch field with its column and how its value is bound. */
const PATCH_FIELDS = (Object.entries(ATOM_PATCH_COLUMNS) as [keyof typeof ATOM_PATCH_COLUMNS, string][]).map(
  ([field, column]) => [field, column, JSON_FIELDS.has(field) ? 'json' : BOOLEAN_FIELDS.has(field) ? 'bool' : 'plain'] as const,
);

/** Atoms of a run by index, in index order (in chunks where the dialect limits a list). */
export async function getAtoms(d: SqlDialect, s: SqlSession, runId: string, indexes: readonly number[]): Promise<AtomRow[]> {
  if (indexes.length === 0) return [];
  const out: AtomRow[] = [];
  for (const chunk of chunks(indexes, d.maxInList)) {
    const st = statement(
      d,
      (b) => `SELECT * FROM {p}atoms WHERE run_id = ${b.bind(runId)} AND ${d.inList(b, 'idx', chunk, 'integer')} ORDER BY idx`,
    );
    for (const r of await s.rows('read atoms', st.text, st.params)) out.push(atomFromRow(r));
  }
  return out;
}

/** The results of some atoms of a run. */
export async function getAtomResults(
  d: SqlDialect,
  s: SqlSession,
  runId: string,
  indexes: readonly number[],
): Promise<Map<number, JsonValue | null>> {
  const out = new Map<number, JsonValue | null>();
  for (const chunk of chunks(indexes, d.maxInList)) {
    if (chunk.length === 0) continue;
    const st = statement(
      d,
      (b) => `SELECT idx, result FROM {p}atoms WHERE run_id = ${b.bind(runId)} AND ${d.inList(b, 'idx', chunk, 'integer')} ORDER BY idx`,
    );
    for (const r of await s.rows('read atom results', st.text, st.params)) out.set(Number(r.idx), jsonColumn(r.result));
  }
  return out;
}

/** Atoms of a run in any of the given states, in index order. */
export async function getAtomsInStates(d: SqlDialect, s: SqlSession, runId: string, states: readonly AtomState[]): Promise<AtomRow[]> {
  if (states.length === 0) return [];
  const st = statement(
    d,
    (b) => `SELECT * FROM {p}atoms WHERE run_id = ${b.bind(runId)} AND ${d.inList(b, 'state', states, 'text')} ORDER BY idx`,
  );
  return (await s.rows('read atoms by state', st.text, st.params)).map(atomFromRow);
}

/**
 * Conditional atom writes, one statement each: for each, true when it matched (false:
 * fenced, or the state moved).
 */
export async function updateAtoms(d: SqlDialect, s: SqlSession, runId: string, updates: readonly AtomUpdate[]): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const u of updates) {
    const st = atomUpdate(d, runId, u);
    out.push((await s.exec(u.epoch !== undefined ? 'fenced atom update' : 'atom update', st.text, st.params)) === 1);
  }
  return out;
}

/**
 * One conditional atom write. Every assignment is a bound value or the database clock
 * (none reads another column), so MySQL's left-to-right SET evaluation cannot change the
 * outcome.
 */
function atomUpdate(d: SqlDialect, runId: string, u: AtomUpdate): Statement {
  return statement(d, (b) => {
    const sets: string[] = [];
    for (const [field, column, kind] of PATCH_FIELDS) {
      const v = u.patch[field];
      if (v === undefined) continue;
      if (kind === 'json') sets.push(`${column} = ${d.json(b, toJsonText(v))}`);
      else if (kind === 'bool') sets.push(`${column} = ${b.bind(d.bool(Boolean(v)))}`);
      else sets.push(`${column} = ${b.bind(v)}`);
    }
    if (u.patch.readyAt !== undefined) {
      if (u.patch.readyAt === null) sets.push('ready_at = NULL');
      else sets.push(`ready_at = ${d.nowPlusMs(b, Math.max(0, Math.round(u.patch.readyAt.delayMs)))}`);
    }
    sets.push(`updated_at = ${d.now}`);
    const where = [`run_id = ${b.bind(runId)}`, `idx = ${b.bind(u.index)}`];
    if (u.epoch !== undefined) where.push(`epoch = ${b.bind(u.epoch)}`);
    if (u.expectRevertRequested !== undefined) where.push(`revert_requested = ${b.bind(d.bool(u.expectRevertRequested))}`);
    if (u.expectStates && u.expectStates.length > 0) where.push(d.inList(b, 'state', u.expectStates, 'text'));
    return `UPDATE {p}atoms SET ${sets.join(', ')} WHERE ${where.join(' AND ')}`;
  });
}

const claimTexts = textCache();

/** Claims one READY atom for `engineId` (local continuation); null if it was not READY. Writes no event. */
export async function claimAtom(d: SqlDialect, s: SqlSession, runId: string, index: number, engineId: string): Promise<ClaimedAtom | null> {
  const purpose = 'claim an atom (local continuation)';
  const write = (b: Binder): string =>
    `UPDATE {p}atoms SET state = 'RUNNING', execution = execution + 1, claimed_by = ${b.bind('engineId')}, claimed_at = ${d.now},
       epoch = epoch + 1, ready_at = NULL, updated_at = ${d.now}
     WHERE run_id = ${b.bind('runId')} AND idx = ${b.bind('index')} AND state = 'READY'`;
  let row: Raw | undefined;
  if (d.returning) {
    row = await s.row(
      purpose,
      claimTexts(d, 'returning', (b) => `${write(b)} RETURNING ${CLAIM_COLUMNS}`),
      [engineId, runId, index],
    );
  } else if ((await s.exec(purpose, claimTexts(d, 'write', write), [engineId, runId, index])) === 1) {
    // no RETURNING (MySQL): the row stays locked by the write until the transaction ends
    const read = claimTexts(
      d,
      'read',
      (b) => `SELECT ${CLAIM_COLUMNS} FROM {p}atoms WHERE run_id = ${b.bind('runId')} AND idx = ${b.bind('index')}`,
    );
    row = await s.row(`${purpose} (read back)`, read, [runId, index]);
  }
  return row ? claimFromRow(row) : null;
}

/**
 * A new run's atoms: READY (claimable now) without predecessors, else PENDING, as
 * multi-row INSERTs of {@link SqlDialect.rowsPerInsert} rows (PostgreSQL: one unnest).
 */
export async function insertAtomRows(d: SqlDialect, s: SqlSession, runId: string, atoms: FlowGraph['atoms']): Promise<void> {
  for (const chunk of chunks(atoms, d.rowsPerInsert)) {
    const st = statement(d, (b) => {
      const rows = chunk.map((a) => {
        const ready = a.predecessors.length === 0;
        return `(${b.bind(runId)}, ${b.bind(a.index)}, ${b.bind(a.name)}, ${b.bind(ready ? 'READY' : 'PENDING')}, ${b.bind(a.predecessors.length)},
          CASE WHEN ${b.bind(d.bool(ready))} THEN ${d.now} END, ${d.now})`;
      });
      return `INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at) VALUES ${rows.join(', ')}`;
    });
    await s.exec('insert the atoms of a run', st.text, st.params);
  }
}
