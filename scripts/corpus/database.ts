/**
 * One fresh database per case: a SQLite file in a temp directory (the default), or, with
 * `--store URL`, a database of its own on that PostgreSQL or MySQL/MariaDB server (created
 * from the URL's credentials, dropped afterwards), the way test/helpers/databases.ts makes
 * them for the test suites.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';

export interface CaseDatabase {
  /** the store URL of the case's database */
  url: string;
  /** a scratch directory of the case (logs, files for `template validate`) */
  dir: string;
  /** drops the database; keeps the directory (and a SQLite file) when `keepFiles` */
  drop(keepFiles: boolean): Promise<void>;
}

function uniqueName(caseName: string): string {
  return `stoker_corpus_${caseName.slice(0, 3)}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function withMysql<T>(url: string, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const u = new URL(url);
  const c = await mysql.createConnection({
    host: u.hostname,
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    connectTimeout: 5_000,
  });
  c.on('error', () => undefined);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * A database for one case. `serverUrl` is an admin URL of a server (`postgres://…`,
 * `mysql://…`, `mariadb://…`) or undefined for SQLite.
 */
export async function createCaseDatabase(caseName: string, serverUrl: string | undefined): Promise<CaseDatabase> {
  const dir = mkdtempSync(join(tmpdir(), `stoker-corpus-${caseName.slice(0, 3)}-`));
  const removeDir = (keep: boolean) => {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  if (serverUrl === undefined) {
    return { url: `sqlite:${join(dir, 'stoker.db')}`, dir, drop: async (keep) => removeDir(keep) };
  }
  const scheme = new URL(serverUrl).protocol.replace(/:$/, '');
  const name = uniqueName(caseName);
  if (scheme === 'postgres' || scheme === 'postgresql') {
    await withPg(serverUrl, (c) => c.query(`CREATE DATABASE ${name}`));
    return {
      url: withDatabase(serverUrl, name),
      dir,
      async drop(keep) {
        await withPg(serverUrl, async (c) => {
          await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
          await c.query(`DROP DATABASE IF EXISTS ${name}`);
        });
        removeDir(keep);
      },
    };
  }
  if (scheme === 'mysql' || scheme === 'mariadb') {
    await withMysql(serverUrl, (c) => c.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`));
    return {
      url: withDatabase(serverUrl, name),
      dir,
      async drop(keep) {
        await withMysql(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name}`));
        removeDir(keep);
      },
    };
  }
  removeDir(false);
  throw new Error(`--store: unsupported scheme "${scheme}" (postgres://, mysql:// or mariadb://; SQLite is the default)`);
}
