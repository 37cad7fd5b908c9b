/**
 * Definition-time constants (`inject` values, `forEach` values) end up inside the stored
 * graph, so they must be plain JSON. This validates and deep-copies them in one iterative
 * pass: a user's later mutation of the original cannot change a compiled flow, and a
 * cyclic or absurdly deep value fails with a message instead of a stack overflow.
 */
import type { JsonValue } from '../core/json.js';
import { ValidationError } from '../errors.js';

/** Deepest nesting accepted in a definition-time constant. */
export const MAX_CONSTANT_DEPTH = 64;

interface Pending {
  value: unknown;
  path: string;
  depth: number;
  assign: (copy: JsonValue) => void;
}

/**
 * Returns a frozen deep copy of `value` if it is JSON (null, booleans, finite numbers,
 * strings, arrays, plain objects), else throws a `STOKER_FLOW_INVALID` ValidationError
 * that names `where` and the path of the offending part.
 *
 * @example
 * ```ts
 * copyJsonValue({ size: [1, 2] }, "inject of task 'resize'"); // a frozen copy
 * copyJsonValue({ at: new Date() }, "inject of task 'resize'"); // throws: …at is a Date…
 * ```
 */
export function copyJsonValue(value: unknown, where: string): JsonValue {
  let result: JsonValue = null;
  // Containers are frozen only after they are filled.
  const frozenLater: object[] = [];
  const stack: Pending[] = [{ value, path: '', depth: 0, assign: (copy) => (result = copy) }];
  const fail: (path: string, problem: string) => never = (path, problem) => {
    throw new ValidationError('STOKER_FLOW_INVALID', `${where}${path === '' ? '' : ` at ${path}`} ${problem}.`, {
      details: { where, path },
    });
  };
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value: v, path, depth, assign } = item;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') {
      assign(v);
      continue;
    }
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) fail(path, `is ${String(v)}, which JSON cannot hold`);
      assign(v);
      continue;
    }
    if (typeof v !== 'object') {
      fail(path, `is ${v === undefined ? 'undefined' : `a ${typeof v}`}, which is not JSON`);
    }
    if (depth >= MAX_CONSTANT_DEPTH) fail(path, `nests deeper than ${MAX_CONSTANT_DEPTH} levels (or is cyclic)`);
    if (Array.isArray(v)) {
      const copy: JsonValue[] = new Array<JsonValue>(v.length).fill(null);
      for (let i = 0; i < v.length; i++) {
        stack.push({ value: v[i], path: `${path}[${i}]`, depth: depth + 1, assign: (c) => (copy[i] = c) });
      }
      assign(copy);
      frozenLater.push(copy);
      continue;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (v as { constructor?: { name?: unknown } }).constructor?.name;
      fail(path, `is ${typeof kind === 'string' && kind !== '' ? `a ${kind}` : 'a non-plain object'}, which is not JSON`);
    }
    const copy: { [key: string]: JsonValue } = {};
    for (const key of Object.keys(v)) {
      // Assigning "__proto__" would set the copy's prototype instead of a key.
      if (key === '__proto__') fail(path, 'has a "__proto__" key');
      stack.push({
        value: (v as Record<string, unknown>)[key],
        path: `${path}.${key}`,
        depth: depth + 1,
        assign: (c) => (copy[key] = c),
      });
    }
    assign(copy);
    frozenLater.push(copy);
  }
  for (const container of frozenLater) Object.freeze(container);
  return result;
}
