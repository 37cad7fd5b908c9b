/**
 * Wake-ups for "a timer due soon" (protocol 6; docs/amqp.md, "Wake-ups"): when a commit
 * parks an atom until a due time (a durable `ctx.sleep`, a retry's backoff) that falls
 * within the poll interval, a local timer announces it at that time, so that this
 * process's engines and, through the hub's relays (AMQP) and the store's push (NOTIFY, the
 * wake file), other processes' idle engines claim it then rather than at their next poll.
 * Timers due within the same 10 ms share one announcement; later ones are left to the poll.
 *
 * @example
 * ```ts
 * const due = new DueWakeups(clock, () => hub.announce());
 * due.after(150); // a sleep of 150 ms was committed
 * ```
 */
import type { Clock, TimerHandle } from '../core/clock.js';

/** due times are grouped in slots this wide (ms): one announcement per slot */
const SLOT_MS = 10;

export class DueWakeups {
  /** slot end (monotonic ms) → its timer */
  private readonly timers = new Map<number, TimerHandle>();

  constructor(
    private readonly clock: Clock,
    private readonly announce: () => void,
  ) {}

  /** Announces once `delayMs` (from now, the commit) has passed: at the end of its 10 ms slot. */
  after(delayMs: number): void {
    const now = this.clock.monotonicMs();
    const slot = Math.ceil((now + delayMs) / SLOT_MS) * SLOT_MS;
    if (this.timers.has(slot)) return;
    // a little after the due time: the database's clock decides, and an early look finds nothing
    this.timers.set(
      slot,
      this.clock.setTimer(Math.max(0, slot - now) + 2, () => {
        this.timers.delete(slot);
        this.announce();
      }),
    );
  }

  get pending(): number {
    return this.timers.size;
  }

  /** cancels the timers armed so far (the announcement checks that its engine still runs) */
  stop(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }
}
