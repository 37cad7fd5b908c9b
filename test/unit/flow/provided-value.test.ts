import { describe, it, expect } from 'vitest';
import { providedValue } from '../../../src/flow/provided-value.js';

describe('providedValue', () => {
  const pair = { provides: ['width', 'height'] };
  it('reads the whole result, an object field or an array element', () => {
    expect(providedValue({ a: 1 }, { provides: ['x'] }, undefined)).toEqual({ a: 1 });
    expect(providedValue({ width: 640, height: 480 }, pair, 'height')).toBe(480);
    expect(providedValue([640, 480], pair, 'height')).toBe(480);
    expect(providedValue([640, 480], pair, 0)).toBe(640);
    expect(providedValue({ width: 640, height: 480 }, pair, 1)).toBe(480);
  });
  it('returns undefined for a missing part', () => {
    expect(providedValue([640], pair, 'height')).toBeUndefined();
    expect(providedValue({ width: 1 }, pair, 'height')).toBeUndefined();
    expect(providedValue('scalar', pair, 'width')).toBeUndefined();
    expect(providedValue({}, { provides: ['toString', 'b'] }, 'toString')).toBeUndefined();
  });
});
