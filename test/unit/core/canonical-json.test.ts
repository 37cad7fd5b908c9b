/**
 * checkJson names what is wrong with a value that is not plain JSON, with its path and a
 * precise code (issue 11: functions, BigInts, Dates, Maps, class instances and NaN were
 * "a flow definition is malformed"; a cycle was "too deep" with 64 repeated `.self`).
 */
import { describe, expect, it } from 'vitest';
import { checkJson } from '../../../src/core/canonical-json.js';

function failure(value: unknown): { code: string; message: string; details: unknown } {
  try {
    checkJson(value, 'result of task a');
  } catch (e) {
    return e as { code: string; message: string; details: unknown };
  }
  throw new Error('checkJson accepted the value');
}

class Money {
  constructor(readonly cents: number) {}
}

describe('checkJson', () => {
  it.each([
    [{ f: () => 1 }, '$.f', 'a function (f)'],
    [{ n: 10n }, '$.n', 'a BigInt (store it as a string)'],
    [{ at: new Date(0) }, '$.at', 'a Date (store date.toISOString() instead)'],
    [{ m: new Map([['a', 1]]) }, '$.m', 'a Map (store Object.fromEntries(map) or an array of entries instead)'],
    [{ s: new Set([1]) }, '$.s', 'a Set (store an array instead)'],
    [{ price: new Money(5) }, '$.price', 'an instance of class Money (store a plain object instead)'],
    [{ list: [1, NaN] }, '$.list[1]', 'NaN (JSON has finite numbers only; use null or a string)'],
    [{ x: Infinity }, '$.x', 'Infinity (JSON has finite numbers only; use null or a string)'],
    [[undefined], '$[0]', 'undefined (use null)'],
    [{ e: new TypeError('x') }, '$.e', 'an Error (TypeError; throw it to fail the task, or store its message)'],
  ])('refuses %o at its path with STOKER_INPUT_NOT_JSON', (value, path, found) => {
    const e = failure(value);
    expect(e.code).toBe('STOKER_INPUT_NOT_JSON');
    expect(e.message).toBe(`result of task a is not plain JSON at ${path}: ${found}`);
    expect(e.details).toEqual({ path, found });
  });

  it('reports a circular reference once, with where it points back to', () => {
    const root: Record<string, unknown> = { a: { list: [] as unknown[] } };
    (root.a as { list: unknown[] }).list.push(root.a);
    const e = failure(root);
    expect(e.code).toBe('STOKER_INPUT_NOT_JSON');
    expect(e.message).toBe('result of task a is not plain JSON at $.a.list[0]: a circular reference (back to $.a)');
    const self: Record<string, unknown> = {};
    self.self = self;
    expect(failure(self).message).toBe('result of task a is not plain JSON at $.self: a circular reference (back to $)');
  });

  it('accepts a value shared twice without a cycle, and still refuses depth and forbidden keys', () => {
    const shared = { v: 1 };
    expect(checkJson({ a: shared, b: [shared, shared] }, 'x')).toBeGreaterThan(0);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(failure(deep).code).toBe('STOKER_INPUT_TOO_DEEP');
    expect(failure(JSON.parse('{"__proto__": {}}')).code).toBe('STOKER_INPUT_FORBIDDEN_KEY');
  });

  it('refuses NUL characters and lone surrogates in strings and keys, on every dialect alike, naming path and offset', () => {
    const nul = failure({ s: 'a\u0000b' });
    expect(nul.code).toBe('STOKER_INPUT_UNSTORABLE_TEXT');
    expect(nul.message).toBe(
      'result of task a has a NUL character (U+0000) at offset 1 at $.s, which not every database can store: encode the text (base64, or escape it) first',
    );
    expect(failure(['ok', '\ud800']).message).toContain('a lone surrogate (U+D800) at offset 0 at $[1]');
    expect(failure({ ['k\udc00']: 1 }).message).toContain('a lone surrogate (U+DC00) at offset 1 at $ (a key)');
    // a surrogate pair is one character: fine
    expect(checkJson({ smile: '\ud83d\ude00' }, 'x')).toBeGreaterThan(0);
  });
});
