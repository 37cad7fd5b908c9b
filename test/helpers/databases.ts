/**
 * Per-test-file database isolation for the integration, chaos and bench suites.
 *
 * Every call of {@link createTestStore} gets its own database: a fresh PostgreSQL or MySQL
 * database (`stoker_t_<random>`) or a SQLite file in a fresh temp directory, migrated, and
 * dropped again by `drop()`. The servers come from env:
 *
 * - `STOKER_TEST_DIALECTS`: comma list, default `sqlite,postgres,mysql`;
 * - `STOKER_TEST_POSTGRES_URL`: an admin URL, default `postgres://postgres@127.0.0.1:5432/postgres`;
 * - `STOKER_TEST_MYSQL_URL`: an admin URL, default `mysql://root@127.0.0.1:3306/test`;
 * - `STOKER_REQUIRE_SERVICES=1`: an unreachable server fails the suite instead of skipping it.
 *
 * @example
 * ```ts
 * await describeEachDialect('store contract', (db) => {
 *   it('starts a run', async () => { await db.store.startRun(…); });
 * });
 * ```
 */
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/open-store.js';
import type { Store } from '../../src/store/store.js';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';
const ALL_DIALECTS: readonly Dialect[] = ['sqlite', 'postgres', 'mysql'];

export interface TestStore {
  dialect: Dialect;
  /** the store of this database (migrated unless asked otherwise) */
  store: Store;
  /** a URL for `openStore` (engine subprocesses connect to the same database with it) */
  url: string;
  /** closes every store opened on this database and drops the database */
  drop(): Promise<void>;
  /** another store on the same database (e.g. another table prefix, another "process"); closed by drop() */
  open(options?: { tablePrefix?: string; migrate?: boolean; poolSize?: number }): Promise<Store>;
  /** runs raw SQL on the database, outside any store (to tamper with rows in tests) */
  exec(sql: string): Promise<Record<string, unknown>[]>;
}

/** The dialects to test, from `STOKER_TEST_DIALECTS` (default all three). */
export function testDialects(): Dialect[] {
  const raw = process.env.STOKER_TEST_DIALECTS;
  if (raw === undefined || raw.trim() === '') return [...ALL_DIALECTS];
  const out: Dialect[] = [];
  for (const d of raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)) {
    const dialect = d === 'postgresql' ? 'postgres' : d === 'mariadb' ? 'mysql' : d;
    if (!ALL_DIALECTS.includes(dialect as Dialect))
      throw new Error(`STOKER_TEST_DIALECTS names an unknown dialect "${d}" (known: ${ALL_DIALECTS.join(', ')})`);
    if (!out.includes(dialect as Dialect)) out.push(dialect as Dialect);
  }
  return out;
}

export function postgresAdminUrl(): string {
  return process.env.STOKER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function mysqlAdminUrl(): string {
  return process.env.STOKER_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
}

function requireServices(): boolean {
  return process.env.STOKER_REQUIRE_SERVICES === '1';
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function uniqueName(): string {
  return `stoker_t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

function mysqlConnectOptions(url: string, database?: string): mysql.ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    database: database ?? (decodeURIComponent(u.pathname.slice(1)) || undefined),
    connectTimeout: 3_000,
  };
}

async function withPgAdmin<T>(fn: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const url = database === undefined ? postgresAdminUrl() : withDatabase(postgresAdminUrl(), database);
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function withMysqlAdmin<T>(fn: (c: mysql.Connection) => Promise<T>, database?: string): Promise<T> {
  const c = await mysql.createConnection(mysqlConnectOptions(mysqlAdminUrl(), database));
  c.on('error', () => undefined);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const probes = new Map<Dialect, Promise<string | null>>();

/**
 * Why the dialect's server cannot be used, or null when it can. With
 * `STOKER_REQUIRE_SERVICES=1` an unreachable server throws instead.
 */
export async function probeDialect(dialect: Dialect): Promise<string | null> {
  let p = probes.get(dialect);
  if (!p) {
    p = (async () => {
      try {
        if (dialect === 'postgres') await withPgAdmin((c) => c.query('SELECT 1'));
        if (dialect === 'mysql') await withMysqlAdmin((c) => c.query('SELECT 1'));
        return null;
      } catch (e) {
        const err = e as Error & { code?: string; errors?: Error[] };
        const detail = err.message || err.errors?.map((x) => x.message).join('; ') || err.code || String(e);
        return `${dialect === 'postgres' ? postgresAdminUrl() : mysqlAdminUrl()} is unavailable: ${detail}`;
      }
    })();
    probes.set(dialect, p);
  }
  const reason = await p;
  if (reason !== null && requireServices()) throw new Error(`STOKER_REQUIRE_SERVICES=1 and ${reason}`);
  return reason;
}

/**
 * A fresh, migrated store on its own database; null (after printing `SKIP <dialect>: …`)
 * when the server is unreachable and `STOKER_REQUIRE_SERVICES` is not 1.
 */
export async function createTestStore(
  dialect: Dialect,
  options: { migrate?: boolean; tablePrefix?: string } = {},
): Promise<TestStore | null> {
  const reason = await probeDialect(dialect);
  if (reason !== null) {
    console.warn(`SKIP ${dialect}: ${reason}`);
    return null;
  }
  const opened: Store[] = [];
  let url: string;
  let dropDatabase: () => Promise<void>;
  let exec: (sql: string) => Promise<Record<string, unknown>[]>;

  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'stoker-test-'));
    const path = join(dir, 'stoker.db');
    url = `sqlite:${path}`;
    dropDatabase = async () => rmSync(dir, { recursive: true, force: true });
    exec = async (sql) => {
      const db = new Database(path);
      try {
        db.pragma('busy_timeout = 5000');
        const stmt = db.prepare(sql);
        return stmt.reader ? (stmt.all() as Record<string, unknown>[]) : (stmt.run(), []);
      } finally {
        db.close();
      }
    };
  } else if (dialect === 'postgres') {
    const name = uniqueName();
    await withPgAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    url = withDatabase(postgresAdminUrl(), name);
    dropDatabase = async () => {
      await withPgAdmin(async (c) => {
        const v = Number((await c.query('SHOW server_version_num')).rows[0].server_version_num);
        if (v >= 130000) {
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        } else {
          await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
          await c.query(`DROP DATABASE IF EXISTS ${name}`);
        }
      });
    };
    exec = (sql) => withPgAdmin(async (c) => (await c.query(sql)).rows as Record<string, unknown>[], name);
  } else {
    const name = uniqueName();
    await withMysqlAdmin((c) => c.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`));
    url = withDatabase(mysqlAdminUrl(), name);
    dropDatabase = async () => {
      await withMysqlAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name}`));
    };
    exec = (sql) =>
      withMysqlAdmin(async (c) => {
        const [rows] = await c.query(sql);
        return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
      }, name);
  }

  const open: TestStore['open'] = async (o = {}) => {
    const store = await openStore(url, {
      ...(o.tablePrefix !== undefined ? { tablePrefix: o.tablePrefix } : {}),
      ...(o.poolSize !== undefined ? { poolSize: o.poolSize } : {}),
    });
    opened.push(store);
    if (o.migrate !== false) await store.migrate();
    return store;
  };

  let store: Store;
  try {
    store = await open({
      ...(options.tablePrefix !== undefined ? { tablePrefix: options.tablePrefix } : {}),
      migrate: options.migrate !== false,
    });
  } catch (e) {
    await dropDatabase().catch(() => undefined);
    throw e;
  }
  let dropped = false;
  return {
    dialect,
    store,
    url,
    open,
    exec,
    async drop() {
      if (dropped) return;
      dropped = true;
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      await dropDatabase();
    },
  };
}

/** What a {@link describeEachDialect} body sees: the dialect's test database, ready inside tests. */
export interface DialectContext {
  readonly dialect: Dialect;
  /** the TestStore (available in hooks and tests, not while the describe body runs) */
  readonly db: TestStore;
  readonly store: Store;
  readonly url: string;
}

/**
 * One `describe` per dialect of {@link testDialects}, each with its own database created in
 * `beforeAll` and dropped in `afterAll`. A dialect whose server is unreachable is skipped
 * (printing `SKIP <dialect>: <reason>`), or fails with `STOKER_REQUIRE_SERVICES=1`.
 * Await it at the top level of the test file.
 */
export async function describeEachDialect(name: string, fn: (ctx: DialectContext) => void): Promise<void> {
  // loaded here, not at the top: bench/ and fixtures import this module outside vitest
  const { afterAll, beforeAll, describe } = await import('vitest');
  for (const dialect of testDialects()) {
    const reason = await probeDialect(dialect);
    if (reason !== null) console.warn(`SKIP ${dialect}: ${reason}`);
    let current: TestStore | null = null;
    const ctx: DialectContext = {
      dialect,
      get db() {
        if (!current) throw new Error(`the ${dialect} test database is not ready (use it inside hooks and tests)`);
        return current;
      },
      get store() {
        return this.db.store;
      },
      get url() {
        return this.db.url;
      },
    };
    describe.skipIf(reason !== null)(`${name} on ${dialect}`, () => {
      beforeAll(async () => {
        current = await createTestStore(dialect);
      });
      afterAll(async () => {
        await current?.drop();
        current = null;
      });
      fn(ctx);
    });
  }
}
