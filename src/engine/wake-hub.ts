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
/**
 * A wake-up transport between processes (AMQP, docs/amqp.md): `notify` announces work to
 * the other processes (batched by the relay), `subscribe` hears theirs.
 */
export interface WakeRelay {
  notify(): void;
  /**
   * Sends at once a wake-up that names a run whose start is still committing (its hearers'
   * claims wait for that commit: `ClaimOptions.after`); false when it cannot go out at once
   * (announce after the commit instead). Relays without it are told after the commit.
   */
  notifyStarting?(runId: string): boolean;
  subscribe(onWake: (hint?: WakeHint) => void): () => void;
}

/** What a wake-up may tell beyond "look": a run whose start was committing when it was sent. */
export interface WakeHint {
  startingRun: string;
}

export class WakeHub {
  private readonly listeners = new Set<(hint?: WakeHint) => void>();
  /** attached relays; `off` is set while this hub listens to the relay (it has listeners: engines) */
  private readonly relays = new Map<WakeRelay, { off: (() => void) | null; users: number }>();
  private readonly ended = new Map<string, Set<() => void>>();
  private readonly cancelListeners = new Set<(runId: string, reason: string) => void>();

  /**
   * Calls `fn` when work becomes claimable (an engine's claim loop). While the hub has such
   * listeners it also listens to its relays: a process without engines takes no wake-ups
   * from other processes (over AMQP, it then has no queue: docs/amqp.md, "Wake-ups").
   */
  subscribe(fn: (hint?: WakeHint) => void): () => void {
    this.listeners.add(fn);
    for (const [relay, entry] of this.relays) this.listen(relay, entry);
    return () => {
      if (!this.listeners.delete(fn) || this.listeners.size > 0) return;
      for (const entry of this.relays.values()) {
        entry.off?.();
        entry.off = null;
      }
    };
  }

  /** whether a relay carries announcements to other processes */
  get relayed(): boolean {
    return this.relays.size > 0;
  }

  /** work became claimable: wakes this process's idle engines */
  wake(hint?: WakeHint): void {
    for (const fn of this.listeners) fn(hint);
  }

  /**
   * A run's start is committing (its rows are written): tells the relays at once, naming the
   * run, so that engines elsewhere hear of it while the commit is made durable and their
   * claims wait for it. True when every relay could; the caller then wakes this process's
   * engines ({@link wake}) after the commit, else it announces after the commit as usual.
   */
  announceStarting(runId: string): boolean {
    if (this.relays.size === 0) return false;
    let all = true;
    for (const relay of this.relays.keys()) all = (relay.notifyStarting?.(runId) ?? false) && all;
    return all;
  }

  /**
   * Work became claimable for other processes too (a start, a signal, a commit batch that
   * made atoms ready for others, a requeue): wakes this process's engines and tells the
   * relays, which carry it to other processes (AMQP, docs/amqp.md). A relay batches its
   * messages itself; call this once per commit batch, never per atom.
   */
  announce(): void {
    this.wake();
    for (const relay of this.relays.keys()) relay.notify();
  }

  /**
   * Carries {@link announce} to other processes through `relay`, and their announcements
   * to this process's engines (while it has any). A relay attached several times (by a
   * runtime and its engines) is used once, until the last detach; returns the function
   * that detaches it.
   */
  attach(relay: WakeRelay): () => void {
    const entry = this.relays.get(relay) ?? { off: null, users: 0 };
    entry.users += 1;
    this.relays.set(relay, entry);
    this.listen(relay, entry);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      entry.users -= 1;
      if (entry.users > 0) return;
      entry.off?.();
      this.relays.delete(relay);
    };
  }

  private listen(relay: WakeRelay, entry: { off: (() => void) | null }): void {
    if (entry.off === null && this.listeners.size > 0) entry.off = relay.subscribe((hint) => this.wake(hint));
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
