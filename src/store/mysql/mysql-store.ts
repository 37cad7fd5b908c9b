/**
 * MySQL 8 / MariaDB 10.6+ adapter (mysql2/promise pool): the shared SQL store
 * (src/store/sql/sql-store.ts) over the MySQL driver (./mysql-driver.ts: READ COMMITTED
 * sessions, matched-row counts, retried transactions, GET_LOCK for migrations), with what
 * only this dialect needs:
 *
 * - no `UPDATE … RETURNING` (MariaDB has it only for INSERT/DELETE, MySQL not at all) and no
 *   data-changing CTE: the shared statements write, then read the rows back inside the
 *   transaction; the pending-count decrement locks first (./batches.ts);
 * - the claim (protocol 2) and the common completions (protocol 3: one success whose run
 *   goes on, several successes of one run, successes that finish their runs) are one round
 *   trip each, a `CALL` of a stored procedure of migration 5 (./fast-completions.ts,
 *   ./procedures.ts); everything else takes the general run transaction;
 * - `SET` is evaluated left to right: the decrement orders its assignments for it;
 * - liveness (protocol 4, ARCHITECTURE.md; docs/reliability.md R11): `GET_LOCK` session
 *   locks, `IS_USED_LOCK` against the recorded `lock_session` in the sweep, and the peer
 *   watch (./sweeps.ts);
 * - wake-ups (protocol 6) without LISTEN/NOTIFY: idle engines sleep in a statement on a
 *   listening connection that starts, signals and commits end with `KILL QUERY` (./wakeups.ts).
 *
 * @example
 * ```ts
 * const store = new MysqlStore({ uri: 'mysql://stoker:secret@db:3306/stoker' });
 * await store.migrate();
 * const claims = await store.claimAtoms('engine-1', 8);
 * ```
 */
import { ValidationError } from '../../errors.js';
import { checkPrefix } from '../migration.js';
import { SqlCore } from '../sql/core.js';
import { MYSQL } from '../sql/dialects.js';
import { SessionLocks } from '../sql/session-locks.js';
import { SqlStore } from '../sql/sql-store.js';
import type { DialectCapabilities } from '../types.js';
import { mysqlForms } from './batches.js';
import { MysqlFastCompletions } from './fast-completions.js';
import { MysqlLockStatements } from './locks.js';
import { mysqlMigrations } from './migrations.js';
import { MysqlDriver, type MysqlStoreOptions } from './mysql-driver.js';
import { parseMysqlUrl } from './mysql-errors.js';
import { MysqlStarts } from './starts.js';
import { MysqlSweeps, mysqlSessionLockPort } from './sweeps.js';
import { MysqlWakeups } from './wakeups.js';

export type { MysqlStoreOptions } from './mysql-driver.js';
export { parseMysqlUrl } from './mysql-errors.js';

const CAPABILITIES: DialectCapabilities = {
  name: 'mysql',
  skipLocked: true,
  returning: false,
  advisoryLocks: true,
  listenNotify: false,
  transactionalDdl: false,
  singleWriter: false,
  fastCompletions: true,
  pushWakeups: true,
  localSupervisor: false,
};

export class MysqlStore extends SqlStore {
  /** host:port/database, for messages (never the password) */
  readonly target: string;

  constructor(options: MysqlStoreOptions) {
    const prefix = checkPrefix(options.tablePrefix ?? 'stoker_');
    const t = parseMysqlUrl(options.uri);
    const role = options.role ?? 'store';
    if (!/^[a-z][a-z0-9_-]{0,40}$/.test(role))
      throw new ValidationError('STOKER_CONFIG_INVALID', `role "${role}" must match [a-z][a-z0-9_-]{0,40}`);
    const driver = new MysqlDriver(options, t, prefix, role, `${t.database}.${prefix}engine:`);
    // a keyed start or a signal wakes idle engines after its commit (./wakeups.ts)
    const core = new SqlCore(MYSQL, driver.label, { ...mysqlForms, announce: async (s) => driver.announceAtCommit(s) });
    const fast = new MysqlFastCompletions(driver);
    const starts = new MysqlStarts(driver, core);
    const sweeps = new MysqlSweeps(driver, core);
    const wakeups = new MysqlWakeups(driver);
    const sessionLocks = new SessionLocks(mysqlSessionLockPort(driver), driver, MYSQL, driver.onError);
    super({
      driver,
      core,
      prefix,
      capabilities: CAPABILITIES,
      coreMigrations: mysqlMigrations,
      claimAtoms: (engineId, limit, options) => fast.claimAtoms(engineId, limit, options),
      startAlone: (run, options) => starts.startAlone(run, options),
      sweeps,
      locks: new MysqlLockStatements(driver),
      sessionLocks,
      fast,
      // no LISTEN/NOTIFY: a sleeping listener connection, woken by KILL QUERY (./wakeups.ts)
      wakeups,
      supervisor: null,
      close: async () => {
        if (driver.closed) return;
        driver.markClosed();
        // Ending the lock sessions frees the engines' locks: others may take their atoms over.
        const released = sessionLocks.releaseAll();
        sweeps.close();
        await Promise.all([released, wakeups.stop()]);
        await driver.end();
      },
    });
    this.target = driver.target;
  }
}
