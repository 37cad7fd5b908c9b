/**
 * The abort handle of an atom in flight builds its AbortSignal only when asked, and behaves
 * as an AbortController would: the first reason wins, a signal built after the abort is
 * already aborted with that reason, and waiters registered before or after hear it once.
 */
import { describe, expect, it } from 'vitest';
import { LazyAbort } from '../../../src/engine/in-flight.js';

describe('LazyAbort', () => {
  it('hands a signal built after the abort already aborted, with the first reason', () => {
    const a = new LazyAbort();
    expect(a.aborted).toBe(false);
    const first = new Error('cancelled');
    a.abort(first);
    a.abort(new Error('later'));
    expect(a.aborted).toBe(true);
    expect(a.reason).toBe(first);
    expect(a.signal.aborted).toBe(true);
    expect(a.signal.reason).toBe(first);
  });

  it('aborts a signal handed out before the abort, and calls each waiter once', () => {
    const a = new LazyAbort();
    const signal = a.signal;
    expect(a.signal).toBe(signal);
    const heard: unknown[] = [];
    a.onAbort((r) => heard.push(r));
    let fired = 0;
    signal.addEventListener('abort', () => (fired += 1));
    const reason = new Error('fenced');
    a.abort(reason);
    a.abort(new Error('again'));
    a.onAbort((r) => heard.push(r));
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(fired).toBe(1);
    expect(heard).toEqual([reason, reason]);
  });
});
