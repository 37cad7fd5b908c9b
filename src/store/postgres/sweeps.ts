/**
 * Liveness on PostgreSQL (protocol 4, ARCHITECTURE.md "Liveness"; docs/reliability.md R11):
 * - an engine holds a session advisory lock on `hashtextextended('<namespace>' || engine
 *   id, 0)` on a connection of its own (`stoker-<role>-lock`) while it is registered
 *   ({@link postgresSessionLockPort}, used by src/store/sql/session-locks.ts);
 * - {@link PostgresSweeps.requeueExpired} declares an engine dead when its lease expired, or
 *   when its heartbeat is overdue and `pg_try_advisory_xact_lock_shared` on its key
 *   succeeds (the session that held it exclusively is gone: measured free within
 *   milliseconds of `kill -9`), and requeues the atoms of dead engines in one statement;
 * - {@link PostgresSweeps.watchEngine} waits for the same lock, shared.
 */
import type pg from 'pg';
import { requeueSql } from '../rows.js';
import type { RequeueOptions, WatchOptions } from '../types.js';
import type { SessionLockPort } from '../sql/session-locks.js';
import type { Sweeps } from '../sql/sql-store.js';
import { WatchPool, type WatchAnswer } from '../watch-connections.js';
import type { PostgresDriver } from './postgres-driver.js';

/** SQL of an engine's advisory lock key; `$1` is the lock namespace of this store. */
const ENGINE_LOCK_KEY = (id: string): string => `hashtextextended(($1::text || ${id}) COLLATE "C", 0)`;

/**
 * A requeue: READY / REVERT_READY again, or CANCELLED when the run has ended (rows.ts
 * requeueSql). The run's status is the one read under a share lock of the run row (`t`):
 * read without it, a run ending in a transaction that commits just after the read would
 * get a READY atom (issue 11).
 */
const REQUEUE = requeueSql('a.state', 't.run_status', 'now()');
const REQUEUE_EVENT = `CASE state WHEN 'CANCELLED' THEN 'atom.cancelled' ELSE 'atom.requeued' END`;

/** The engine session lock on a dedicated client (src/store/sql/session-locks.ts). */
export function postgresSessionLockPort(driver: PostgresDriver, lockNamespace: string): SessionLockPort<pg.Client> {
  return {
    open: () => driver.dedicatedClient('lock'),
    onLoss: (client, lost) => {
      client.on('error', (err) => lost(err));
      client.on('end', () => lost());
    },
    take: async (client, engineId) => {
      const got = await driver.query(
        'take the engine session lock',
        `SELECT pg_try_advisory_lock(${ENGINE_LOCK_KEY('$2::text')}) AS ok`,
        [lockNamespace, engineId],
        client,
      );
      return { ok: got.rows[0]?.ok === true, session: null };
    },
    drop: (client) => client.end().catch(() => undefined),
    end: (client) => client.end().catch(() => undefined),
    wrap: (e, purpose) => driver.wrap(e, purpose),
  };
}

/**
 * The longest one statement of {@link PostgresSweeps.watchEngine} waits for an engine's
 * session lock, ms: how far it may hold the database's horizon back. Ten trivial statements
 * a second per engine process while its peer lives.
 */
export const WATCH_SLICE_MS = 100;

/**
 * One slice of a watch: waits for an engine's session lock (`key`, a bigint computed by
 * {@link ENGINE_LOCK_KEY}) until `lock_timeout`, and answers `got` = `yes` or `no`. The
 * timeout is caught inside the block, so it ends the slice without an error: one that
 * reached the client was written to the server's log with its statement, ten times a
 * second per watching engine process for as long as its peer lived.
 */
export function watchSliceSql(key: string): string {
  return `DO $$ BEGIN
  PERFORM pg_advisory_lock_shared(${key});
  PERFORM set_config('stoker.watch_got', 'yes', false);
EXCEPTION WHEN lock_not_available THEN
  PERFORM set_config('stoker.watch_got', 'no', false);
END $$;
SELECT current_setting('stoker.watch_got') AS got`;
}

export class PostgresSweeps implements Sweeps {
  /** connections of watchEngine (closed by close()) */
  readonly watch: WatchPool<pg.Client>;
  /** the lock_timeout each watch connection has (ms) */
  private readonly watchWaits = new WeakMap<pg.Client, number>();

  constructor(
    private readonly driver: PostgresDriver,
    /** hashed with engine ids into advisory lock keys: two deployments in one database never collide */
    private readonly lockNamespace: string,
  ) {
    const close = (client: pg.Client): void => void client.end().catch(() => undefined);
    this.watch = new WatchPool({ open: () => driver.dedicatedClient('watch'), close, closed: () => driver.closed });
  }

  async requeueExpired(options: RequeueOptions): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    this.driver.assertOpen();
    const after = options.liveCheckAfterMs;
    // null: a third of each engine's own lease; -1: no lock check at all
    const checkAfterMs = after === undefined ? null : Number.isFinite(after) ? Math.max(0, Math.round(after)) : -1;
    // One statement: find the engines whose session is gone (lost), mark them and the ones
    // whose lease ran out dead (their next heartbeat then fails and they stop writing), and
    // requeue every held atom whose holder is not a live engine (expired, dead, lost, or
    // without a row). `lost` checks only engines that are live by lease, hold atoms and
    // whose heartbeat is overdue (docs/reliability.md R11: a database restart frees every
    // lock); the CASE keeps the lock attempt last. pg_try_advisory_xact_lock_shared succeeds
    // only when no session holds the engine's lock exclusively (the engine's own; watchers
    // hold it shared, if at all), and is released when this statement's transaction ends.
    // SKIP LOCKED: an atom being completed right now is left to that transaction; the next
    // sweep sees its outcome. (All CTEs see one snapshot, so `t` excludes `lost`
    // explicitly; a data-modifying CTE runs to completion whether or not the main query
    // reads it.)
    const rows = await this.driver.retry(() =>
      this.driver.poolSession.rows(
        'requeue the atoms of expired engines',
        `WITH lost AS (
           SELECT e.id FROM {p}engines e
           WHERE CASE WHEN ($2::bigint IS NULL OR $2::bigint >= 0) AND e.state <> 'dead' AND e.lease_expires_at >= now()
               AND ($2::bigint = 0 OR now() - e.heartbeat_at >= COALESCE($2::bigint * interval '1 millisecond', (e.lease_expires_at - e.heartbeat_at) / 3))
               AND EXISTS (SELECT 1 FROM {p}atoms a WHERE a.claimed_by = e.id AND a.state IN ('RUNNING', 'REVERTING'))
             THEN pg_try_advisory_xact_lock_shared(${ENGINE_LOCK_KEY('e.id')}) ELSE false END),
         d AS (
           UPDATE {p}engines SET state = 'dead'
           WHERE state <> 'dead' AND (lease_expires_at < now() OR id IN (SELECT id FROM lost)) RETURNING id),
         t AS (
           SELECT a.run_id, a.idx, a.claimed_by, a.state AS from_state, r.status AS run_status FROM {p}atoms a JOIN {p}runs r ON r.id = a.run_id
           WHERE a.state IN ('RUNNING', 'REVERTING') AND a.claimed_by IS NOT NULL
             AND (a.claimed_by IN (SELECT id FROM lost)
               OR NOT EXISTS (SELECT 1 FROM {p}engines e WHERE e.id = a.claimed_by AND e.state <> 'dead' AND e.lease_expires_at >= now()))
           ORDER BY a.run_id, a.idx
           FOR UPDATE OF a SKIP LOCKED FOR SHARE OF r SKIP LOCKED),
         u AS (
           UPDATE {p}atoms a SET state = ${REQUEUE.state}, claimed_by = NULL, ready_at = ${REQUEUE.readyAt}, updated_at = now()
           FROM t WHERE a.run_id = t.run_id AND a.idx = t.idx
           RETURNING a.run_id, a.idx, a.state, a.epoch, t.claimed_by AS engine_id, t.from_state),
         e AS (
           INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, at)
           SELECT run_id, idx, ${REQUEUE_EVENT}, from_state, state, engine_id, epoch, now() FROM u)
         SELECT u.run_id, u.idx, u.engine_id FROM u ORDER BY u.engine_id, u.run_id, u.idx`,
        [this.lockNamespace, checkAfterMs],
      ),
    );
    return rows.map((row) => ({
      runId: String(row.run_id),
      index: Number(row.idx),
      engineId: row.engine_id === null ? null : String(row.engine_id),
    }));
  }

  async requeueEngine(engineId: string): Promise<number> {
    this.driver.assertOpen();
    const rows = await this.driver.retry(() =>
      this.driver.poolSession.rows(
        'requeue the atoms of an engine',
        `WITH t AS (
           SELECT a.run_id, a.idx, a.state AS from_state, r.status AS run_status FROM {p}atoms a JOIN {p}runs r ON r.id = a.run_id
           WHERE a.claimed_by = $1 AND a.state IN ('RUNNING', 'REVERTING')
           ORDER BY a.run_id, a.idx FOR UPDATE OF a FOR SHARE OF r),
         u AS (
           UPDATE {p}atoms a SET state = ${REQUEUE.state}, claimed_by = NULL, ready_at = ${REQUEUE.readyAt}, updated_at = now()
           FROM t WHERE a.run_id = t.run_id AND a.idx = t.idx
           RETURNING a.run_id, a.idx, a.state, a.epoch, t.from_state),
         e AS (
           INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, at)
           SELECT run_id, idx, ${REQUEUE_EVENT}, from_state, state, $1, epoch, now() FROM u)
         SELECT count(*) AS n FROM u`,
        [engineId],
      ),
    );
    return Number(rows[0]!.n);
  }

  /**
   * {@inheritDoc EngineLiveness.watchEngine}
   *
   * `pg_advisory_lock_shared` on the engine's key, on a connection of its own whose
   * `lock_timeout` is the wait (so the server also ends a wait whose client went away), then
   * `pg_advisory_unlock_shared` at once. Shared, like the sweep's own check
   * (`pg_try_advisory_xact_lock_shared`): the engine holds its lock exclusively, so both
   * conflict with the engine only, and a watcher that is frozen right after the grant (it
   * holds the lock until it runs again) never makes a dead engine look alive. The
   * connection is kept for the next call (the ring is looked at every few seconds); an
   * aborted or failed one is closed.
   *
   * The wait goes in slices of at most {@link WATCH_SLICE_MS}, one statement each
   * ({@link watchSliceSql}: a slice that ends without the lock is no error): a
   * statement holds a snapshot while it waits, and with it the database's horizon, below
   * which no dead row version of any table can be removed, nor an index entry that points
   * only to dead ones be marked so and skipped. Waits of 2 s held it back whenever two
   * engine processes ran: every claim, run-row lock and atom lookup walked the dead
   * versions of the last seconds (bench/claim-probe.ts, a group of 1,000 created by two
   * engine processes: 132–171 entries of `atoms_claimable` read per atom, 6.5–12 of
   * `runs_pkey`, against 50 and 1.25 without the watch, as with one engine).
   */
  async watchEngine(engineId: string, options: WatchOptions): Promise<WatchAnswer> {
    this.driver.assertOpen();
    const waitMs = Math.max(1, Math.round(options.maxWaitMs));
    const sliceMs = Math.min(waitMs, WATCH_SLICE_MS);
    return this.watch.wait(options.signal, async (client) => {
      if (this.watchWaits.get(client) !== sliceMs) {
        await this.driver.query(
          'prepare a watch connection',
          `SET lock_timeout = ${sliceMs}; SET statement_timeout = ${sliceMs + 5_000}`,
          [],
          client,
        );
        this.watchWaits.set(client, sliceMs);
      }
      const keyRows = await this.driver.query(
        'compute an engine lock key',
        `SELECT ${ENGINE_LOCK_KEY('$2::text')}::text AS k`,
        [this.lockNamespace, engineId],
        client,
      );
      const key = String(keyRows.rows[0]?.k);
      if (!/^-?\d{1,20}$/.test(key)) throw new Error(`PostgreSQL: an engine lock key came back as ${key}`);
      for (let waited = 0; ; waited += sliceMs) {
        // a multi-statement simple query: pg answers with one result per statement
        const results = (await this.driver.query('wait for an engine session lock', watchSliceSql(key), [], client)) as unknown;
        const last = (Array.isArray(results) ? results.at(-1) : results) as { rows: { got?: string }[] };
        if (last.rows[0]?.got === 'yes') break;
        // lock_timeout ran out: the engine lives
        if (waited + sliceMs >= waitMs || options.signal.aborted) return { answer: 'held', reusable: true };
      }
      await this.driver.query(
        'let an engine session lock go',
        `SELECT pg_advisory_unlock_shared(${ENGINE_LOCK_KEY('$2::text')})`,
        [this.lockNamespace, engineId],
        client,
      );
      return { answer: 'free', reusable: true };
    });
  }

  /** Closes the watch connections (the store closes). */
  close(): void {
    this.watch.closeAll();
  }
}
