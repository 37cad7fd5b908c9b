/**
 * Functions over lists and maps: `map_merge`, `map_replace`, `repeat` (three generations),
 * `filter`, `list_concat`, `list_concat_unique`, and the CFN `Fn::Select` and
 * `Fn::MemberListToMap` of heat_template_version 2013-05-23.
 *
 * A map a function builds may not get a `__proto__`, `constructor` or `prototype` key from
 * data (STOKER_INPUT_FORBIDDEN_KEY, as for input: docs/security.md S3b), and JSON text a
 * function parses goes through the same checks as input.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import type { Evaluator, FunctionHandler } from './evaluate.js';
import type { CallExpr, Expr } from './expression.js';
import { listItems, mapEntries } from './expr-shape.js';
import { FORBIDDEN_KEYS, guardJson } from './json-guard.js';
import { isMapping, pyContains, pyEquals, pyTruthy } from './python-values.js';
import { showText, templateError } from './template-error.js';
import { Fn } from './versions.js';

const items = (call: CallExpr): Expr[] => listItems(call.arg) ?? [];

/** Sets `out[key]`, refusing the keys that would change the object's prototype or shadow its constructor. */
function setKey(call: CallExpr, out: JsonObject, key: string, value: JsonValue): void {
  if (FORBIDDEN_KEYS.has(key)) {
    throw templateError('STOKER_INPUT_FORBIDDEN_KEY', call.path, `"${call.name}" would build a map with the forbidden key "${key}"`, {
      function: call.name,
      key,
    });
  }
  out[key] = value;
}

const mapMerge: FunctionHandler = (call, ev) => {
  const args = ev.value(call.arg);
  if (!Array.isArray(args))
    throw ev.fail(call, `Incorrect arguments to "${call.name}" should be: "${call.name}" : [ { "key1": "val1" }, { "key2": "val2" } ]`);
  const out: JsonObject = {};
  for (const m of args) {
    if (m === null) continue;
    if (!isMapping(m)) throw ev.fail(call, 'Incorrect arguments: Items to merge must be maps.');
    for (const [k, v] of Object.entries(m)) setKey(call, out, k, v);
  }
  ev.charge(call, Object.keys(out).length);
  return out;
};

const mapReplace: FunctionHandler = (call, ev) => {
  const args = ev.value(call.arg);
  const usage = `Incorrect arguments to "${call.name}" should be: "${call.name}" : [ { "key1": "val1" }, {"keys": {"key1": "key2"}, "values": {"val1": "val2"}}]`;
  if (!Array.isArray(args) || args.length !== 2) throw ev.fail(call, usage);
  const asMap = (m: JsonValue): JsonObject => {
    if (m === null) return {};
    if (!isMapping(m)) throw ev.fail(call, `Incorrect arguments: to "${call.name}", arguments must be a list of maps.`);
    return m;
  };
  const input = asMap(args[0]!);
  const replacements = asMap(args[1]!);
  if (Object.keys(replacements).some((k) => k !== 'keys' && k !== 'values')) throw ev.fail(call, usage);
  const keys = asMap(replacements['keys'] ?? null);
  const values = asMap(replacements['values'] ?? null);
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(input)) {
    const replacedKey = Object.hasOwn(keys, k) && keys[k] !== null ? keys[k]! : k;
    if (typeof replacedKey !== 'string') throw ev.fail(call, `key replacements in "${call.name}" must be strings`);
    if (replacedKey !== k && Object.hasOwn(input, replacedKey))
      throw ev.fail(call, `key replacement ${showText(replacedKey)} collides with a key in the input map`);
    if (replacedKey !== k && Object.hasOwn(out, replacedKey))
      throw ev.fail(call, `key replacement ${showText(replacedKey)} collides with a key in the output map`);
    // values are looked up by value; only strings can be keys of the replacement map
    setKey(call, out, replacedKey, typeof v === 'string' && Object.hasOwn(values, v) ? values[v]! : v);
  }
  ev.charge(call, Object.keys(out).length);
  return out;
};

/** repeat; `withMaps` lets for_each values be maps (their keys), from 2016-10-14. */
function repeat(withMaps: boolean, permutationsArg: boolean): FunctionHandler {
  return (call, ev) => {
    const args = mapEntries(call.arg)!;
    const forEach = ev.value(args.get('for_each')!);
    if (!isMapping(forEach)) throw ev.fail(call, `The "for_each" argument to "${call.name}" must contain a map`);
    const nested = permutationsArg && args.has('permutations') ? ev.value(args.get('permutations')!) !== false : true;
    const placeholders = Object.keys(forEach);
    const lists = placeholders.map((p) => {
      const v = forEach[p]!;
      if (v === null) return [];
      if (Array.isArray(v)) return v;
      if (withMaps && nested && isMapping(v)) return Object.keys(v);
      throw ev.fail(call, `The values of the "for_each" argument to "${call.name}" must be lists${withMaps && nested ? ' or maps' : ''}`);
    });
    const lengths = placeholders.flatMap((p, i) => (forEach[p] === null ? [] : [lists[i]!.length]));
    if (!nested && new Set(lengths).size > 1) {
      throw ev.fail(call, `For ${call.name}, the length of for_each values should be equal if no nested loop.`);
    }
    const count =
      placeholders.length === 0 ? 0 : nested ? lists.reduce((n, l) => n * l.length, 1) : Math.min(...lists.map((l) => l.length));
    const template = ev.value(args.get('template')!);
    ev.charge(call, count * Math.max(1, JSON.stringify(template).length));
    const out: JsonValue[] = [];
    const indexes = new Array<number>(lists.length).fill(0);
    for (let n = 0; n < count; n++) {
      const values = nested ? indexes.map((i, k) => lists[k]![i]!) : lists.map((l) => l[n]!);
      out.push(substitute(call, ev, template, placeholders, values));
      if (nested) {
        for (let k = indexes.length - 1; k >= 0; k--) {
          if (++indexes[k]! < lists[k]!.length) break;
          indexes[k] = 0;
        }
      }
    }
    return out;
  };
}

/** Replaces each placeholder in every string (keys included), one placeholder after another. */
function substitute(call: CallExpr, ev: Evaluator, template: JsonValue, placeholders: string[], values: JsonValue[]): JsonValue {
  const replaceIn = (s: string): string => {
    let out = s;
    placeholders.forEach((p, i) => {
      const v = values[i]!;
      if (typeof v !== 'string') throw ev.fail(call, `"${call.name}" can only substitute strings`);
      if (p !== '') out = out.split(p).join(v);
    });
    return out;
  };
  const walk = (t: JsonValue): JsonValue => {
    ev.step();
    if (typeof t === 'string') return replaceIn(t);
    if (Array.isArray(t)) return t.map(walk);
    if (isMapping(t)) {
      const out: JsonObject = {};
      for (const [k, v] of Object.entries(t)) setKey(call, out, replaceIn(k), walk(v));
      return out;
    }
    return t;
  };
  return walk(template);
}

const filter: FunctionHandler = (call, ev) => {
  const [valuesExpr, sequenceExpr] = items(call);
  const sequence = ev.value(sequenceExpr!);
  if (!pyTruthy(sequence)) return sequence;
  if (!Array.isArray(sequence)) throw ev.fail(call, `"${call.name}" only works with lists`);
  const values = ev.value(valuesExpr!);
  if (!pyTruthy(values)) return sequence;
  if (!Array.isArray(values)) throw ev.fail(call, `"${call.name}" filters a list of values`);
  // every item is compared with every value
  ev.step(sequence.length * values.length);
  return sequence.filter((item) => !pyContains(item, values));
};

function listConcat(unique: boolean): FunctionHandler {
  return (call, ev) => {
    const args = ev.value(call.arg);
    if (!Array.isArray(args))
      throw ev.fail(
        call,
        `Incorrect arguments to "${call.name}" should be: "${call.name}" : [ [ <value 1>, <value 2> ], [ <value 3>, <value 4> ] ]`,
      );
    const out: JsonValue[] = [];
    for (const m of args) {
      if (m === null) continue;
      if (!Array.isArray(m)) throw ev.fail(call, 'Incorrect arguments: Items to concat must be lists.');
      for (const item of m) {
        if (!unique) out.push(item);
        else {
          // every item is compared with those kept so far
          ev.step(out.length);
          if (!out.some((o) => pyEquals(o, item))) out.push(item);
        }
      }
      ev.charge(call, m.length);
    }
    return out;
  };
}

const cfnSelect: FunctionHandler = (call, ev) => {
  const [indexExpr, collectionExpr] = items(call);
  const index = ev.value(indexExpr!);
  let collection = ev.value(collectionExpr!);
  if (collection === '') return '';
  if (typeof collection === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(collection);
    } catch {
      throw ev.fail(call, `"${call.name}": the collection is a string that is not JSON`);
    }
    // the text may nest without end or hold __proto__ keys: the checks of any input
    const { maxDepth, maxNodes, maxEvaluationOutputBytes } = ev.limits;
    guardJson(
      parsed,
      `The collection of "${call.name}"`,
      { maxDepth, maxNodes, maxBytes: maxEvaluationOutputBytes },
      'STOKER_TEMPLATE_EVALUATION_FAILED',
    );
    collection = parsed;
  }
  if (isMapping(collection)) {
    if (typeof index !== 'string') throw ev.fail(call, `Index to "${call.name}" must be a string`);
    return Object.hasOwn(collection, index) ? collection[index]! : '';
  }
  if (Array.isArray(collection)) {
    const i = typeof index === 'number' ? index : typeof index === 'string' && /^\s*[+-]?\d+\s*$/.test(index) ? Number(index) : NaN;
    if (!Number.isInteger(i)) throw ev.fail(call, `Index to "${call.name}" must be an integer`);
    return collection[i < 0 ? collection.length + i : i] ?? '';
  }
  if (collection === null) return '';
  throw ev.fail(call, `Arguments to ${call.name} not fully resolved`);
};

const cfnMemberListToMap: FunctionHandler = (call, ev) => {
  const [keyExpr, valueExpr, listExpr] = items(call);
  const keyName = (keyExpr as { value: string }).value;
  const valueName = (valueExpr as { value: string }).value;
  const members = ev.value(listExpr!);
  if (!Array.isArray(members)) throw ev.fail(call, 'Member list must be a list');
  const partials = new Map<string, string>();
  for (const m of members) {
    if (typeof m !== 'string') throw ev.fail(call, 'Member list items must be strings');
    const eq = m.indexOf('=');
    partials.set(eq === -1 ? m : m.slice(0, eq), eq === -1 ? '' : m.slice(eq + 1));
  }
  const byIndex = new Map<number, Map<string, string>>();
  for (const [name, value] of partials) {
    const match = /^\.member\.([0-9]+)\.(.*)$/s.exec(name);
    if (!match) continue;
    const index = Number(match[1]);
    const group = byIndex.get(index) ?? new Map<string, string>();
    group.set(match[2]!, value);
    byIndex.set(index, group);
  }
  const out: JsonObject = {};
  for (const index of [...byIndex.keys()].sort((a, b) => a - b)) {
    const group = byIndex.get(index)!;
    if (group.has(keyName) && group.has(valueName)) setKey(call, out, group.get(keyName)!, group.get(valueName)!);
  }
  return out;
};

/**
 * Handlers of the list and map functions, by implementation.
 *
 * @example
 * ```ts
 * COLLECTION_FUNCTIONS[Fn.MapMerge];
 * ```
 */
export const COLLECTION_FUNCTIONS: Partial<Record<Fn, FunctionHandler>> = {
  [Fn.MapMerge]: mapMerge,
  [Fn.MapReplace]: mapReplace,
  [Fn.Repeat]: repeat(false, false),
  [Fn.RepeatWithMap]: repeat(true, false),
  [Fn.RepeatNested]: repeat(true, true),
  [Fn.Filter]: filter,
  [Fn.ListConcat]: listConcat(false),
  [Fn.ListConcatUnique]: listConcat(true),
  [Fn.CfnSelect]: cfnSelect,
  [Fn.CfnMemberListToMap]: cfnMemberListToMap,
};
