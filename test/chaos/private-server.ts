/**
 * Private, throwaway database servers for the chaos scenarios that restart or crash the
 * server itself (docs/reliability.md C3, C4). The shared servers on 5432/3306 are never touched: each
 * {@link PrivateServer} lives in a fresh temp directory (`/tmp/stoker-private-<kind>-*`),
 * listens on 127.0.0.1 on a random free port, keeps its unix socket in that directory, and
 * is removed again (process and directory) by `destroy()`, or by a process 'exit' hook when
 * a test fails before its afterAll.
 *
 * - PostgreSQL: `initdb` (trust auth, superuser `postgres`), `pg_ctl start|stop -m
 *   fast|immediate`; `kill9` SIGKILLs the postmaster and its children. PostgreSQL refuses
 *   to run as root, so when we are root every command runs as the OS user `postgres`.
 * - MariaDB: `mariadb-install-db --auth-root-authentication-method=normal` (root without a
 *   password, over TCP), `mariadbd` as a child process (as the OS user `mysql` when we are
 *   root); `fast` is `mariadb-admin shutdown`, `immediate` and `kill9` are `kill -9
 *   mariadbd` (MariaDB has no immediate shutdown mode).
 *
 * Binaries: `STOKER_PG_BINDIR` (default /usr/local/bin: initdb, pg_ctl, postgres) and
 * `STOKER_MARIADB_BINDIR` (default /usr/sbin/mariadbd, /usr/bin/mariadb-install-db and
 * mariadb-admin). Settings are small (shared_buffers, buffer pool, log files) so a start
 * takes well under a second; fsync stays on (R13: the store must not lose acknowledged
 * commits).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  appendFileSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';

export type ServerKind = 'postgres' | 'mariadb';
export type StopMode = 'fast' | 'immediate' | 'kill9';

/** `STOKER_PG_BINDIR` (default /usr/local/bin) and `STOKER_MARIADB_BINDIR` (default: mariadbd in /usr/sbin, tools in /usr/bin) */
const PG_DIR = process.env.STOKER_PG_BINDIR || '/usr/local/bin';
const MARIA_DIR = process.env.STOKER_MARIADB_BINDIR;
const BIN = {
  initdb: join(PG_DIR, 'initdb'),
  pgCtl: join(PG_DIR, 'pg_ctl'),
  postgres: join(PG_DIR, 'postgres'),
  mariadbd: join(MARIA_DIR || '/usr/sbin', 'mariadbd'),
  installDb: join(MARIA_DIR || '/usr/bin', 'mariadb-install-db'),
  admin: join(MARIA_DIR || '/usr/bin', 'mariadb-admin'),
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** uid/gid of an OS user, or null. */
function osUser(name: string): { uid: number; gid: number } | null {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${name}:`));
    if (!line) return null;
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return null;
  }
}

const isRoot = () => process.getuid?.() === 0;

/**
 * Why a private server of this kind cannot be started here, or null when it can. With
 * `STOKER_REQUIRE_SERVICES=1` a missing binary or OS user throws instead (as
 * test/helpers/databases.ts does for unreachable servers).
 */
export function privateServerUnavailable(kind: ServerKind): string | null {
  const needed = kind === 'postgres' ? [BIN.initdb, BIN.pgCtl, BIN.postgres] : [BIN.mariadbd, BIN.installDb, BIN.admin];
  const missing = needed.filter((b) => !executable(b));
  let reason: string | null = missing.length > 0 ? `missing ${missing.join(', ')}` : null;
  const user = kind === 'postgres' ? 'postgres' : 'mysql';
  if (reason === null && isRoot() && !osUser(user)) reason = `running as root and there is no OS user "${user}" to run the server as`;
  if (reason !== null && process.env.STOKER_REQUIRE_SERVICES === '1')
    throw new Error(`STOKER_REQUIRE_SERVICES=1 and a private ${kind} server cannot be started: ${reason}`);
  return reason;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** pids of the direct children of `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** the pid exists at all (a zombie too) */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** running: exists and is not a zombie */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // a zombie (exited, not yet reaped) counts as gone
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function killQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function chownTree(path: string, owner: { uid: number; gid: number }): void {
  chownSync(path, owner.uid, owner.gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) chownTree(p, owner);
    else chownSync(p, owner.uid, owner.gid);
  }
}

/** Every server still registered here; the 'exit' hook removes them synchronously. */
const live = new Set<PrivateServer>();
let hooked = false;
function track(s: PrivateServer): void {
  live.add(s);
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const srv of live) srv.destroySync();
  });
}

export interface OutageTimes {
  mode: StopMode;
  /** wall ms when the stop was issued (the outage begins) */
  stopAt: number;
  /** wall ms when the server was fully down */
  downAt: number;
  /** wall ms when the start was issued */
  startAt: number;
  /** wall ms when the server accepted connections again */
  upAt: number;
}

export abstract class PrivateServer {
  readonly kind: ServerKind;
  readonly dir: string;
  port = 0;
  protected running = false;
  private destroyed = false;

  protected constructor(kind: ServerKind) {
    this.kind = kind;
    this.dir = mkdtempSync(join(tmpdir(), `stoker-private-${kind}-`));
    track(this);
  }

  /** A store URL for `openStore` on database `db` of this server. */
  abstract url(db: string): string;
  /** Creates a database (error if it exists). */
  abstract createDatabase(name: string): Promise<void>;
  /** Runs SQL as the superuser on `db` (default: the server's admin database). */
  abstract exec(sql: string, db?: string): Promise<Record<string, unknown>[]>;
  protected abstract init(): Promise<void>;
  protected abstract launch(): Promise<void>;
  protected abstract halt(mode: StopMode): Promise<void>;
  /** pids of the server's processes (postmaster and backends / mariadbd) */
  abstract pids(): number[];
  /** the server log (tail), for failure messages */
  abstract logTail(chars?: number): string;

  get isRunning(): boolean {
    return this.running;
  }

  /** Initialises the data directory on first use, then starts the server and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.destroyed) throw new Error(`private ${this.kind} server was destroyed`);
    if (this.running) return;
    if (this.port === 0) {
      this.port = await freePort();
      await this.init();
    }
    await this.launch();
    this.running = true;
  }

  async stop(options: { mode: StopMode }): Promise<void> {
    if (!this.running) return;
    await this.halt(options.mode);
    this.running = false;
  }

  /** stop(mode), stay down `downMs`, start again; returns when each phase happened. */
  async restart(options: { mode: StopMode; downMs?: number }): Promise<OutageTimes> {
    const stopAt = Date.now();
    await this.stop({ mode: options.mode });
    const downAt = Date.now();
    const wait = (options.downMs ?? 0) - (downAt - stopAt);
    if (wait > 0) await sleep(wait);
    const startAt = Date.now();
    await this.start();
    return { mode: options.mode, stopAt, downAt, startAt, upAt: Date.now() };
  }

  /** Stops the server at once (whatever state) and removes its directory. Never throws. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    try {
      if (this.running) await this.halt('immediate');
    } catch {
      // destroySync kills what is left
    }
    this.destroySync();
  }

  /** Synchronous: SIGKILL every server process, remove the directory (for the 'exit' hook). */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    this.running = false;
    // remember every pid seen: once the postmaster is gone, its children are not found by ppid
    const seen = new Set<number>();
    for (let round = 0; round < 50; round++) {
      for (const pid of this.pids()) seen.add(pid);
      const pids = [...seen].filter(alive);
      if (pids.length === 0) break;
      for (const pid of pids) killQuietly(pid, 'SIGKILL');
      // reap our own child if it is one; otherwise just give the kernel a moment
      execFileSync('sleep', ['0.02']);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------- PostgreSQL

export class PrivatePostgres extends PrivateServer {
  private readonly owner = isRoot() ? osUser('postgres') : null;
  private readonly data: string;

  constructor() {
    super('postgres');
    this.data = join(this.dir, 'data');
  }

  url(db: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  private run(bin: string, args: string[], timeoutMs = 60_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(bin, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', HOME: this.dir },
        ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}),
        cwd: this.dir,
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`${bin} ${args.join(' ')} → ${code ?? signal}: ${out.slice(-2000)}\n${this.logTail()}`));
      });
    });
  }

  protected async init(): Promise<void> {
    if (this.owner) chownSync(this.dir, this.owner.uid, this.owner.gid);
    await this.run(BIN.initdb, ['-D', this.data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    const conf = [
      '',
      '# stoker private chaos server',
      `port = ${this.port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${this.dir}'`,
      'max_connections = 120',
      'shared_buffers = 16MB',
      'fsync = on',
      'synchronous_commit = on',
      'max_wal_size = 64MB',
      'checkpoint_timeout = 30s',
      'log_min_messages = warning',
      "log_line_prefix = '%m [%p] '",
      '',
    ].join('\n');
    appendFileSync(join(this.data, 'postgresql.conf'), conf);
  }

  protected async launch(): Promise<void> {
    // -w: returns once the server accepts connections (after crash recovery, if any)
    await this.run(BIN.pgCtl, ['start', '-D', this.data, '-w', '-t', '60', '-l', join(this.dir, 'postgres.log')]);
  }

  protected async halt(mode: StopMode): Promise<void> {
    if (mode === 'kill9') {
      // children first seen by ppid: once the postmaster is dead they cannot be found that way
      const pids = this.pids();
      for (const pid of pids) killQuietly(pid, 'SIGKILL');
      const until = Date.now() + 15_000;
      while (pids.some(alive)) {
        if (Date.now() > until) throw new Error('postgres processes survived SIGKILL');
        await sleep(20);
      }
      // A zombie postmaster (not our child: init reaps it, eventually) still answers kill(0),
      // and the next postmaster would take it for a live one that owns postmaster.pid.
      while (pids.some(exists) && Date.now() < until) await sleep(20);
      if (pids.some(exists)) rmSync(join(this.data, 'postmaster.pid'), { force: true });
      return;
    }
    await this.run(BIN.pgCtl, ['stop', '-D', this.data, '-m', mode, '-w', '-t', '60']);
  }

  /** the postmaster (from postmaster.pid) and its children */
  pids(): number[] {
    let postmaster: number;
    try {
      postmaster = Number(readFileSync(join(this.data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return [];
    }
    if (!Number.isInteger(postmaster) || postmaster <= 0 || !alive(postmaster)) return [];
    return [postmaster, ...childrenOf(postmaster)];
  }

  logTail(chars = 3000): string {
    try {
      return readFileSync(join(this.dir, 'postgres.log'), 'utf8').slice(-chars);
    } catch {
      return '';
    }
  }

  private async withClient<T>(db: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.url(db), connectionTimeoutMillis: 3_000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async createDatabase(name: string): Promise<void> {
    await this.withClient('postgres', (c) => c.query(`CREATE DATABASE ${name}`));
  }

  async exec(sql: string, db = 'postgres'): Promise<Record<string, unknown>[]> {
    return this.withClient(db, async (c) => (await c.query(sql)).rows as Record<string, unknown>[]);
  }
}

// ------------------------------------------------------------------------- MariaDB

export class PrivateMariaDb extends PrivateServer {
  private readonly owner = isRoot() ? osUser('mysql') : null;
  private readonly data: string;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor() {
    super('mariadb');
    this.data = join(this.dir, 'data');
  }

  url(db: string): string {
    return `mysql://root@127.0.0.1:${this.port}/${db}`;
  }

  private get socket(): string {
    return join(this.dir, 'mysqld.sock');
  }

  private get errorLog(): string {
    return join(this.dir, 'mysqld.err');
  }

  /** server options, shared by mariadb-install-db and mariadbd (--no-defaults must come first) */
  private serverArgs(): string[] {
    return [
      '--no-defaults',
      `--datadir=${this.data}`,
      ...(this.owner ? ['--user=mysql'] : []),
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=32M',
      '--innodb-log-file-size=16M',
      '--innodb-flush-log-at-trx-commit=1',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_general_ci',
    ];
  }

  private run(bin: string, args: string[], timeoutMs = 60_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`${bin} ${args.join(' ')} → ${code ?? signal}: ${out.slice(-2000)}`));
      });
    });
  }

  protected async init(): Promise<void> {
    mkdirSync(this.data);
    if (this.owner) chownTree(this.dir, this.owner);
    await this.run(BIN.installDb, [...this.serverArgs(), '--auth-root-authentication-method=normal', '--skip-test-db']);
  }

  protected async launch(): Promise<void> {
    const child = spawn(
      BIN.mariadbd,
      [
        ...this.serverArgs(),
        `--port=${this.port}`,
        '--bind-address=127.0.0.1',
        `--socket=${this.socket}`,
        `--pid-file=${join(this.dir, 'mysqld.pid')}`,
        `--log-error=${this.errorLog}`,
        '--skip-log-bin',
        '--performance-schema=OFF',
        '--max-connections=200',
      ],
      { stdio: 'ignore', cwd: this.dir },
    );
    this.child = child;
    let gone = false;
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        gone = true;
        resolve();
      }),
    );
    const until = Date.now() + 60_000;
    for (;;) {
      if (gone) throw new Error(`mariadbd exited during startup:\n${this.logTail()}`);
      try {
        const c = await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', connectTimeout: 1_000 });
        c.on('error', () => undefined);
        await c.query('SELECT 1');
        await c.end().catch(() => undefined);
        return;
      } catch (e) {
        if (Date.now() > until)
          throw new Error(`mariadbd did not accept connections within 60 s: ${(e as Error).message}\n${this.logTail()}`);
        await sleep(50);
      }
    }
  }

  protected async halt(mode: StopMode): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (mode === 'fast') {
      // the server may refuse while it is still starting; then fall through to the kill
      await this.run(BIN.admin, ['--no-defaults', '-h', '127.0.0.1', '-P', String(this.port), '-u', 'root', 'shutdown'], 60_000).catch(() =>
        child.kill('SIGKILL'),
      );
    } else {
      child.kill('SIGKILL');
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await this.exited;
    clearTimeout(timer);
    this.child = null;
  }

  pids(): number[] {
    const pid = this.child?.pid;
    return pid !== undefined && this.child?.exitCode === null && this.child.signalCode === null ? [pid] : [];
  }

  logTail(chars = 3000): string {
    try {
      return existsSync(this.errorLog) ? readFileSync(this.errorLog, 'utf8').slice(-chars) : '';
    } catch {
      return '';
    }
  }

  private async withConnection<T>(db: string | undefined, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: this.port,
      user: 'root',
      connectTimeout: 3_000,
      ...(db ? { database: db } : {}),
    });
    c.on('error', () => undefined);
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async createDatabase(name: string): Promise<void> {
    await this.withConnection(undefined, (c) => c.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`));
  }

  async exec(sql: string, db?: string): Promise<Record<string, unknown>[]> {
    return this.withConnection(db, async (c) => {
      const [rows] = await c.query(sql);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    });
  }
}

export function createPrivateServer(kind: ServerKind): PrivateServer {
  return kind === 'postgres' ? new PrivatePostgres() : new PrivateMariaDb();
}
