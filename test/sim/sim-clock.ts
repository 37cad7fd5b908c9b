/**
 * Virtual time for the deterministic simulation (docs/reliability.md, "The simulation").
 *
 * - {@link Scheduler}: one priority queue of `(time, seq, owner, fn)` for the whole world.
 *   `runUntil(t)` pops due entries in `(time, seq)` order, sets `now` to the entry's time,
 *   runs it, and then lets every microtask it caused settle before the next entry.
 * - {@link SimProc}: one simulated OS process (an engine). It can be paused (its timers and
 *   its store calls are frozen while virtual time runs on: the zombie case) or crashed
 *   (its timers are discarded and its store calls never return).
 * - {@link SimClock}: the engine's `Clock` (src/core/clock.ts), bound to a process. Timers go
 *   to the shared scheduler; `wallForLogs` has a per-engine offset and rate (skew affects
 *   log lines only: every lease and timer is computed by the database clock = virtual time).
 *
 * ## Why a run is deterministic
 *
 * Everything the engine can observe is a function of the seed:
 * 1. Time: `monotonicMs()` and the database clock both read `Scheduler.now`, which only
 *    moves when the scheduler pops an entry. Real time never leaks in: the engine is
 *    lint-forbidden from `Date.now`, `setTimeout`, `Math.random`, … (eslint.config.js) and
 *    takes its `clock`, `rng`, `ids`, `host` and `pid` from the world.
 * 2. Randomness: every random choice (engine jitter, task durations, faults, nemesis) is a
 *    seeded mulberry32 stream (`seededRng`) or a hash of (seed, stable names).
 * 3. Ordering: the engine's code is ordinary promise code. Between two scheduler entries we
 *    await one `setImmediate` hop. Node drains the whole microtask queue (and nextTicks)
 *    before any macrotask, so when the hop returns every continuation caused by the entry
 *    has run to its next await on a *scheduler* event (a timer or a gated store call). The
 *    microtask queue is FIFO and the code is the same, so the interleaving within a drain is
 *    the same on every run. No real I/O happens inside the world (the store is in memory),
 *    so nothing but our entries ever resumes engine code.
 * 4. Ties: entries due at the same virtual time run in insertion order (`seq`).
 *
 * The determinism test runs one seed twice and compares the SHA-256 of the store's
 * committed history (every write, with virtual times, engines and epochs) and of the sink.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';

/** The virtual epoch: virtual time 0 is this wall instant (only used to build Dates). */
export const SIM_EPOCH_MS = Date.UTC(2030, 0, 1);

interface Entry {
  t: number;
  seq: number;
  owner: SimProc | null;
  fn: () => void;
  cancelled: boolean;
}

/** One hop through the macrotask queue: every microtask pending now has run when it resolves. */
export function settle(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

export class Scheduler {
  now = 0;
  /** entries fired so far (a cost measure) */
  fired = 0;
  private seq = 0;
  private readonly heap: Entry[] = [];

  /** Runs `fn` at virtual time `t` (not before now). `owner`'s pause/crash applies to it. */
  at(t: number, fn: () => void, owner: SimProc | null = null): TimerHandle {
    const e: Entry = { t: Math.max(t, this.now), seq: this.seq++, owner, fn, cancelled: false };
    this.push(e);
    return { cancel: () => void (e.cancelled = true) };
  }

  after(ms: number, fn: () => void, owner: SimProc | null = null): TimerHandle {
    const d = Number.isFinite(ms) ? Math.max(0, ms) : 0;
    return this.at(this.now + d, fn, owner);
  }

  /** A promise resolved after `ms` virtual ms (not bound to any process). */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.after(ms, resolve));
  }

  /** Time of the next live entry, or null. */
  peek(): number | null {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap.length > 0 ? this.heap[0]!.t : null;
  }

  /**
   * Advances virtual time to `t`, firing every entry due by then (and entries they schedule
   * that are due by then), settling microtasks after each. Stops early when `stop()` is true
   * (checked after every entry). Leaves `now = t` unless stopped early.
   */
  async runUntil(t: number, stop?: () => boolean): Promise<void> {
    await settle();
    for (;;) {
      if (stop?.()) return;
      const next = this.peek();
      if (next === null || next > t) break;
      const e = this.pop()!;
      this.now = e.t;
      if (e.owner !== null && e.owner.state !== 'running') {
        e.owner.hold(e);
        continue;
      }
      this.fired += 1;
      e.fn();
      await settle();
    }
    if (!stop?.()) this.now = Math.max(this.now, t);
  }

  /** Runs until no entry is left or `maxT` is reached. Recurring timers (heartbeats) never let a live world go idle. */
  async runUntilIdle(maxT = Number.POSITIVE_INFINITY): Promise<void> {
    for (;;) {
      const next = this.peek();
      if (next === null || next > maxT) return;
      await this.runUntil(next);
    }
  }

  /** Re-queues entries held by a resumed process, at `now`, in their original order. */
  requeue(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.cancelled) continue;
      // the same object: its TimerHandle must still cancel it
      e.t = this.now;
      e.seq = this.seq++;
      this.push(e);
    }
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, e)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && less(h[r]!, h[l]!) ? r : l;
        if (less(last, h[c]!)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

function less(a: Entry, b: Entry): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

export type ProcState = 'running' | 'paused' | 'crashed';

/** A simulated process: pause freezes its timers and store calls; crash discards them. */
export class SimProc {
  state: ProcState = 'running';
  private held: Entry[] = [];
  private resumeWaiters: (() => void)[] = [];
  readonly history: { t: number; what: ProcState }[] = [];

  constructor(
    readonly name: string,
    private readonly sched: Scheduler,
  ) {}

  /** @internal a timer came due while paused */
  hold(e: Entry): void {
    if (this.state === 'paused') this.held.push(e);
    // crashed: dropped
  }

  /** Resolves when the process may run: at once when running, at resume when paused, never when crashed. */
  gate(): Promise<void> | null {
    if (this.state === 'running') return null;
    if (this.state === 'crashed') return new Promise<void>(() => {});
    return new Promise<void>((resolve) => this.resumeWaiters.push(resolve));
  }

  pause(): void {
    if (this.state !== 'running') return;
    this.state = 'paused';
    this.history.push({ t: this.sched.now, what: 'paused' });
  }

  resume(): void {
    if (this.state !== 'paused') return;
    this.state = 'running';
    this.history.push({ t: this.sched.now, what: 'running' });
    const held = this.held;
    this.held = [];
    this.sched.requeue(held);
    const waiters = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const w of waiters) w();
  }

  crash(): void {
    if (this.state === 'crashed') return;
    this.state = 'crashed';
    this.history.push({ t: this.sched.now, what: 'crashed' });
    this.held = [];
    this.resumeWaiters = []; // never resolved
  }
}

/** The engine's Clock in the simulation. */
export class SimClock implements Clock {
  constructor(
    private readonly sched: Scheduler,
    readonly proc: SimProc,
    /** wall-clock skew (log lines only) */
    readonly skew: { offsetMs: number; rate: number } = { offsetMs: 0, rate: 1 },
  ) {}

  monotonicMs(): number {
    return this.sched.now;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    return this.sched.after(ms, fn, this.proc);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        handle.cancel();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const handle = this.sched.after(ms, done, this.proc);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  wallForLogs(): Date {
    return new Date(SIM_EPOCH_MS + this.skew.offsetMs + this.sched.now * this.skew.rate);
  }

  defer(fn: () => void): void {
    this.sched.after(0, fn, this.proc);
  }
}
