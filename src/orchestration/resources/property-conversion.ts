/**
 * Converting one property value to its schema type the way Heat's `Property.get_value` does
 * (`heat/engine/properties.py`), with Python's messages: integers through `int()`, numbers
 * through `int()` then `float()`, strings accepting booleans and integers, booleans only as
 * `true`/`false` text, lists refusing text. A null value stands for "not given": it becomes
 * the default, or the empty value of the type (`''`, `0`, `false`, `[]`, `{}`).
 */
import type { JsonValue } from '../../core/json.js';
import { isMapping, pyNumber, pyRepr, pyStr } from '../template/python-values.js';
import type { PropertySchema } from './property-schema.js';

/**
 * A converted value, or Heat's reason for refusing it.
 *
 * @example
 * ```ts
 * const r: Conversion = { ok: false, message: "Value 'BAD' is not an integer" };
 * ```
 */
export type Conversion = { ok: true; value: JsonValue } | { ok: false; message: string };

/** Python's `int()` of text: optional sign, digits with single underscores, blanks around. */
const PY_INT = /^\s*[+-]?\d+(?:_\d+)*\s*$/;
/** Python's `float()` of text (finite values; JSON cannot hold the others). */
const PY_FLOAT = /^\s*[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?\s*$/;

/** The Python type name in `int()`'s TypeError. */
const pyTypeName = (v: JsonValue): string => (Array.isArray(v) ? 'list' : isMapping(v) ? 'dict' : 'NoneType');

/**
 * The value to convert when the property is absent or null: Heat's
 * `has_default() and default() or <empty>` (a falsy default gives the empty value, which is
 * the same thing for every type).
 *
 * @example
 * ```ts
 * emptyValue({ type: 'integer', default: 32 }); // 32
 * emptyValue({ type: 'list' }); // []
 * ```
 */
export function emptyValue(schema: PropertySchema): JsonValue {
  if (schema.default !== undefined && schema.default !== null) return schema.default;
  switch (schema.type) {
    case 'string':
      return '';
    case 'integer':
    case 'number':
      return 0;
    case 'boolean':
      return false;
    case 'list':
      return [];
    case 'map':
      return {};
    default:
      return null;
  }
}

/**
 * Converts a (non-null) value to the schema's type. Nested list and map members are not
 * looked at here (validate-properties.ts does that).
 *
 * @example
 * ```ts
 * convertProperty({ type: 'integer' }, '12'); // { ok: true, value: 12 }
 * convertProperty({ type: 'integer' }, 'BAD'); // { ok: false, message: "Value 'BAD' is not an integer" }
 * convertProperty({ type: 'boolean' }, 'Yes'); // { ok: false, message: '"yes" is not a valid boolean' }
 * ```
 */
export function convertProperty(schema: PropertySchema, value: JsonValue): Conversion {
  switch (schema.type) {
    case 'string':
      if (typeof value === 'string') return { ok: true, value };
      if (typeof value === 'boolean' || (typeof value === 'number' && Number.isInteger(value))) return { ok: true, value: pyStr(value) };
      return { ok: false, message: `Value must be a string; got ${pyRepr(value)}` };
    case 'integer':
      return toInteger(value);
    case 'number':
      return toNumber(value);
    case 'boolean':
      if (typeof value === 'boolean') return { ok: true, value };
      if (typeof value === 'string') {
        const normalised = value.toLowerCase();
        if (normalised === 'true' || normalised === 'false') return { ok: true, value: normalised === 'true' };
        return { ok: false, message: `"${normalised}" is not a valid boolean` };
      }
      return { ok: false, message: `"${pyStr(value)}" is not a valid boolean` };
    case 'list':
      if (Array.isArray(value)) return { ok: true, value };
      return { ok: false, message: `"${pyRepr(value)}" is not a list` };
    case 'map':
      if (isMapping(value)) return { ok: true, value };
      return { ok: false, message: `"${pyStr(value)}" is not a map` };
    case 'json':
      if (typeof value !== 'string' || value === '') return { ok: true, value };
      try {
        return { ok: true, value: JSON.parse(value) as JsonValue };
      } catch {
        return { ok: false, message: 'Value must be valid JSON' };
      }
    case 'any':
      return { ok: true, value };
  }
}

function toInteger(value: JsonValue): Conversion {
  if (typeof value === 'boolean') return { ok: true, value: value ? 1 : 0 };
  // int() truncates a float towards zero
  if (typeof value === 'number') return { ok: true, value: Math.trunc(value) };
  if (typeof value === 'string') {
    const n = PY_INT.test(value) ? Number(value.replace(/_/g, '').trim()) : NaN;
    return Number.isFinite(n) ? { ok: true, value: n } : { ok: false, message: `Value '${value}' is not an integer` };
  }
  return { ok: false, message: `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(value)}'` };
}

function toNumber(value: JsonValue): Conversion {
  // Python keeps a boolean (bool is a number there); as a JSON number it is 1 or 0
  if (typeof value === 'boolean') return { ok: true, value: value ? 1 : 0 };
  if (typeof value === 'number') return { ok: true, value };
  if (typeof value === 'string') {
    const text = value.replace(/_/g, '').trim();
    if (PY_INT.test(value) || PY_FLOAT.test(value)) {
      const n = Number(text);
      if (Number.isFinite(n)) return { ok: true, value: n };
    }
    return { ok: false, message: `could not convert string to float: ${pyRepr(value)}` };
  }
  return { ok: false, message: `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(value)}'` };
}

/**
 * Python's `str()` of a converted value for messages (`%s`), with floats as Python prints them.
 *
 * @example
 * ```ts
 * shownValue(600); // '600'
 * shownValue(true); // 'True'
 * ```
 */
export function shownValue(value: JsonValue): string {
  return typeof value === 'number' ? pyNumber(value) : pyStr(value);
}
