/**
 * Canonical JSON (object keys sorted) so that "the same arguments" compares as text, and
 * a guard that rejects input Stoker will not store: too deep, too large, forbidden keys.
 */
import { ValidationError } from '../errors.js';
import type { JsonValue } from './json.js';

/** Serialises with sorted object keys, iteratively (no recursion on user data). */
export function canonicalJson(value: JsonValue): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: JsonValue): JsonValue {
  if (value === null || typeof value !== 'object') return value;
  const rootOut: JsonValue = Array.isArray(value) ? [] : {};
  const stack: [JsonValue, JsonValue][] = [[value, rootOut]];
  while (stack.length > 0) {
    const [src, dst] = stack.pop()!;
    if (Array.isArray(src)) {
      const out = dst as JsonValue[];
      for (const item of src) {
        if (item !== null && typeof item === 'object') {
          const child: JsonValue = Array.isArray(item) ? [] : {};
          out.push(child);
          stack.push([item, child]);
        } else out.push(item);
      }
    } else {
      const obj = src as Record<string, JsonValue>;
      const out = dst as Record<string, JsonValue>;
      for (const k of Object.keys(obj).sort()) {
        const item = obj[k]!;
        if (item !== null && typeof item === 'object') {
          const child: JsonValue = Array.isArray(item) ? [] : {};
          out[k] = child;
          stack.push([item, child]);
        } else out[k] = item;
      }
    }
  }
  return rootOut;
}

export interface JsonLimits {
  maxBytes: number;
  maxDepth: number;
  /** how to raise `maxBytes`, for the message of `STOKER_INPUT_TOO_LARGE` (the option's name) */
  raise?: string;
}

export const DEFAULT_INPUT_LIMITS: JsonLimits = { maxBytes: 256 * 1024, maxDepth: 64 };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Checks that `value` is plain JSON within limits; throws a ValidationError naming `what`,
 * the path of the first problem and what was found there: `STOKER_INPUT_NOT_JSON` for a
 * value JSON cannot hold as it is (a function, BigInt, Date, Map, Set, class instance, NaN,
 * a circular reference), `STOKER_INPUT_TOO_DEEP`, `STOKER_INPUT_FORBIDDEN_KEY`,
 * `STOKER_INPUT_TOO_LARGE`. Returns the serialised size in bytes.
 *
 * @example
 * ```ts
 * checkJson({ at: new Date() }, 'result of task a');
 * // throws STOKER_INPUT_NOT_JSON: result of task a is not plain JSON at $.at: a Date (store date.toISOString() instead)
 * ```
 */
export function checkJson(value: unknown, what: string, limits: JsonLimits = DEFAULT_INPUT_LIMITS): number {
  // a scalar (most task results: null, a flag, a count) has nothing to walk
  if (limits.maxDepth >= 0 && (value === null || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))))
    return serialisedSize(value, what, limits);
  type Item = { v: unknown; path: string; depth: number } | { leave: object };
  const stack: Item[] = [{ v: value, path: '$', depth: 0 }];
  // the objects on the path being walked, with their paths: a cycle comes back to one of them
  const onPath = new Map<object, string>();
  const notJson = (path: string, found: string): ValidationError =>
    new ValidationError('STOKER_INPUT_NOT_JSON', `${what} is not plain JSON at ${path}: ${found}`, { details: { path, found } });
  // One rule for every dialect (issue 11): PostgreSQL's jsonb cannot hold U+0000 and no
  // database stores a lone surrogate as it is, so such text is refused everywhere, by path,
  // instead of failing inside a commit on one dialect only.
  const checkText = (text: string, path: string): void => {
    const found = unstorableText(text);
    if (found === null) return;
    throw new ValidationError(
      'STOKER_INPUT_UNSTORABLE_TEXT',
      `${what} has ${found} at ${path}, which not every database can store: encode the text (base64, or escape it) first`,
      { details: { path, found } },
    );
  };
  while (stack.length > 0) {
    const item = stack.pop()!;
    if ('leave' in item) {
      onPath.delete(item.leave);
      continue;
    }
    const { v, path, depth } = item;
    if (typeof v === 'object' && v !== null) {
      const seen = onPath.get(v);
      if (seen !== undefined) throw notJson(path, `a circular reference (back to ${seen})`);
    }
    if (depth > limits.maxDepth) {
      throw new ValidationError('STOKER_INPUT_TOO_DEEP', `${what} nests deeper than ${limits.maxDepth} levels at ${path}`, {
        details: { path, maxDepth: limits.maxDepth },
      });
    }
    if (typeof v === 'string') {
      checkText(v, path);
      continue;
    }
    if (v === null || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw notJson(path, `${String(v)} (JSON has finite numbers only; use null or a string)`);
      continue;
    }
    if (Array.isArray(v)) {
      onPath.set(v, path);
      stack.push({ leave: v });
      v.forEach((child, i) => stack.push({ v: child, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    if (
      (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) ||
      (typeof v === 'object' && Object.getPrototypeOf(v) === null)
    ) {
      onPath.set(v, path);
      stack.push({ leave: v });
      for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
        checkText(k, `${path} (a key)`);
        if (FORBIDDEN_KEYS.has(k)) {
          throw new ValidationError('STOKER_INPUT_FORBIDDEN_KEY', `${what} uses the forbidden key "${k}" at ${path}`, {
            details: { path, key: k },
          });
        }
        if (child !== undefined) stack.push({ v: child, path: `${path}.${k}`, depth: depth + 1 });
      }
      continue;
    }
    throw notJson(path, describe(v));
  }
  return serialisedSize(value, what, limits);
}

/** The size of `value` as JSON text, in bytes; STOKER_INPUT_TOO_LARGE over `limits.maxBytes`. */
function serialisedSize(value: unknown, what: string, limits: JsonLimits): number {
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? 'null');
  if (bytes > limits.maxBytes) {
    const raise = limits.raise ? `; send a reference instead, or raise the limit: ${limits.raise}` : '';
    throw new ValidationError('STOKER_INPUT_TOO_LARGE', `${what} is ${bytes} bytes, over the limit of ${limits.maxBytes}${raise}`, {
      details: { bytes, maxBytes: limits.maxBytes },
    });
  }
  return bytes;
}

/** What a value that is not JSON is, and what to store instead. */
function describe(v: unknown): string {
  if (v === undefined) return 'undefined (use null)';
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''}`;
  if (typeof v === 'bigint') return 'a BigInt (store it as a string)';
  if (typeof v === 'symbol') return 'a symbol';
  if (v instanceof Date) return 'a Date (store date.toISOString() instead)';
  if (v instanceof Map) return 'a Map (store Object.fromEntries(map) or an array of entries instead)';
  if (v instanceof Set) return 'a Set (store an array instead)';
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return 'binary data (store it base64-encoded instead)';
  if (v instanceof Error) return `an Error (${v.name}; throw it to fail the task, or store its message)`;
  const name = (v as object).constructor?.name;
  return name ? `an instance of class ${name} (store a plain object instead)` : 'an object of unknown class';
}

/**
 * What makes `text` unstorable, or null: a NUL character (PostgreSQL's jsonb and text
 * refuse it) or a lone UTF-16 surrogate (not valid Unicode: refused or mangled by the
 * databases' UTF-8 encodings).
 *
 * @example
 * ```ts
 * unstorableText('a\u0000b'); // 'a NUL character (U+0000) at offset 1'
 * unstorableText('ok');       // null
 * ```
 */
export function unstorableText(text: string): string | null {
  // eslint-disable-next-line no-control-regex
  const m = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.exec(text);
  if (m === null) return null;
  if (m[0] === '\u0000') return `a NUL character (U+0000) at offset ${m.index}`;
  return `a lone surrogate (U+${m[0].charCodeAt(0).toString(16).toUpperCase()}) at offset ${m.index}`;
}

/** `text` with NUL characters and lone surrogates replaced by U+FFFD: for messages Stoker stores itself (failure records). */
export function storableText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}
