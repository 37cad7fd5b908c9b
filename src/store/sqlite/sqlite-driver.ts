/**
 * The SQLite driver of the shared statements (src/store/sql/driver.ts), over one
 * better-sqlite3 connection in WAL mode. One writer at a time: every write is a short
 * `BEGIN IMMEDIATE` transaction, and an in-process mutex keeps async callers of this
 * connection from interleaving their transactions. Statements are prepared once and
 * cached by text, and run synchronously: a session's promise is already settled when it is
 * returned, so a transaction never yields the connection to anyone else.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreError } from '../../errors.js';
import { AsyncMutex } from '../async-mutex.js';
import { withPrefix } from '../migration.js';
import type { MigrationSession, Raw, SqlDriver, SqlSession, TxState } from '../sql/driver.js';
import { inTransaction } from '../sql/transactions.js';
import { WakeFile } from './wake-file.js';

export class SqliteDriver implements SqlDriver {
  readonly label = 'SQLite';
  readonly db: Database.Database;
  /** cross-process wake-ups (protocol 6, ARCHITECTURE.md); null for an in-memory database */
  readonly wakeFile: WakeFile | null;
  /** statements on this connection (inside a `read` or `write`, or alone: see {@link direct}) */
  readonly session: MigrationSession;
  /**
   * Statements run at once, not behind the mutex (where queued writes may each wait
   * busy_timeout for a lock another process holds). For reads only: in WAL mode they need
   * no lock, and a read inside another caller's open transaction on this connection is
   * harmless.
   */
  readonly direct: SqlSession;
  /** a transaction in progress made atoms claimable that others should hear of at its commit */
  wakeAtCommit = false;
  private readonly mutex = new AsyncMutex();
  private readonly statements = new Map<string, Database.Statement>();
  private isClosed = false;

  constructor(
    path: string,
    private readonly prefix: string,
    busyTimeoutMs: number,
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    try {
      this.db = new Database(path);
    } catch (cause) {
      throw new StoreError('STOKER_STORE_UNREACHABLE', `cannot open SQLite database ${path}: ${(cause as Error).message}`, { cause });
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    this.wakeFile = path === ':memory:' ? null : new WakeFile(`${path}-${prefix}wake`);
    this.session = {
      rows: async (_purpose, text, params) => this.all(text, params),
      exec: async (_purpose, text, params) => this.run(text, params),
      ddl: async (_purpose, text) => {
        try {
          this.db.exec(withPrefix(text, this.prefix));
        } catch (e) {
          throw wrap(e);
        }
      },
    };
    this.direct = this.session;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  assertOpen(): void {
    if (this.isClosed) throw new StoreError('STOKER_STORE_CLOSED', 'the store is closed');
  }

  /** The prepared statement of a text (`{p}` resolved), prepared once. */
  private stmt(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (!s) {
      s = this.db.prepare(withPrefix(text, this.prefix));
      this.statements.set(text, s);
    }
    return s;
  }

  private all(text: string, params: readonly unknown[]): Raw[] {
    try {
      return this.stmt(text).all(...params) as Raw[];
    } catch (e) {
      throw wrap(e);
    }
  }

  private run(text: string, params: readonly unknown[]): number {
    try {
      return this.stmt(text).run(...params).changes;
    } catch (e) {
      throw wrap(e);
    }
  }

  /** Reads behind the mutex (never interleaved with another caller's transaction). */
  read<T>(_purpose: string, fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.mutex.run(async () => {
      try {
        return await fn(this.session);
      } catch (e) {
        throw wrap(e);
      }
    });
  }

  write<T>(purpose: string, fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    return this.transaction(purpose, fn);
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction, serialised with the other callers of this store. */
  transaction<T>(_purpose: string, fn: (s: MigrationSession, state: TxState) => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.mutex.run(async () => {
      // (a failure to begin, SQLITE_BUSY after busy_timeout, reaches the caller as it is)
      this.db.exec('BEGIN IMMEDIATE');
      this.wakeAtCommit = false;
      try {
        return await inTransaction(
          {
            session: this.session,
            begin: async () => undefined,
            commit: async () => {
              this.db.exec('COMMIT');
              if (this.wakeAtCommit) this.wakeFile?.touch();
            },
            rollback: async () => {
              if (this.db.inTransaction) this.db.exec('ROLLBACK');
              return true;
            },
            release: async () => {
              this.wakeAtCommit = false;
            },
          },
          { done: false, failure: undefined },
          fn,
        );
      } catch (e) {
        throw wrap(e);
      }
    });
  }

  /** One writer at a time: `BEGIN IMMEDIATE` is the migration lock. Cached statements are dropped after (the schema changed). */
  async migrating<T>(fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    try {
      return await this.transaction('migrate', fn);
    } finally {
      this.statements.clear();
    }
  }

  /** Closes the connection once every queued caller is done. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    await this.mutex.run(async () => {
      this.isClosed = true;
      this.db.close();
    });
  }
}

/** A SQLite error as STOKER_STORE_QUERY_FAILED; anything else as it is. */
function wrap(e: unknown): unknown {
  if (
    e instanceof Error &&
    'code' in e &&
    typeof (e as { code: unknown }).code === 'string' &&
    (e as { code: string }).code.startsWith('SQLITE_')
  ) {
    return new StoreError('STOKER_STORE_QUERY_FAILED', `SQLite: ${e.message}`, {
      cause: e,
      details: { sqliteCode: (e as { code: string }).code },
    });
  }
  return e;
}
