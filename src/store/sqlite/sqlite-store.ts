/**
 * SQLite adapter (better-sqlite3, WAL): the shared SQL store (src/store/sql/sql-store.ts)
 * over the SQLite driver (./sqlite-driver.ts: one writer at a time, every write a short
 * `BEGIN IMMEDIATE` transaction, statements prepared once and run synchronously). Times
 * are INTEGER ms by SQLite's clock. What only this dialect has:
 *
 * - the claim and the pending-count decrement as `UPDATE … RETURNING` (./batches.ts);
 * - liveness by pid, since every engine runs on this one host (./sweeps.ts), and the local
 *   supervisor for a process stopped while it holds the write lock (./supervisor.ts);
 * - wake-ups (protocol 6, ARCHITECTURE.md) through a wake file next to the database,
 *   watched by the engines of every process (./wake-file.ts).
 */
import { checkPrefix } from '../migration.js';
import type { LocalSupervisor, Wakeups } from '../ports.js';
import { SqlCore } from '../sql/core.js';
import { SQLITE } from '../sql/dialects.js';
import { SqlStore } from '../sql/sql-store.js';
import type { DialectCapabilities, LocalEngineKill, SuperviseOptions } from '../types.js';
import { claimOn, sqliteForms } from './batches.js';
import { SqliteLockStatements } from './locks.js';
import { sqliteMigrations } from './migrations.js';
import { SqliteDriver } from './sqlite-driver.js';
import { SqliteSupervisor, type LocalProcesses } from './supervisor.js';
import { SqliteSweeps } from './sweeps.js';

export type { LocalProcesses } from './supervisor.js';

export interface SqliteStoreOptions {
  /** file path, or ':memory:' */
  path: string;
  tablePrefix?: string;
  /** how long a writer waits for the lock before failing (ms) */
  busyTimeoutMs?: number;
  /** create the file and its folder when missing (default true); false: a missing file is STOKER_STORE_NOT_MIGRATED */
  create?: boolean;
  /**
   * is the engine with this pid on this host alive? (SQLite is one host: pid checks are
   * valid). `startedAt` is when the engine registered, to tell a reused pid apart.
   */
  isPidAlive?: (pid: number, startedAt: Date) => boolean;
  /**
   * This host's processes, for {@link SqliteStore.superviseLocalEngines}
   * (docs/reliability.md R12); without it the supervisor finds nothing. `openStore` passes
   * the real one (/proc, SIGKILL).
   */
  localProcesses?: LocalProcesses;
}

const CAPABILITIES: DialectCapabilities = {
  name: 'sqlite',
  skipLocked: false,
  returning: true,
  advisoryLocks: false,
  listenNotify: false,
  transactionalDdl: true,
  singleWriter: true,
  fastCompletions: false,
  pushWakeups: true,
  localSupervisor: true,
};

export class SqliteStore extends SqlStore {
  /** the local supervisor of this host (what {@link superviseLocalEngines} calls) */
  private readonly local: LocalSupervisor;

  constructor(options: SqliteStoreOptions) {
    const prefix = checkPrefix(options.tablePrefix ?? 'stoker_');
    const driver = new SqliteDriver(options.path, prefix, options.busyTimeoutMs ?? 5000, options.create ?? true);
    const core: SqlCore = new SqlCore(
      SQLITE,
      driver.label,
      sqliteForms(driver, () => core),
    );
    const supervisor = new SqliteSupervisor(driver, options.localProcesses ?? null);
    // protocol 6 through the wake file next to the database: `onWake` runs when any process
    // on this host touches it. An in-memory database has no other process to hear.
    const wakeups: Wakeups = {
      subscribe: async (onWake) => {
        driver.assertOpen();
        const stop = driver.wakeFile?.subscribe(onWake);
        return async () => stop?.();
      },
      notify: async () => {
        driver.wakeFile?.touch();
      },
    };
    super({
      driver,
      core,
      prefix,
      capabilities: CAPABILITIES,
      coreMigrations: sqliteMigrations,
      claimAtoms: (engineId, limit) => driver.write('claim atoms', (s) => claimOn(s, core, engineId, limit)),
      sweeps: new SqliteSweeps(driver, core, options.isPidAlive ?? (() => true)),
      locks: new SqliteLockStatements(driver),
      sessionLocks: null,
      fast: null,
      wakeups,
      supervisor,
      close: () => driver.close(),
    });
    this.local = supervisor;
  }

  /** {@inheritDoc LocalSupervisor.superviseLocalEngines} */
  superviseLocalEngines(options: SuperviseOptions): Promise<LocalEngineKill[]> {
    return this.local.superviseLocalEngines(options);
  }
}
