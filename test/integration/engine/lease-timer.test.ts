/**
 * R9's lease timer (Engine.armLeaseTimer) against a clock whose timers fire a little early,
 * as Node's do under load (due times come from a loop time cached at the start of an
 * iteration). The renewal hangs, as behind a partition: the engine must still fence itself
 * and abort its task once 0.9 × lease has passed by its monotonic clock. A timer that fired
 * early used to be dropped, leaving the engine running on (chaos C9 caught it in CI).
 */
import { describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from '../../../src/core/clock.js';
import { Engine } from '../../../src/engine/engine.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import { openStore } from '../../../src/store/open-store.js';

/** Virtual monotonic time; every timer fires `early` ms before it is due (at least 1 ms after it was set). */
class EarlyClock implements Clock {
  now = 0;
  private timers: { due: number; fn: () => void; done: boolean }[] = [];
  constructor(private readonly early: number) {}
  monotonicMs(): number {
    return this.now;
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = { due: this.now + Math.max(1, ms - this.early), fn, done: false };
    this.timers.push(t);
    return { cancel: () => void (t.done = true) };
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const h = this.setTimer(ms, resolve);
      signal?.addEventListener('abort', () => (h.cancel(), resolve()), { once: true });
    });
  }
  wallForLogs(): Date {
    return new Date();
  }
  defer(fn: () => void): void {
    setImmediate(fn);
  }
  /** runs the timers due within `ms`, in order, letting promises settle after each */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      const next = this.timers.filter((t) => !t.done && t.due <= end).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.now = Math.max(this.now, next.due);
      next.done = true;
      next.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.now = end;
  }
}

describe('lease timer (R9)', () => {
  it('fences the engine at 0.9 × lease although its timer fires early and the renewal hangs', async () => {
    const store = await openStore('sqlite::memory:');
    await store.migrate();
    let hang = false;
    const heartbeat = store.heartbeat.bind(store);
    store.heartbeat = (...args) => (hang ? new Promise<boolean>(() => {}) : heartbeat(...args));

    let started = false;
    let abortedAt: number | null = null;
    const clock = new EarlyClock(5);
    const flows = new FlowRegistry();
    flows.register(
      linear('held', [
        task({
          name: 'wait',
          execute: (_in, ctx) =>
            new Promise((_resolve, reject) => {
              started = true;
              ctx.signal.addEventListener('abort', () => {
                abortedAt = clock.now;
                reject(new Error('aborted'));
              });
            }),
        }),
      ]),
    );
    const engine = new Engine({ store, flows, clock, leaseMs: 1000, heartbeatMs: 300, reapMs: 60_000, pollMs: 60_000 });
    await engine.start();
    try {
      await engine.startRun('held', {});
      for (let i = 0; i < 200 && !started; i++) await new Promise((r) => setTimeout(r, 5));
      expect(started).toBe(true);
      hang = true; // every renewal from now on hangs; the last one was the registration, at 0

      await clock.advance(850);
      expect(abortedAt, 'still within 0.9 × lease').toBeNull();
      await clock.advance(150);
      expect(abortedAt, 'fenced once 0.9 × lease had passed').not.toBeNull();
      expect(abortedAt!).toBeGreaterThanOrEqual(900);
      expect(abortedAt!).toBeLessThanOrEqual(905);
    } finally {
      await engine.stop({ drain: false });
      await store.close();
    }
  });
});
