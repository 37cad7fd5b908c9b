/**
 * A wake-up announcement (protocol 6, ARCHITECTURE.md) sent at most once at a time: calls
 * made while one is in flight share one follow-up, sent after it (their commits may
 * postdate the one in flight). PostgreSQL's `pg_notify` and MariaDB's `wake_engines` call
 * go through it.
 *
 * @example
 * ```ts
 * const notify = coalesced(() => session.rows('announce', `SELECT pg_notify($1, '')`, [channel]).then(() => undefined));
 * await Promise.all([notify(), notify(), notify()]); // two statements, not three
 * ```
 */
export function coalesced(send: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const start = (): Promise<void> => {
    const p = send();
    running = p;
    const clear = (): void => {
      if (running === p) running = undefined;
    };
    p.then(clear, clear);
    return p;
  };
  return () => {
    if (queued) return queued;
    if (!running) return start();
    queued = running
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return start();
      });
    return queued;
  };
}
