/**
 * A connection of its own for the statements of the hot path (the claim and the fast
 * completions, ARCHITECTURE.md "Cost per atom"), so that each is sent without a checkout
 * from the pool.
 *
 * Why: a pool checkout and its release cost a linear flow, per atom, two timers set and
 * cleared (pg-pool's connection and idle timeouts), four listener changes, two events and a
 * `process.nextTick` before the statement leaves; and the `pg` client's promise form adds a
 * promise and a rejection handler. Here a statement is one call with a callback on a client
 * that is already there.
 *
 * The connection is opened on first use (that statement still goes through the pool) and
 * again after it was lost. A statement finds it busy (another engine of the process, or the
 * several statements of one commit sent at once) or not open yet: it goes through the pool,
 * as before. The connection has the session settings of every other one; a lost connection
 * fails its statement as a pooled one would (the caller treats the outcome as unknown).
 */
import type pg from 'pg';
import type { Raw } from '../sql/driver.js';

export interface HotConnectionPort {
  /** a connected client with the store's session settings (PostgresDriver.dedicatedClient) */
  open(): Promise<pg.Client>;
  /** errors of the connection while idle, for the store's `onError` */
  onError(error: Error): void;
}

export class HotConnection {
  private client: pg.Client | null = null;
  private opening: Promise<void> | null = null;
  private busy = false;
  private closed = false;
  /** statements to send through the pool before trying to open the connection again after a failure */
  private backoff = 0;

  constructor(private readonly port: HotConnectionPort) {}

  /**
   * Sends a named statement on the connection and calls `done` with its rows or error;
   * false (nothing sent) when the connection is busy or not open: use the pool.
   */
  send(name: string | undefined, text: string, values: unknown[], done: (error: Error | null, rows: Raw[]) => void): boolean {
    if (this.client !== null && !queryable(this.client)) this.drop(this.client); // ended while idle: never send on it
    const client = this.client;
    if (client === null || this.busy) {
      if (client === null) this.open();
      return false;
    }
    this.busy = true;
    client.query<Raw>({ name, text, values }, (error: Error | null, result: pg.QueryResult<Raw>) => {
      this.busy = false;
      if (error) {
        // a connection that can no longer run statements is dropped; the next statement opens another
        if (!queryable(client)) this.drop(client);
        done(error, []);
      } else done(null, result.rows);
    });
    return true;
  }

  /** Ends the connection; statements go through the pool from now on. */
  async close(): Promise<void> {
    this.closed = true;
    await this.opening;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private open(): void {
    if (this.opening || this.closed) return;
    if (this.backoff > 0) {
      this.backoff -= 1;
      return;
    }
    this.opening = this.port
      .open()
      .then(
        (client) => {
          if (this.closed) return void client.end().catch(() => undefined);
          client.on('error', (e: Error) => {
            this.port.onError(e);
            this.drop(client);
          });
          client.on('end', () => this.drop(client));
          this.client = client;
        },
        // the pool reports the same failure on the statements it runs meanwhile
        () => void (this.backoff = 100),
      )
      .finally(() => (this.opening = null));
  }

  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.busy = false;
    client.end().catch(() => undefined);
  }
}

/** Whether pg still sends statements on the client (false once its connection failed or ended). */
function queryable(client: pg.Client): boolean {
  return (client as unknown as { _queryable?: boolean })._queryable !== false;
}
