/**
 * What the engines and run clients of one process tell each other at once, without a round
 * trip to the database: work became claimable (wake idle engines instead of waiting for
 * their poll; protocol 6), a run ended (wake its waiters), a run was cancelled (abort its
 * atoms running here). Each is a hint: a lost one costs a poll interval, never correctness.
 *
 * @example
 * ```ts
 * const hub = new WakeHub();
 * const client = new RunClient({ store, flows, wakeHub: hub });
 * const engine = new Engine({ store, flows, wakeHub: hub });
 * ```
 */
export class WakeHub {
  private readonly listeners = new Set<() => void>();
  private readonly ended = new Map<string, Set<() => void>>();
  private readonly cancelListeners = new Set<(runId: string, reason: string) => void>();

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** work became claimable */
  wake(): void {
    for (const fn of this.listeners) fn();
  }

  /** calls `fn` once, when {@link runEnded} is told about `runId` */
  onRunEnded(runId: string, fn: () => void): () => void {
    let set = this.ended.get(runId);
    if (!set) this.ended.set(runId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.ended.get(runId) === set) this.ended.delete(runId);
    };
  }

  /** a run reached a terminal status */
  runEnded(runId: string): void {
    const set = this.ended.get(runId);
    if (!set) return;
    this.ended.delete(runId);
    for (const fn of set) fn();
  }

  onRunCancelled(fn: (runId: string, reason: string) => void): () => void {
    this.cancelListeners.add(fn);
    return () => this.cancelListeners.delete(fn);
  }

  /** a run was cancelled: engines abort its atoms running in this process */
  runCancelled(runId: string, reason: string): void {
    for (const fn of this.cancelListeners) fn(runId, reason);
  }
}
