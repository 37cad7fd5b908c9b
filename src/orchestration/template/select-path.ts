/**
 * Heat's `select_from_attribute` (`heat/engine/attributes.py`): walks a path of keys and list
 * indexes into an attribute value; any step that does not fit gives null.
 */
import type { JsonValue } from '../../core/json.js';
import { isMapping } from './python-values.js';

/**
 * Selects `path` inside `value`: strings index mappings, integers index lists (negative from
 * the end, as in Python); a missing key, an index out of range or a wrong type gives null.
 *
 * @example
 * ```ts
 * selectFromAttribute({ a: [10, 20] }, ['a', 1]); // 20
 * selectFromAttribute({ a: 1 }, ['b']); // null
 * ```
 */
export function selectFromAttribute(value: JsonValue, path: readonly JsonValue[]): JsonValue {
  let current: JsonValue = value;
  for (const key of path) {
    if (isMapping(current) && typeof key === 'string') {
      if (!Object.hasOwn(current, key)) return null;
      current = current[key]!;
    } else if ((Array.isArray(current) || typeof current === 'string') && typeof key === 'number' && Number.isInteger(key)) {
      const seq: JsonValue[] = typeof current === 'string' ? [...current] : current;
      const item = seq[key < 0 ? seq.length + key : key];
      if (item === undefined) return null;
      current = item;
    } else return null;
  }
  return current;
}
