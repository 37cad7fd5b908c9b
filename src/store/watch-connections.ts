/**
 * The connection handling that the session-lock stores (PostgreSQL, MySQL) share for
 * `Store.watchEngine`: each wait runs on a connection of its own, taken from the idle ones
 * or opened; `signal` ends the wait by closing it; a connection is kept for the next call
 * after a clean answer and closed after anything else.
 */

export type WatchAnswer = 'free' | 'held' | 'aborted';

/** The watch connections of one store. */
export interface WatchConnections<C> {
  /** waits in progress (closed, with the idle ones, when the store closes) */
  readonly busy: Set<C>;
  readonly idle: C[];
  /** opens a connection (with an 'error' listener: a late error must not crash the process) */
  open(): Promise<C>;
  /** closes a connection at once; must not throw */
  close(conn: C): void;
  /** whether the store is closed */
  closed(): boolean;
}

/** The watch connections of one store, with the two operations on them. */
export class WatchPool<C> {
  private readonly conns: WatchConnections<C>;

  constructor(parts: Pick<WatchConnections<C>, 'open' | 'close' | 'closed'>) {
    this.conns = { busy: new Set(), idle: [], ...parts };
  }

  /** {@link watchOnOwnConnection} on these connections */
  wait(signal: AbortSignal, fn: (conn: C) => Promise<{ answer: 'free' | 'held'; reusable: boolean }>): Promise<WatchAnswer> {
    return watchOnOwnConnection(this.conns, signal, fn);
  }

  /** {@link closeWatchConnections} (the store is closing) */
  closeAll(): void {
    closeWatchConnections(this.conns);
  }
}

/**
 * Runs one wait. `wait` answers `free` or `held`, and whether the connection may be used
 * again; a rejection is the caller's, unless `signal` or the store's closing caused it
 * (then the answer is `aborted`).
 */
export async function watchOnOwnConnection<C>(
  conns: WatchConnections<C>,
  signal: AbortSignal,
  wait: (conn: C) => Promise<{ answer: 'free' | 'held'; reusable: boolean }>,
): Promise<WatchAnswer> {
  if (signal.aborted) return 'aborted';
  const conn = conns.idle.pop() ?? (await conns.open());
  conns.busy.add(conn);
  let aborted = false;
  let reusable = false;
  const abort = (): void => {
    aborted = true;
    conns.close(conn);
  };
  signal.addEventListener('abort', abort, { once: true });
  try {
    const r = await wait(conn);
    if (aborted || conns.closed()) return 'aborted';
    reusable = r.reusable;
    return r.answer;
  } catch (e) {
    if (aborted || conns.closed()) return 'aborted';
    throw e;
  } finally {
    signal.removeEventListener('abort', abort);
    conns.busy.delete(conn);
    if (reusable && !aborted && !conns.closed()) conns.idle.push(conn);
    else conns.close(conn);
  }
}

/** Closes every connection, busy or idle (the store is closing). */
export function closeWatchConnections<C>(conns: WatchConnections<C>): void {
  for (const c of [...conns.busy, ...conns.idle.splice(0)]) conns.close(c);
  conns.busy.clear();
}
