/**
 * Named locks with a TTL and a fencing token (protocol 10 in ARCHITECTURE.md): a band-aid for callers
 * that truly need mutual exclusion around something outside Stoker. Stoker itself never
 * coordinates with them; it claims atoms with an epoch in the same conditional write that
 * records the work, so there is no window between "I hold it" and "I write" (see
 * docs/locks.md for why, and for the fencing-token pattern).
 *
 * Built on the same lease rules as engines (docs/reliability.md R1–R9):
 * - the lease lives in a row of the store and is timed by the **database clock**; this
 *   module passes durations, never timestamps;
 * - every acquire bumps the lock's **token**, which never decreases and is never handed
 *   out twice; extend and release are conditional on it, so a holder that froze past its
 *   TTL can neither extend nor release the next holder's lock;
 * - {@link Locks.withLock} renews at `ttlMs / 3` and **fences itself** by its own monotonic
 *   clock: it aborts the `signal` it gave `fn` when no renewal succeeded within 90 % of the
 *   TTL (measured from before the renewal was sent), or when a renewal is refused.
 *
 * A lock by itself cannot stop a frozen holder from writing after it wakes up: pass the
 * token to the resource you protect and have it refuse tokens lower than the highest it
 * has seen.
 *
 * @example
 * ```ts
 * const locks = createLocks(store);
 * await locks.withLock('nightly-report', { ttlMs: 30_000 }, async ({ token, signal }) => {
 *   await buildReport({ signal });
 *   // the resource refuses a stale holder: WHERE fencing_token <= $token
 *   await db.query('UPDATE reports SET body = $1, fencing_token = $2 WHERE id = 1 AND fencing_token <= $2', [body, token]);
 * });
 * ```
 */
import { hostname } from 'node:os';
import { systemClock, systemRng, type Clock, type Rng, type TimerHandle } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { ConflictError, ValidationError, type StokerError } from '../errors.js';
import type { LockFilter, LockRow, Store } from '../store/store.js';

/** Bounds of names, holders and durations (milliseconds) checked by {@link createLocks}' methods. */
export const LOCK_LIMITS = {
  /** names: 1 to 255 characters of `[A-Za-z0-9_.:/@-]`, starting with a letter or digit */
  maxNameLength: 255,
  /** holders: 1 to 255 characters, no control characters */
  maxHolderLength: 255,
  minTtlMs: 100,
  /** one day: a longer lease makes a dead holder block everyone for that long */
  maxTtlMs: 86_400_000,
  /** shortest renewal interval of {@link Locks.withLock} */
  minRenewMs: 10,
} as const;

/**
 * The share of the TTL a holder may count on after a successful acquire or renewal, by its
 * own monotonic clock from before the statement was sent (docs/reliability.md R9: margin T/10). It
 * needs only clock *rates* to agree with the database's, not clock readings.
 */
const SELF_FENCE_FRACTION = 0.9;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$/;
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** Options of {@link createLocks}. */
export interface LocksOptions {
  /** the holder recorded when a call names none; default `<hostname>:<pid>` */
  holder?: string;
  /** monotonic time and timers for renewals and self-fencing (default: the real clock) */
  clock?: Clock;
  /** jitter of the wait between acquire attempts */
  rng?: Rng;
  /** renewal failures and release failures are logged here (default: silent) */
  logger?: Logger;
}

/** Options of {@link Locks.acquire}. */
export interface AcquireOptions {
  /** lease length, by the database clock: {@link LOCK_LIMITS} minTtlMs to maxTtlMs */
  ttlMs: number;
  /** who holds it, for inspection only (`stoker locks list`): it grants nothing */
  holder?: string;
}

/** Options of {@link Locks.withLock}. */
export interface WithLockOptions extends AcquireOptions {
  /** how long to keep trying while the lock is held (default 0: fail at once with STOKER_LOCK_HELD) */
  waitMs?: number;
  /** pause between attempts while waiting, jittered ±20 % (default 100) */
  pollMs?: number;
  /** renewal interval (default `ttlMs / 3`; at most `ttlMs / 2`) */
  renewMs?: number;
  /** aborting it stops the wait, and aborts the signal `fn` got (the lock is released when `fn` settles) */
  signal?: AbortSignal;
}

/** A lock this process acquired. */
export interface HeldLock {
  name: string;
  holder: string;
  /** the fencing token: higher than every token this lock name had before */
  token: number;
  /** the lease's end as the database reported it at acquisition (renewals move it) */
  expiresAt: Date;
}

/** What {@link Locks.withLock} passes to its function. */
export interface LockContext extends HeldLock {
  /**
   * Aborted when this process can no longer be sure it holds the lock: a renewal was
   * refused (expired, or acquired again with a newer token), or none succeeded within 90 %
   * of the TTL by this process's monotonic clock. The reason is a StokerError with code
   * STOKER_LOCK_LOST (or the reason of `options.signal` when the caller aborted).
   */
  readonly signal: AbortSignal;
}

/** The locks API of one store. */
export interface Locks {
  /** Acquires `name` for `ttlMs`, or returns null at once while anyone holds it unexpired. */
  acquire(name: string, options: AcquireOptions): Promise<HeldLock | null>;
  /** Moves the lease's end to now + `ttlMs` (database clock); false when `token` no longer holds it. */
  extend(name: string, token: number, ttlMs: number): Promise<boolean>;
  /** Releases the lock held under `token`; false when it was already released or taken over. */
  release(name: string, token: number): Promise<boolean>;
  /**
   * Acquires `name` (waiting up to `waitMs`), runs `fn` while renewing the lease every
   * `renewMs`, and releases the lock when `fn` settles. Rejects with STOKER_LOCK_HELD when
   * the lock stayed held, and with STOKER_LOCK_LOST when the lock was lost while `fn` ran —
   * even if `fn` resolved: its effects may then have overlapped the next holder's, unless
   * the resource checked the token. Otherwise settles like `fn`.
   */
  withLock<T>(name: string, options: WithLockOptions, fn: (lock: LockContext) => Promise<T> | T): Promise<T>;
  /** The lock's row (state by the database clock), or null if `name` was never acquired. */
  get(name: string): Promise<LockRow | null>;
  /** Locks in name order; `heldOnly` for the held ones. */
  list(filter?: LockFilter): Promise<LockRow[]>;
}

/**
 * The locks API over a migrated store.
 *
 * @example
 * ```ts
 * const locks = createLocks(store, { holder: 'billing-worker-3' });
 * const lock = await locks.acquire('invoice-run', { ttlMs: 60_000 });
 * if (lock) {
 *   try { await work(lock.token); } finally { await locks.release(lock.name, lock.token); }
 * }
 * ```
 */
export function createLocks(store: Store, options: LocksOptions = {}): Locks {
  const clock = options.clock ?? systemClock;
  const rng = options.rng ?? systemRng;
  const log = options.logger ?? silentLogger;
  const defaultHolder = checkHolder(options.holder ?? `${hostname()}:${process.pid}`.slice(0, LOCK_LIMITS.maxHolderLength));

  /** Acquires, retrying until `waitMs` has passed; `t0` is the monotonic time before the winning statement was sent. */
  async function acquireWithin(
    name: string,
    holder: string,
    ttlMs: number,
    waitMs: number,
    pollMs: number,
    signal: AbortSignal | undefined,
  ): Promise<{ lock: HeldLock; t0: number }> {
    const started = clock.monotonicMs();
    for (;;) {
      signal?.throwIfAborted();
      const t0 = clock.monotonicMs();
      const got = await store.acquireLock(name, holder, ttlMs);
      if (got) return { lock: { name, holder, token: got.token, expiresAt: got.expiresAt }, t0 };
      const left = waitMs - (clock.monotonicMs() - started);
      if (left <= 0) throw await heldError(name, waitMs);
      await clock.sleep(Math.min(left, pollMs * (0.8 + rng.next() * 0.4)), signal);
    }
  }

  async function heldError(name: string, waitMs: number): Promise<StokerError> {
    // for the message only: the lock may change hands right after this read
    const current = await store.getLock(name).catch(() => null);
    const by = current?.held ? ` by ${current.holder} (token ${current.token}, ${current.remainingMs} ms left)` : '';
    return new ConflictError('STOKER_LOCK_HELD', `lock "${name}" is held${by}${waitMs > 0 ? `; waited ${waitMs} ms` : ''}`, {
      details: {
        name,
        waitMs,
        ...(current?.held ? { holder: current.holder, token: current.token, remainingMs: current.remainingMs } : {}),
      },
    });
  }

  async function releaseQuietly(lock: HeldLock): Promise<void> {
    try {
      await store.releaseLock(lock.name, lock.token);
    } catch (e) {
      // the lease runs out by itself; the token stays fenced either way
      log.warn({ err: e, lock: lock.name, token: lock.token }, 'lock release failed; it expires with its lease');
    }
  }

  return {
    async acquire(name, o) {
      checkName(name);
      const ttlMs = checkDuration('ttlMs', o.ttlMs, LOCK_LIMITS.minTtlMs, LOCK_LIMITS.maxTtlMs);
      const holder = o.holder === undefined ? defaultHolder : checkHolder(o.holder);
      const got = await store.acquireLock(name, holder, ttlMs);
      return got ? { name, holder, token: got.token, expiresAt: got.expiresAt } : null;
    },

    async extend(name, token, ttl) {
      checkName(name);
      checkToken(token);
      return store.extendLock(name, token, checkDuration('ttlMs', ttl, LOCK_LIMITS.minTtlMs, LOCK_LIMITS.maxTtlMs));
    },

    async release(name, token) {
      checkName(name);
      checkToken(token);
      return store.releaseLock(name, token);
    },

    async withLock<T>(name: string, o: WithLockOptions, fn: (lock: LockContext) => Promise<T> | T): Promise<T> {
      checkName(name);
      const ttlMs = checkDuration('ttlMs', o.ttlMs, LOCK_LIMITS.minTtlMs, LOCK_LIMITS.maxTtlMs);
      const holder = o.holder === undefined ? defaultHolder : checkHolder(o.holder);
      const waitMs = checkDuration('waitMs', o.waitMs ?? 0, 0, LOCK_LIMITS.maxTtlMs);
      const pollMs = checkDuration('pollMs', o.pollMs ?? 100, 1, LOCK_LIMITS.maxTtlMs);
      const renewMs = checkDuration('renewMs', o.renewMs ?? Math.floor(ttlMs / 3), LOCK_LIMITS.minRenewMs, Math.floor(ttlMs / 2));
      const external = o.signal;

      const { lock, t0 } = await acquireWithin(name, holder, ttlMs, waitMs, pollMs, external);
      const keeper = new LeaseKeeper(store, clock, log, lock, ttlMs, renewMs, t0);
      const onExternalAbort = (): void => keeper.controller.abort(external?.reason);
      if (external?.aborted) onExternalAbort();
      else external?.addEventListener('abort', onExternalAbort, { once: true });
      keeper.start();

      let outcome: { ok: true; value: T } | { ok: false; error: unknown };
      try {
        // the acquire itself may have taken most of the lease: then fn never starts
        if (keeper.lost) throw keeper.lost;
        outcome = { ok: true, value: await fn({ ...lock, signal: keeper.controller.signal }) };
      } catch (e) {
        outcome = { ok: false, error: e };
      } finally {
        keeper.stop();
        external?.removeEventListener('abort', onExternalAbort);
      }
      // Token-guarded, so harmless after a loss too: it frees the lock only if nobody took it.
      await releaseQuietly(lock);
      if (keeper.lost) {
        const cause = outcome.ok || outcome.error === keeper.lost ? undefined : outcome.error;
        throw new ConflictError('STOKER_LOCK_LOST', keeper.lost.message, { details: keeper.lost.details, cause });
      }
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    },

    async get(name) {
      checkName(name);
      return store.getLock(name);
    },

    async list(filter) {
      if (filter?.after !== undefined) checkName(filter.after);
      return store.listLocks(filter);
    },
  };
}

/**
 * Renews one lock while a {@link Locks.withLock} function runs, and fences the holder
 * itself (docs/reliability.md R9): the lease is trusted until `t + 0.9 × ttl`, `t` being the monotonic
 * time before the last successful acquire or renewal was *sent*; past that, or when a
 * renewal is refused, the signal is aborted and renewing stops for good (a lock once lost
 * is never taken back silently: the holder must acquire it again, with a new token).
 */
class LeaseKeeper {
  readonly controller = new AbortController();
  /** why the lock was lost, once it was */
  lost: StokerError | null = null;
  private validUntil: number;
  private renewTimer: TimerHandle | null = null;
  private deadlineTimer: TimerHandle | null = null;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly lock: HeldLock,
    private readonly ttlMs: number,
    private readonly renewMs: number,
    t0: number,
  ) {
    this.validUntil = t0 + ttlMs * SELF_FENCE_FRACTION;
  }

  start(): void {
    if (this.clock.monotonicMs() >= this.validUntil) {
      this.lose(`the acquire took longer than ${SELF_FENCE_FRACTION * 100} % of the ${this.ttlMs} ms lease`);
      return;
    }
    this.armDeadline();
    this.scheduleRenewal(this.renewMs);
  }

  /** Stops renewing (fn settled); the caller releases the lock. */
  stop(): void {
    this.stopped = true;
    this.renewTimer?.cancel();
    this.deadlineTimer?.cancel();
    this.renewTimer = this.deadlineTimer = null;
  }

  private armDeadline(): void {
    this.deadlineTimer?.cancel();
    this.deadlineTimer = this.clock.setTimer(Math.max(0, this.validUntil - this.clock.monotonicMs()), () => {
      this.deadlineTimer = null;
      if (this.stopped) return;
      // timers may fire a little early; after a freeze (SIGSTOP, a long GC) they fire late
      if (this.clock.monotonicMs() >= this.validUntil) {
        this.lose(
          `no renewal succeeded within ${SELF_FENCE_FRACTION * 100} % of the ${this.ttlMs} ms lease (by this process's monotonic clock)`,
        );
      } else this.armDeadline();
    });
  }

  private scheduleRenewal(ms: number): void {
    this.renewTimer = this.clock.setTimer(ms, () => {
      this.renewTimer = null;
      void this.renew();
    });
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const t1 = this.clock.monotonicMs();
    let next = this.renewMs;
    try {
      const ok = await this.store.extendLock(this.lock.name, this.lock.token, this.ttlMs);
      if (this.stopped) return;
      if (!ok) {
        this.lose('the database refused the renewal: the lease ran out or the lock was acquired again with a newer token');
        return;
      }
      this.validUntil = Math.max(this.validUntil, t1 + this.ttlMs * SELF_FENCE_FRACTION);
      this.armDeadline();
    } catch (e) {
      if (this.stopped) return;
      this.log.warn({ err: e, lock: this.lock.name, token: this.lock.token }, 'lock renewal failed; retrying until the lease runs out');
      // try again sooner, while there is still lease left to save
      next = Math.max(LOCK_LIMITS.minRenewMs, Math.min(this.renewMs, (this.validUntil - this.clock.monotonicMs()) / 2));
    }
    if (!this.stopped) this.scheduleRenewal(next);
  }

  private lose(why: string): void {
    if (this.lost) return;
    this.lost = new ConflictError('STOKER_LOCK_LOST', `lock "${this.lock.name}" (token ${this.lock.token}) is lost: ${why}`, {
      details: { name: this.lock.name, token: this.lock.token, holder: this.lock.holder },
    });
    this.log.warn({ lock: this.lock.name, token: this.lock.token }, this.lost.message);
    this.stop();
    this.controller.abort(this.lost);
  }
}

// ---------------------------------------------------------------- input checks

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > LOCK_LIMITS.maxNameLength || !NAME_PATTERN.test(name)) {
    throw new ValidationError(
      'STOKER_LOCK_NAME_INVALID',
      `lock name ${JSON.stringify(String(name).slice(0, 80))} must be 1 to ${LOCK_LIMITS.maxNameLength} characters of [A-Za-z0-9_.:/@-], starting with a letter or digit`,
      { details: { length: typeof name === 'string' ? name.length : 0 } },
    );
  }
}

function checkHolder(holder: string): string {
  if (typeof holder !== 'string' || holder.length === 0 || holder.length > LOCK_LIMITS.maxHolderLength || CONTROL_CHARACTERS.test(holder)) {
    throw new ValidationError(
      'STOKER_LOCK_HOLDER_INVALID',
      `lock holder must be 1 to ${LOCK_LIMITS.maxHolderLength} characters without control characters`,
      { details: { length: typeof holder === 'string' ? holder.length : 0 } },
    );
  }
  return holder;
}

function checkToken(token: number): void {
  if (!Number.isSafeInteger(token) || token < 1) {
    throw new ValidationError('STOKER_LOCK_TOKEN_INVALID', `lock token must be a positive integer, got ${String(token)}`);
  }
}

function checkDuration(what: string, ms: number, min: number, max: number): number {
  if (!Number.isSafeInteger(ms) || ms < min || ms > max) {
    throw new ValidationError(
      'STOKER_LOCK_TTL_INVALID',
      `${what} must be a whole number of milliseconds from ${min} to ${max}, got ${String(ms)}`,
      {
        details: { option: what, min, max },
      },
    );
  }
  return ms;
}
