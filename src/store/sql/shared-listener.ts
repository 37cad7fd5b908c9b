/**
 * The one wake-up listener (protocol 6, ARCHITECTURE.md) a store's subscribers share:
 * PostgreSQL's LISTEN connection, MariaDB's waiting one. Started by the first
 * subscriber (concurrent first subscribers share one attempt, and its failure), stopped
 * when the last one leaves or the store closes.
 *
 * @example
 * ```ts
 * const share = new SharedListener(() => new WakeListener(driver), () => driver.closed);
 * const unsubscribe = await share.subscribe(() => engine.wake());
 * await unsubscribe(); // the last one: the listener stops
 * ```
 */
import { StoreError } from '../../errors.js';
import type { Wakeups } from '../ports.js';
import { coalesced } from './coalesced.js';

/** What a dialect's listener offers the share. */
export interface WakeListenerLike {
  readonly subscribers: Set<{ onWake: () => void }>;
  /** connects and listens; rejects if the first connection fails */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class SharedListener<L extends WakeListenerLike> {
  /** the listener while anyone subscribes */
  current: L | undefined;
  private starting: Promise<L> | undefined;

  constructor(
    private readonly make: () => L,
    private readonly closed: () => boolean,
  ) {}

  /** Adds `onWake` to the listener's subscribers (starting it first); returns the unsubscribe function. */
  async subscribe(onWake: () => void): Promise<() => Promise<void>> {
    let listener = this.current;
    if (!listener) {
      this.starting ??= (async () => {
        const l = this.make();
        try {
          await l.start();
        } finally {
          this.starting = undefined;
        }
        if (this.closed()) {
          await l.stop();
          throw new StoreError('STOKER_STORE_CLOSED', 'the store is closed');
        }
        this.current = l;
        return l;
      })();
      listener = await this.starting;
    }
    const l = listener;
    const entry = { onWake };
    l.subscribers.add(entry);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      l.subscribers.delete(entry);
      if (l.subscribers.size === 0 && this.current === l) {
        this.current = undefined;
        await l.stop();
      }
    };
  }

  /** Stops the listener (the store closes). */
  stop(): Promise<void> {
    const l = this.current;
    this.current = undefined;
    return l ? l.stop() : Promise.resolve();
  }
}

/**
 * A dialect's {@link Wakeups} over a shared listener: `subscribe` joins the listener,
 * `notify` sends `announce` (PostgreSQL's NOTIFY, MariaDB's `wake_engines`), one at a time,
 * calls meanwhile sharing one more (./coalesced.ts).
 */
export class ListenerWakeups<L extends WakeListenerLike> implements Wakeups {
  private readonly share: SharedListener<L>;
  private readonly send: () => Promise<void>;

  constructor(
    private readonly store: { assertOpen(): void; readonly closed: boolean },
    listener: () => L,
    announce: () => Promise<void>,
  ) {
    this.share = new SharedListener(listener, () => store.closed);
    this.send = coalesced(announce);
  }

  /** the listener while anyone subscribes (tests reach its connections) */
  get listener(): L | undefined {
    return this.share.current;
  }

  async subscribe(onWake: () => void): Promise<() => Promise<void>> {
    this.store.assertOpen();
    return this.share.subscribe(onWake);
  }

  async notify(): Promise<void> {
    this.store.assertOpen();
    return this.send();
  }

  /** Stops listening (the store closes). */
  stop(): Promise<void> {
    return this.share.stop();
  }
}
