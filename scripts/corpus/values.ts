/** JSON equality and short display of values, for comparisons and FAIL messages. */
import type { JsonValue } from '../../src/core/json.js';

/** Deep equality of JSON values (map key order ignored). */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (typeof a === 'object') {
    if (typeof b !== 'object' || Array.isArray(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * Whether `expected` is a recursive subset of `actual`: maps by key (extra keys in `actual`
 * are fine), lists and scalars exactly. Returns the path of the first difference, or null.
 */
export function subsetDifference(expected: JsonValue, actual: JsonValue | undefined, path = ''): string | null {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (actual === null || actual === undefined || typeof actual !== 'object' || Array.isArray(actual)) {
      return `${path || '(top)'}: expected a map, got ${show(actual)}`;
    }
    for (const [k, v] of Object.entries(expected)) {
      const d = subsetDifference(v, actual[k], path ? `${path}.${k}` : k);
      if (d !== null) return d;
    }
    return null;
  }
  return jsonEqual(expected, actual) ? null : `${path || '(top)'}: expected ${show(expected)}, got ${show(actual)}`;
}

/** A value as short JSON text for messages. */
export function show(value: JsonValue | undefined, max = 120): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** `[a, b]` for sorted name lists in messages. */
export function names(list: Iterable<string>): string {
  return `[${[...list].sort().join(', ')}]`;
}
