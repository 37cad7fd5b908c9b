/**
 * Liveness on MySQL/MariaDB (protocol 4, ARCHITECTURE.md "Liveness"; docs/reliability.md R11):
 * - an engine holds `GET_LOCK('stoker_engine_<40 hex digits of SHA-256(namespace, engine
 *   id)>', 0)` on a connection of its own (program_name `stoker-<role>-lock`; lock names
 *   are server-wide and at most 64 characters, hence the hash with the database and prefix
 *   in it) while it is registered, and its row records that session's `CONNECTION_ID()`
 *   (`lock_session`): {@link mysqlSessionLockPort};
 * - {@link MysqlSweeps.requeueExpired} declares an engine dead when its lease expired, or
 *   when its heartbeat is overdue and `IS_USED_LOCK` says its lock is not held by that
 *   session (the server drops it as soon as the session ends; a watcher may hold it for a
 *   moment after), and requeues the atoms of dead engines (no RETURNING: lock, update,
 *   read back, events);
 * - {@link MysqlSweeps.watchEngine} waits on `GET_LOCK` for the engine's lock.
 */
import type mysql from 'mysql2/promise';
import { requeueEventKind, requeueSql } from '../rows.js';
import type { EventInput, RequeueOptions, WatchOptions } from '../types.js';
import { chunks } from '../sql/chunks.js';
import type { SqlCore } from '../sql/core.js';
import type { Raw, SqlSession } from '../sql/driver.js';
import type { SessionLockPort } from '../sql/session-locks.js';
import type { Sweeps } from '../sql/sql-store.js';
import { WatchPool, type WatchAnswer } from '../watch-connections.js';
import type { MysqlDriver } from './mysql-driver.js';

/** keys per `(run_id, idx)` list: keeps statements well inside the range optimizer's limits */
const KEYS_PER_STATEMENT = 200;

/** `(run_id = ? AND idx = ?) OR …`: a list of primary keys the range optimizer reads as point lookups. */
function keyList(keys: readonly { runId: string; index: number }[]): { text: string; params: unknown[] } {
  return {
    text: keys.map(() => '(run_id = ? AND idx = ?)').join(' OR '),
    params: keys.flatMap((k) => [k.runId, k.index]),
  };
}

/** SQL of an engine's GET_LOCK name (at most 54 characters); the first `?` is the lock namespace of this store. */
const ENGINE_LOCK_NAME = (id: string): string => `CONCAT('stoker_engine_', LEFT(SHA2(CONCAT(?, ${id}), 256), 40))`;
/** A requeue: READY / REVERT_READY again, or CANCELLED when the run has ended (rows.ts requeueSql). */
const REQUEUE = requeueSql('state', '(SELECT r.status FROM {p}runs r WHERE r.id = {p}atoms.run_id)', 'NOW(6)');

/** an atom to requeue, with the state it leaves */
type Held = { runId: string; index: number; engineId: string; state: string };

/** The engine session lock on a dedicated connection (src/store/sql/session-locks.ts). */
export function mysqlSessionLockPort(driver: MysqlDriver): SessionLockPort<mysql.Connection> {
  return {
    open: () => driver.lockConnection('lock'),
    onLoss: (conn, lost) => {
      conn.on('error', (err: Error) => lost(err));
      conn.on('end', () => lost());
    },
    take: async (conn, engineId) => {
      const got = await driver.rowsOn(
        conn,
        'take the engine session lock',
        `SELECT GET_LOCK(${ENGINE_LOCK_NAME('?')}, 0) AS ok, CONNECTION_ID() AS session`,
        [driver.lockNamespace, engineId],
      );
      const ok = Number(got[0]?.ok) === 1;
      return { ok, session: ok ? Number(got[0]!.session) : null };
    },
    drop: async (conn) => conn.destroy(),
    end: (conn) => conn.end().catch(() => conn.destroy()),
    wrap: (e, purpose) => driver.wrap(e, purpose),
  };
}

export class MysqlSweeps implements Sweeps {
  /** connections of watchEngine (closed by close()) */
  readonly watch: WatchPool<mysql.Connection>;

  constructor(
    private readonly driver: MysqlDriver,
    private readonly core: SqlCore,
  ) {
    this.watch = new WatchPool({
      open: () => driver.lockConnection('watch'),
      close: (conn) => conn.destroy(),
      closed: () => driver.closed,
    });
  }

  async requeueExpired(options: RequeueOptions): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    const after = options.liveCheckAfterMs;
    // null: a third of each engine's own lease; -1: no lock check at all
    const checkAfterUs = after === undefined ? null : Number.isFinite(after) ? Math.max(0, Math.round(after)) * 1000 : -1;
    const ns = this.driver.lockNamespace;
    return this.driver.transaction('requeue the atoms of expired engines', async (s) => {
      // Engines whose lease ran out are marked dead: their next heartbeat fails and they stop.
      await s.exec(
        'mark expired engines dead',
        `UPDATE {p}engines SET state = 'dead' WHERE state <> 'dead' AND lease_expires_at < NOW(6)`,
        [],
      );
      if (checkAfterUs !== -1) {
        // docs/reliability.md R11: engines that hold atoms, whose heartbeat is overdue (a
        // database restart frees every lock) and whose session lock is not held by their own
        // session, are dead too: free, or held by another session (a watcher that took it as
        // the engine died and is frozen before it could let go). IS_USED_LOCK only looks.
        const lost = (
          await s.rows(
            'find engines whose session is gone',
            `SELECT e.id FROM {p}engines e
             WHERE e.state <> 'dead' AND e.lease_expires_at >= NOW(6)
               AND (? = 0 OR TIMESTAMPDIFF(MICROSECOND, e.heartbeat_at, NOW(6)) >= COALESCE(?, TIMESTAMPDIFF(MICROSECOND, e.heartbeat_at, e.lease_expires_at) DIV 3))
               AND EXISTS (SELECT 1 FROM {p}atoms a WHERE a.state IN ('RUNNING', 'REVERTING') AND a.claimed_by = e.id)
               AND COALESCE(IS_USED_LOCK(${ENGINE_LOCK_NAME('e.id')}) <> e.lock_session, IS_FREE_LOCK(${ENGINE_LOCK_NAME('e.id')}) = 1)`,
            [checkAfterUs ?? -1, checkAfterUs, ns, ns],
          )
        ).map((r) => String(r.id));
        if (lost.length > 0) {
          await s.exec('mark engines without a session dead', `UPDATE {p}engines SET state = 'dead' WHERE id IN (?) AND state <> 'dead'`, [
            lost,
          ]);
        }
      }
      // A plain (non-locking) read of the live engines: a locking read with SKIP LOCKED here
      // would treat an engine busy renewing its lease as absent.
      const live = (
        await s.rows('read live engines', `SELECT id FROM {p}engines WHERE state <> 'dead' AND lease_expires_at >= NOW(6)`, [])
      ).map((r) => String(r.id));
      // SKIP LOCKED: an atom being completed right now is left to that transaction.
      const held = (
        await s.rows(
          'pick atoms held by dead engines',
          `SELECT run_id, idx, claimed_by, state FROM {p}atoms
           WHERE state IN ('RUNNING', 'REVERTING') AND claimed_by IS NOT NULL${live.length > 0 ? ' AND claimed_by NOT IN (?)' : ''}
           ORDER BY run_id, idx FOR UPDATE SKIP LOCKED`,
          live.length > 0 ? [live] : [],
        )
      ).map((r) => ({ runId: String(r.run_id), index: Number(r.idx), engineId: String(r.claimed_by), state: String(r.state) }));
      if (held.length === 0) return [];
      const out = await this.requeueLocked(s, held, true);
      return out.sort((a, b) => cmp(a.engineId, b.engineId) || cmp(a.runId, b.runId) || a.index - b.index);
    });
  }

  async requeueEngine(engineId: string): Promise<number> {
    return this.driver.transaction('requeue the atoms of an engine', async (s) => {
      const held = (
        await s.rows(
          'lock the atoms of an engine',
          `SELECT run_id, idx, state FROM {p}atoms WHERE state IN ('RUNNING', 'REVERTING') AND claimed_by = ? ORDER BY run_id, idx FOR UPDATE`,
          [engineId],
        )
      ).map((r) => ({ runId: String(r.run_id), index: Number(r.idx), engineId, state: String(r.state) }));
      if (held.length === 0) return 0;
      return (await this.requeueLocked(s, held, false)).length;
    });
  }

  /**
   * Requeues the given locked atoms and records their events; returns them in order. Their
   * runs are locked first: the requeue reads each run's status to cancel the atoms of runs
   * that ended, and read without the lock, a run ending in a transaction that commits just
   * after the read would get a READY atom (docs/reliability.md). `skipLocked` (the sweeps): an atom
   * whose run is locked by a transaction in progress is left for the next sweep.
   */
  private async requeueLocked(s: SqlSession, candidates: readonly Held[], skipLocked: boolean): Promise<Omit<Held, 'state'>[]> {
    const runIds = [...new Set(candidates.map((h) => h.runId))].sort(cmp);
    const lockedRuns = new Set<string>();
    for (const chunk of chunks(runIds, KEYS_PER_STATEMENT)) {
      for (const r of await s.rows(
        'lock the runs of requeued atoms',
        `SELECT id FROM {p}runs WHERE id IN (?) ORDER BY id FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`,
        [chunk],
      )) {
        lockedRuns.add(String(r.id));
      }
    }
    const held = candidates.filter((h) => lockedRuns.has(h.runId));
    if (held.length === 0) return [];
    const after = new Map<string, Raw>();
    for (const chunk of chunks(held, KEYS_PER_STATEMENT)) {
      const where = keyList(chunk);
      await s.exec(
        'requeue atoms',
        `UPDATE {p}atoms SET state = ${REQUEUE.state}, claimed_by = NULL, ready_at = ${REQUEUE.readyAt}, updated_at = NOW(6)
         WHERE ${where.text}`,
        where.params,
      );
      for (const r of await s.rows(
        'read requeued atoms',
        `SELECT run_id, idx, state, epoch FROM {p}atoms WHERE ${where.text}`,
        where.params,
      )) {
        after.set(`${Number(r.idx)}:${String(r.run_id)}`, r);
      }
    }
    const events: EventInput[] = [];
    for (const h of held) {
      const r = after.get(`${h.index}:${h.runId}`);
      if (r) {
        events.push({
          runId: h.runId,
          atom: h.index,
          kind: requeueEventKind(String(r.state)),
          fromState: h.state,
          toState: String(r.state),
          engineId: h.engineId,
          epoch: Number(r.epoch),
        });
      }
    }
    await this.core.insertEvents(s, events);
    return held.map((h) => ({ runId: h.runId, index: h.index, engineId: h.engineId }));
  }

  /**
   * {@inheritDoc EngineLiveness.watchEngine}
   *
   * `GET_LOCK` on the engine's lock name with the wait as its timeout (whole seconds, below
   * the session's statement time limit), on a connection of its own, then `RELEASE_LOCK` at
   * once. A watcher frozen before it lets go does not make the engine look alive: the sweep
   * compares the lock's holder with the session the engine registered from (`lock_session`).
   * The connection is kept for the next call; an aborted or failed one is closed.
   */
  async watchEngine(engineId: string, options: WatchOptions): Promise<WatchAnswer> {
    this.driver.assertOpen();
    const waitS = Math.max(1, Math.min(Math.ceil(options.maxWaitMs / 1000), Math.floor(this.driver.statementTimeoutMs / 1000) - 1));
    const ns = this.driver.lockNamespace;
    return this.watch.wait(options.signal, async (conn) => {
      const got = await this.driver.rowsOn(conn, 'wait for an engine session lock', `SELECT GET_LOCK(${ENGINE_LOCK_NAME('?')}, ?) AS ok`, [
        ns,
        engineId,
        waitS,
      ]);
      const ok = got[0]?.ok;
      // 0: the wait ran out, the engine lives; NULL: an error (the connection is not trusted again)
      if (Number(ok) !== 1) return { answer: 'held', reusable: ok !== null && ok !== undefined };
      await this.driver.rowsOn(conn, 'let an engine session lock go', `SELECT RELEASE_LOCK(${ENGINE_LOCK_NAME('?')}) AS ok`, [
        ns,
        engineId,
      ]);
      return { answer: 'free', reusable: true };
    });
  }

  /** Closes the watch connections (the store closes). */
  close(): void {
    this.watch.closeAll();
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
