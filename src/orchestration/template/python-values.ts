/**
 * Python's view of JSON values, where Heat's behaviour depends on it: equality (`1 == 1.0 ==
 * True`), truthiness, `str()`, `repr()` and `json.dumps` with Python's separators and
 * `ensure_ascii`. Intrinsic functions and parameter conversion use these so results match
 * Heat byte for byte (e.g. `list_join` of maps gives `{"foo": "json"}`, not `{"foo":"json"}`).
 *
 * JSON cannot tell `1.0` from `1`; both print as `1` here (Python would print `1.0`).
 */
import type { JsonObject, JsonValue } from '../../core/json.js';

/**
 * True for a JSON object (a Python mapping).
 *
 * @example
 * ```ts
 * isMapping({ a: 1 }); // true
 * isMapping([1]); // false
 * ```
 */
export function isMapping(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Python truthiness: `None`, `False`, `0`, `''`, `[]` and `{}` are false.
 *
 * @example
 * ```ts
 * pyTruthy([]); // false
 * ```
 */
export function pyTruthy(value: JsonValue | undefined): boolean {
  if (value === null || value === undefined || value === false) return false;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') return value.length > 0;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

/**
 * Python `==` on JSON values: booleans are the integers 0 and 1, lists compare item by item,
 * mappings by keys and values; anything else of different types is unequal.
 *
 * @example
 * ```ts
 * pyEquals(true, 1); // true
 * pyEquals('1', 1); // false
 * ```
 */
export function pyEquals(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  const stack: [JsonValue | undefined, JsonValue | undefined][] = [[a, b]];
  while (stack.length > 0) {
    const [x, y] = stack.pop()!;
    const nx = typeof x === 'boolean' ? Number(x) : x;
    const ny = typeof y === 'boolean' ? Number(y) : y;
    if (typeof nx === 'number' || typeof ny === 'number') {
      if (nx !== ny) return false;
      continue;
    }
    if (x === null || y === null || x === undefined || y === undefined || typeof x === 'string' || typeof y === 'string') {
      if (x !== y) return false;
      continue;
    }
    if (Array.isArray(x) || Array.isArray(y)) {
      if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
      x.forEach((item, i) => stack.push([item, y[i]]));
      continue;
    }
    const xo = x as JsonObject;
    const yo = y as JsonObject;
    const keys = Object.keys(xo);
    if (keys.length !== Object.keys(yo).length) return false;
    for (const k of keys) {
      if (!Object.hasOwn(yo, k)) return false;
      stack.push([xo[k], yo[k]]);
    }
  }
  return true;
}

/**
 * Python `value in sequence` for a list (equality) or a string (substring).
 * Returns undefined when Python would raise a TypeError.
 *
 * @example
 * ```ts
 * pyContains('a', 'abc'); // true
 * pyContains(1, [true]); // true
 * ```
 */
export function pyContains(value: JsonValue | undefined, sequence: JsonValue): boolean | undefined {
  if (typeof sequence === 'string') return typeof value === 'string' ? sequence.includes(value) : undefined;
  if (Array.isArray(sequence)) return sequence.some((item) => pyEquals(value, item));
  return undefined;
}

/**
 * Python's `repr(float)` / `str(int)` for a JSON number.
 *
 * @example
 * ```ts
 * pyNumber(0.00001); // '1e-05'
 * ```
 */
export function pyNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return String(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    const [mantissa, exponent] = n.toExponential().split('e') as [string, string];
    const sign = exponent.startsWith('-') ? '-' : '+';
    const digits = exponent.replace(/^[+-]/, '').padStart(2, '0');
    return `${mantissa}e${sign}${digits}`;
  }
  return String(n);
}

/**
 * Python `str(value)`: strings as they are, `True`/`False`/`None`, containers as `repr()`.
 *
 * @example
 * ```ts
 * pyStr(true); // 'True'
 * pyStr(['a', 1]); // "['a', 1]"
 * ```
 */
export function pyStr(value: JsonValue | undefined): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

/**
 * Python `repr(value)` of a JSON value (depth-bounded by the callers' own limits).
 *
 * @example
 * ```ts
 * pyRepr({ a: 'x' }); // "{'a': 'x'}"
 * ```
 */
export function pyRepr(value: JsonValue | undefined): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return pyNumber(value);
  if (typeof value === 'string') return reprString(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${reprString(k)}: ${pyRepr(v)}`)
    .join(', ')}}`;
}

function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch < ' ' || ch === '\u007f') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/**
 * Python `json.dumps(value, sort_keys=…)` with its defaults: `", "` and `": "` separators and
 * every non-ASCII character escaped.
 *
 * @example
 * ```ts
 * pyJsonDumps({ foo: 'json' }); // '{"foo": "json"}'
 * pyJsonDumps('é'); // '"\\u00e9"'
 * ```
 */
export function pyJsonDumps(value: JsonValue, options: { sortKeys?: boolean } = {}): string {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyNumber(value);
  if (typeof value === 'string') return jsonString(value);
  if (Array.isArray(value)) return `[${value.map((v) => pyJsonDumps(v, options)).join(', ')}]`;
  const keys = Object.keys(value);
  if (options.sortKeys) keys.sort(comparePython);
  return `{${keys.map((k) => `${jsonString(k)}: ${pyJsonDumps(value[k]!, options)}`).join(', ')}}`;
}

/**
 * Python sorts strings by code point; JavaScript's default sort compares UTF-16 units.
 *
 * @example
 * ```ts
 * ['b', 'a'].sort(comparePython); // ['a', 'b']
 * ```
 */
export function comparePython(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const JSON_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    const escaped = JSON_ESCAPES[ch];
    if (escaped !== undefined) out += escaped;
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}
