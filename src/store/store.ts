/**
 * The Store: one deployment's database, as the layers above see it. It is the sum of the
 * ports in src/store/ports.ts (each part of the engine names only the ones it uses), plus
 * the optional ports some dialects have, declared in {@link DialectCapabilities} and
 * present exactly when declared. Implementations: SqliteStore, PostgresStore, MysqlStore
 * (and the simulation's store in test/sim).
 *
 * @example
 * ```ts
 * const store = await openStore('sqlite:./stoker.db');
 * await store.migrate();
 * const runs = await store.listRuns({ status: ['RUNNING'] });
 * if (store.wakeups) await store.wakeups.notify();
 * ```
 */
import type {
  EngineLiveness,
  FastCompletions,
  LocalSupervisor,
  LockStore,
  ModuleSql,
  Retention,
  RunProtocol,
  RunQueries,
  Wakeups,
} from './ports.js';
import type { DialectCapabilities } from './types.js';
import type { MigrationRecord, SchemaModule } from './migration.js';

export type * from './types.js';
export type * from './ports.js';

export interface Store extends RunProtocol, RunQueries, Retention, EngineLiveness, LockStore {
  readonly capabilities: DialectCapabilities;
  /** one-statement completions, when `capabilities.fastCompletions` (PostgreSQL); else null */
  readonly fast: FastCompletions | null;
  /** pushed wake-ups, when `capabilities.pushWakeups` (PostgreSQL, SQLite, MySQL/MariaDB); else null: engines poll */
  readonly wakeups: Wakeups | null;
  /** the local supervisor, when `capabilities.localSupervisor` (SQLite); else null */
  readonly supervisor: LocalSupervisor | null;
  /** SQL for the tables of other schema modules (orchestration); null for stores without SQL (the simulator) */
  readonly moduleSql: ModuleSql | null;
  /**
   * Applies the pending migrations of the core schema, then of `modules` (each numbered
   * from 1 within its module; src/store/migration.ts), under a lock; idempotent. Returns
   * the migrations applied now, in order.
   */
  migrate(options?: { modules?: readonly SchemaModule[] }): Promise<MigrationRecord[]>;
  /**
   * Checks, reading only, that the database has every migration of the core schema (and
   * of `modules`) that this build ships, and none it does not know. Throws
   * `STOKER_STORE_NOT_MIGRATED` (run `stoker migrate`), `STOKER_STORE_SCHEMA_TOO_NEW` or
   * `STOKER_STORE_MIGRATION_CHECKSUM`; creates nothing. What commands that must not change
   * the schema call instead of {@link migrate}.
   */
  checkSchema(options?: { modules?: readonly SchemaModule[] }): Promise<void>;
  close(): Promise<void>;
  /** the database clock */
  now(): Promise<Date>;
}
