/**
 * What a task throws is kept as data without losing information (issue 11): a thrown
 * non-Error keeps its JSON form, details that are not JSON are converted, an
 * AggregateError keeps its inner errors.
 */
import { describe, expect, it } from 'vitest';
import { checkJson } from '../../../src/core/canonical-json.js';
import { toFailureRecord, toJsonSafe } from '../../../src/engine/failure.js';

describe('toFailureRecord', () => {
  it('keeps a thrown plain object as JSON: its message (or a JSON preview), code, retryable and details', () => {
    expect(toFailureRecord({ code: 'E_BUSY', retryIn: 5 })).toEqual({
      type: 'NonError',
      message: '{"code":"E_BUSY","retryIn":5}',
      code: 'E_BUSY',
      details: { code: 'E_BUSY', retryIn: 5 },
    });
    expect(toFailureRecord({ message: 'quota exceeded', retryable: false })).toEqual({
      type: 'NonError',
      message: 'quota exceeded',
      retryable: false,
      details: { message: 'quota exceeded', retryable: false },
    });
    expect(toFailureRecord('plain text')).toEqual({ type: 'NonError', message: 'plain text' });
    expect(toFailureRecord(42)).toEqual({ type: 'NonError', message: '42' });
    expect(toFailureRecord(undefined)).toEqual({ type: 'NonError', message: 'null' });
  });

  it('converts details that are not JSON instead of storing "[object Object]"', () => {
    const details: Record<string, unknown> = { n: 10n, at: new Date(0), tags: new Set(['a']), byKey: new Map([['k', 1]]), f() {} };
    details.self = details;
    const rec = toFailureRecord(Object.assign(new Error('bad'), { details }));
    expect(rec.details).toEqual({
      n: '10',
      at: '1970-01-01T00:00:00.000Z',
      tags: ['a'],
      byKey: { k: 1 },
      f: '[Function f]',
      self: '[Circular]',
    });
    checkJson(rec, 'failure record');
  });

  it("keeps an AggregateError's inner errors", () => {
    const rec = toFailureRecord(new AggregateError([new Error('db down'), { code: 'E_CACHE' }, 'disk full'], 'all backends failed'));
    expect(rec.type).toBe('AggregateError');
    expect(rec.message).toBe('all backends failed');
    expect(rec.errors!.map((e) => [e.type, e.message])).toEqual([
      ['Error', 'db down'],
      ['NonError', '{"code":"E_CACHE"}'],
      ['NonError', 'disk full'],
    ]);
    expect(toFailureRecord(new AggregateError([new Error('a'), new Error('b')])).message).toBe('2 errors: a; b');
  });

  it('toJsonSafe is bounded on deep values', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 1000; i++) deep = { d: deep };
    expect(JSON.stringify(toJsonSafe(deep))).toContain('[…]');
  });

  it('makes the text it records storable: NUL and lone surrogates become U+FFFD', () => {
    const rec = toFailureRecord(Object.assign(new Error('bad\u0000byte \ud800'), { details: { ['k\u0000']: 'v\udc00' } }));
    expect(rec.message).toBe('bad\ufffdbyte \ufffd');
    expect(rec.details).toEqual({ ['k\ufffd']: 'v\ufffd' });
    expect(toFailureRecord('x\u0000').message).toBe('x\ufffd');
  });
});
