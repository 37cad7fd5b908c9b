/**
 * The checks for JSON values that did not come through the YAML parser (a template or an
 * environment passed as an object, parameter values): nesting, prototype keys, plain-JSON
 * types and size, with one iterative walk (docs/security.md S2, S3, S3b).
 */
import type { ErrorCode } from '../../errors.js';
import type { JsonValue } from '../../core/json.js';
import { templateError } from './template-error.js';

/**
 * Keys refused in any input and in any map a function builds (docs/security.md S3b).
 *
 * @example
 * ```ts
 * FORBIDDEN_KEYS.has('__proto__'); // true
 * ```
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The bounds for {@link guardJson}.
 *
 * @example
 * ```ts
 * const bounds: JsonBounds = { maxDepth: 64, maxBytes: 65536, maxNodes: 100000 };
 * ```
 */
export interface JsonBounds {
  maxDepth: number;
  maxBytes: number;
  maxNodes: number;
}

/**
 * Throws unless `value` is plain JSON within `bounds`; `what` names it in messages (never its
 * content, which may be secret).
 *
 * @example
 * ```ts
 * guardJson(JSON.parse(body), 'the template', { maxDepth: 64, maxBytes: 524288, maxNodes: 100000 }, 'STOKER_TEMPLATE_INVALID');
 * ```
 */
export function guardJson(
  value: unknown,
  what: string,
  bounds: JsonBounds,
  invalidCode: ErrorCode,
  sizeCode: ErrorCode = 'STOKER_TEMPLATE_TOO_LARGE',
): asserts value is JsonValue {
  let nodes = 0;
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (++nodes > bounds.maxNodes) throw templateError(sizeCode, path, `${what} has more than ${bounds.maxNodes} values`);
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw templateError(invalidCode, path, `${what} has a number that is not finite`);
      continue;
    }
    if (typeof v !== 'object') throw templateError(invalidCode, path, `${what} is not plain JSON (found ${typeof v})`);
    if (depth >= bounds.maxDepth) throw templateError('STOKER_INPUT_TOO_DEEP', path, `${what} nests deeper than ${bounds.maxDepth} levels`);
    if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ v: item, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null)
      throw templateError(invalidCode, path, `${what} is not plain JSON (found an instance of a class)`);
    for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
      if (FORBIDDEN_KEYS.has(k))
        throw templateError('STOKER_INPUT_FORBIDDEN_KEY', path, `${what} uses the forbidden key "${k}"`, { key: k });
      stack.push({ v: item, path: path === '' ? k : `${path}.${k}`, depth: depth + 1 });
    }
  }
  // unbounded (a template the stack layer generated, docs/orchestration.md, Nested stacks): a group of 10,000
  // members was serialised here only to be counted
  if (bounds.maxBytes >= Number.MAX_SAFE_INTEGER) return;
  const bytes = Buffer.byteLength(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
  if (bytes > bounds.maxBytes) {
    throw templateError(sizeCode, '', `${what} is ${bytes} bytes, over the limit of ${bounds.maxBytes}`, {
      bytes,
      maxBytes: bounds.maxBytes,
    });
  }
}
