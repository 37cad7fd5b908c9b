/**
 * Bad `--amqp` input to the CLI (docs/amqp.md, "Connecting"): a malformed URL exits 2
 * before anything is opened; refused credentials, a missing virtual host, a closed port and
 * a server that accepts but never speaks AMQP each exit 9 within the connect timeout with
 * one line naming the problem, never the password, and leave no database behind.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amqpBaseUrl, amqpUnreachable } from '../../helpers/rabbitmq.js';
import { buildCliAsync, runCli, tempDir, writeFile, type Built, type CliResult } from './harness.js';

let built: Built;
let dir: { path: string; remove(): void };
let flows: string;
let silent: Server;
let silentPort = 0;
const sockets = new Set<Socket>();
let n = 0;

beforeAll(async () => {
  built = await buildCliAsync();
  dir = tempDir();
  flows = writeFile(
    dir.path,
    'flows.mjs',
    `import { task, linear } from ${JSON.stringify(built.flowIndexUrl)};\nexport default [linear('noop', [task({ name: 'nothing', execute: () => null })])];\n`,
  );
  // accepts connections and never answers: the AMQP handshake would wait forever
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as { port: number }).port;
}, 240_000);

afterAll(async () => {
  built?.remove();
  dir?.remove();
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
});

function fresh(): { url: string; file: string } {
  const file = join(dir.path, `amqp-${++n}.db`);
  return { url: `sqlite:${file}`, file };
}

function errorLine(r: CliResult, code: string): string {
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  const last = lines[lines.length - 1]!;
  const m = /^stoker: error: (.+) \(code (STOKER_[A-Z_]+)\)$/.exec(last);
  expect(m, r.stderr).not.toBeNull();
  expect(m![2]).toBe(code);
  return m![1]!;
}

const engine = (amqp: string, store: string, env: Record<string, string> = {}) =>
  runCli(built, ['engine', '--flows', flows, '--store', store, '--amqp', amqp], { cwd: dir.path, timeoutMs: 30_000, env });

describe('stoker engine --amqp with bad input', () => {
  it.each([
    ['http://guest:guest@127.0.0.1:5672/', 'the scheme must be amqp: or amqps:, not http:'],
    ['not a url', 'it does not parse as a URL'],
    ['amqp://', 'it names no host'],
    ['amqp://guest:secret@127.0.0.1:99999/', 'does not parse as a URL'],
  ])('malformed URL %s: exit 2, names the problem, opens nothing', async (url, why) => {
    const store = fresh();
    const r = await engine(url, store.url);
    expect(r.code, r.stderr).toBe(2);
    expect(errorLine(r, 'STOKER_AMQP_URL_INVALID')).toContain(why);
    expect(r.stderr).not.toContain('secret');
    expect(existsSync(store.file)).toBe(false);
  });

  it('the URL may come from STOKER_AMQP', async () => {
    const store = fresh();
    const r = await runCli(built, ['engine', '--flows', flows, '--store', store.url], {
      cwd: dir.path,
      env: { STOKER_AMQP: 'ftp://127.0.0.1/' },
    });
    expect(r.code).toBe(2);
    errorLine(r, 'STOKER_AMQP_URL_INVALID');
  });

  it('a closed port: exit 9 at once', async () => {
    const store = fresh();
    const r = await engine('amqp://guest:guest@127.0.0.1:1/', store.url);
    expect(r.code, r.stderr).toBe(9);
    expect(errorLine(r, 'STOKER_AMQP_UNREACHABLE')).toContain('ECONNREFUSED');
    expect(existsSync(store.file)).toBe(false);
  });

  it('a server that never answers: exit 9 after the connect timeout, no hang', async () => {
    const store = fresh();
    const r = await engine(`amqp://guest:secret@127.0.0.1:${silentPort}/`, store.url);
    expect(r.code, r.stderr).toBe(9);
    expect(errorLine(r, 'STOKER_AMQP_UNREACHABLE')).toContain('no answer within 5000 ms');
    expect(r.stderr).not.toContain('secret');
    expect(existsSync(store.file)).toBe(false);
  });

  it('wrong credentials: exit 9, STOKER_AMQP_AUTH_FAILED, the password is not shown', async (ctx) => {
    const reason = await amqpUnreachable();
    if (reason !== null) {
      if (process.env.STOKER_REQUIRE_SERVICES === '1') throw new Error(reason);
      console.warn(`SKIP amqp: ${reason}`);
      return ctx.skip();
    }
    const url = new URL(amqpBaseUrl());
    url.password = 'not-the-password-42';
    const store = fresh();
    const r = await engine(url.toString(), store.url);
    expect(r.code, r.stderr).toBe(9);
    expect(errorLine(r, 'STOKER_AMQP_AUTH_FAILED')).toContain('refused the credentials');
    expect(r.stderr).not.toContain('not-the-password-42');
    expect(existsSync(store.file)).toBe(false);
  });

  it('a virtual host that does not exist: exit 9, says to check the virtual host', async (ctx) => {
    if ((await amqpUnreachable()) !== null) return ctx.skip();
    const url = new URL(amqpBaseUrl());
    url.pathname = '/stoker_no_such_vhost';
    const r = await engine(url.toString(), fresh().url);
    expect(r.code, r.stderr).toBe(9);
    expect(errorLine(r, 'STOKER_AMQP_UNREACHABLE')).toContain('virtual host');
  });

  it('stoker run --amqp fails the same way before starting a run', async () => {
    const store = fresh();
    const r = await runCli(built, ['run', 'noop', '--flows', flows, '--store', store.url, '--amqp', 'amqp://guest:guest@127.0.0.1:1/'], {
      cwd: dir.path,
    });
    expect(r.code).toBe(9);
    errorLine(r, 'STOKER_AMQP_UNREACHABLE');
  });
});

describe('stoker worker with bad input', () => {
  const worker = (args: string[], env: Record<string, string> = {}) =>
    runCli(built, ['worker', '--flows', flows, ...args], { cwd: dir.path, env });

  it('no --amqp: exit 2', async () => {
    const r = await worker([]);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CLI_USAGE')).toContain('needs --amqp');
  });

  it('no signing key: exit 2, says where the key comes from', async () => {
    const r = await worker(['--amqp', 'amqp://guest:guest@127.0.0.1:1/']);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CLI_USAGE')).toContain('STOKER_AMQP_KEY');
  });

  it('a key shorter than 16 characters: exit 2, before connecting', async () => {
    const r = await worker(['--amqp', 'amqp://guest:guest@127.0.0.1:1/', '--tasks', 'nothing'], { STOKER_AMQP_KEY: 'short' });
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_AMQP_KEY_INVALID')).toContain('at least 16 characters, got 5');
  });

  it('an unknown task name: exit 2, lists the tasks', async () => {
    const r = await worker(['--amqp', 'amqp://guest:guest@127.0.0.1:1/', '--tasks', 'nope'], { STOKER_AMQP_KEY: 'k'.repeat(20) });
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CONFIG_INVALID')).toContain('no task named nope (tasks: nothing)');
  });

  it('--tasks naming only some tasks of a shared queue: exit 2, names the queue and the tasks left out, before connecting', async () => {
    const shared = writeFile(
      dir.path,
      'shared-flows.mjs',
      `import { task, unordered } from ${JSON.stringify(built.flowIndexUrl)};\n` +
        `const t = (name) => task({ name, remote: { queue: 'pool' }, execute: () => null });\n` +
        `export default [unordered('shared', [t('sa'), t('sb'), t('sc')])];\n`,
    );
    const r = await runCli(built, ['worker', '--flows', shared, '--amqp', 'amqp://guest:guest@127.0.0.1:1/', '--tasks', 'sb'], {
      cwd: dir.path,
      env: { STOKER_AMQP_KEY: 'k'.repeat(20) },
    });
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CONFIG_INVALID')).toContain('queue pool is shared by tasks the worker leaves out: sa, sc (it executes sb)');
  });

  it('an unreachable broker: exit 9', async () => {
    const r = await worker(['--amqp', 'amqp://guest:guest@127.0.0.1:1/', '--tasks', 'nothing'], { STOKER_AMQP_KEY: 'k'.repeat(20) });
    expect(r.code).toBe(9);
    errorLine(r, 'STOKER_AMQP_UNREACHABLE');
  });
});
