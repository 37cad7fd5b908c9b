/**
 * The one rule for reading a published value out of an atom's result, shared by whoever
 * feeds inputs (the engine) and whoever shows outputs (API, dashboard).
 */
import type { JsonValue } from '../core/json.js';
import type { AtomSpec, InputSource } from './graph.js';

/**
 * Reads the value an {@link InputSource} of kind `atom` points at, given the provider's
 * result: the whole result without `key`; with a string `key`, the field of an object
 * result or, for an array result, the element at the key's position in the provider's
 * `provides`; with a numeric `key`, that element of an array result or the field named
 * `provides[key]` of an object result. Returns `undefined` when the result has no such
 * part (the caller decides whether that is an error).
 *
 * @example
 * ```ts
 * // provider: provides ['width', 'height']
 * providedValue([640, 480], provider, 'height');           // 480
 * providedValue({ width: 640, height: 480 }, provider, 'width'); // 640
 * providedValue('whole', single, undefined);                // 'whole'
 * ```
 */
export function providedValue(
  result: JsonValue | undefined,
  provider: Pick<AtomSpec, 'provides'>,
  key: Extract<InputSource, { from: 'atom' }>['key'],
): JsonValue | undefined {
  if (key === undefined) return result;
  if (result === null || typeof result !== 'object') return undefined;
  if (Array.isArray(result)) {
    const position = typeof key === 'number' ? key : provider.provides.indexOf(key);
    return position >= 0 && position < result.length ? result[position] : undefined;
  }
  const field = typeof key === 'string' ? key : provider.provides[key];
  return field !== undefined && Object.hasOwn(result, field) ? result[field] : undefined;
}
