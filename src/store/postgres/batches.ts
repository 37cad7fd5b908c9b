/**
 * The statement forms PostgreSQL writes its own way (src/store/sql/core.ts,
 * StatementForms): many rows in one statement through `unnest` of parallel arrays (a new
 * run's atoms, events in order, a group commit's atom writes, pending-count decrements),
 * the supersede as one CTE, the supersede queue as an advisory transaction lock, and the
 * wake-up as a NOTIFY delivered at commit.
 */
import type { FlowGraph } from '../../flow/graph.js';
import { ATOM_PATCH_COLUMNS, atomFromRow, patchValue, toJsonText } from '../rows.js';
import type { AtomRow, AtomUpdate, EventInput } from '../types.js';
import { BOOLEAN_FIELDS, JSON_FIELDS } from '../sql/atoms.js';
import type { SqlCore, StatementForms } from '../sql/core.js';
import type { SqlSession } from '../sql/driver.js';
import type { PostgresClaims } from './claims.js';

const INTEGER_FIELDS: ReadonlySet<string> = new Set(['pending', 'revertPending', 'attempt', 'execution']);

/** The forms of a PostgreSQL store; `supersedeNamespace` and `wakeChannel` are per deployment. */
export function postgresForms(options: {
  core: () => SqlCore;
  claims: PostgresClaims;
  supersedeNamespace: string;
  wakeChannel: string;
}): StatementForms {
  return {
    insertAtoms,
    insertEvents,
    updateAtomsBatch: (s, runId, updates) => (sameShape(updates) ? updateAtomsBatch(s, runId, updates) : null),
    decrementPending,
    supersede: (s, runId) => supersede(options.core(), s, runId),
    // Supersedes of one key queue here, so the next one sees the run this one starts. A
    // FOR UPDATE wait alone ends with no row under READ COMMITTED (the row it waited for
    // lost its key), so a back-to-back superseder made the other one fail on the unique
    // index until it ran out of attempts (test/chaos/supersede-across-engines.test.ts).
    queueSupersede: async (s, key) => {
      await s.rows('queue supersedes of a key', 'SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))', [
        `${options.supersedeNamespace}${key}`,
      ]);
    },
    // delivered at commit (and once per transaction however many starts ask for it)
    announce: async (s) => {
      await s.rows('announce claimable atoms', `SELECT pg_notify($1, '')`, [options.wakeChannel]);
    },
    claimMore: (s, engineId, limit) => options.claims.claimMore(s, engineId, limit),
  };
}

async function insertAtoms(s: SqlSession, runId: string, atoms: FlowGraph['atoms']): Promise<void> {
  await s.exec(
    'insert the atoms of a run',
    `INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at)
     SELECT $1, t.idx, t.name, CASE WHEN t.pending = 0 THEN 'READY' ELSE 'PENDING' END, t.pending,
            CASE WHEN t.pending = 0 THEN now() END, now()
     FROM unnest($2::integer[], $3::text[], $4::integer[]) AS t(idx, name, pending)`,
    [runId, atoms.map((a) => a.index), atoms.map((a) => a.name), atoms.map((a) => a.predecessors.length)],
  );
}

async function insertEvents(s: SqlSession, events: readonly EventInput[]): Promise<void> {
  // WITH ORDINALITY keeps the ids in the order the events were given.
  await s.exec(
    'insert events',
    `INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
     SELECT t.run_id, t.atom, t.kind, t.from_state, t.to_state, t.engine_id, t.epoch, t.data::jsonb, now()
     FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])
          WITH ORDINALITY AS t(run_id, atom, kind, from_state, to_state, engine_id, epoch, data, ord)
     ORDER BY t.ord`,
    [
      events.map((e) => e.runId),
      events.map((e) => e.atom),
      events.map((e) => e.kind),
      events.map((e) => e.fromState ?? null),
      events.map((e) => e.toState ?? null),
      events.map((e) => e.engineId ?? null),
      events.map((e) => e.epoch ?? null),
      events.map((e) => toJsonText(e.data ?? null)),
    ],
  );
}

/** The patch fields an update sets (readyAt excluded). */
function patchFields(u: AtomUpdate): (keyof typeof ATOM_PATCH_COLUMNS)[] {
  return (Object.keys(ATOM_PATCH_COLUMNS) as (keyof typeof ATOM_PATCH_COLUMNS)[]).filter((f) => f in u.patch && u.patch[f] !== undefined);
}

/**
 * Whether updates can share one statement: 2+ distinct atoms, same fields, fences and
 * expectations, and no ready_at delay (a delay is computed per atom in SQL; clearing
 * ready_at, `readyAt: null`, batches).
 */
function sameShape(updates: readonly AtomUpdate[]): boolean {
  if (updates.length < 2) return false;
  const first = updates[0]!;
  const readyAt = (u: AtomUpdate): string => (u.patch.readyAt === undefined ? 'keep' : u.patch.readyAt === null ? 'clear' : 'delay');
  const key = (u: AtomUpdate): string =>
    JSON.stringify([
      patchFields(u),
      u.epoch === undefined,
      u.expectRevertRequested ?? null,
      [...(u.expectStates ?? [])].sort(),
      readyAt(u),
    ]);
  const k0 = key(first);
  if (readyAt(first) === 'delay') return false;
  return new Set(updates.map((u) => u.index)).size === updates.length && updates.every((u) => key(u) === k0);
}

/**
 * Many conditional atom writes of one shape (a group commit's successes) in one statement:
 * the values arrive as parallel arrays, each row keeps its own epoch fence.
 */
async function updateAtomsBatch(s: SqlSession, runId: string, updates: readonly AtomUpdate[]): Promise<boolean[]> {
  const first = updates[0]!;
  const fields = patchFields(first);
  const params: unknown[] = [runId, updates.map((u) => u.index), updates.map((u) => u.epoch ?? null)];
  const columns = ['idx', 'epoch'];
  const arrays = ['$2::integer[]', '$3::bigint[]'];
  const sets: string[] = [];
  for (const field of fields) {
    const column = ATOM_PATCH_COLUMNS[field];
    params.push(updates.map((u) => (BOOLEAN_FIELDS.has(field) ? Boolean(u.patch[field]) : patchValue(field, u.patch[field]))));
    const type = JSON_FIELDS.has(field) ? 'text' : BOOLEAN_FIELDS.has(field) ? 'boolean' : INTEGER_FIELDS.has(field) ? 'bigint' : 'text';
    arrays.push(`$${params.length}::${type}[]`);
    columns.push(`v_${column}`);
    sets.push(`${column} = v.v_${column}${JSON_FIELDS.has(field) ? '::jsonb' : ''}`);
  }
  if (first.patch.readyAt === null) sets.push('ready_at = NULL');
  sets.push('updated_at = now()');
  const where = ['a.run_id = $1', 'a.idx = v.idx'];
  if (first.epoch !== undefined) where.push('a.epoch = v.epoch');
  if (first.expectRevertRequested !== undefined) {
    params.push(first.expectRevertRequested);
    where.push(`a.revert_requested = $${params.length}`);
  }
  if (first.expectStates && first.expectStates.length > 0) {
    params.push([...first.expectStates]);
    where.push(`a.state = ANY($${params.length}::text[])`);
  }
  const rows = await s.rows(
    first.epoch !== undefined ? 'fenced atom updates (batch)' : 'atom updates (batch)',
    `UPDATE {p}atoms a SET ${sets.join(', ')}
     FROM unnest(${arrays.join(', ')}) AS v(${columns.join(', ')})
     WHERE ${where.join(' AND ')}
     RETURNING a.idx`,
    params,
  );
  const matched = new Set(rows.map((row) => Number(row.idx)));
  return updates.map((u) => matched.has(u.index));
}

async function decrementPending(s: SqlSession, runId: string, entries: readonly { index: number; disable: boolean }[]): Promise<AtomRow[]> {
  const distinct = new Set(entries.map((e) => e.index)).size === entries.length;
  if (!distinct) {
    // The same atom twice: one statement per entry, so each returned row shows the state
    // after its own decrement, exactly as the SQLite adapter reports it.
    const out: AtomRow[] = [];
    for (const e of entries) out.push(...(await decrementPending(s, runId, [e])));
    return out;
  }
  // Reaching 0 without `skip` makes the atom READY in the same statement (SET expressions
  // read the old row, so `a.pending = 1` means "reaches 0 now").
  const rows = await s.rows(
    'decrement pending counters',
    `UPDATE {p}atoms a SET pending = a.pending - 1, skip = a.skip OR d.disable,
       state = CASE WHEN a.pending = 1 AND NOT a.skip AND NOT d.disable THEN 'READY' ELSE a.state END,
       ready_at = CASE WHEN a.pending = 1 AND NOT a.skip AND NOT d.disable THEN now() ELSE a.ready_at END,
       updated_at = now()
     FROM unnest($2::integer[], $3::boolean[]) AS d(idx, disable)
     WHERE a.run_id = $1 AND a.idx = d.idx AND a.state = 'PENDING'
     RETURNING a.*`,
    [runId, entries.map((e) => e.index), entries.map((e) => e.disable)],
  );
  const byIndex = new Map(rows.map((row) => [Number(row.idx), atomFromRow(row)]));
  return entries.flatMap((e) => byIndex.get(e.index) ?? []);
}

async function supersede(core: SqlCore, s: SqlSession, runId: string): Promise<void> {
  await s.exec(
    'supersede a run',
    `UPDATE {p}runs SET status = 'SUPERSEDED', active_key = NULL, finished_at = now(), updated_at = now(), row_version = row_version + 1 WHERE id = $1`,
    [runId],
  );
  // one write and one event per atom, like any other transition; locked first, so the
  // event names the state each atom was really in (a claim may take a READY atom meanwhile:
  // it is then RUNNING and left alone)
  const cancelled = await s.exec(
    'cancel the atoms of a superseded run',
    `WITH o AS (
       SELECT idx, state FROM {p}atoms
       WHERE run_id = $1 AND state IN ('PENDING', 'READY', 'WAITING', 'REVERT_PENDING', 'REVERT_READY') ORDER BY idx FOR UPDATE
     ), u AS (
       UPDATE {p}atoms t SET state = 'CANCELLED', ready_at = NULL, updated_at = now()
       FROM o WHERE t.run_id = $1 AND t.idx = o.idx
       RETURNING t.idx, o.state
     )
     INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, at)
     SELECT $1, idx, 'atom.cancelled', state, 'CANCELLED', now() FROM u ORDER BY idx`,
    [runId],
  );
  await core.insertEvents(s, [{ runId, atom: null, kind: 'run.superseded', toState: 'SUPERSEDED', data: { cancelledAtoms: cancelled } }]);
}
