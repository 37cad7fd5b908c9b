/**
 * A stack's outputs, evaluated on read (as Heat does) from its template set and the stored
 * rows of its current resources, and the attributes a nested stack gives its parent resource.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { selectFromAttribute, type RuntimeContext, type TemplateInstance } from '../template/index.js';
import type { StackLayer } from './layer.js';
import type { ResourceSummaryRow, StackRow } from './stack-store.js';
import { instantiateSet } from './template-set.js';

export interface StackOutput {
  output_key: string;
  output_value?: JsonValue;
  output_error?: string;
  description: string;
}

/** A nested stack's resources as its parent keeps them (for `resource.<n>.<attr>` and group attributes). */
export interface MemberSummary {
  name: string;
  reference: JsonValue;
  attributes: JsonObject;
}

/** get_resource / get_attr over stored current rows */
export function rowsRuntime<R extends ResourceSummaryRow>(
  rows: readonly R[],
  nested: (r: R, attr: string, path: JsonValue[]) => JsonValue | undefined,
): RuntimeContext {
  const current = new Map(rows.filter((r) => r.current && !r.deleted).map((r) => [r.name, r]));
  return {
    getResource: (n) => {
      const r = current.get(n);
      return r ? (r.reference ?? r.physicalId ?? n) : n;
    },
    getAttr: (n, attribute, path) => {
      const r = current.get(n);
      if (!r || !r.attributes) return null;
      if (attribute === null) return r.attributes;
      const inner = nested(r, attribute, path);
      if (inner !== undefined) return inner;
      if (!Object.hasOwn(r.attributes, attribute)) return null;
      return selectFromAttribute(r.attributes[attribute]!, path);
    },
  };
}

/** Attributes of group, chain and template resources computed from their members. */
export function nestedAttribute(r: ResourceSummaryRow, attribute: string, path: JsonValue[]): JsonValue | undefined {
  const outputError = (r.data?.['outputErrors'] as Record<string, string> | undefined)?.[attribute];
  // a nested stack's output that failed to evaluate fails the parent's reference to it (as Heat)
  if (outputError !== undefined) throw new Error(`Error in ${r.name} output ${attribute}: ${outputError}`);
  const members = (r.data?.['members'] ?? null) as MemberSummary[] | null;
  if (!members) return undefined;
  const byName = new Map(members.map((m) => [m.name, m]));
  const inner = /^resource\.([^.]+)(?:\.(.+))?$/.exec(attribute);
  if (inner) {
    const m = byName.get(inner[1]!);
    if (!m) return null;
    if (inner[2] !== undefined) return selectFromAttribute(m.attributes[inner[2]] ?? null, path);
    if (path.length === 0) return m.reference;
    return selectFromAttribute(m.attributes[String(path[0])] ?? null, path.slice(1));
  }
  const kind = r.data?.['kind'];
  if (kind !== 'group' && kind !== 'chain') return undefined;
  if (attribute === 'refs')
    return selectFromAttribute(
      members.map((m) => m.reference),
      path,
    );
  if (attribute === 'refs_map') return selectFromAttribute(Object.fromEntries(members.map((m) => [m.name, m.reference])), path);
  if (attribute === 'removed_rsrc_list') return selectFromAttribute((r.data?.['removed'] ?? []) as JsonValue, path);
  if (attribute === 'attributes') {
    const name = String(path[0]);
    return selectFromAttribute(Object.fromEntries(members.map((m) => [m.name, m.attributes[name] ?? null])), path.slice(1));
  }
  if (attribute === 'show') return null;
  return selectFromAttribute(
    members.map((m) => m.attributes[attribute] ?? null),
    path,
  );
}

export async function stackInstance(layer: StackLayer, stack: StackRow): Promise<TemplateInstance | null> {
  if (!stack.templateSet) return null;
  return instantiateSet(stack.templateSet, await layer.setBody(stack.templateSet), stack, layer.limits.template);
}

/** Every output of the stack, in template order (Heat's output_error for those that fail). */
export async function stackOutputs(layer: StackLayer, stack: StackRow, rows?: readonly ResourceSummaryRow[]): Promise<StackOutput[]> {
  const instance = await stackInstance(layer, stack);
  if (!instance) return [];
  const current = rows ?? (await layer.stacks.sql.read('list resources', (s) => layer.stacks.resourceSummaries(s, stack.id)));
  const body = await layer.setBody(stack.templateSet!);
  const runtime = { ...rowsRuntime(current, nestedAttribute), ...(body.facade ? { resourceFacade: body.facade } : {}) };
  return instance.outputNames.map((name) => {
    const o = instance.evaluateOutput(name, runtime);
    const description = instance.template.outputs[name]?.description ?? 'No description given';
    return 'error' in o
      ? { output_key: name, output_error: heatOutputError(o.error), output_value: null, description }
      : { output_key: name, output_value: o.value ?? null, description };
  });
}

/**
 * An output's error in Heat's words where Heat words it differently at run time: an output
 * reading a parameter the template does not declare is "The Parameter (x) was not provided."
 */
function heatOutputError(error: string): string {
  const unknown = /^outputs\.[^:]*: Unknown parameter "([^"]*)"$/.exec(error);
  return unknown ? `The Parameter (${unknown[1]}) was not provided.` : error;
}

/** What a finished nested stack gives its parent resource's row. */
export async function nestedSummary(
  layer: StackLayer,
  child: StackRow,
): Promise<{ outputs: Record<string, JsonValue>; outputErrors: Record<string, string>; members: MemberSummary[] }> {
  const rows = await layer.stacks.sql.read('list resources', (s) => layer.stacks.resourceSummaries(s, child.id));
  const evaluated = await stackOutputs(layer, child, rows);
  const outputs = Object.fromEntries(evaluated.map((o) => [o.output_key, o.output_value ?? null]));
  const outputErrors = Object.fromEntries(
    evaluated.filter((o) => o.output_error !== undefined).map((o) => [o.output_key, o.output_error!]),
  );
  const members = rows
    .filter((r) => r.current)
    .map((r) => ({ name: r.name, reference: r.reference ?? r.physicalId ?? r.name, attributes: r.attributes ?? {} }));
  const numeric = members.every((m) => /^\d+$/.test(m.name));
  if (numeric) members.sort((a, b) => Number(a.name) - Number(b.name));
  return { outputs, outputErrors, members };
}
