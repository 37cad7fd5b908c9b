/**
 * Time and randomness, injected. Engine code never reads `Date.now()`, `Math.random()` or
 * global timers directly, so that a deterministic simulation can drive it (docs/reliability.md, "The simulation").
 * Wall-clock time that matters (leases, timers) comes from the database, never from here.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** a monotonic reading in milliseconds (durations only) */
  monotonicMs(): number;
  /** runs `fn` after `ms` (unref'd: a pending timer never keeps the process alive) */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** resolves after `ms`, or early when `signal` aborts */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** wall time for log lines only */
  wallForLogs(): Date;
  /**
   * runs `fn` once the callbacks due now have run (Node: `setImmediate`), without the
   * minimum delay of a timer: a group commit waits this long for completions that land
   * in the same turn
   */
  defer(fn: () => void): void;
}

export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
}

/** The real clock: performance.now() and Node timers. */
export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const t = setTimeout(done, Math.max(0, ms));
      t.unref();
      function done(): void {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  },
  wallForLogs: () => new Date(),
  defer(fn) {
    setImmediate(fn);
  },
};

export const systemRng: Rng = { next: () => Math.random() };

/** A small seeded generator (mulberry32) for simulations and reproducible tests. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return {
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}
