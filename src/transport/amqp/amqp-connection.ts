/**
 * One AMQP connection per process, shared by the wake-ups and the remote-task queues
 * (docs/amqp.md, "Connecting"). The first connection is bounded by a timeout and fails with
 * a clear code (`STOKER_AMQP_UNREACHABLE`, `STOKER_AMQP_AUTH_FAILED`); after that, a lost
 * connection is reopened with jittered exponential backoff, and every user of the
 * connection sets its channels, queues and consumers up again on each new connection
 * ({@link AmqpConnection.onConnect}). The URL is logged only redacted.
 *
 * @example
 * ```ts
 * const conn = await AmqpConnection.open({ url: 'amqp://guest:guest@127.0.0.1:5672/' });
 * await conn.onConnect(async (model) => { const ch = await model.createChannel(); … });
 * await conn.close();
 * ```
 */
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { silentLogger, type Logger } from '../../core/logger.js';
import { TransportError } from '../../errors.js';
import { checkAmqpUrl, redactAmqpUrl } from './amqp-url.js';

export interface AmqpConnectionOptions {
  url: string;
  /** how long the first connection (TCP, TLS and AMQP handshake) may take (default 5,000 ms) */
  connectTimeoutMs?: number;
  /** reconnect backoff: first delay and cap (default 100 ms and 5,000 ms), jittered ±20 % */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  logger?: Logger;
  /** shown in the broker's connection list (client property `connection_name`) */
  name?: string;
}

/** @internal (amqplib's types stay out of the package's declarations) */
export type ConnectionSetup = (model: ChannelModel) => Promise<void>;

export class AmqpConnection {
  /** counters: connections opened after the first, connections lost, and connections closed by {@link reset} */
  readonly stats = { reconnects: 0, disconnects: 0, resets: 0 };
  private model: ChannelModel | null = null;
  private readonly setups: ConnectionSetup[] = [];
  private closing = false;
  private retry: NodeJS.Timeout | null = null;
  /** when the current connection was made, and how many in a row were lost soon after (backoff across resets) */
  private connectedAt = 0;
  private shortLived = 0;
  private readonly log: Logger;
  private readonly shownUrl: string;

  private constructor(private readonly options: AmqpConnectionOptions) {
    this.shownUrl = redactAmqpUrl(options.url);
    this.log = (options.logger ?? silentLogger).child({ amqp: this.shownUrl });
  }

  /** Checks the URL and connects once, within `connectTimeoutMs`; throws a {@link TransportError} naming why it could not. */
  static async open(options: AmqpConnectionOptions): Promise<AmqpConnection> {
    checkAmqpUrl(options.url);
    const conn = new AmqpConnection(options);
    conn.attach(await conn.connectOnce());
    return conn;
  }

  /** the URL without its password, for logs and messages */
  get url(): string {
    return this.shownUrl;
  }

  get connected(): boolean {
    return this.model !== null;
  }

  /**
   * Registers `setup`, run on every connection from now on (channels die with their
   * connection). Runs it at once when connected; its error is then thrown to the caller.
   * @internal
   */
  async onConnect(setup: ConnectionSetup): Promise<void> {
    this.setups.push(setup);
    if (this.model) await setup(this.model);
  }

  /** Forgets a setup registered with {@link onConnect} (its channels are the caller's to close). @internal */
  offConnect(setup: ConnectionSetup): void {
    const i = this.setups.indexOf(setup);
    if (i >= 0) this.setups.splice(i, 1);
  }

  /**
   * A channel failed, or the broker cancelled a consumer, while the connection stayed up (a
   * queue or exchange deleted under us, a channel-level error): closes the connection, so
   * that every part sets its channels, queues and consumers up again on the next one, as
   * after a connection loss (docs/amqp.md, "Connecting"). Nothing waits forever on a
   * channel that is gone. Connections lost again within 5 s of opening keep backing off.
   * @internal
   */
  reset(reason: string): void {
    const model = this.model;
    if (!model || this.closing) return;
    this.stats.resets += 1;
    this.log.warn({ reason }, 'AMQP channel failed: reconnecting');
    try {
      model.close().catch(() => undefined);
    } catch {
      // already closing: its close event reconnects
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.retry) clearTimeout(this.retry);
    const model = this.model;
    this.model = null;
    await model?.close().catch(() => undefined);
  }

  private async connectOnce(): Promise<ChannelModel> {
    const timeoutMs = this.options.connectTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const attempt = amqp.connect(this.options.url, {
      timeout: timeoutMs,
      // amqplib leaves Nagle's algorithm on: a small frame written while an earlier one is
      // unacknowledged then waits for the peer's delayed ACK (~40 ms on Linux). Every wake-up,
      // request, reply and confirm is such a frame (docs/amqp.md, "Performance").
      noDelay: true,
      clientProperties: { connection_name: this.options.name ?? 'stoker' },
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([attempt, timeout]);
    } catch (e) {
      // a connection that completes after the timeout is closed, never leaked
      attempt.then((m) => m.close()).catch(() => undefined);
      throw this.describe(e);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The driver's error as ours, with a message that says what to check (and no password). */
  private describe(e: unknown): TransportError {
    const text = e instanceof Error ? e.message : String(e);
    if (/ACCESS[-_]REFUSED|403/.test(text)) {
      return new TransportError('STOKER_AMQP_AUTH_FAILED', `the AMQP broker at ${this.shownUrl} refused the credentials`, {
        cause: e,
        details: { url: this.shownUrl },
      });
    }
    const vhost = /ConnectionClose|NOT_ALLOWED|530/.test(text) ? ' (does the virtual host exist, and may this user use it?)' : '';
    return new TransportError('STOKER_AMQP_UNREACHABLE', `cannot connect to the AMQP broker at ${this.shownUrl}: ${text}${vhost}`, {
      cause: e,
      details: { url: this.shownUrl },
    });
  }

  private attach(model: ChannelModel): void {
    this.model = model;
    coalesceWrites(model);
    this.connectedAt = Date.now();
    model.on('error', (err: Error) => this.log.warn({ err: err.message }, 'AMQP connection error'));
    model.on('close', () => {
      if (this.model !== model) return;
      this.model = null;
      if (this.closing) return;
      this.stats.disconnects += 1;
      this.log.warn({}, 'AMQP connection lost: reconnecting');
      this.shortLived = Date.now() - this.connectedAt < 5000 ? this.shortLived + 1 : 0;
      this.scheduleReconnect(this.shortLived);
    });
  }

  private scheduleReconnect(attempt: number): void {
    if (this.closing) return;
    const min = this.options.reconnectMinMs ?? 100;
    const max = this.options.reconnectMaxMs ?? 5000;
    const delay = Math.min(max, min * 2 ** attempt) * (0.8 + 0.4 * Math.random());
    this.retry = setTimeout(() => void this.reconnect(attempt), delay);
  }

  private async reconnect(attempt: number): Promise<void> {
    this.retry = null;
    if (this.closing) return;
    let model: ChannelModel;
    try {
      model = await this.connectOnce();
    } catch (e) {
      this.log.warn({ err: e instanceof Error ? e.message : String(e), attempt: attempt + 1 }, 'AMQP reconnect failed');
      this.scheduleReconnect(attempt + 1);
      return;
    }
    if (this.closing) {
      await model.close().catch(() => undefined);
      return;
    }
    this.attach(model);
    try {
      for (const setup of this.setups) await setup(model);
    } catch (e) {
      this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'AMQP setup after reconnect failed');
      this.model = null;
      await model.close().catch(() => undefined);
      this.scheduleReconnect(attempt + 1);
      return;
    }
    this.stats.reconnects += 1;
    this.log.info({ attempt: attempt + 1 }, 'AMQP reconnected');
  }
}

/**
 * The driver writes each frame to the socket on its own: with Nagle's algorithm off, that is
 * one system call, and often one TCP segment the broker reads on its own, per frame. The
 * frames queued in one turn of the event loop (the driver sends them on the next) are
 * written at once instead: the socket is corked while the driver empties its channels'
 * buffers. Nothing waits longer than before; a driver without these internals is left as
 * it is (docs/amqp.md, "Performance").
 */
function coalesceWrites(model: ChannelModel): void {
  type Out = { cork?: () => void; uncork?: () => void };
  const mux = (model as unknown as { connection?: { muxer?: { out?: Out; _readIncoming?: () => void } } }).connection?.muxer;
  const out = mux?.out;
  const read = mux?._readIncoming;
  if (!mux || typeof read !== 'function' || typeof out?.cork !== 'function' || typeof out.uncork !== 'function') return;
  mux._readIncoming = () => {
    out.cork!();
    try {
      read.call(mux);
    } finally {
      out.uncork!();
    }
  };
}

/**
 * Writes the frames queued on `channel` to the socket now. The driver writes what a channel
 * queued only at the end of the turn of the event loop (its multiplexer reads the channels'
 * buffers in a `setImmediate`), so a message published in a turn waits for whatever else
 * that turn does: the rest of the caller's code after `startRun` returned, other callbacks.
 * For a wake-up after a quiet spell nothing is worth that wait (docs/amqp.md, "Wake-ups").
 * Only this channel's frames are written (AMQP orders frames per channel only); its other
 * frames and the other channels' go at the end of the turn as before. A driver without
 * these internals is left as it is.
 * @internal
 */
export function writeNow(channel: Channel): void {
  type Mux = { newStreams?: unknown[]; _readIncoming?: () => void };
  const c = channel as unknown as { ch?: number; connection?: { channels?: ({ buffer?: unknown } | undefined)[]; muxer?: Mux } };
  const buffer = c.ch === undefined ? undefined : c.connection?.channels?.[c.ch]?.buffer;
  const mux = c.connection?.muxer;
  if (buffer === undefined || !Array.isArray(mux?.newStreams) || typeof mux._readIncoming !== 'function') return;
  // the multiplexer takes a stream from this list when it is told the stream is readable (on
  // the next tick); a stream read empty before that is skipped then
  mux.newStreams.push(buffer);
  mux._readIncoming();
}
