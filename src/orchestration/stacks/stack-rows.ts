/**
 * The rows of the orchestration schema (schema.ts) as the stack layer sees them: stacks,
 * resource rows, events; their columns, and how fields are encoded in them (JSON as text,
 * integers for booleans and display times) for the statements of stack-store.ts.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
/** `<ACTION>` of a stack or resource, as Heat names them. */
export type StackAction = 'INIT' | 'CREATE' | 'UPDATE' | 'DELETE' | 'ROLLBACK' | 'CHECK' | 'SUSPEND' | 'RESUME' | 'ADOPT';
export type StackStatusValue = 'IN_PROGRESS' | 'COMPLETE' | 'FAILED';

export interface StackRow {
  id: string;
  project: string;
  name: string;
  parentId: string | null;
  parentResource: string | null;
  action: StackAction;
  status: StackStatusValue;
  statusReason: string;
  tags: string[];
  timeoutMins: number | null;
  disableRollback: boolean;
  /** the run of the action the stack converges by now */
  traversal: string | null;
  /** for a nested stack: the parent step (`run/atom/attempt`) that started the traversal */
  traversalOwner: string | null;
  /** the run of the current traversal */
  runId: string | null;
  /** the template set the current action converges to */
  templateSet: string | null;
  /** the last template set an action completed with (what a rollback goes back to) */
  previousSet: string | null;
  createdAt: number;
  updatedAt: number | null;
  deletedAt: number | null;
}

export interface ResourceRow {
  id: number;
  stackId: string;
  name: string;
  generation: number;
  /** the row a listing shows for this name (a replaced row stays until it is deleted) */
  current: boolean;
  deleted: boolean;
  type: string;
  physicalId: string | null;
  action: StackAction;
  status: StackStatusValue;
  statusReason: string;
  properties: JsonObject;
  data: JsonObject;
  attributes: JsonObject | null;
  reference: JsonValue;
  requires: string[];
  metadata: JsonObject | null;
  templateSet: string | null;
  nestedStack: string | null;
  holdRun: string | null;
  holdAtom: string | null;
  holdToken: string | null;
  createdAt: number;
  updatedAt: number | null;
}

/** A new row of a resource, before its first operation (INIT_COMPLETE unless `state` says otherwise). */
export function newResourceRow(
  fields: Pick<ResourceRow, 'stackId' | 'name' | 'generation' | 'type' | 'requires' | 'metadata' | 'templateSet' | 'createdAt'>,
  state: Partial<Pick<ResourceRow, 'action' | 'status' | 'statusReason' | 'holdRun' | 'holdAtom' | 'holdToken'>> = {},
): Omit<ResourceRow, 'id'> {
  return {
    current: true,
    deleted: false,
    physicalId: null,
    action: 'INIT',
    status: 'COMPLETE',
    statusReason: '',
    properties: {},
    data: {},
    attributes: null,
    reference: null,
    nestedStack: null,
    holdRun: null,
    holdAtom: null,
    holdToken: null,
    updatedAt: null,
    ...fields,
    ...state,
  };
}

export interface StackEventRow {
  id: number;
  stackId: string;
  resourceName: string;
  resourceType: string | null;
  physicalId: string | null;
  status: string;
  reason: string;
  createdAt: number;
}

export const STACK_COLUMNS = {
  project: 'project',
  name: 'name',
  parentId: 'parent_id',
  parentResource: 'parent_resource',
  action: 'action',
  status: 'status',
  statusReason: 'status_reason',
  tags: 'tags',
  timeoutMins: 'timeout_mins',
  disableRollback: 'disable_rollback',
  traversal: 'traversal',
  traversalOwner: 'traversal_owner',
  runId: 'run_id',
  templateSet: 'template_set',
  previousSet: 'previous_set',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  deletedAt: 'deleted_at',
} as const satisfies Partial<Record<keyof StackRow, string>>;

export const RESOURCE_COLUMNS = {
  stackId: 'stack_id',
  name: 'name',
  generation: 'generation',
  current: 'current_row',
  deleted: 'deleted',
  type: 'type',
  physicalId: 'physical_id',
  action: 'action',
  status: 'status',
  statusReason: 'status_reason',
  properties: 'properties',
  data: 'data',
  attributes: 'attributes',
  reference: 'reference',
  requires: 'requires',
  metadata: 'metadata',
  templateSet: 'template_set',
  nestedStack: 'nested_stack',
  holdRun: 'hold_run',
  holdAtom: 'hold_atom',
  holdToken: 'hold_token',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
} as const satisfies Partial<Record<keyof ResourceRow, string>>;

const JSON_FIELDS = new Set(['tags', 'properties', 'data', 'attributes', 'reference', 'requires', 'metadata']);
const BOOL_FIELDS = new Set(['disableRollback', 'current', 'deleted']);
const NUMBER_FIELDS = new Set(['timeoutMins', 'createdAt', 'updatedAt', 'deletedAt', 'generation', 'id']);

export function encode(field: string, value: unknown): unknown {
  if (value === undefined) return null;
  if (JSON_FIELDS.has(field)) return value === null && field !== 'reference' ? null : JSON.stringify(value);
  if (BOOL_FIELDS.has(field)) return value ? 1 : 0;
  return value;
}

function decode<T>(row: Record<string, unknown>, columns: Record<string, string>, extra: Record<string, unknown> = {}): T {
  const out: Record<string, unknown> = { ...extra };
  for (const [field, column] of Object.entries(columns)) {
    const v = row[column];
    if (JSON_FIELDS.has(field)) out[field] = v === null || v === undefined ? null : JSON.parse(String(v));
    else if (BOOL_FIELDS.has(field)) out[field] = Number(v) === 1 || v === true;
    else if (NUMBER_FIELDS.has(field)) out[field] = v === null || v === undefined ? null : Number(v);
    else out[field] = v === undefined ? null : v;
  }
  return out as T;
}

/** Some of {@link RESOURCE_COLUMNS}, for a read that needs only those. */
function resourceColumns<K extends keyof typeof RESOURCE_COLUMNS>(...fields: K[]): Pick<typeof RESOURCE_COLUMNS, K> {
  return Object.fromEntries(fields.map((f) => [f, RESOURCE_COLUMNS[f]])) as Pick<typeof RESOURCE_COLUMNS, K>;
}

/**
 * What a stack's outputs and its parent's summary of it read of each resource row
 * (`outputs.ts`): not the properties, requirements, metadata or hold. Decoding every column of
 * a group of 10,000 members (their properties above all) was 230 ms of the engine's CPU
 * profile of a create's tail, and most of its garbage (bench/claim-probe.ts --cpu-prof).
 */
export const SUMMARY_COLUMNS = resourceColumns('name', 'current', 'deleted', 'physicalId', 'reference', 'attributes', 'data');

/** A resource row as {@link SUMMARY_COLUMNS} reads it. */
export type ResourceSummaryRow = Pick<ResourceRow, 'id' | keyof typeof SUMMARY_COLUMNS>;

/**
 * What an action's plan reads of each resource row (`action-plan.ts`): names, generations,
 * flags, requirements and status, not the properties, attributes or plugin data. An update
 * or delete of a group of 10,000 decoded every column of every member at its start.
 */
export const PLAN_COLUMNS = resourceColumns('name', 'generation', 'current', 'deleted', 'status', 'requires', 'templateSet');

/** A resource row as {@link PLAN_COLUMNS} reads it. */
export type ResourcePlanRow = Pick<ResourceRow, 'id' | keyof typeof PLAN_COLUMNS>;

/** A stored JSON column's value (null stays null). */
const json = (v: unknown): never => (v === null || v === undefined ? null : JSON.parse(String(v))) as never;
const flag = (v: unknown): boolean => Number(v) === 1 || v === true;
const count = (v: unknown): never => (v === null || v === undefined ? null : Number(v)) as never;
const plain = (v: unknown): never => (v === undefined ? null : v) as never;

/** The column names {@link stackFrom} reads a stack's fields from: as they are, or as a step's one-statement read aliases them. */
export type StackColumnNames = Record<keyof typeof STACK_COLUMNS, string>;

/**
 * A stack row as one object literal, as {@link decode} would decode it with
 * {@link STACK_COLUMNS}. Not by `decode`: an object given more than a dozen properties by
 * computed keys is turned into a hash table by V8, which cost a resource step's read about
 * 30 µs per row to build (and made every later read of its fields a lookup); a group's step
 * decodes a stack row and a resource row (`bench/claim-probe.ts`, docs/orchestration.md
 * "Performance").
 */
export function stackFrom(r: Record<string, unknown>, c: StackColumnNames, id: unknown): StackRow {
  return {
    id: String(id),
    project: plain(r[c.project]),
    name: plain(r[c.name]),
    parentId: plain(r[c.parentId]),
    parentResource: plain(r[c.parentResource]),
    action: plain(r[c.action]),
    status: plain(r[c.status]),
    statusReason: plain(r[c.statusReason]),
    tags: json(r[c.tags]),
    timeoutMins: count(r[c.timeoutMins]),
    disableRollback: flag(r[c.disableRollback]),
    traversal: plain(r[c.traversal]),
    traversalOwner: plain(r[c.traversalOwner]),
    runId: plain(r[c.runId]),
    templateSet: plain(r[c.templateSet]),
    previousSet: plain(r[c.previousSet]),
    createdAt: count(r[c.createdAt]),
    updatedAt: count(r[c.updatedAt]),
    deletedAt: count(r[c.deletedAt]),
  };
}

export const stackOf = (r: Record<string, unknown>): StackRow => stackFrom(r, STACK_COLUMNS, r['id']);

/** A resource row as one object literal, as {@link decode} would decode it with {@link RESOURCE_COLUMNS} (see {@link stackFrom}). */
export const resourceOf = (r: Record<string, unknown>): ResourceRow => ({
  id: Number(r['id']),
  stackId: plain(r['stack_id']),
  name: plain(r['name']),
  generation: count(r['generation']),
  current: flag(r['current_row']),
  deleted: flag(r['deleted']),
  type: plain(r['type']),
  physicalId: plain(r['physical_id']),
  action: plain(r['action']),
  status: plain(r['status']),
  statusReason: plain(r['status_reason']),
  properties: json(r['properties']),
  data: json(r['data']),
  attributes: json(r['attributes']),
  reference: json(r['reference']),
  requires: json(r['requires']),
  metadata: json(r['metadata']),
  templateSet: plain(r['template_set']),
  nestedStack: plain(r['nested_stack']),
  holdRun: plain(r['hold_run']),
  holdAtom: plain(r['hold_atom']),
  holdToken: plain(r['hold_token']),
  createdAt: count(r['created_at']),
  updatedAt: count(r['updated_at']),
});

/** A row read with some of {@link RESOURCE_COLUMNS} (and its id), decoded as {@link resourceOf} decodes them. */
export const resourcePartOf = <T>(r: Record<string, unknown>, columns: Partial<Record<keyof ResourceRow, string>>): T =>
  decode<T>(r, columns, { id: Number(r['id']) });

/** `SET a = ?, b = ?` and its parameters, for the fields of `patch` */
export function assignments(columns: Record<string, string>, patch: Record<string, unknown>): { text: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  for (const [field, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const column = columns[field];
    if (!column) throw new Error(`no column for ${field}`);
    parts.push(`${column} = ?`);
    params.push(encode(field, value));
  }
  return { text: parts.join(', '), params };
}

/**
 * The columns of several row patches for one PostgreSQL statement over a JSON list: each
 * entry names the columns its patch sets (`set`) and carries their values (`c_<column>`);
 * `set` is the UPDATE's assignments, `record` the JSON record's columns, `list` the JSON
 * text of the list: per patch, in order, the fields of its entry of `fixed` (an object
 * literal) and its columns.
 *
 * The list is written as text, not built as objects and then serialised: an entry given its
 * patch's dozen or more columns by computed keys became a hash table in V8 (see
 * {@link stackFrom}), and building, merging and serialising such entries took 20–30 µs per
 * step of a group's create. The statement's columns are the same for every batch of the same
 * fields, so they are made once per set of fields.
 */
export function patchColumns(patches: readonly Partial<ResourceRow>[]): {
  list: (fixed: readonly object[]) => string;
  set: string;
  record: string;
} {
  const seen = new Set<string>();
  for (const p of patches) for (const k in p) if (p[k as keyof ResourceRow] !== undefined) seen.add(k);
  const fields = [...seen];
  const key = fields.join(',');
  let shape = PATCH_SHAPES.get(key);
  if (!shape) {
    if (PATCH_SHAPES.size >= 100) PATCH_SHAPES.clear();
    shape = patchShape(fields);
    PATCH_SHAPES.set(key, shape);
  }
  const { columns, set, record } = shape;
  const entry = (fixed: object, patch: Partial<ResourceRow>): string => {
    const names: string[] = [];
    let values = '';
    for (const c of columns) {
      const value = patch[c.f as keyof ResourceRow];
      if (value === undefined) continue;
      names.push(c.column);
      values += `,${c.key}:${JSON.stringify(encode(c.f, value))}`;
    }
    const head = JSON.stringify(fixed);
    return `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"set":${JSON.stringify(names)}${values}}`;
  };
  return { list: (fixed) => `[${patches.map((p, i) => entry(fixed[i]!, p)).join(',')}]`, set, record };
}

interface PatchShape {
  /** each column: its field, name, and JSON key in an entry (`"c_<column>"`) */
  columns: { f: string; column: string; key: string }[];
  set: string;
  record: string;
}

/** the statement's columns for a batch whose patches set `fields`, by their list joined */
const PATCH_SHAPES = new Map<string, PatchShape>();

function patchShape(fields: readonly string[]): PatchShape {
  const columns = fields.map((f) => {
    const column = (RESOURCE_COLUMNS as Record<string, string>)[f];
    if (!column) throw new Error(`no column for ${f}`);
    return { f, column, type: INTEGER_COLUMNS.has(column) ? 'bigint' : 'text', key: JSON.stringify(`c_${column}`) };
  });
  return {
    columns,
    set:
      columns.length > 0
        ? columns.map((c) => `${c.column} = CASE WHEN '${c.column}' = ANY(v.set) THEN v.c_${c.column} ELSE r.${c.column} END`).join(', ')
        : 'id = r.id',
    record: ['set text[]', ...columns.map((c) => `c_${c.column} ${c.type}`)].join(', '),
  };
}

/** the integer columns of stack_resources (the others are text) */
const INTEGER_COLUMNS = new Set(['generation', 'current_row', 'deleted', 'created_at', 'updated_at']);

/** A PostgreSQL record definition (`json_to_recordset(…) AS v(…)`) of these stack_resources columns, by their names. */
export function resourceRecord(columns: readonly string[]): string {
  return columns.map((c) => `${c} ${INTEGER_COLUMNS.has(c) ? 'bigint' : 'text'}`).join(', ');
}

/** `id = ?` and, unless `holdToken` is undefined, the hold the row must have (null: none). */
export function holdCondition(id: number, holdToken: string | null | undefined): { text: string; params: unknown[] } {
  if (holdToken === undefined) return { text: 'id = ?', params: [id] };
  if (holdToken === null) return { text: 'id = ? AND hold_token IS NULL', params: [id] };
  return { text: 'id = ? AND hold_token = ?', params: [id, holdToken] };
}
