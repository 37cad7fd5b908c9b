/**
 * Structural equality of JSON values, used to tell whether two compilations of a flow
 * are the same graph. Iterative, so a hand-made graph with deeply nested constants cannot
 * overflow the stack; object key order does not matter.
 */
import type { JsonValue } from '../core/json.js';

/**
 * Whether `a` and `b` are the same JSON value.
 *
 * @example
 * ```ts
 * jsonEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }); // true
 * jsonEqual({ a: 1, b: 2 }, { b: 2, a: 1 });             // true
 * jsonEqual([1, 2], [2, 1]);                             // false
 * ```
 */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  const stack: [JsonValue | undefined, JsonValue | undefined][] = [[a, b]];
  for (let pair = stack.pop(); pair !== undefined; pair = stack.pop()) {
    const [x, y] = pair;
    if (x === y) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    if (Array.isArray(x) && Array.isArray(y)) {
      if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) stack.push([x[i], y[i]]);
      continue;
    }
    const xo = x as { [key: string]: JsonValue };
    const yo = y as { [key: string]: JsonValue };
    const keys = Object.keys(xo);
    if (keys.length !== Object.keys(yo).length) return false;
    for (const key of keys) {
      if (!Object.hasOwn(yo, key)) return false;
      stack.push([xo[key], yo[key]]);
    }
  }
  return true;
}
