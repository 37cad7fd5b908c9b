/**
 * The fault-injecting TCP proxy of C9 (tcp-proxy.ts), run as its own process in front of a
 * tiny echo server in this process: every mode does what it says, seen from both ends.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyProcess } from './tcp-proxy.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An echo server that also records what each connection received and how it ended. */
class EchoServer {
  readonly conns: { socket: Socket; received: string; ended: boolean; error: string | null; closed: boolean }[] = [];
  server!: Server;
  port = 0;
  echo = true;

  async start(): Promise<void> {
    this.server = createServer({ allowHalfOpen: true }, (socket) => {
      const c = { socket, received: '', ended: false, error: null as string | null, closed: false };
      this.conns.push(c);
      socket.on('data', (d: Buffer) => {
        c.received += d.toString();
        if (this.echo && !socket.destroyed) socket.write(d);
      });
      socket.on('end', () => {
        c.ended = true;
        socket.end();
      });
      socket.on('error', (e: NodeJS.ErrnoException) => (c.error = e.code ?? e.message));
      socket.on('close', () => (c.closed = true));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A client socket that records what it received and how it ended. */
class Client {
  received = '';
  ended = false;
  error: string | null = null;
  closed = false;
  connected = false;
  readonly socket: Socket;
  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    this.socket.on('connect', () => (this.connected = true));
    this.socket.on('data', (d: Buffer) => (this.received += d.toString()));
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('error', (e: NodeJS.ErrnoException) => (this.error = e.code ?? e.message));
    this.socket.on('close', () => (this.closed = true));
  }
}

async function until(pred: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
  return Date.now() - t0;
}

describe('C9 fault-injecting TCP proxy (separate process)', () => {
  const echo = new EchoServer();
  let proxy: ProxyProcess;
  const clients: Client[] = [];
  const open = (): Client => {
    const c = new Client(proxy.port);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    await echo.start();
    proxy = await ProxyProcess.start('127.0.0.1', echo.port);
  });
  afterAll(async () => {
    for (const c of clients) c.socket.destroy();
    await proxy?.close();
    await echo.stop();
  });

  it('pass: bytes flow both ways; a FIN is passed on', async () => {
    await proxy.setMode({ kind: 'pass' });
    const c = open();
    c.socket.write('hello');
    await until(() => c.received === 'hello', 2000, 'the echo');
    const serverSeesPort = echo.conns.at(-1)!.socket.remotePort;
    const clientPort = c.socket.localPort;
    c.socket.end();
    await until(() => c.ended, 2000, 'the FIN back');
    expect(echo.conns.at(-1)!.ended).toBe(true);
    const s = await proxy.stats();
    const info = s.connections.at(-1)!;
    expect(info.bytesUp).toBe(5);
    expect(info.bytesDown).toBe(5);
    // the server sees the proxy's upstream port as the client's port
    expect(info.upstreamPort).toBe(serverSeesPort);
    expect(info.clientPort).toBe(clientPort);
    expect(info.open).toBe(false);
  });

  it('blackhole: nothing passes and nothing is closed; held bytes and the FIN arrive in order after healing', async () => {
    await proxy.setMode({ kind: 'pass' });
    const c = open();
    c.socket.write('a');
    await until(() => c.received === 'a', 2000, 'the first echo');
    const server = echo.conns.at(-1)!;
    await proxy.setMode({ kind: 'blackhole' });
    c.socket.write('b');
    c.socket.write('c');
    server.socket.write('S'); // server → client is cut too
    c.socket.end(); // FIN is held as well
    await sleep(400);
    expect(server.received).toBe('a');
    expect(server.ended).toBe(false);
    expect(c.received).toBe('a');
    expect([c.ended, c.closed, c.error, server.closed, server.error]).toEqual([false, false, null, false, null]);
    const held = (await proxy.stats()).connections.at(-1)!;
    expect(held.bytesUp).toBe(1);
    await proxy.setMode({ kind: 'pass' });
    await until(() => server.ended, 2000, 'the held FIN');
    expect(server.received).toBe('abc');
    await until(() => c.ended, 2000, 'the FIN back');
    expect(c.received).toBe('aSbc');
  });

  it('blackhole with drop: bytes sent meanwhile are lost', async () => {
    await proxy.setMode({ kind: 'pass' });
    const c = open();
    c.socket.write('1');
    await until(() => c.received === '1', 2000, 'the first echo');
    const server = echo.conns.at(-1)!;
    await proxy.setMode({ kind: 'blackhole', drop: true });
    c.socket.write('lost');
    await sleep(200);
    await proxy.setMode({ kind: 'pass' });
    c.socket.write('2');
    await until(() => c.received === '12', 2000, 'the echo after healing');
    expect(server.received).toBe('12');
    const info = (await proxy.stats()).connections.find((x) => x.clientPort === c.socket.localPort)!;
    expect(info.droppedUp).toBe(4);
  });

  it('one-way blackhole: only the blocked direction stops', async () => {
    await proxy.setMode({ kind: 'pass' });
    echo.echo = false;
    try {
      const c = open();
      c.socket.write('x');
      await until(() => echo.conns.at(-1)?.received === 'x', 2000, 'the first bytes');
      const server = echo.conns.at(-1)!;
      await proxy.setMode({ kind: 'blackhole', direction: 'up' });
      c.socket.write('y');
      server.socket.write('down-ok');
      await until(() => c.received === 'down-ok', 2000, 'server → client while only up is cut');
      await sleep(200);
      expect(server.received).toBe('x');
      await proxy.setMode({ kind: 'blackhole', direction: 'down' });
      await until(() => server.received === 'xy', 2000, 'the held bytes going up once up is open');
      server.socket.write('held');
      await sleep(200);
      expect(c.received).toBe('down-ok');
      await proxy.setMode({ kind: 'pass' });
      await until(() => c.received === 'down-okheld', 2000, 'the held bytes going down');
    } finally {
      echo.echo = true;
    }
  });

  it('a connection opened during a blackhole reaches the server only after healing', async () => {
    await proxy.setMode({ kind: 'blackhole' });
    const before = echo.conns.length;
    const c = open();
    await until(() => c.connected, 2000, 'the TCP connect (the proxy accepts)');
    c.socket.write('early');
    await sleep(300);
    expect(echo.conns.length).toBe(before);
    await proxy.setMode({ kind: 'pass' });
    await until(() => c.received === 'early', 2000, 'the echo after healing');
    expect(echo.conns.length).toBe(before + 1);
  });

  it('latency: each way is delayed', async () => {
    await proxy.setMode({ kind: 'latency', ms: 150 });
    const c = open();
    await until(() => c.connected, 2000, 'connect');
    await sleep(50);
    const t0 = Date.now();
    c.socket.write('ping');
    await until(() => c.received === 'ping', 3000, 'the delayed echo');
    const rtt = Date.now() - t0;
    expect(rtt).toBeGreaterThanOrEqual(290);
    expect(rtt).toBeLessThan(1500);
    await proxy.setMode({ kind: 'pass' });
    const t1 = Date.now();
    c.socket.write('!');
    await until(() => c.received === 'ping!', 2000, 'the echo without latency');
    expect(Date.now() - t1).toBeLessThan(100);
  });

  it('reset: every open connection gets an RST on both sides', async () => {
    await proxy.setMode({ kind: 'pass' });
    const c = open();
    c.socket.write('r');
    await until(() => c.received === 'r', 2000, 'the echo');
    const server = echo.conns.at(-1)!;
    const n = await proxy.reset();
    expect(n).toBeGreaterThanOrEqual(1);
    await until(() => c.closed && server.closed, 2000, 'both ends to close');
    expect(c.error).toBe('ECONNRESET');
    expect(server.error).toBe('ECONNRESET');
    expect(c.ended).toBe(false); // no FIN: an RST
  });

  it('refuse: new connections are reset at once', async () => {
    await proxy.setMode({ kind: 'refuse' });
    const c = open();
    await until(() => c.closed, 2000, 'the refused connection to close');
    expect(c.error).toBe('ECONNRESET');
    await proxy.setMode({ kind: 'pass' });
    expect((await proxy.stats()).refused).toBe(1);
  });
});
