/**
 * What later steps compare against (`since_step`, `same_as_step`, `differs_from_step`):
 * after a step, the runner keeps the physical ids and attributes of the stack's resources,
 * its outputs, and the member physical ids of the nested stacks that some later step asks
 * about. Only the stacks and paths that later steps reference are captured.
 */
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import type { StackRow } from '../../src/orchestration/stacks/index.js';
import type { Step } from './cases.js';
import type { StackReader } from './observe.js';

export interface Snapshot {
  /** current top-level resources: name → physical id and stored attributes */
  resources: Map<string, { physicalId: string | null; attributes: JsonObject }>;
  /** output key → value, or an `{error}` record */
  outputs: Map<string, { value: JsonValue } | { error: string }>;
  /** nested path (joined with `/`) → member name → physical id; absent when the path led nowhere */
  nested: Map<string, Map<string, string | null>>;
}

/** Which (step, logical stack) pairs later steps reference, with the nested paths they need. */
export interface SnapshotPlan {
  /** `${step}/${logical}` → nested paths to capture */
  wanted: Map<string, string[][]>;
}

export function snapshotKey(step: number, logical: string): string {
  return `${step}/${logical}`;
}

function sinceSteps(step: Step): { since: number; nestedPath?: string[] }[] {
  const e = step.expect ?? {};
  const out: { since: number; nestedPath?: string[] }[] = [];
  const list = (key: string) => (Array.isArray(e[key]) ? (e[key] as JsonObject[]) : []);
  for (const key of ['physical_id_unchanged', 'physical_id_changed', 'attribute_unchanged']) {
    for (const item of list(key)) out.push({ since: Number(item['since_step']) });
  }
  for (const item of list('nested_physical_ids')) {
    out.push({ since: Number(item['since_step']), nestedPath: (item['path'] as string[]).map(String) });
  }
  const checks = (e['output_checks'] ?? {}) as Record<string, JsonObject>;
  for (const check of Object.values(checks)) {
    for (const key of ['same_as_step', 'differs_from_step']) {
      const ref = check[key] as JsonObject | undefined;
      if (ref) out.push({ since: Number(ref['step']) });
    }
  }
  return out;
}

/** Scans a case's steps for the snapshots they will need. */
export function planSnapshots(steps: readonly Step[]): SnapshotPlan {
  const wanted = new Map<string, string[][]>();
  for (const step of steps) {
    const logical = step.stack ?? 'main';
    for (const ref of sinceSteps(step)) {
      const key = snapshotKey(ref.since, logical);
      const paths = wanted.get(key) ?? [];
      if (ref.nestedPath && !paths.some((p) => p.join('/') === ref.nestedPath!.join('/'))) paths.push(ref.nestedPath);
      wanted.set(key, paths);
    }
  }
  return { wanted };
}

/** Reads what a snapshot keeps, for one stack. */
export async function takeSnapshot(reader: StackReader, stack: StackRow | null, nestedPaths: readonly string[][]): Promise<Snapshot> {
  const snapshot: Snapshot = { resources: new Map(), outputs: new Map(), nested: new Map() };
  if (stack === null) return snapshot;
  for (const row of await reader.resources(stack)) {
    snapshot.resources.set(row.name, { physicalId: row.physicalId, attributes: row.attributes ?? {} });
  }
  for (const o of await reader.outputs(stack)) {
    snapshot.outputs.set(o.output_key, o.output_error !== undefined ? { error: o.output_error } : { value: o.output_value ?? null });
  }
  for (const path of nestedPaths) {
    const found = await reader.nested(stack, path);
    if (!('stack' in found)) continue;
    const members = new Map((await reader.resources(found.stack)).map((r) => [r.name, r.physicalId] as const));
    snapshot.nested.set(path.join('/'), members);
  }
  return snapshot;
}
