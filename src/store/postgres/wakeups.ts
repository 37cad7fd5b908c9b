/**
 * Protocol 6 (ARCHITECTURE.md "Wake-ups") on PostgreSQL: one LISTEN connection per store
 * (`stoker-<role>-listen`) on the channel `<schema>.<prefix>wake`, shared by its
 * subscribers, and `pg_notify` after commits that made atoms claimable for others (a start
 * or a signal sends it inside its own transaction: src/store/postgres/batches.ts).
 */
import type pg from 'pg';
import { StoreError } from '../../errors.js';
import { ListenerWakeups } from '../sql/shared-listener.js';
import type { PostgresDriver } from './postgres-driver.js';

/** Backoff of the wake-up listener's reconnects: first delay and cap, in ms. */
const LISTEN_RETRY_MS = 100;
const LISTEN_RETRY_MAX_MS = 5_000;

export class PostgresWakeups extends ListenerWakeups<WakeListener> {
  constructor(
    driver: PostgresDriver,
    /** the NOTIFY channel of this deployment */
    readonly channel: string,
  ) {
    super(
      driver,
      () => new WakeListener(() => driver.dedicatedClient('listen'), channel, driver.onError),
      () => driver.poolSession.rows('announce claimable atoms', `SELECT pg_notify($1, '')`, [channel]).then(() => undefined),
    );
  }
}

/**
 * The LISTEN side: one dedicated connection, reconnected with jittered exponential backoff
 * when it drops; subscribers are called once after every reconnect, since notifications
 * sent while it was down are lost.
 */
class WakeListener {
  readonly subscribers = new Set<{ onWake: () => void }>();
  private client: pg.Client | undefined;
  private stopped = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connect: () => Promise<pg.Client>,
    private readonly channel: string,
    private readonly onError: (error: Error) => void,
  ) {}

  async start(): Promise<void> {
    await this.open();
  }

  private async open(): Promise<void> {
    const client = await this.connect();
    let dropped = false;
    /** listening: a drop from now on is reconnected (before, the caller gets the error) */
    let ready = false;
    const drop = (e?: Error): void => {
      if (dropped) return;
      dropped = true;
      if (this.client === client) this.client = undefined;
      client.end().catch(() => undefined);
      if (this.stopped || !ready) return;
      if (e) this.onError(e);
      this.schedule();
    };
    client.on('error', (e) => drop(e));
    client.on('end', () => drop());
    client.on('notification', () => this.wakeAll());
    try {
      await client.query(`LISTEN ${quoteIdentifier(this.channel)}`);
    } catch (e) {
      dropped = true;
      await client.end().catch(() => undefined);
      throw e;
    }
    if (this.stopped || dropped) {
      dropped = true;
      await client.end().catch(() => undefined);
      if (!this.stopped)
        throw new StoreError('STOKER_STORE_UNREACHABLE', 'PostgreSQL: the wake-up connection ended while it started to listen');
      return;
    }
    ready = true;
    this.client = client;
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const delay = Math.min(LISTEN_RETRY_MAX_MS, LISTEN_RETRY_MS * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.open().then(
        () => {
          this.failures = 0;
          if (!this.stopped) this.wakeAll();
        },
        (e: unknown) => {
          this.failures = Math.min(this.failures + 1, 10);
          this.onError(e instanceof Error ? e : new Error(String(e)));
          this.schedule();
        },
      );
    }, delay);
    this.timer.unref();
  }

  private wakeAll(): void {
    for (const s of [...this.subscribers]) {
      try {
        s.onWake();
      } catch (e) {
        this.onError(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    if (c) await c.end().catch(() => undefined);
  }
}

/** A PostgreSQL quoted identifier. */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
