import { describe, it, expect } from 'vitest';
import { jsonEqual } from '../../../src/flow/json-equal.js';

describe('jsonEqual', () => {
  it('compares structure, ignoring key order', () => {
    expect(jsonEqual({ a: [1, { b: null }], c: 'x' }, { c: 'x', a: [1, { b: null }] })).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual({ a: undefined } as never, { b: undefined } as never)).toBe(false);
    expect(jsonEqual([], {})).toBe(false);
  });
});
