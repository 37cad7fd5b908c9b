/**
 * A private, throwaway RabbitMQ node for the chaos tests that stop the broker itself
 * (docs/amqp.md, "Remote tasks"; issue 12: `rabbitmqctl stop_app` / `start_app` mid-run).
 * The shared broker on 5672 is never touched: the node is named
 * `stoker-test-<pid>-<n>@localhost`, listens on 127.0.0.1 on a free port, keeps its
 * database and logs in a fresh temp directory, and is stopped (then SIGKILLed) and its
 * directory removed by `destroy()`, or by a process 'exit' hook when a test fails first.
 *
 * How it runs beside the shared node:
 * - epmd is shared (one per host; nodes register under their names);
 * - the Erlang cookie is the `rabbitmq` user's (/var/lib/rabbitmq/.erlang.cookie): when we
 *   are root the node runs as that user with that HOME, and `rabbitmqctl` (which su's to
 *   that user when run as root) reads the same cookie;
 * - its own config file (guest may log in over loopback), an empty plugin list (no
 *   management listener on 15672), and `RABBITMQ_CONF_ENV_FILE=/dev/null` so that the host's
 *   rabbitmq-env.conf (NODENAME, ports) does not apply;
 * - ports: AMQP and distribution ports are free ones, never 35672-35682, which the CLI tools
 *   use for their own distribution connections (25672 + 10000).
 *
 * Binaries: `STOKER_RABBITMQ_SERVER` (default /usr/lib/rabbitmq/bin/rabbitmq-server, the
 * script without the root wrapper) and `STOKER_TEST_RABBITMQCTL` (default `rabbitmqctl`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { freePort } from './private-server.js';

const run = promisify(execFile);
const SERVER = process.env.STOKER_RABBITMQ_SERVER || '/usr/lib/rabbitmq/bin/rabbitmq-server';
const ctl = (): string => process.env.STOKER_TEST_RABBITMQCTL ?? 'rabbitmqctl';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** uid, gid and home of the OS user `rabbitmq`, or null */
function rabbitmqUser(): { uid: number; gid: number; home: string } | null {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('rabbitmq:'));
    if (!line) return null;
    const [, , uid, gid, , home] = line.split(':');
    return { uid: Number(uid), gid: Number(gid), home: home ?? '/var/lib/rabbitmq' };
  } catch {
    return null;
  }
}

/**
 * Why a private node cannot be started here, or null. With `STOKER_REQUIRE_SERVICES=1` it
 * throws instead (as test/chaos/private-server.ts does).
 */
export function privateBrokerUnavailable(): string | null {
  let reason: string | null = null;
  try {
    accessSync(SERVER, constants.X_OK);
  } catch {
    reason = `missing ${SERVER}`;
  }
  if (reason === null && process.getuid?.() === 0 && !rabbitmqUser()) reason = 'running as root and there is no OS user "rabbitmq"';
  if (reason !== null && process.env.STOKER_REQUIRE_SERVICES === '1')
    throw new Error(`STOKER_REQUIRE_SERVICES=1 and a private RabbitMQ node cannot be started: ${reason}`);
  return reason;
}

/** a free port outside the CLI tools' distribution range */
async function brokerPort(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p < 35672 || p > 35682) return p;
  }
}

const live = new Set<PrivateBroker>();
let hooked = false;

let counter = 0;

export class PrivateBroker {
  readonly node = `stoker-test-${process.pid}-${++counter}@localhost`;
  readonly dir = mkdtempSync(join(tmpdir(), 'stoker-private-rabbitmq-'));
  port = 0;
  private child: ChildProcess | null = null;

  /** guest on the default virtual host of this node */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}/`;
  }

  /** Starts the node and waits until its AMQP listener answers (bounded by `timeoutMs`). */
  async start(timeoutMs = 120_000): Promise<void> {
    this.port = await brokerPort();
    const dist = await brokerPort();
    writeFileSync(join(this.dir, 'rabbitmq.conf'), 'loopback_users = none\n');
    writeFileSync(join(this.dir, 'enabled_plugins'), '[].\n');
    const user = process.getuid?.() === 0 ? rabbitmqUser() : null;
    if (user) for (const f of ['', 'rabbitmq.conf', 'enabled_plugins']) chownSync(join(this.dir, f), user.uid, user.gid);
    live.add(this);
    if (!hooked) {
      hooked = true;
      process.on('exit', () => {
        for (const b of live) b.destroySync();
      });
    }
    this.child = spawn(SERVER, [], {
      cwd: this.dir,
      detached: true,
      stdio: 'ignore',
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      env: {
        ...process.env,
        ...(user ? { HOME: user.home } : {}),
        RABBITMQ_NODENAME: this.node,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(this.port),
        RABBITMQ_DIST_PORT: String(dist),
        RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
        RABBITMQ_LOG_BASE: join(this.dir, 'log'),
        RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq.conf'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
        RABBITMQ_CONF_ENV_FILE: '/dev/null',
      },
    });
    this.child.unref();
    await this.awaitUp(timeoutMs);
  }

  /** `rabbitmqctl -n <node> stop_app`: every connection is closed, the port stops listening; the node stays */
  async stopApp(): Promise<void> {
    await this.ctl('stop_app');
  }

  /** `rabbitmqctl -n <node> start_app`, then waits until the AMQP port answers */
  async startApp(timeoutMs = 120_000): Promise<void> {
    await this.ctl('start_app');
    await this.awaitUp(timeoutMs);
  }

  /** `rabbitmqctl -n <node> <args…>` (stdout) */
  async ctl(...args: string[]): Promise<string> {
    const { stdout } = await run(ctl(), ['-q', '-n', this.node, ...args], { timeout: 120_000 });
    return stdout;
  }

  /** Stops the node (gracefully, then SIGKILL of its process group) and removes its directory. */
  async destroy(): Promise<void> {
    if (this.child?.pid !== undefined && this.child.exitCode === null) {
      await this.ctl('stop').catch(() => undefined);
    }
    this.destroySync();
  }

  destroySync(): void {
    const pid = this.child?.pid;
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.child = null;
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async awaitUp(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined)
        throw new Error(`private RabbitMQ node ${this.node} exited (${this.child.exitCode}); logs in ${this.dir}/log`);
      try {
        await this.ctl('await_startup', '--timeout', '30');
        const c = await amqp.connect(this.url, { timeout: 3000 });
        await c.close();
        return;
      } catch (e) {
        if (Date.now() > until)
          throw new Error(
            `private RabbitMQ node ${this.node} not up within ${timeoutMs} ms: ${e instanceof Error ? e.message.split('\n')[0] : e}`,
          );
        await sleep(500);
      }
    }
  }
}
