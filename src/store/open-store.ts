/**
 * Opens a {@link Store} from a URL, choosing the adapter by scheme. Drivers are loaded with
 * a dynamic `import()` only when their scheme is used, so importing Stoker never loads
 * better-sqlite3, pg or mysql2.
 *
 * Accepted forms:
 * - `sqlite:PATH` (relative or absolute), `sqlite:///absolute/path`, `sqlite::memory:`
 * - `postgres://user:password@host:port/database` (or `postgresql://`)
 * - `mysql://user:password@host:port/database` (or `mariadb://`)
 *
 * The connection is verified (`SELECT` of the database clock) before the store is returned;
 * migrations are *not* run: call `store.migrate()`.
 *
 * @example
 * ```ts
 * const store = await openStore(process.env.STOKER_STORE ?? 'sqlite:./stoker.db');
 * await store.migrate();
 * ```
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { StoreError, ValidationError, isStokerError } from '../errors.js';
import type { Store } from './store.js';

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** table name prefix, default `stoker_` */
  tablePrefix?: string;
  /** maximum pooled connections (PostgreSQL, MySQL), default 10 */
  poolSize?: number;
  /** PostgreSQL schema for Stoker's tables (created by migrate) */
  schema?: string;
  /** names the connections (`application_name` / `program_name` = `stoker-<role>`), default `store` */
  role?: string;
  /**
   * SQLite: create the database file (and its folder) when it does not exist (default
   * true). With false, a missing file is `STOKER_STORE_NOT_MIGRATED` and nothing is
   * created: what commands that only read or use an existing store pass.
   */
  create?: boolean;
}

const ACCEPTED_FORMS =
  'accepted forms: sqlite:PATH, sqlite:///absolute/path, sqlite::memory:, ' +
  'postgres://user:password@host:port/database (or postgresql://), ' +
  'mysql://user:password@host:port/database (or mariadb://)';

/** The dialect and location a store URL names (parsed without loading any driver). */
export type StoreLocation = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string } | { dialect: 'mysql'; url: string };

/**
 * Parses a store URL; throws STOKER_STORE_URL_INVALID (listing the accepted forms) when it is
 * malformed or names an unknown scheme. The password never appears in the message.
 *
 * @example
 * ```ts
 * parseStoreUrl('sqlite:///var/lib/stoker.db'); // { dialect: 'sqlite', path: '/var/lib/stoker.db' }
 * ```
 */
export function parseStoreUrl(url: string): StoreLocation {
  const invalid = (why: string): StoreError =>
    new StoreError('STOKER_STORE_URL_INVALID', `store URL ${redact(url)} ${why}; ${ACCEPTED_FORMS}`, { details: { url: redact(url) } });
  if (typeof url !== 'string' || url.trim() === '') throw invalid('is empty');
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url);
  if (!m) throw invalid('has no scheme');
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'sqlite') {
    const rest = url.slice(m[0].length);
    if (rest === ':memory:') return { dialect: 'sqlite', path: ':memory:' };
    // sqlite:///abs/path → /abs/path; sqlite://rel/path → rel/path; sqlite:path → path
    const path = rest.startsWith('//') ? rest.slice(2) : rest;
    if (path === '') throw invalid('has no path');
    if (path.includes('\0')) throw invalid('has a NUL byte in its path');
    return { dialect: 'sqlite', path };
  }
  if (scheme === 'postgres' || scheme === 'postgresql' || scheme === 'mysql' || scheme === 'mariadb') {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw invalid('is malformed');
    }
    if (!url.slice(m[0].length).startsWith('//')) throw invalid('must start with ' + scheme + '://');
    if (u.port !== '' && !(Number(u.port) > 0 && Number(u.port) < 65536)) throw invalid('has an invalid port');
    const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
    if (database.includes('/')) throw invalid('has more than one path segment (expected /database)');
    if (scheme === 'mysql' || scheme === 'mariadb') {
      if (!u.hostname) throw invalid('has no host');
      if (!database) throw invalid('names no database');
      return { dialect: 'mysql', url };
    }
    return { dialect: 'postgres', url };
  }
  throw invalid(`has the unknown scheme "${scheme}:"`);
}

/**
 * Opens and verifies a store. Fails with STOKER_STORE_URL_INVALID for a bad URL and with
 * STOKER_STORE_UNREACHABLE (naming host:port/database and the cause) when the database
 * cannot be reached or refuses the credentials, within about 5 s.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const where = parseStoreUrl(url);
  if (options.schema !== undefined && where.dialect !== 'postgres') {
    throw new ValidationError(
      'STOKER_CONFIG_INVALID',
      `the schema option is only supported on PostgreSQL (the store URL is ${where.dialect})`,
    );
  }
  let store: Store & { ping?: () => Promise<void> };
  try {
    store = await construct(where, options);
  } catch (e) {
    if (isStokerError(e)) throw e;
    throw new StoreError(
      'STOKER_STORE_UNREACHABLE',
      `cannot open the store at ${redact(url)}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  try {
    if (store.ping) await store.ping();
    else await store.now();
  } catch (e) {
    await store.close().catch(() => undefined);
    if (isStokerError(e)) throw e;
    throw new StoreError(
      'STOKER_STORE_UNREACHABLE',
      `cannot open the store at ${redact(url)}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  return store;
}

async function construct(where: StoreLocation, options: OpenStoreOptions): Promise<Store & { ping?: () => Promise<void> }> {
  switch (where.dialect) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return new SqliteStore({
        path: where.path,
        isPidAlive,
        localProcesses: {
          host: () => hostname(),
          selfPid: process.pid,
          isStopped: isStoppedProcess,
          kill: (pid) => process.kill(pid, 'SIGKILL'),
        },
        ...(options.tablePrefix !== undefined ? { tablePrefix: options.tablePrefix } : {}),
        ...(options.create !== undefined ? { create: options.create } : {}),
      });
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres/postgres-store.js');
      return new PostgresStore({
        connectionString: where.url,
        ...(options.tablePrefix !== undefined ? { tablePrefix: options.tablePrefix } : {}),
        ...(options.poolSize !== undefined ? { poolSize: options.poolSize } : {}),
        ...(options.schema !== undefined ? { schema: options.schema } : {}),
        ...(options.role !== undefined ? { role: options.role } : {}),
      });
    }
    case 'mysql': {
      const { MysqlStore } = await import('./mysql/mysql-store.js');
      return new MysqlStore({
        uri: where.url,
        ...(options.tablePrefix !== undefined ? { tablePrefix: options.tablePrefix } : {}),
        ...(options.poolSize !== undefined ? { poolSize: options.poolSize } : {}),
        ...(options.role !== undefined ? { role: options.role } : {}),
      });
    }
  }
}

/**
 * Is the engine process `pid`, registered at `startedAt`, alive on this host? (SQLite engines
 * share one host, so pids are meaningful; docs/reliability.md R11.) `kill(pid, 0)`, and on Linux also
 * `/proc/<pid>/stat`: a zombie (killed, not yet reaped by its parent) is dead, and so is a
 * process that started well after the engine registered (the pid was reused).
 */
export function isPidAlive(pid: number, startedAt?: Date): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return true; // not a pid we can check: rely on the lease
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to another user
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (stat === undefined) return true; // no /proc (not Linux), or it just exited: the lease decides
  if (stat.state === 'Z' || stat.state === 'X') return false;
  // The start time is derived from the boot time, which is only known to the second, and
  // moves with steps of the wall clock: only a clearly later start counts as a reused pid.
  if (startedAt !== undefined && startedAfter(stat, startedAt)) return false;
  return true;
}

/**
 * Is the engine process `pid`, registered at `registeredAt`, stopped on this host (state
 * `T`, SIGSTOP, or `t`, stopped by a debugger)? For the SQLite store's local supervisor
 * (docs/reliability.md R12), which SIGKILLs such a process: so false whenever in doubt, when the
 * process runs, sleeps, is gone or a zombie, when its start time is unknown (no /proc: not
 * Linux), and when it started after the registration (the pid was reused).
 */
export function isStoppedProcess(pid: number, registeredAt: Date): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const stat = procStat(pid);
  if (stat === undefined || stat.startedMs === undefined) return false;
  if (stat.state !== 'T' && stat.state !== 't') return false;
  return !startedAfter(stat, registeredAt);
}

/** did the process clearly start after `at` (so it is not the one that registered then: a reused pid)? */
function startedAfter(stat: { startedMs: number | undefined }, at: Date): boolean {
  return stat.startedMs !== undefined && stat.startedMs > at.getTime() + PID_REUSE_SLACK_MS;
}

/** how much later than its engine's registration a process must have started to count as a reused pid */
const PID_REUSE_SLACK_MS = 10_000;
/** USER_HZ: the unit of /proc/<pid>/stat times, 100 on every Linux architecture Node runs on */
const CLOCK_TICKS_PER_S = 100;
let bootTimeMs: number | null | undefined;

/** State letter and start time (wall clock, ms) of a process, from /proc/<pid>/stat. */
function procStat(pid: number): { state: string; startedMs: number | undefined } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0] ?? '';
  const ticks = Number(fields[19]); // field 22, starttime
  if (bootTimeMs === undefined) {
    try {
      const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
      bootTimeMs = m ? Number(m[1]) * 1000 : null;
    } catch {
      bootTimeMs = null;
    }
  }
  const startedMs = bootTimeMs === null || !Number.isFinite(ticks) ? undefined : bootTimeMs + (ticks * 1000) / CLOCK_TICKS_PER_S;
  return { state, startedMs };
}

/** The URL with its password replaced, for messages. */
function redact(url: string): string {
  if (typeof url !== 'string') return String(url);
  return url.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}
