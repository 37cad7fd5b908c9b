/**
 * One way to raise errors in the template layer: a ValidationError whose message starts with
 * the path of the offending value (`resources.server.properties.name: …`) and whose details
 * carry the same path, so an API can point at it.
 */
import { ValidationError, type ErrorCode } from '../../errors.js';
import type { JsonValue } from '../../core/json.js';

/**
 * Builds the error. `path` may be empty (a problem with the whole document).
 *
 * @example
 * ```ts
 * throw templateError('STOKER_TEMPLATE_INVALID', 'resources.a', '"typo" is not a valid keyword');
 * // message: 'resources.a: "typo" is not a valid keyword'
 * ```
 */
export function templateError(code: ErrorCode, path: string, message: string, details: Record<string, JsonValue> = {}): ValidationError {
  return new ValidationError(code, path === '' ? message : `${path}: ${message}`, { details: { path, ...details } });
}

/**
 * Appends one segment to a dotted path, the way Heat prints paths (`resources.a.properties`).
 *
 * @example
 * ```ts
 * joinPath('resources', 'web'); // 'resources.web'
 * joinPath('outputs.o.value', 0); // 'outputs.o.value[0]'
 * ```
 */
export function joinPath(path: string, segment: string | number): string {
  if (typeof segment === 'number') return `${path}[${segment}]`;
  return path === '' ? segment : `${path}.${segment}`;
}

/**
 * A short, bounded rendering of a value for messages (never used for hidden parameters).
 *
 * @example
 * ```ts
 * shortValue({ a: 1 }); // '{"a":1}'
 * ```
 */
export function shortValue(value: JsonValue | undefined, max = 200): string {
  const text = value === undefined ? 'nothing' : typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
