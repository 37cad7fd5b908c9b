/**
 * The statements of the orchestration schema (schema.ts), over the store's {@link ModuleSql}:
 * stacks, template sets, resource rows with their hold, events. Written once for the three
 * dialects (`?` placeholders, JSON as text, integers for booleans and display times).
 */
import type { JsonObject } from '../../core/json.js';
import type { ModuleSession, ModuleSql } from '../../store/ports.js';
import { Coalescer } from './coalesce.js';
import {
  PLAN_COLUMNS,
  RESOURCE_COLUMNS,
  STACK_COLUMNS,
  SUMMARY_COLUMNS,
  assignments,
  encode,
  holdCondition,
  patchColumns,
  resourceOf,
  resourcePartOf,
  resourceRecord,
  stackFrom,
  stackOf,
  type StackColumnNames,
  type ResourcePlanRow,
  type ResourceRow,
  type ResourceSummaryRow,
  type StackEventRow,
  type StackRow,
} from './stack-rows.js';
import type { InPlaceUpdate, PlannedCreate, ResourceWrite, StepStart, StepView } from './step-writes.js';

export {
  newResourceRow,
  type ResourcePlanRow,
  type ResourceRow,
  type ResourceSummaryRow,
  type StackAction,
  type StackEventRow,
  type StackRow,
  type StackStatusValue,
} from './stack-rows.js';

/** the stack's columns in a step's one-statement read, prefixed `st__` */
const VIEW_STACK_COLUMNS = ['id', ...Object.values(STACK_COLUMNS)].map((c) => `st.${c} AS st__${c}`).join(', ');
/** the names of those columns, by field, for {@link stackFrom} */
const VIEW_STACK_NAMES = Object.fromEntries(Object.entries(STACK_COLUMNS).map(([f, c]) => [f, `st__${c}`])) as StackColumnNames;

/**
 * A row found by its id is checked to be of the step's stack after it is found: written as
 * a plain equality, `r.stack_id = v."stackId"` joined the stack's own equality (`st.id`), and
 * the planner probed `stack_resources_stack` by the stack and filtered the stack's every row
 * by id instead of probing the primary key (a group of 1,000 updated in place: 509 index
 * entries read per step). `IS TRUE` is no index condition, so the id is the only one.
 */
const OF_STACK = `(r.stack_id = v."stackId") IS TRUE`;

/**
 * The planned row a create takes, found by `(stack_id, name)` of the JSON list's entry `v`:
 * a lateral lookup kept apart (`OFFSET 0`) so that both columns are its index condition, and
 * the row then written is joined by its primary key. Joined to the row directly, the planner
 * probed the index by `stack_id` alone and filtered the stack's every row by name (the
 * table's statistics being those of a smaller table): with a group of 1,000 members each
 * create read about 500 rows, 1,000 to 1,500 index entries per step (bench/claim-probe.ts).
 * A row's stack and name never change, so the lookup's snapshot suffices; the written row's
 * state is checked on its newest version by the UPDATE itself.
 */
const PLANNED_ROW = `CROSS JOIN LATERAL (SELECT x.id FROM {p}stack_resources x
                 WHERE x.stack_id = v."stackId" AND x.name = v.name AND x.current_row = 1 AND x.deleted = 0 OFFSET 0) x`;

/** A resource step's own writes commit lazily: its atom's completion, committed after them, makes them durable. */
const STEP_WRITE = { lazyCommit: true } as const;

/**
 * The writes of concurrent steps over a JSON list are prepared once per connection: the
 * planner's estimate of the list is the same whatever it holds, so a plan made once serves
 * every call, and planning such a statement took several times as long as executing it
 * (0.4 ms against 0.12 ms, EXPLAIN ANALYZE of a chain step's create). Only statements whose
 * result columns are fixed: one returning `r.*` would fail on every later call on its
 * connection once a migration added a column ("cached plan must not change result type").
 */
const PREPARED = { prepared: true } as const;

/** The statements; `sql` is the store's module SQL. */
export class StackStore {
  /** resource writes of concurrent steps, one statement per batch (PostgreSQL) */
  private readonly writes: Coalescer<ResourceWrite, boolean>;
  /** creates' and deletes' first writes of concurrent steps, one statement per batch (PostgreSQL) */
  private readonly starts: Coalescer<StepStart, { stack: StackRow; row: ResourceRow } | null>;
  private readonly deleteStarts: Coalescer<StepStart, { stack: StackRow; row: ResourceRow } | null>;
  /** creates done in one write (start and end together) of concurrent steps, one statement per batch (PostgreSQL) */
  private readonly finishes: Coalescer<PlannedCreate, boolean>;
  /** updates in place done in one write of concurrent steps, one statement per batch (PostgreSQL) */
  private readonly inPlace: Coalescer<InPlaceUpdate, boolean>;
  /** updates in place this store recorded in one write ({@link updateInPlace}) */
  updatedAtOnce = 0;
  /** template sets this store read ({@link getTemplateSet}) */
  templateSetReads = 0;

  /** the first reads of concurrent steps (by names, by row), one statement per batch (PostgreSQL) */
  private readonly views: Coalescer<{ stackId: string; names: readonly string[] }, StepView>;
  private readonly rowViews: Coalescer<{ stackId: string; rowId: number }, StepView>;

  constructor(readonly sql: ModuleSql) {
    this.views = new Coalescer((items) => this.viewBatch(items, 'names'), null);
    this.rowViews = new Coalescer((items) => this.viewBatch(items, 'row'), null);
    this.writes = new Coalescer(
      (items) => this.writeBatch(items),
      (w) => w.id,
    );
    this.starts = new Coalescer(
      (items) => this.startBatch(items, 'CREATE'),
      (c) => `${c.stackId}\u0000${c.name}`,
    );
    this.deleteStarts = new Coalescer(
      (items) => this.startBatch(items, 'DELETE'),
      (c) => c.rowId ?? 0,
    );
    this.finishes = new Coalescer(
      (items) => this.createBatch(items),
      (c) => `${c.stackId}\u0000${c.name}`,
    );
    this.inPlace = new Coalescer(
      (items) => this.updateBatch(items),
      (u) => u.row.id,
    );
  }

  // ------------------------------------------------------------------ stacks

  async insertStack(s: ModuleSession, row: StackRow): Promise<void> {
    const fields = Object.keys(STACK_COLUMNS) as (keyof typeof STACK_COLUMNS)[];
    const columns = ['id', 'live_name', ...fields.map((f) => STACK_COLUMNS[f])];
    const params = [row.id, row.deletedAt === null ? row.name : null, ...fields.map((f) => encode(f, row[f]))];
    await s.exec('insert a stack', `INSERT INTO {p}stacks (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`, params);
  }

  async getStack(s: ModuleSession, id: string): Promise<StackRow | null> {
    const rows = await s.rows('read a stack', `SELECT * FROM {p}stacks WHERE id = ?`, [id]);
    return rows[0] ? stackOf(rows[0]) : null;
  }

  /** the live (not deleted) stack of that name in the project */
  /** The live stack named `nameOrId` in `project`, else the stack whose id it is: one statement. */
  async findStackOrId(s: ModuleSession, project: string, nameOrId: string): Promise<{ byName: StackRow | null; byId: StackRow | null }> {
    // the match by name as the database compares (its collation), not as JavaScript would
    const rows = await s.rows(
      'find a stack',
      `SELECT s.*, CASE WHEN project = ? AND live_name = ? THEN 1 ELSE 0 END AS by_name FROM {p}stacks s
       WHERE (project = ? AND live_name = ?) OR id = ?`,
      [project, nameOrId, project, nameOrId, nameOrId],
    );
    const byName = rows.find((r) => Number(r['by_name']) === 1);
    const byId = rows.find((r) => Number(r['by_name']) !== 1 || String(r['id']) === nameOrId);
    return { byName: byName ? stackOf(byName) : null, byId: byId ? stackOf(byId) : null };
  }

  async findStack(s: ModuleSession, project: string, name: string): Promise<StackRow | null> {
    const rows = await s.rows('find a stack', `SELECT * FROM {p}stacks WHERE project = ? AND live_name = ?`, [project, name]);
    return rows[0] ? stackOf(rows[0]) : null;
  }

  async listStacks(s: ModuleSession, project: string, options: { nested?: boolean; deleted?: boolean } = {}): Promise<StackRow[]> {
    const where = ['project = ?'];
    if (!options.nested) where.push('parent_id IS NULL');
    if (!options.deleted) where.push('deleted_at IS NULL');
    const rows = await s.rows('list stacks', `SELECT * FROM {p}stacks WHERE ${where.join(' AND ')} ORDER BY created_at, id`, [project]);
    return rows.map(stackOf);
  }

  async childStacks(s: ModuleSession, parentId: string): Promise<StackRow[]> {
    const rows = await s.rows('list nested stacks', `SELECT * FROM {p}stacks WHERE parent_id = ? AND deleted_at IS NULL`, [parentId]);
    return rows.map(stackOf);
  }

  /**
   * Changes a stack; with `traversal`, only while that run is still its current traversal.
   * Returns whether the row matched. Deleting (deletedAt) frees the name.
   */
  async updateStack(s: ModuleSession, id: string, patch: Partial<StackRow>, onlyTraversal?: string): Promise<boolean> {
    const set = stackAssignments(patch);
    const params = [...set.params, id];
    let where = 'id = ?';
    if (onlyTraversal !== undefined) {
      where += ' AND traversal = ?';
      params.push(onlyTraversal);
    }
    return (await s.exec('update a stack', `UPDATE {p}stacks SET ${set.text} WHERE ${where}`, params)) > 0;
  }

  /**
   * A stack action's end in one statement (PostgreSQL; null elsewhere, and null when nothing
   * matched): while `traversal` is still the stack's and, with `noReplacedRows`, no replaced
   * row of the stack is left to delete, the stack gets `patch` and `event` is recorded (its
   * stack's name as `resource_name`, the stack's id as `physical_id`). Returns the stack as
   * changed. A normal commit, like every stack-level write.
   */
  async finishTraversal(
    id: string,
    traversal: string,
    patch: Partial<StackRow>,
    event: { status: string; reason: string; at: number },
    noReplacedRows: boolean,
  ): Promise<StackRow | null> {
    if (this.sql.dialect !== 'postgres') return null;
    const set = stackAssignments(patch);
    const replaced = noReplacedRows
      ? ' AND NOT EXISTS (SELECT 1 FROM {p}stack_resources r WHERE r.stack_id = st.id AND r.deleted = 0 AND r.current_row = 0)'
      : '';
    const rows = await this.sql.write('finish a stack action', (s) =>
      s.rows(
        'finish a stack action',
        `WITH u AS (UPDATE {p}stacks st SET ${set.text} WHERE st.id = ? AND st.traversal = ?${replaced} RETURNING st.*),
         e AS (INSERT INTO {p}stack_events (stack_id, resource_name, resource_type, physical_id, status, reason, created_at)
               SELECT id, name, NULL, id, ?, ?, ?::bigint FROM u)
         SELECT * FROM u`,
        [...set.params, id, traversal, event.status, event.reason, event.at],
      ),
    );
    return rows[0] ? stackOf(rows[0]) : null;
  }

  // ------------------------------------------------------------------ template sets

  async insertTemplateSet(s: ModuleSession, id: string, stackId: string, body: JsonObject, at: number): Promise<void> {
    await s.exec('insert a template set', `INSERT INTO {p}stack_templates (id, stack_id, body, created_at) VALUES (?, ?, ?, ?)`, [
      id,
      stackId,
      JSON.stringify(body),
      at,
    ]);
  }

  async getTemplateSet(s: ModuleSession, id: string): Promise<JsonObject | null> {
    this.templateSetReads++;
    const rows = await s.rows('read a template set', `SELECT body FROM {p}stack_templates WHERE id = ?`, [id]);
    return rows[0] ? (JSON.parse(String(rows[0]['body'])) as JsonObject) : null;
  }

  // ------------------------------------------------------------------ resources

  /** every row of a stack not deleted (current and replaced ones), in id order */
  async resources(s: ModuleSession, stackId: string, options: { includeDeleted?: boolean } = {}): Promise<ResourceRow[]> {
    const rows = await s.rows(
      'list resources',
      `SELECT * FROM {p}stack_resources WHERE stack_id = ?${options.includeDeleted ? '' : ' AND deleted = 0'} ORDER BY id`,
      [stackId],
    );
    return rows.map(resourceOf);
  }

  /** every row of a stack not deleted, in id order, with only what its outputs read ({@link SUMMARY_COLUMNS}) */
  async resourceSummaries(s: ModuleSession, stackId: string): Promise<ResourceSummaryRow[]> {
    const rows = await s.rows(
      'list resources for outputs',
      `SELECT id, ${Object.values(SUMMARY_COLUMNS).join(', ')} FROM {p}stack_resources WHERE stack_id = ? AND deleted = 0 ORDER BY id`,
      [stackId],
    );
    return rows.map((r) => resourcePartOf<ResourceSummaryRow>(r, SUMMARY_COLUMNS));
  }

  /** every row of a stack, deleted ones included, in id order, with only what an action's plan reads ({@link PLAN_COLUMNS}) */
  async resourcesToPlan(s: ModuleSession, stackId: string): Promise<ResourcePlanRow[]> {
    const rows = await s.rows(
      'list resources to plan',
      `SELECT id, ${Object.values(PLAN_COLUMNS).join(', ')} FROM {p}stack_resources WHERE stack_id = ? ORDER BY id`,
      [stackId],
    );
    return rows.map((r) => resourcePartOf<ResourcePlanRow>(r, PLAN_COLUMNS));
  }

  /** the rows (not deleted) of some names */
  async resourcesNamed(s: ModuleSession, stackId: string, names: readonly string[]): Promise<ResourceRow[]> {
    if (names.length === 0) return [];
    const out: ResourceRow[] = [];
    for (let i = 0; i < names.length; i += 500) {
      const chunk = names.slice(i, i + 500);
      const rows = await s.rows(
        'read resources',
        `SELECT * FROM {p}stack_resources WHERE stack_id = ? AND deleted = 0 AND name IN (${chunk.map(() => '?').join(', ')}) ORDER BY id`,
        [stackId, ...chunk],
      );
      out.push(...rows.map(resourceOf));
    }
    return out;
  }

  async getResource(s: ModuleSession, id: number): Promise<ResourceRow | null> {
    const rows = await s.rows('read a resource', `SELECT * FROM {p}stack_resources WHERE id = ?`, [id]);
    return rows[0] ? resourceOf(rows[0]) : null;
  }

  /**
   * Inserts rows that are not there yet (INIT_COMPLETE rows an action plans), several per
   * statement, in their order; a row whose (stack, name, generation) exists is left alone.
   * On PostgreSQL all of them go as one JSON parameter of one statement (up to 10,000 rows):
   * with a parameter per column, 200 rows a statement, a group of 10,000 took 50 round trips
   * and the server parsed and planned 50 statements of 4,600 parameters (350 ms of its
   * create before the first step, against about half that).
   */
  async insertResourcesIfAbsent(s: ModuleSession, rows: readonly Omit<ResourceRow, 'id'>[]): Promise<void> {
    const fields = Object.keys(RESOURCE_COLUMNS) as (keyof typeof RESOURCE_COLUMNS)[];
    const columns = fields.map((f) => RESOURCE_COLUMNS[f]);
    if (this.sql.dialect === 'postgres') {
      for (let i = 0; i < rows.length; i += 10_000) {
        const list = rows.slice(i, i + 10_000).map((row, ord) => {
          const entry: Record<string, unknown> = { ord };
          for (let k = 0; k < fields.length; k++) entry[columns[k]!] = encode(fields[k]!, row[fields[k]!]);
          return entry;
        });
        await s.exec(
          'plan resources',
          `INSERT INTO {p}stack_resources (${columns.join(', ')})
           SELECT ${columns.join(', ')} FROM json_to_recordset(?::json) AS v(ord int, ${resourceRecord(columns)}) ORDER BY v.ord
           ON CONFLICT DO NOTHING`,
          [JSON.stringify(list)],
        );
      }
      return;
    }
    const one = `(${columns.map(() => '?').join(', ')})`;
    for (let i = 0; i < rows.length; i += 200) {
      const chunk = rows.slice(i, i + 200);
      const values = chunk.map(() => one).join(', ');
      const params = chunk.flatMap((row) => fields.map((f) => encode(f, row[f])));
      const text =
        this.sql.dialect === 'mysql'
          ? `INSERT IGNORE INTO {p}stack_resources (${columns.join(', ')}) VALUES ${values}`
          : `INSERT INTO {p}stack_resources (${columns.join(', ')}) VALUES ${values} ON CONFLICT DO NOTHING`;
      await s.exec('plan resources', text, params);
    }
  }

  /** Inserts a row and returns its id (RETURNING on PostgreSQL and SQLite; MySQL's LAST_INSERT_ID on the same session). */
  async insertResource(s: ModuleSession, row: Omit<ResourceRow, 'id'>): Promise<number> {
    const fields = Object.keys(RESOURCE_COLUMNS) as (keyof typeof RESOURCE_COLUMNS)[];
    const columns = fields.map((f) => RESOURCE_COLUMNS[f]);
    const insert = `INSERT INTO {p}stack_resources (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
    const params = fields.map((f) => encode(f, row[f]));
    if (this.sql.dialect !== 'mysql') return Number((await s.rows('insert a resource', `${insert} RETURNING id`, params))[0]!['id']);
    await s.exec('insert a resource', insert, params);
    return Number((await s.rows('read an inserted resource', 'SELECT LAST_INSERT_ID() AS id', []))[0]!['id']);
  }

  /**
   * What a resource step reads first, in one statement: the stack (its current traversal)
   * and every row of the names given, deleted ones included (their generations count).
   */
  async stepView(s: ModuleSession, stackId: string, names: readonly string[]): Promise<{ stack: StackRow | null; rows: ResourceRow[] }> {
    if (names.length > 500) {
      const stack = await this.getStack(s, stackId);
      const rows: ResourceRow[] = [];
      for (let i = 0; i < names.length; i += 500) {
        const chunk = names.slice(i, i + 500);
        const found = await s.rows(
          'read resources',
          `SELECT * FROM {p}stack_resources WHERE stack_id = ? AND name IN (${chunk.map(() => '?').join(', ')}) ORDER BY id`,
          [stackId, ...chunk],
        );
        rows.push(...found.map(resourceOf));
      }
      return { stack, rows };
    }
    if (this.sql.dialect === 'postgres') return this.views.add({ stackId, names });
    return this.viewOf(
      await s.rows(
        'read a resource step',
        `SELECT ${VIEW_STACK_COLUMNS}, r.* FROM {p}stacks st LEFT JOIN {p}stack_resources r ON r.stack_id = st.id AND r.name IN (${names
          .map(() => '?')
          .join(', ')}) WHERE st.id = ? ORDER BY r.id`,
        [...names, stackId],
      ),
    );
  }

  /** The stack and one of its resource rows (by id), in one statement. */
  async rowView(s: ModuleSession, stackId: string, rowId: number): Promise<{ stack: StackRow | null; row: ResourceRow | null }> {
    if (this.sql.dialect === 'postgres') {
      const batched = await this.rowViews.add({ stackId, rowId });
      return { stack: batched.stack, row: batched.rows[0] ?? null };
    }
    const view = this.viewOf(
      await s.rows(
        'read a resource step',
        `SELECT ${VIEW_STACK_COLUMNS}, r.* FROM {p}stacks st LEFT JOIN {p}stack_resources r ON r.stack_id = st.id AND r.id = ? WHERE st.id = ?`,
        [rowId, stackId],
      ),
    );
    return { stack: view.stack, row: view.rows[0] ?? null };
  }

  /**
   * The first reads of several steps in one PostgreSQL statement (on the store's pool, like
   * any read): each step's stack and the rows of the names it reads, or its one row.
   *
   * Each row is a lateral lookup kept apart (`OFFSET 0`) by scalar equalities, one per name,
   * so that `(stack_id, name)` (or the id alone) is its index condition: one probe per name.
   * Joined directly, the planner (which guesses 100 entries for any JSON list) hashed the
   * stack's every row: an update of a group of 1,000 members read about 1,000 rows by a
   * sequential scan per batch of steps, 464 per step (`bench/claim-probe.ts`, "rows read by
   * sequential scans"), a group of 10,000 ten times as many. With `name = ANY(v.names)` in
   * the lookup, it probed the index by the stack alone and filtered the stack's every entry
   * by name (1,564 index entries read per step), as `PLANNED_ROW` explains.
   */
  private async viewBatch(
    items: readonly ({ stackId: string; names: readonly string[] } | { stackId: string; rowId: number })[],
    by: 'names' | 'row',
  ): Promise<StepView[]> {
    const list = items.map((item, ord) =>
      'names' in item ? { ord, stackId: item.stackId, names: [...new Set(item.names)] } : { ord, ...item },
    );
    // a row by its id: the stack checked in a form that is no index condition (as OF_STACK)
    const lookup =
      by === 'names'
        ? `LEFT JOIN LATERAL unnest(v.names) AS n(name) ON true
         LEFT JOIN LATERAL (SELECT x.* FROM {p}stack_resources x WHERE x.stack_id = v."stackId" AND x.name = n.name OFFSET 0) r ON true`
        : `LEFT JOIN LATERAL (SELECT x.* FROM {p}stack_resources x WHERE x.id = v."rowId" AND (x.stack_id = v."stackId") IS TRUE OFFSET 0) r ON true`;
    const found = await this.sql.read('read resource steps', (s) =>
      s.rows(
        'read resource steps',
        `SELECT v.ord AS v__ord, ${VIEW_STACK_COLUMNS}, r.*
         FROM jsonb_to_recordset(?::jsonb) AS v(ord int, "stackId" text, names text[], "rowId" bigint)
         JOIN {p}stacks st ON st.id = v."stackId"
         ${lookup}
         ORDER BY v.ord, r.id`,
        [JSON.stringify(list)],
      ),
    );
    const byOrd = new Map<number, Record<string, unknown>[]>();
    for (const r of found) {
      const ord = Number(r['v__ord']);
      const list = byOrd.get(ord);
      if (list) list.push(r);
      else byOrd.set(ord, [r]);
    }
    return items.map((_, ord) => this.viewOf(byOrd.get(ord) ?? []));
  }

  private viewOf(found: Record<string, unknown>[]): StepView {
    if (found.length === 0) return { stack: null, rows: [] };
    const first = found[0]!;
    const rows = found.filter((r) => r['stack_id'] !== null && r['stack_id'] !== undefined).map(resourceOf);
    return { stack: stackFrom(first, VIEW_STACK_NAMES, first['st__id']), rows };
  }

  /**
   * Changes a resource row while `holdToken` holds it (null: while nobody does), or
   * unconditionally when it is undefined.
   */
  async updateResource(s: ModuleSession, id: number, patch: Partial<ResourceRow>, holdToken?: string | null): Promise<boolean> {
    const set = assignments(RESOURCE_COLUMNS, patch);
    const where = holdCondition(id, holdToken);
    return (
      (await s.exec('update a resource', `UPDATE {p}stack_resources SET ${set.text} WHERE ${where.text}`, [
        ...set.params,
        ...where.params,
      ])) > 0
    );
  }

  /**
   * Changes a resource row while `holdToken` holds it and, when it matched, records `event`.
   * On PostgreSQL the writes of concurrent steps go as one statement (a data-modifying CTE
   * over a JSON list of writes, committed alone: {@link writeBatch}); elsewhere one
   * transaction each. Returns whether the row matched.
   */
  async writeResource(
    id: number,
    patch: Partial<ResourceRow>,
    holdToken: string | null | undefined,
    event: Omit<StackEventRow, 'id'> | null,
  ): Promise<boolean> {
    if (this.sql.dialect === 'postgres') return this.writes.add({ id, patch, holdToken, event });
    if (event === null) return this.sql.write('record a resource', (s) => this.updateResource(s, id, patch, holdToken), STEP_WRITE);
    return this.sql.transaction(
      'record a resource',
      async (s) => {
        const matched = await this.updateResource(s, id, patch, holdToken);
        if (matched) await this.insertEvent(s, event);
        return matched;
      },
      STEP_WRITE,
    );
  }

  /**
   * Several resource writes in one PostgreSQL statement: each changes only the columns of its
   * patch, only while its row has the hold it expects, and records its event when it matched.
   */
  private async writeBatch(items: readonly ResourceWrite[]): Promise<boolean[]> {
    const patches = patchColumns(items.map((w) => w.patch));
    // an item without an event leaves its ev_ fields out (undefined), as the statement reads them null
    const fixed = items.map((w, ord) => {
      const e = w.event;
      return {
        ord,
        id: w.id,
        cond: w.holdToken === undefined ? 'any' : w.holdToken === null ? 'free' : 'token',
        expected: w.holdToken ?? null,
        has_event: e !== null,
        ev_stack: e?.stackId,
        ev_name: e?.resourceName,
        ev_type: e?.resourceType,
        ev_physical: e?.physicalId,
        ev_status: e?.status,
        ev_reason: e?.reason,
        ev_at: e?.createdAt,
      };
    });
    const { set } = patches;
    const record = [
      'ord int, id bigint, cond text, expected text, has_event boolean',
      patches.record,
      'ev_stack text, ev_name text, ev_type text, ev_physical text, ev_status text, ev_reason text, ev_at bigint',
    ].join(', ');
    const rows = await this.sql.write(
      'record resources',
      (s) =>
        s.rows(
          'record resources',
          `WITH v AS (SELECT * FROM jsonb_to_recordset(?::jsonb) AS v(${record})),
         u AS (UPDATE {p}stack_resources r SET ${set} FROM v
               WHERE r.id = v.id AND (v.cond = 'any' OR (v.cond = 'free' AND r.hold_token IS NULL) OR (v.cond = 'token' AND r.hold_token = v.expected))
               RETURNING v.ord),
         e AS (INSERT INTO {p}stack_events (stack_id, resource_name, resource_type, physical_id, status, reason, created_at)
               SELECT v.ev_stack, v.ev_name, v.ev_type, v.ev_physical, v.ev_status, v.ev_reason, v.ev_at FROM v JOIN u ON u.ord = v.ord
               WHERE v.has_event ORDER BY v.ord)
         SELECT ord FROM u`,
          [patches.list(fixed)],
          PREPARED,
        ),
      STEP_WRITE,
    );
    const matched = new Set(rows.map((r) => Number(r['ord'])));
    return items.map((_, i) => matched.has(i));
  }

  /**
   * A step's first write that also reads, in one statement shared by concurrent steps
   * (PostgreSQL; null elsewhere): while the stack's traversal is still `traversal`, the row
   * is taken (the step's hold, if free or its own) and set `<ACTION>_IN_PROGRESS` with its
   * event, and the stack and the row come back. A create takes the row its action planned
   * (by name, INIT_COMPLETE); a delete takes its row (by id) unless it was never created or
   * is already being deleted. null also when the row is not in that state: the step then
   * reads and decides as usual.
   */
  startStep(start: StepStart): Promise<{ stack: StackRow; row: ResourceRow } | null> {
    if (this.sql.dialect !== 'postgres') return Promise.resolve(null);
    return (start.action === 'CREATE' ? this.starts : this.deleteStarts).add(start);
  }

  private async startBatch(
    items: readonly StepStart[],
    action: 'CREATE' | 'DELETE',
  ): Promise<({ stack: StackRow; row: ResourceRow } | null)[]> {
    const list = items.map((c, ord) => ({ ord, ...c }));
    const which =
      action === 'CREATE'
        ? `r.id = x.id AND r.current_row = 1 AND r.action = 'INIT'`
        : `r.id = v."rowId" AND ${OF_STACK} AND r.action <> 'INIT' AND NOT (r.action = 'DELETE' AND r.status = 'IN_PROGRESS')`;
    const rows = await this.sql.write(
      'start resource steps',
      (s) =>
        s.rows(
          'start resource steps',
          `WITH v AS (SELECT * FROM jsonb_to_recordset(?::jsonb)
                     AS v(ord int, "stackId" text, traversal text, name text, "rowId" bigint, type text, run text, atom text, token text, at bigint)),
         u AS (UPDATE {p}stack_resources r SET action = '${action}', status = 'IN_PROGRESS', status_reason = 'state changed',
                 type = coalesce(v.type, r.type), hold_run = v.run, hold_atom = v.atom, hold_token = v.token, updated_at = v.at
               FROM v JOIN {p}stacks st ON st.id = v."stackId" AND st.traversal = v.traversal${
                 action === 'CREATE'
                   ? `
               ${PLANNED_ROW}`
                   : ''
               }
               WHERE ${which} AND r.deleted = 0
                 AND (r.hold_token IS NULL OR (r.hold_run = v.run AND r.hold_atom = v.atom))
               RETURNING v.ord AS v__ord, ${VIEW_STACK_COLUMNS}, r.*),
         e AS (INSERT INTO {p}stack_events (stack_id, resource_name, resource_type, physical_id, status, reason, created_at)
               SELECT stack_id, name, type, physical_id, '${action}_IN_PROGRESS', 'state changed', updated_at FROM u ORDER BY v__ord)
         SELECT * FROM u`,
          [JSON.stringify(list)],
        ),
      STEP_WRITE,
    );
    const out: ({ stack: StackRow; row: ResourceRow } | null)[] = items.map(() => null);
    for (const r of rows) {
      const view = this.viewOf([r]);
      if (view.stack && view.rows[0]) out[Number(r['v__ord'])] = { stack: view.stack, row: view.rows[0] };
    }
    return out;
  }

  /**
   * A whole create of a planned row in one write (PostgreSQL; false elsewhere), for a create
   * the step could run before taking the row: while the stack's traversal is still
   * `traversal` and the row is still INIT_COMPLETE and free (or this atom's own), it gets
   * `patch` (CREATE_COMPLETE, no hold) and both events of the create, CREATE_IN_PROGRESS then
   * CREATE_COMPLETE. false when nothing matched: the step then goes the usual way.
   */
  createPlanned(create: PlannedCreate): Promise<boolean> {
    if (this.sql.dialect !== 'postgres') return Promise.resolve(false);
    return this.finishes.add(create);
  }

  private async createBatch(items: readonly PlannedCreate[]): Promise<boolean[]> {
    const patches = patchColumns(items.map((c) => c.patch));
    const fixed = items.map((c, ord) => ({
      ord,
      stackId: c.stackId,
      traversal: c.traversal,
      name: c.name,
      run: c.run,
      atom: c.atom,
      ev_type: c.type,
      ev_physical: c.physicalId,
      ev_at: c.at,
    }));
    const record = [
      'ord int, "stackId" text, traversal text, name text, run text, atom text, ev_type text, ev_physical text, ev_at bigint',
      patches.record,
    ].join(', ');
    const rows = await this.sql.write(
      'create resources',
      (s) =>
        s.rows(
          'create resources',
          `WITH v AS (SELECT * FROM jsonb_to_recordset(?::jsonb) AS v(${record})),
         u AS (UPDATE {p}stack_resources r SET ${patches.set}
               FROM v JOIN {p}stacks st ON st.id = v."stackId" AND st.traversal = v.traversal
               ${PLANNED_ROW}
               WHERE r.id = x.id AND r.current_row = 1 AND r.action = 'INIT' AND r.deleted = 0
                 AND (r.hold_token IS NULL OR (r.hold_run = v.run AND r.hold_atom = v.atom))
               RETURNING v.ord),
         e AS (INSERT INTO {p}stack_events (stack_id, resource_name, resource_type, physical_id, status, reason, created_at)
               SELECT v."stackId", v.name, v.ev_type, CASE WHEN k.n = 1 THEN NULL ELSE v.ev_physical END, k.status, 'state changed', v.ev_at
               FROM v JOIN u ON u.ord = v.ord CROSS JOIN (VALUES (1, 'CREATE_IN_PROGRESS'), (2, 'CREATE_COMPLETE')) AS k(n, status)
               ORDER BY v.ord, k.n)
         SELECT ord FROM u`,
          [patches.list(fixed)],
          PREPARED,
        ),
      STEP_WRITE,
    );
    const matched = new Set(rows.map((r) => Number(r['ord'])));
    return items.map((_, i) => matched.has(i));
  }

  /** Inserts a row and, with `event`, its first event: one statement on PostgreSQL, one transaction elsewhere. */
  async createResource(row: Omit<ResourceRow, 'id'>, event: Omit<StackEventRow, 'id'> | null): Promise<number> {
    if (this.sql.dialect !== 'postgres' || event === null) {
      return this.sql.transaction(
        'insert a resource',
        async (s) => {
          const id = await this.insertResource(s, row);
          if (event) await this.insertEvent(s, event);
          return id;
        },
        STEP_WRITE,
      );
    }
    const fields = Object.keys(RESOURCE_COLUMNS) as (keyof typeof RESOURCE_COLUMNS)[];
    const columns = fields.map((f) => RESOURCE_COLUMNS[f]);
    const params = [
      ...fields.map((f) => encode(f, row[f])),
      event.stackId,
      event.resourceName,
      event.resourceType,
      event.physicalId,
      event.status,
      event.reason,
      event.createdAt,
    ];
    const rows = await this.sql.write(
      'insert a resource',
      (s) =>
        s.rows(
          'insert a resource',
          `WITH r AS (INSERT INTO {p}stack_resources (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) RETURNING id),
         e AS (INSERT INTO {p}stack_events (stack_id, resource_name, resource_type, physical_id, status, reason, created_at)
               SELECT ?, ?, ?, ?, ?, ?, ?::bigint FROM r)
         SELECT id FROM r`,
          params,
        ),
      STEP_WRITE,
    );
    return Number(rows[0]!['id']);
  }

  /** Takes a row's hold from `expected` (the token seen, or null for a free row): a compare-and-set, committed lazily. */
  takeHold(id: number, hold: { run: string; atom: string; token: string }, expected: string | null): Promise<boolean> {
    return this.writeResource(id, { holdRun: hold.run, holdAtom: hold.atom, holdToken: hold.token }, expected, null);
  }

  /**
   * A whole update in place in one write (PostgreSQL; false elsewhere), for an update the
   * step could run before taking the row: while the stack's traversal is still `traversal`
   * and the row is free and still as the step read it (current, same action, status, template
   * set and `updated_at`), it gets `patch` (UPDATE_COMPLETE, no hold) and both events of the
   * update, UPDATE_IN_PROGRESS (with the physical id it had) then UPDATE_COMPLETE. false when
   * nothing matched: the step then goes the usual way.
   */
  async updateInPlace(update: InPlaceUpdate): Promise<boolean> {
    if (this.sql.dialect !== 'postgres') return false;
    const done = await this.inPlace.add(update);
    if (done) this.updatedAtOnce++;
    return done;
  }

  private async updateBatch(items: readonly InPlaceUpdate[]): Promise<boolean[]> {
    const patches = patchColumns(items.map((u) => u.patch));
    const fixed = items.map((u, ord) => ({
      ord,
      id: u.row.id,
      stackId: u.stackId,
      traversal: u.traversal,
      seen_action: u.row.action,
      seen_status: u.row.status,
      seen_set: u.row.templateSet,
      seen_at: u.row.updatedAt,
      ev_name: u.row.name,
      ev_type: u.type,
      ev_before: u.row.physicalId,
      ev_physical: u.physicalId,
      ev_at: u.at,
    }));
    const record = [
      'ord int, id bigint, "stackId" text, traversal text, seen_action text, seen_status text, seen_set text, seen_at bigint',
      'ev_name text, ev_type text, ev_before text, ev_physical text, ev_at bigint',
      patches.record,
    ].join(', ');
    const rows = await this.sql.write(
      'update resources in place',
      (s) =>
        s.rows(
          'update resources in place',
          `WITH v AS (SELECT * FROM jsonb_to_recordset(?::jsonb) AS v(${record})),
         u AS (UPDATE {p}stack_resources r SET ${patches.set}
               FROM v JOIN {p}stacks st ON st.id = v."stackId" AND st.traversal = v.traversal
               WHERE r.id = v.id AND ${OF_STACK} AND r.current_row = 1 AND r.deleted = 0 AND r.hold_token IS NULL
                 AND r.action = v.seen_action AND r.status = v.seen_status
                 AND r.template_set IS NOT DISTINCT FROM v.seen_set AND r.updated_at IS NOT DISTINCT FROM v.seen_at
               RETURNING v.ord),
         e AS (INSERT INTO {p}stack_events (stack_id, resource_name, resource_type, physical_id, status, reason, created_at)
               SELECT v."stackId", v.ev_name, v.ev_type, CASE WHEN k.n = 1 THEN v.ev_before ELSE v.ev_physical END, k.status, 'state changed', v.ev_at
               FROM v JOIN u ON u.ord = v.ord CROSS JOIN (VALUES (1, 'UPDATE_IN_PROGRESS'), (2, 'UPDATE_COMPLETE')) AS k(n, status)
               ORDER BY v.ord, k.n)
         SELECT ord FROM u`,
          [patches.list(fixed)],
        ),
      STEP_WRITE,
    );
    const matched = new Set(rows.map((r) => Number(r['ord'])));
    return items.map((_, i) => matched.has(i));
  }

  // ------------------------------------------------------------------ events

  async insertEvent(s: ModuleSession, e: Omit<StackEventRow, 'id'>): Promise<void> {
    await s.exec(
      'insert a stack event',
      `INSERT INTO {p}stack_events (stack_id, resource_name, resource_type, physical_id, status, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [e.stackId, e.resourceName, e.resourceType, e.physicalId, e.status, e.reason, e.createdAt],
    );
  }

  async events(s: ModuleSession, stackId: string, options: { resource?: string; afterId?: number } = {}): Promise<StackEventRow[]> {
    const params: unknown[] = [stackId, options.afterId ?? 0];
    let where = 'stack_id = ? AND id > ?';
    if (options.resource !== undefined) {
      where += ' AND resource_name = ?';
      params.push(options.resource);
    }
    const rows = await s.rows('list stack events', `SELECT * FROM {p}stack_events WHERE ${where} ORDER BY id`, params);
    return rows.map((r) => ({
      id: Number(r['id']),
      stackId: String(r['stack_id']),
      resourceName: String(r['resource_name']),
      resourceType: (r['resource_type'] as string | null) ?? null,
      physicalId: (r['physical_id'] as string | null) ?? null,
      status: String(r['status']),
      reason: String(r['reason']),
      createdAt: Number(r['created_at']),
    }));
  }
}

/** A stack's SET list: deleting it (deletedAt) frees its name. */
function stackAssignments(patch: Partial<StackRow>): { text: string; params: unknown[] } {
  const set = assignments(STACK_COLUMNS, patch);
  return patch.deletedAt !== undefined && patch.deletedAt !== null ? { ...set, text: `${set.text}, live_name = NULL` } : set;
}
