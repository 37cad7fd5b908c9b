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
}

export const DEFAULT_INPUT_LIMITS: JsonLimits = { maxBytes: 256 * 1024, maxDepth: 64 };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Checks that `value` is plain JSON within limits; throws a ValidationError naming `what`
 * and the path of the first problem. Returns the serialised size in bytes.
 */
export function checkJson(value: unknown, what: string, limits: JsonLimits = DEFAULT_INPUT_LIMITS): number {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: '$', depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (depth > limits.maxDepth) {
      throw new ValidationError('STOKER_INPUT_TOO_DEEP', `${what} nests deeper than ${limits.maxDepth} levels at ${path}`, {
        details: { path, maxDepth: limits.maxDepth },
      });
    }
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v))
        throw new ValidationError('STOKER_FLOW_INVALID', `${what} has a non-finite number at ${path}`, { details: { path } });
      continue;
    }
    if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ v: item, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    if (
      (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) ||
      (typeof v === 'object' && Object.getPrototypeOf(v) === null)
    ) {
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        if (FORBIDDEN_KEYS.has(k)) {
          throw new ValidationError('STOKER_INPUT_FORBIDDEN_KEY', `${what} uses the forbidden key "${k}" at ${path}`, {
            details: { path, key: k },
          });
        }
        if (item !== undefined) stack.push({ v: item, path: `${path}.${k}`, depth: depth + 1 });
      }
      continue;
    }
    throw new ValidationError('STOKER_FLOW_INVALID', `${what} is not plain JSON at ${path} (found ${describe(v)})`, { details: { path } });
  }
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? 'null');
  if (bytes > limits.maxBytes) {
    throw new ValidationError('STOKER_INPUT_TOO_LARGE', `${what} is ${bytes} bytes, over the limit of ${limits.maxBytes}`, {
      details: { bytes, maxBytes: limits.maxBytes },
    });
  }
  return bytes;
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'bigint') return 'a bigint';
  if (typeof v === 'object') return `an instance of ${(v as object).constructor?.name ?? 'an unknown class'}`;
  return typeof v;
}
