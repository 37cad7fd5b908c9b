/**
 * `output_checks` (README, "Outputs"): shape checks of one output value. Each check is a
 * small function returning the problems it found, as text for the FAIL line.
 */
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { jsonEqual, show } from './values.js';

/** What a check may read besides the value: other outputs now, and outputs of earlier steps. */
export interface OutputCheckContext {
  key: string;
  /** the stack's outputs now (values; an output with an error is absent) */
  outputs: Map<string, JsonValue>;
  /** an output's value at an earlier step of the same stack; undefined when not captured */
  outputAtStep(step: number, key: string): { value: JsonValue } | { error: string } | undefined;
}

type OutputCheck = (value: JsonValue, expected: JsonValue, ctx: OutputCheckContext) => string[];

/** Python's len(): code points of a string, items of a list, keys of a map. */
function lengthOf(value: JsonValue): number | null {
  if (typeof value === 'string') return [...value].length;
  if (Array.isArray(value)) return value.length;
  if (value !== null && typeof value === 'object') return Object.keys(value).length;
  return null;
}

function typeOf(value: JsonValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'map';
  return typeof value;
}

function contains(value: JsonValue, part: JsonValue): boolean {
  if (typeof value === 'string') return typeof part === 'string' && value.includes(part);
  if (Array.isArray(value)) return value.some((v) => jsonEqual(v, part));
  if (value !== null && typeof value === 'object') return typeof part === 'string' && Object.hasOwn(value, part);
  return false;
}

function stepRef(expected: JsonValue, ctx: OutputCheckContext): { step: number; key: string } {
  const ref = expected as JsonObject;
  return { step: Number(ref['step']), key: typeof ref['output'] === 'string' ? ref['output'] : ctx.key };
}

const CHECKS: Record<string, OutputCheck> = {
  length: (value, expected) => {
    const n = lengthOf(value);
    return n === expected ? [] : [`length ${String(expected)} expected, got ${n === null ? `a ${typeOf(value)}` : n}`];
  },
  item_length: (value, expected) => {
    const items = Array.isArray(value) ? value : value !== null && typeof value === 'object' ? Object.values(value) : null;
    if (items === null) return [`item_length: not a list or map but a ${typeOf(value)}`];
    const bad = items.filter((v) => lengthOf(v) !== expected);
    return bad.length === 0 ? [] : [`item_length ${String(expected)} expected, items ${bad.map(show).join(', ')} differ`];
  },
  type: (value, expected) => (typeOf(value) === expected ? [] : [`type ${String(expected)} expected, got ${typeOf(value)}`]),
  regex: (value, expected) => {
    if (typeof value !== 'string') return [`regex: not a string but a ${typeOf(value)}`];
    return new RegExp(String(expected)).test(value) ? [] : [`does not match /${String(expected)}/`];
  },
  contains: (value, expected) => (contains(value, expected) ? [] : [`does not contain ${show(expected)}`]),
  not_contains: (value, expected) => (contains(value, expected) ? [`contains ${show(expected)}`] : []),
  contains_all: (value, expected) => (expected as JsonValue[]).filter((p) => !contains(value, p)).map((p) => `does not contain ${show(p)}`),
  not_equal: (value, expected) => (jsonEqual(value, expected) ? [`equals ${show(expected)}`] : []),
  same_as_output: (value, expected, ctx) => {
    const other = ctx.outputs.get(String(expected));
    if (other === undefined) return [`same_as_output: output ${String(expected)} has no value`];
    return jsonEqual(value, other) ? [] : [`differs from output ${String(expected)} (${show(other)})`];
  },
  equals_list_of_outputs: (value, expected, ctx) => {
    const keys = (expected as JsonValue[]).map(String);
    const missing = keys.filter((k) => !ctx.outputs.has(k));
    if (missing.length > 0) return [`equals_list_of_outputs: outputs ${missing.join(', ')} have no value`];
    const list = keys.map((k) => ctx.outputs.get(k)!);
    return jsonEqual(value, list) ? [] : [`expected the list of outputs ${keys.join(', ')} (${show(list)})`];
  },
  same_as_step: (value, expected, ctx) => {
    const { step, key } = stepRef(expected, ctx);
    const then = ctx.outputAtStep(step, key);
    if (then === undefined) return [`same_as_step: output ${key} was not captured at step ${step}`];
    if ('error' in then) return [`same_as_step: output ${key} had an error at step ${step}: ${then.error}`];
    return jsonEqual(value, then.value) ? [] : [`differs from step ${step} (${show(then.value)})`];
  },
  differs_from_step: (value, expected, ctx) => {
    const { step, key } = stepRef(expected, ctx);
    const then = ctx.outputAtStep(step, key);
    if (then === undefined) return [`differs_from_step: output ${key} was not captured at step ${step}`];
    if ('error' in then) return [];
    return jsonEqual(value, then.value) ? [`is the same as at step ${step}`] : [];
  },
  json_equals: (value, expected) => {
    if (typeof value !== 'string') return [`json_equals: not a string but a ${typeOf(value)}`];
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(value) as JsonValue;
    } catch {
      return [`json_equals: not JSON text`];
    }
    return jsonEqual(parsed, expected) ? [] : [`decodes to ${show(parsed)}, expected ${show(expected)}`];
  },
  min_counts: (value, expected) => {
    if (typeof value !== 'string') return [`min_counts: not a string but a ${typeOf(value)}`];
    return (expected as [string, number][]).flatMap(([pattern, n]) => {
      const found = value.match(new RegExp(pattern, 'g'))?.length ?? 0;
      return found >= n ? [] : [`${found} matches of /${pattern}/, at least ${n} expected`];
    });
  },
};

/** Runs the checks of one output; an unknown check is a problem too (never skipped). */
export function checkOutput(value: JsonValue, checks: JsonObject, ctx: OutputCheckContext): string[] {
  return Object.entries(checks).flatMap(([name, expected]) => {
    const check = CHECKS[name];
    if (!check) return [`unknown output check "${name}"`];
    return check(value, expected, ctx);
  });
}
