/**
 * The SQLite driver of the shared statements (src/store/sql/driver.ts), over one
 * better-sqlite3 connection in WAL mode. One writer at a time: every write is a short
 * `BEGIN IMMEDIATE` transaction, and an in-process mutex keeps async callers of this
 * connection from interleaving their transactions (and reads). Statements are prepared
 * once and cached by text, and run synchronously: a session's promise is already settled
 * when it is returned.
 *
 * Writes also take a mutex of the database file, shared by every store of this process
 * opened on it (another table prefix, a second store): between the statements of a
 * transaction the shared code awaits settled promises, and another connection of this
 * thread beginning a write then would wait in `BEGIN IMMEDIATE` for busy_timeout,
 * blocking the very event loop that would commit the first one. Reads need no write lock
 * (WAL) and do not take it. Other processes wait for the lock as usual.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StoreError } from '../../errors.js';
import { AsyncMutex } from '../async-mutex.js';
import { withPrefix } from '../migration.js';
import type { MigrationSession, Raw, SqlDriver, SqlSession, TxState } from '../sql/driver.js';
import { inTransaction, recordFailure, type TxConnection } from '../sql/transactions.js';
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
  /** the state of the transaction in progress on this connection (its session records failures there) */
  private txState: TxState | undefined;
  /** what a transaction does with this connection (one object for all of them: the steps are synchronous) */
  private readonly txConnection: TxConnection<MigrationSession>;
  /** this connection's callers, one at a time */
  private readonly mutex = new AsyncMutex();
  /** the writers of this database file in this process, one at a time */
  private readonly writers: AsyncMutex;
  private readonly file: string | null;
  private readonly statements = new Map<string, Database.Statement>();
  private isClosed = false;

  constructor(
    path: string,
    private readonly prefix: string,
    busyTimeoutMs: number,
    create = true,
  ) {
    if (path !== ':memory:' && !create && !existsSync(path)) {
      throw new StoreError(
        'STOKER_STORE_NOT_MIGRATED',
        `SQLite database ${path} does not exist: create it with \`stoker migrate --store sqlite:${path}\` (or check the path)`,
        { details: { path } },
      );
    }
    if (path !== ':memory:' && create) makeFolders(dirname(path));
    try {
      this.db = new Database(path, create ? {} : { fileMustExist: true });
    } catch (cause) {
      throw new StoreError('STOKER_STORE_UNREACHABLE', `cannot open SQLite database ${path}: ${(cause as Error).message}`, { cause });
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    this.wakeFile = path === ':memory:' ? null : new WakeFile(`${path}-${prefix}wake`);
    this.file = path === ':memory:' ? null : resolve(path);
    this.writers = writersOf(this.file);
    // inside a transaction a failed statement is also recorded in its state (see txState)
    const failed = (e: unknown): unknown => (this.txState ? recordFailure(this.txState, e) : e);
    this.session = {
      rows: async (_purpose, text, params) => {
        try {
          return this.all(text, params);
        } catch (e) {
          throw failed(e);
        }
      },
      row: async (_purpose, text, params) => {
        try {
          return this.get(text, params);
        } catch (e) {
          throw failed(e);
        }
      },
      exec: async (_purpose, text, params) => {
        try {
          return this.run(text, params);
        } catch (e) {
          throw failed(e);
        }
      },
      ddl: async (_purpose, text) => {
        try {
          this.db.exec(withPrefix(text, this.prefix));
        } catch (e) {
          throw failed(wrap(e));
        }
      },
    };
    this.txConnection = {
      session: this.session,
      commit: () => {
        this.db.exec('COMMIT');
        if (this.wakeAtCommit) this.wakeFile?.touch();
      },
      rollback: () => {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        return true;
      },
      release: () => {
        this.wakeAtCommit = false;
        this.txState = undefined;
      },
      wrapError: wrap,
    };
    this.direct = {
      rows: async (_purpose, text, params) => this.all(text, params),
      row: async (_purpose, text, params) => this.get(text, params),
      exec: async (_purpose, text, params) => this.run(text, params),
    };
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
      return this.stmt(text).all(params as unknown[]) as Raw[];
    } catch (e) {
      throw wrap(e);
    }
  }

  private get(text: string, params: readonly unknown[]): Raw | undefined {
    try {
      return this.stmt(text).get(params as unknown[]) as Raw | undefined;
    } catch (e) {
      throw wrap(e);
    }
  }

  private run(text: string, params: readonly unknown[]): number {
    try {
      return this.stmt(text).run(params as unknown[]).changes;
    } catch (e) {
      throw wrap(e);
    }
  }

  /** Reads behind the mutex (never interleaved with another caller's transaction). */
  read<T>(_purpose: string, fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    this.assertOpen();
    // (the session wraps SQLite's errors itself)
    return this.mutex.run(() => fn(this.session));
  }

  write<T>(purpose: string, fn: (s: MigrationSession) => Promise<T>): Promise<T> {
    return this.transaction(purpose, fn);
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction, serialised with the other callers of this store. */
  transaction<T>(_purpose: string, fn: (s: MigrationSession, state: TxState) => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.writers.run(() =>
      this.mutex.run(() => {
        // a failure to begin (SQLITE_BUSY after busy_timeout) is a store error like any other:
        // raw, the committer took it for a bug of its own and gave the claims up (issue 11)
        try {
          this.db.exec('BEGIN IMMEDIATE');
        } catch (e) {
          throw wrap(e);
        }
        this.wakeAtCommit = false;
        const state: TxState = { done: false, failure: undefined };
        this.txState = state;
        return inTransaction(this.txConnection, state, fn);
      }),
    );
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
    // behind the writes already queued for the file (this store's among them), then this connection's reads
    await this.writers.run(() =>
      this.mutex.run(async () => {
        if (this.isClosed) return;
        this.isClosed = true;
        this.db.close();
        releaseWriters(this.file);
      }),
    );
  }
}

/** The writers' mutex of each database file open in this process, with the number of stores using it. */
const fileWriters = new Map<string, { mutex: AsyncMutex; users: number }>();

function writersOf(file: string | null): AsyncMutex {
  if (file === null) return new AsyncMutex(); // an in-memory database is this connection's alone
  let entry = fileWriters.get(file);
  if (!entry) {
    entry = { mutex: new AsyncMutex(), users: 0 };
    fileWriters.set(file, entry);
  }
  entry.users += 1;
  return entry.mutex;
}

function releaseWriters(file: string | null): void {
  if (file === null) return;
  const entry = fileWriters.get(file);
  if (entry && --entry.users <= 0) fileWriters.delete(file);
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

/**
 * Creates `dir` and its missing parents, one level at a time. Not `mkdirSync(dir, {
 * recursive: true })`: on Node 20 that spins at 100 % CPU for ever under /proc (mkdir there
 * answers ENOENT for the parent it just "found"; issue 11). Any failure is
 * STOKER_STORE_UNREACHABLE naming the folder.
 */
function makeFolders(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  while (!existsSync(at)) {
    missing.push(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(folder);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new StoreError(
        'STOKER_STORE_UNREACHABLE',
        `cannot create the folder ${folder} for the SQLite database: ${(cause as Error).message}`,
        { cause, details: { folder } },
      );
    }
  }
}
