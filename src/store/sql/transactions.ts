/**
 * The transaction wrapper of the three drivers, written once: begin, run the callback,
 * commit; roll back on any error; run the whole transaction again after a retryable error
 * (PostgreSQL and MySQL: deadlocks, serialization failures, lock wait timeouts). What a
 * connection does at each step is the driver's ({@link TxConnection}).
 */
import { isStokerError } from '../../errors.js';
import type { SqlSession, TxState } from './driver.js';

/**
 * One connection's part in a transaction. A step may be synchronous (SQLite's are): it is
 * awaited only when it returns a promise, so a synchronous driver adds no turns of the
 * microtask queue.
 */
export interface TxConnection<S extends SqlSession> {
  readonly session: S;
  /** starts the transaction (and anything that must come first, such as a queue lock); absent: begun already */
  begin?(): Promise<void>;
  commit(): Promise<void> | void;
  /** false when the rollback itself failed: the connection is unusable then */
  rollback(): Promise<boolean> | boolean;
  /** gives the connection back; `discard`: it may be broken, close it instead */
  release(discard: boolean): Promise<void> | void;
  /** what the caller gets for an error (SQLite wraps its driver's errors here) */
  wrapError?(e: unknown): unknown;
}

/**
 * Remembers the first database error of a transaction (its statements fail from then on:
 * PostgreSQL and MySQL can only roll back, and nothing may look committed); returns the
 * error. The drivers' transaction sessions call it for every statement that fails.
 */
export function recordFailure(state: TxState, e: unknown): unknown {
  if (isStokerError(e) && (e.code === 'STOKER_STORE_QUERY_FAILED' || e.code === 'STOKER_STORE_UNREACHABLE')) state.failure ??= e;
  return e;
}

/**
 * One attempt: `fn` between begin and commit. A database error recorded in `state.failure`
 * while `fn` ran (a statement failed, the session ended) makes it roll back instead of
 * commit. An unreachable database discards the connection.
 */
export async function inTransaction<S extends SqlSession, T>(
  conn: TxConnection<S>,
  state: TxState,
  fn: (s: S, state: TxState) => Promise<T>,
): Promise<T> {
  let discard = false;
  try {
    if (conn.begin) await conn.begin();
    const out = await fn(conn.session, state);
    state.done = true;
    // a failed statement may have ended the transaction already (InnoDB rolls back on a
    // deadlock and goes on in autocommit): the only safe end is ROLLBACK
    if (state.failure !== undefined) throw state.failure;
    const committed = conn.commit();
    if (committed) await committed;
    return out;
  } catch (e) {
    state.done = true;
    const rolledBack = conn.rollback();
    if (!(rolledBack === true || (rolledBack !== false && (await rolledBack)))) discard = true;
    if (isStokerError(e) && e.code === 'STOKER_STORE_UNREACHABLE') discard = true;
    throw conn.wrapError ? conn.wrapError(e) : e;
  } finally {
    const released = conn.release(discard);
    if (released) await released;
  }
}

/** Runs `op` again, whole, after a retryable error, up to `attempts` times, with a short jittered backoff. */
export async function withRetries<T>(attempts: number, retryable: (e: unknown) => boolean, op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (attempt >= attempts || !retryable(e)) throw e;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** attempt));
    }
  }
}
