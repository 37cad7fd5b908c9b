/**
 * PostgreSQL adapter (node-postgres pool): the shared SQL store (src/store/sql/sql-store.ts)
 * over the PostgreSQL driver (./postgres-driver.ts), with what only this dialect has:
 *
 * - the claim (protocol 2, ARCHITECTURE.md) is one named statement (./claims.ts): a `FOR
 *   UPDATE SKIP LOCKED` CTE picks the atoms, an UPDATE bumps their epochs and a third CTE
 *   writes the `atom.claimed` events, so concurrent claimers never wait for each other and
 *   never get the same atom;
 * - run transactions lock their run rows with `SELECT … ORDER BY id FOR UPDATE` (ids are
 *   `COLLATE "C"`, so every engine uses the same order) and run again whole on
 *   serialization failures and deadlocks (SQLSTATE 40001/40P01);
 * - the common completions are one statement each (./fast-success.ts), a keyless start is
 *   one statement and many starts are one (./starts.ts), and many rows are written with
 *   `unnest` (./batches.ts);
 * - liveness (protocol 4; docs/reliability.md R11): session advisory locks, the requeue
 *   sweep and the peer watch (./sweeps.ts);
 * - wake-ups (protocol 6): LISTEN on a dedicated connection, `pg_notify` after commits and
 *   inside starts and signals (./wakeups.ts).
 *
 * @example
 * ```ts
 * const store = new PostgresStore({ connectionString: 'postgres://stoker@db/stoker', schema: 'jobs' });
 * await store.migrate();
 * const claims = await store.claimAtoms('engine-1', 8);
 * ```
 */
import { ValidationError } from '../../errors.js';
import { checkPrefix } from '../migration.js';
import type { FastCompletions } from '../ports.js';
import { SqlCore } from '../sql/core.js';
import { POSTGRES } from '../sql/dialects.js';
import { SessionLocks } from '../sql/session-locks.js';
import { SqlStore } from '../sql/sql-store.js';
import type { DialectCapabilities } from '../types.js';
import { postgresForms } from './batches.js';
import { PostgresClaims } from './claims.js';
import {
  FAST_BATCH_SQL,
  FAST_FINISH_ONE_SQL,
  FAST_FINISH_SQL,
  FAST_SUCCESS_SQL,
  fastBatchParams,
  fastBatchResult,
  fastFinishParams,
  fastFinishResult,
  fastSuccessParams,
  fastSuccessResult,
} from './fast-success.js';
import { PostgresLockStatements } from './locks.js';
import { postgresMigrations } from './migrations.js';
import { PostgresDriver, type PostgresStoreOptions } from './postgres-driver.js';
import { prunePostgres } from './retention.js';
import { PostgresStarts } from './starts.js';
import { PostgresSweeps, postgresSessionLockPort } from './sweeps.js';
import { PostgresWakeups } from './wakeups.js';

export type { PostgresStoreOptions } from './postgres-driver.js';

type Input<K extends keyof FastCompletions> = Parameters<FastCompletions[K]>[0];
type Output<K extends keyof FastCompletions> = ReturnType<FastCompletions[K]>;

const CAPABILITIES: DialectCapabilities = {
  name: 'postgres',
  skipLocked: true,
  returning: true,
  advisoryLocks: true,
  listenNotify: true,
  transactionalDdl: true,
  singleWriter: false,
  fastCompletions: true,
  pushWakeups: true,
  localSupervisor: false,
};

export class PostgresStore extends SqlStore {
  /** host:port/database, for messages (never the password) */
  readonly target: string;
  /** the NOTIFY channel of this deployment */
  readonly wakeChannel: string;
  /** one-statement completions (see fast-success.ts); through the methods below, so a test fixture can switch them off */
  override readonly fast: FastCompletions = {
    completeSuccess: (input) => this.completeSuccessFast(input),
    completeSuccesses: (input) => this.completeSuccessesFast(input),
    finishRuns: (input) => this.finishRunsFast(input),
  };
  private readonly pg: PostgresDriver;

  constructor(options: PostgresStoreOptions) {
    const prefix = checkPrefix(options.tablePrefix ?? 'stoker_');
    const schema = options.schema === undefined ? undefined : checkIdentifier(options.schema, 'schema');
    const role = checkIdentifier(options.role ?? 'store', 'role', /^[a-z][a-z0-9_-]{0,40}$/);
    const namespace = `stoker:${schema ?? ''}.${prefix}`;
    const wakeChannel = `${schema === undefined ? '' : schema + '.'}${prefix}wake`;
    const driver = new PostgresDriver(options, prefix, schema, role);
    const claims = new PostgresClaims(driver);
    const core: SqlCore = new SqlCore(
      POSTGRES,
      driver.label,
      postgresForms({ core: () => core, claims, supersedeNamespace: `${namespace}supersede:`, wakeChannel }),
    );
    const starts = new PostgresStarts(driver, core, wakeChannel);
    const sweeps = new PostgresSweeps(driver, `${namespace}engine:`);
    const wakeups = new PostgresWakeups(driver, wakeChannel);
    const sessionLocks = new SessionLocks(postgresSessionLockPort(driver, `${namespace}engine:`), driver, POSTGRES, driver.onError);
    super({
      driver,
      core,
      prefix,
      capabilities: CAPABILITIES,
      coreMigrations: postgresMigrations,
      claimAtoms: (engineId, limit) => claims.claimAtoms(engineId, limit),
      sweeps,
      locks: new PostgresLockStatements(async (purpose, text, params) => {
        driver.assertOpen();
        return driver.poolSession.rows(purpose, text, params);
      }),
      sessionLocks,
      fast: null,
      wakeups,
      supervisor: null,
      startAlone: (run) => starts.startAlone(run),
      startMany: (runs) => starts.startMany(runs),
      prune: (request) => prunePostgres(driver, request),
      close: async () => {
        if (driver.closed) return;
        driver.markClosed();
        // Ending the lock sessions frees the engines' locks: others may take their atoms over.
        const released = sessionLocks.releaseAll();
        sweeps.close();
        await Promise.allSettled([released, wakeups.stop()]);
        await driver.end();
      },
    });
    this.pg = driver;
    this.target = driver.target;
    this.wakeChannel = wakeChannel;
  }

  /** {@inheritDoc FastCompletions.completeSuccess} (see fast-success.ts for why and how) */
  async completeSuccessFast(input: Input<'completeSuccess'>): Output<'completeSuccess'> {
    this.pg.assertOpen();
    // a named statement: parsed and planned once per connection, not on every atom
    return fastSuccessResult(
      await this.pg.hotRows('complete an atom (fast path)', FAST_SUCCESS_SQL, fastSuccessParams(input), 'fast_success'),
    );
  }

  /** {@inheritDoc FastCompletions.completeSuccesses} (see fast-success.ts) */
  async completeSuccessesFast(input: Input<'completeSuccesses'>): Output<'completeSuccesses'> {
    this.pg.assertOpen();
    const rows = await this.pg.hotRows('complete atoms (fast path)', FAST_BATCH_SQL, fastBatchParams(input), 'fast_batch');
    return fastBatchResult(rows);
  }

  /** {@inheritDoc FastCompletions.finishRuns} (see fast-success.ts) */
  async finishRunsFast(input: Input<'finishRuns'>): Output<'finishRuns'> {
    this.pg.assertOpen();
    const rows =
      input.finishes.length === 1
        ? await this.pg.hotRows('finish runs (fast path)', FAST_FINISH_ONE_SQL, fastFinishParams(input), 'fast_finish_one')
        : await this.pg.hotRows('finish runs (fast path)', FAST_FINISH_SQL, fastFinishParams(input), 'fast_finish');
    return fastFinishResult(rows);
  }
}

/** Schema and role names are spliced into SQL and startup options: validated once, here. */
function checkIdentifier(value: string, what: string, pattern = /^[a-z][a-z0-9_]{0,62}$/): string {
  if (!pattern.test(value)) throw new ValidationError('STOKER_CONFIG_INVALID', `${what} "${value}" must match ${pattern.source}`);
  return value;
}
