/**
 * Converting a parameter value to its type the way Heat's `Parameter` classes do
 * (`heat/engine/parameters.py`): numbers with Python's `int()` then `float()`, booleans with
 * `oslo_utils.strutils.bool_from_string(strict=True)`, comma-delimited lists split on `,`
 * without trimming, json from text or as given, strings with Python's `str()`.
 */
import type { JsonValue } from '../../core/json.js';
import type { ParameterSchema } from './parameter-schema.js';
import { pyStr } from './python-values.js';
import { clipText } from './template-error.js';

/**
 * The result of a conversion: the typed value, or Heat's reason it failed.
 *
 * @example
 * ```ts
 * const r: Converted = { ok: true, value: 3 };
 * ```
 */
export type Converted = { ok: true; value: JsonValue } | { ok: false; message: string };

const INT = /^\s*[+-]?\d+(?:_\d+)*\s*$/;
const FLOAT = /^\s*[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?\s*$/;
const TRUE_STRINGS = ['1', 't', 'true', 'on', 'y', 'yes'];
const FALSE_STRINGS = ['0', 'f', 'false', 'off', 'n', 'no'];

/**
 * Heat's `Schema.str_to_num`: a number stays; text goes through `int()`, then `float()`.
 * Returns undefined when Python would raise (and for infinities and NaN, which JSON cannot hold).
 *
 * @example
 * ```ts
 * strToNum(' 42 '); // 42
 * strToNum('1_000'); // 1000
 * strToNum('abc'); // undefined
 * ```
 */
export function strToNum(value: JsonValue): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  if (INT.test(value)) {
    const n = Number(value.replace(/_/g, '').trim());
    return Number.isSafeInteger(n) ? n : undefined;
  }
  if (FLOAT.test(value)) {
    const n = Number(value.replace(/_/g, '').trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/**
 * `strutils.bool_from_string(str(value), strict=True)`.
 *
 * @example
 * ```ts
 * boolFromString('Yes'); // true
 * boolFromString('maybe'); // undefined
 * ```
 */
export function boolFromString(value: JsonValue): boolean | undefined {
  const text = pyStr(value).trim().toLowerCase();
  if (TRUE_STRINGS.includes(text)) return true;
  if (FALSE_STRINGS.includes(text)) return false;
  return undefined;
}

/**
 * Converts a user, environment or default value to the parameter's type.
 *
 * @example
 * ```ts
 * convertParameterValue({ ...schema, type: 'comma_delimited_list' }, 'a,b'); // { ok: true, value: ['a', 'b'] }
 * ```
 */
export function convertParameterValue(schema: Pick<ParameterSchema, 'type'> & { hidden?: boolean }, value: JsonValue): Converted {
  // a hidden parameter's value never appears in a message (docs/security.md S9)
  const shown = (): string => (schema.hidden ? '******' : clipText(pyStr(value)));
  switch (schema.type) {
    case 'string':
      return { ok: true, value: pyStr(value) };
    case 'number': {
      const n = typeof value === 'boolean' ? undefined : strToNum(value);
      if (n === undefined) return { ok: false, message: `Value "${shown()}" is invalid for data type "number"` };
      return { ok: true, value: n };
    }
    case 'boolean': {
      const b = boolFromString(value);
      if (b === undefined) {
        const accepted = [...FALSE_STRINGS, ...TRUE_STRINGS].sort().map((s) => `'${s}'`);
        return { ok: false, message: `Unrecognized value '${shown()}', acceptable values are: ${accepted.join(', ')}` };
      }
      return { ok: true, value: b };
    }
    case 'comma_delimited_list':
      if (Array.isArray(value)) return { ok: true, value: value.map((x) => pyStr(x)) };
      if (typeof value !== 'string') return { ok: false, message: 'Value must be a comma-delimited list string' };
      return { ok: true, value: value === '' ? [] : value.split(',') };
    case 'json': {
      if (typeof value !== 'string') return { ok: true, value };
      if (value === '') return { ok: true, value };
      try {
        return { ok: true, value: JSON.parse(value) as JsonValue };
      } catch {
        // JSON.parse's message quotes the text, which may be secret
        return { ok: false, message: 'Value must be valid JSON' };
      }
    }
  }
}
