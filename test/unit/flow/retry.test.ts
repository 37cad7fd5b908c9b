import { describe, it, expect } from 'vitest';
import { alwaysRevert, forEach, parameterizedForEach, revertAll, times } from '../../../src/flow/retry.js';
import type { JsonValue } from '../../../src/core/json.js';
import { expectError } from './helpers.js';

describe('retry controllers', () => {
  it('times() counts total attempts and may publish the attempt', () => {
    expect(times(3)).toEqual({ type: 'retry', spec: { kind: 'times', attempts: 3 }, provides: undefined });
    expect(times(1, { provides: 'attempt' }).provides).toBe('attempt');
    expect(Object.isFrozen(times(2))).toBe(true);
  });

  it.each([0, -2, 2.5, Number.NaN, '3'])('times() rejects %j', (n) => {
    expect(expectError(() => times(n as number), 'STOKER_FLOW_INVALID').message).toContain(
      'times() needs an integer number of attempts >= 1',
    );
  });

  it('forEach() copies its values', () => {
    const values: JsonValue[] = ['az-1', { zone: 'az-2' }];
    const controller = forEach(values, { provides: 'zone' });
    values.push('az-3');
    expect(controller.spec).toEqual({ kind: 'forEach', values: ['az-1', { zone: 'az-2' }] });
    expect(controller.provides).toBe('zone');
  });

  it('forEach() rejects an empty or non-JSON list', () => {
    expect(expectError(() => forEach([]), 'STOKER_FLOW_INVALID').message).toBe('forEach() needs a non-empty array of values to try.');
    expect(expectError(() => forEach([1, new Map()] as unknown as JsonValue[]), 'STOKER_FLOW_INVALID').message).toBe(
      'values of forEach() at [1] is a Map, which is not JSON.',
    );
  });

  it('parameterizedForEach() names the value to read', () => {
    expect(parameterizedForEach('zones', { provides: 'zone' })).toEqual({
      type: 'retry',
      spec: { kind: 'parameterizedForEach', valuesFrom: { from: 'arg', name: 'zones' } },
      provides: 'zone',
    });
    expectError(() => parameterizedForEach('bad name'), 'STOKER_FLOW_INVALID');
  });

  it('alwaysRevert() and revertAll() take no options', () => {
    expect(alwaysRevert()).toEqual({ type: 'retry', spec: { kind: 'alwaysRevert' }, provides: undefined });
    expect(revertAll()).toEqual({ type: 'retry', spec: { kind: 'revertAll' }, provides: undefined });
  });

  it('rejects unknown options and invalid value names', () => {
    expect(expectError(() => times(2, { provide: 'x' } as never), 'STOKER_FLOW_INVALID').message).toBe(
      "Unknown option 'provide' in options of times() (known: provides).",
    );
    expectError(() => forEach([1], { provides: '' }), 'STOKER_FLOW_INVALID');
  });
});
