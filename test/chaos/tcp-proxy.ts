/**
 * A fault-injecting TCP proxy for the partition scenario (docs/reliability.md C9) on loopback: it
 * sits in front of a database port, and the engine that is to be cut off connects through
 * it. Its mode can be switched while connections are open:
 *
 * - `pass`: bytes flow both ways;
 * - `blackhole`: bytes stop flowing in one (`up` = client → server, `down` = server →
 *   client) or both directions, and nothing is closed: no FIN, no RST reaches the other
 *   side. By default the bytes are *held* (the proxy stops reading, so they wait in the
 *   kernel's socket buffers and the proxy's queue, and are delivered in order when the
 *   partition heals, as TCP retransmission would deliver them after a short real cut).
 *   With `drop: true` they are read and discarded; that desynchronises the protocol
 *   streams (TCP never loses bytes on a live connection), so it only models a cut that
 *   lasts until both ends give up. A FIN, RST or close of one side is held too, and passed
 *   on when the partition heals. New connections are accepted (the proxy's kernel does
 *   that) but not forwarded: their upstream connection is opened only once the path is
 *   open again, so a client's connect timeout fires as it would against a dead route;
 * - `latency`: each chunk is delivered `ms` later, in order, both ways (the TCP handshake
 *   itself is not delayed: the proxy accepts at once);
 * - `refuse`: new connections are reset at once (the open ones are left alone).
 *
 * And one action: `reset` destroys every open connection, on both sides, with a TCP RST
 * (`socket.resetAndDestroy()`).
 *
 * Limits, honestly: the database server's TCP peer is the proxy, not the engine, and the
 * engine's TCP peer is the proxy too. Both TCP connections stay healthy during a
 * `blackhole` (the proxy's kernel ACKs everything and answers keepalive probes), so TCP
 * keepalive and `tcp_user_timeout` on either side never notice the partition. Only
 * application-level timeouts do (the engine's query timeouts and lease; the server's
 * `idle_in_transaction_session_timeout`, `statement_timeout`). A real network cut (netns,
 * blackhole routes) is the only way to test server-side keepalive.
 *
 * Run it as its own process (`node --import tsx test/chaos/tcp-proxy.ts <host> <port>`):
 * it prints `listening <port>` and then takes one JSON command per stdin line
 * (`{"seq":1,"cmd":"mode","mode":{"kind":"blackhole"}}`, `reset`, `stats`, `exit`),
 * answering each with one JSON line on stdout. It exits when stdin closes, so it never
 * outlives the test process. {@link ProxyProcess} is the client side of that;
 * {@link TcpProxy} is the proxy itself (usable in process, e.g. in its own unit test).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

export type Direction = 'up' | 'down';

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'blackhole'; direction?: 'both' | Direction; drop?: boolean }
  | { kind: 'latency'; ms: number }
  | { kind: 'refuse' };

export interface ConnectionInfo {
  id: number;
  /** the client's port (the engine's local port) */
  clientPort: number;
  /** the proxy's local port towards the server: what the server sees as the client's port; null until connected */
  upstreamPort: number | null;
  bytesUp: number;
  bytesDown: number;
  /** bytes waiting in the proxy's queues (held by a blackhole or delayed by latency) */
  queuedUp: number;
  queuedDown: number;
  droppedUp: number;
  droppedDown: number;
  open: boolean;
}

export interface ProxyStats {
  mode: ProxyMode;
  accepted: number;
  refused: number;
  resets: number;
  connections: ConnectionInfo[];
}

interface Chunk {
  at: number;
  data: Buffer;
}

/** One direction of one connection: reads from `source`, writes to `dst` (possibly later). */
class Flow {
  readonly queue: Chunk[] = [];
  bytes = 0;
  dropped = 0;
  /** the source sent FIN (or closed): pass it on once the queue is delivered */
  ended = false;
  /** the source died abruptly: reset the destination once the queue is delivered */
  broken = false;
  private endSent = false;
  private timer: NodeJS.Timeout | null = null;
  private waitingDrain = false;

  constructor(
    readonly dir: Direction,
    private readonly source: () => Socket | null,
    private readonly dst: () => Socket | null,
    private readonly proxy: TcpProxy,
  ) {}

  private pauseSource(): void {
    this.source()?.pause();
  }

  private resumeSource(): void {
    this.source()?.resume();
  }

  get queued(): number {
    return this.queue.reduce((n, c) => n + c.data.length, 0);
  }

  onData(data: Buffer): void {
    const mode = this.proxy.mode;
    if (this.proxy.blocks(this.dir) && mode.kind === 'blackhole' && mode.drop) {
      this.dropped += data.length;
      return;
    }
    const delay = mode.kind === 'latency' ? mode.ms : 0;
    const last = this.queue.at(-1)?.at ?? 0;
    this.queue.push({ at: Math.max(last, Date.now() + delay), data });
    this.pump();
  }

  /** Delivers what is due, unless the path is blocked; reschedules itself for the rest. */
  pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const mode = this.proxy.mode;
    if (this.proxy.blocks(this.dir)) {
      // held: stop reading, so the peer's bytes wait in the kernel's buffers; dropped: read
      // and discard (onData). A FIN or RST waits for the partition to heal either way.
      if (mode.kind === 'blackhole' && mode.drop) this.resumeSource();
      else this.pauseSource();
      return;
    }
    const dst = this.dst();
    if (!dst || dst.connecting) {
      // the upstream connection is not open yet: it calls pump() when it is
      this.pauseSource();
      return;
    }
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) {
      const c = this.queue.shift()!;
      this.bytes += c.data.length;
      if (!dst.destroyed && !dst.write(c.data) && !this.waitingDrain) {
        this.waitingDrain = true;
        dst.once('drain', () => {
          this.waitingDrain = false;
          this.pump();
        });
      }
    }
    if (this.queue.length > 0) {
      this.timer = setTimeout(() => this.pump(), Math.max(1, this.queue[0]!.at - now));
      // keep reading meanwhile (latency, not a stall), unless the destination is full
      if (!this.waitingDrain) this.resumeSource();
      return;
    }
    if (this.waitingDrain) {
      this.pauseSource();
      return;
    }
    if (this.broken) {
      dst.resetAndDestroy();
      return;
    }
    if (this.ended && !this.endSent) {
      this.endSent = true;
      dst.end();
      return;
    }
    this.resumeSource();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

class Pair {
  upstream: Socket | null = null;
  /** the upstream socket's local port, kept after it closed */
  upstreamPort: number | null = null;
  readonly up: Flow;
  readonly down: Flow;
  open = true;
  readonly clientPort: number;

  constructor(
    readonly id: number,
    readonly client: Socket,
    private readonly proxy: TcpProxy,
  ) {
    this.clientPort = client.remotePort ?? 0;
    this.up = new Flow(
      'up',
      () => this.client,
      () => this.upstream,
      proxy,
    );
    this.down = new Flow(
      'down',
      () => this.upstream,
      () => this.client,
      proxy,
    );
    client.pause();
  }

  /** Opens the upstream connection (not while a blackhole blocks the way up). */
  connectUpstream(): void {
    if (this.upstream || !this.open || this.proxy.blocks('up') || this.proxy.blocks('down')) return;
    const u = connect({ host: this.proxy.targetHost, port: this.proxy.targetPort, allowHalfOpen: true });
    u.setNoDelay(true);
    this.upstream = u;
    u.pause();
    u.on('connect', () => {
      this.upstreamPort = u.localPort ?? null;
      this.up.pump();
      this.down.pump();
    });
    u.on('data', (d: Buffer) => this.down.onData(d));
    u.on('end', () => {
      this.down.ended = true;
      this.down.pump();
    });
    u.on('error', () => {
      this.down.broken = true;
    });
    u.on('close', (hadError) => {
      if (hadError || !this.down.ended) this.down.broken = true;
      this.down.pump();
      this.maybeDone();
    });
    this.up.pump();
  }

  wire(): void {
    const c = this.client;
    c.setNoDelay(true);
    c.on('data', (d: Buffer) => this.up.onData(d));
    c.on('end', () => {
      this.up.ended = true;
      this.up.pump();
    });
    c.on('error', () => {
      this.up.broken = true;
    });
    c.on('close', (hadError) => {
      if (hadError || !this.up.ended) this.up.broken = true;
      if (this.upstream) this.up.pump();
      else this.finish(); // nothing upstream to tell
      this.maybeDone();
    });
    this.connectUpstream();
  }

  /** Both sockets are gone: forget the pair. */
  private maybeDone(): void {
    if (this.client.destroyed && (!this.upstream || this.upstream.destroyed)) this.finish();
  }

  finish(): void {
    if (!this.open) return;
    this.open = false;
    this.up.stop();
    this.down.stop();
    this.proxy.forget(this);
  }

  reset(): void {
    this.client.resetAndDestroy();
    this.upstream?.resetAndDestroy();
    this.finish();
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      clientPort: this.clientPort,
      upstreamPort: this.upstreamPort,
      bytesUp: this.up.bytes,
      bytesDown: this.down.bytes,
      queuedUp: this.up.queued,
      queuedDown: this.down.queued,
      droppedUp: this.up.dropped,
      droppedDown: this.down.dropped,
      open: this.open,
    };
  }
}

/** The proxy itself (in this process). */
export class TcpProxy {
  mode: ProxyMode = { kind: 'pass' };
  private server: Server | null = null;
  private readonly pairs = new Set<Pair>();
  /** every connection ever accepted (closed ones stay, for the server-side session lookup) */
  private readonly history: Pair[] = [];
  private nextId = 1;
  private accepted = 0;
  private refused = 0;
  private resets = 0;

  constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  /** Listens on 127.0.0.1 (port 0 = any free port); returns the port. */
  async listen(port = 0): Promise<number> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('proxy: no TCP address');
    return addr.port;
  }

  private accept(socket: Socket): void {
    if (this.mode.kind === 'refuse') {
      this.refused += 1;
      socket.resetAndDestroy();
      return;
    }
    this.accepted += 1;
    const pair = new Pair(this.nextId++, socket, this);
    this.pairs.add(pair);
    this.history.push(pair);
    pair.wire();
  }

  blocks(dir: Direction): boolean {
    const m = this.mode;
    return m.kind === 'blackhole' && (m.direction === undefined || m.direction === 'both' || m.direction === dir);
  }

  setMode(mode: ProxyMode): void {
    if (mode.kind === 'latency' && !(Number.isFinite(mode.ms) && mode.ms >= 0)) throw new Error(`proxy: bad latency ${String(mode.ms)}`);
    if (mode.kind === 'blackhole' && mode.direction !== undefined && !['both', 'up', 'down'].includes(mode.direction)) {
      throw new Error(`proxy: bad blackhole direction ${String(mode.direction)}`);
    }
    this.mode = mode;
    for (const p of [...this.pairs]) {
      p.connectUpstream();
      p.up.pump();
      p.down.pump();
    }
  }

  /** Resets every open connection (RST both ways); returns how many. */
  reset(): number {
    const open = [...this.pairs];
    for (const p of open) p.reset();
    this.resets += open.length;
    return open.length;
  }

  forget(p: Pair): void {
    this.pairs.delete(p);
  }

  stats(): ProxyStats {
    return {
      mode: this.mode,
      accepted: this.accepted,
      refused: this.refused,
      resets: this.resets,
      connections: this.history.map((p) => p.info()),
    };
  }

  async close(): Promise<void> {
    for (const p of [...this.pairs]) p.reset();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------ separate process

const SELF = new URL(import.meta.url);

type Command = { cmd: 'mode'; mode: ProxyMode } | { cmd: 'reset' } | { cmd: 'stats' } | { cmd: 'exit' };

/** The proxy in its own process, driven over stdin/stdout; `close()` (or the test's exit) ends it. */
export class ProxyProcess {
  readonly child: ChildProcess;
  port = 0;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<void>;
  private stderr = '';

  private constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', SELF.pathname, targetHost, String(targetPort)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-5000)));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', () => {
        for (const p of this.pending.values()) p.reject(new Error(`proxy exited; stderr: ${this.stderr}`));
        this.pending.clear();
        resolve();
      }),
    );
  }

  /** Starts a proxy process in front of `host:port`; resolves once it listens. */
  static async start(targetHost: string, targetPort: number): Promise<ProxyProcess> {
    const p = new ProxyProcess(targetHost, targetPort);
    const lines = createInterface({ input: p.child.stdout! });
    p.port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`proxy did not start; stderr: ${p.stderr}`)), 20_000);
      void p.exited.then(() => reject(new Error(`proxy exited at start; stderr: ${p.stderr}`)));
      lines.once('line', (line) => {
        clearTimeout(timer);
        const m = /^listening (\d+)$/.exec(line);
        if (m) resolve(Number(m[1]));
        else reject(new Error(`proxy said ${line}`));
      });
    });
    lines.on('line', (line) => {
      let msg: { seq: number; ok: boolean; result?: unknown; error?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      const waiter = p.pending.get(msg.seq);
      if (!waiter) return;
      p.pending.delete(msg.seq);
      if (msg.ok) waiter.resolve(msg.result);
      else waiter.reject(new Error(`proxy: ${msg.error ?? 'failed'}`));
    });
    return p;
  }

  /** A proxy in front of the database server a PostgreSQL or MySQL store URL names. */
  static inFrontOf(storeUrl: string): Promise<ProxyProcess> {
    const u = new URL(storeUrl);
    return ProxyProcess.start(u.hostname, Number(u.port || (u.protocol.startsWith('postgres') ? 5432 : 3306)));
  }

  /** The store URL with its host and port replaced by this proxy's. */
  through(storeUrl: string): string {
    const u = new URL(storeUrl);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  private send<T>(c: Command): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return reject(new Error('proxy is not running'));
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(JSON.stringify({ seq, ...c }) + '\n');
    });
  }

  /** Switches the mode; resolves once the proxy applied it. */
  setMode(mode: ProxyMode): Promise<void> {
    return this.send({ cmd: 'mode', mode });
  }

  /** RST on every open connection; resolves with how many there were. */
  reset(): Promise<number> {
    return this.send({ cmd: 'reset' });
  }

  stats(): Promise<ProxyStats> {
    return this.send({ cmd: 'stats' });
  }

  get pid(): number {
    return this.child.pid!;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.send({ cmd: 'exit' }).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  const [host, port] = process.argv.slice(2);
  if (!host || !port) throw new Error('usage: tcp-proxy <targetHost> <targetPort>');
  const proxy = new TcpProxy(host, Number(port));
  const listening = await proxy.listen(0);
  const out = (line: string): boolean => process.stdout.write(line + '\n');
  out(`listening ${listening}`);
  const rl = createInterface({ input: process.stdin });
  const quit = (): void => {
    void proxy.close().finally(() => process.exit(0));
  };
  rl.on('close', quit);
  rl.on('line', (line) => {
    let c: Command & { seq: number };
    try {
      c = JSON.parse(line) as Command & { seq: number };
    } catch {
      return;
    }
    try {
      let result: unknown = null;
      if (c.cmd === 'mode') proxy.setMode(c.mode);
      else if (c.cmd === 'reset') result = proxy.reset();
      else if (c.cmd === 'stats') result = proxy.stats();
      else if (c.cmd === 'exit') {
        out(JSON.stringify({ seq: c.seq, ok: true, result: null }));
        quit();
        return;
      } else throw new Error(`unknown command ${JSON.stringify(c)}`);
      out(JSON.stringify({ seq: c.seq, ok: true, result }));
    } catch (e) {
      out(JSON.stringify({ seq: c.seq, ok: false, error: e instanceof Error ? e.message : String(e) }));
    }
  });
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === SELF.href) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
