/**
 * Liveness on SQLite (protocol 4, ARCHITECTURE.md "Liveness"): no sessions, but every
 * engine runs on this one host, so a pid check (with the process start time against pid
 * reuse: open-store.ts isPidAlive) tells a dead engine apart, and cannot be fooled by a
 * database restart. The requeue sweep checks every engine's pid on every call; the peer
 * watch looks at one engine's pid every {@link PID_WATCH_MS} ms.
 */
import { requeueEventKind, requeueSql } from '../rows.js';
import type { RequeueOptions, WatchOptions } from '../types.js';
import type { SqlCore } from '../sql/core.js';
import { SQLITE } from '../sql/dialects.js';
import type { SqlSession } from '../sql/driver.js';
import type { Sweeps } from '../sql/sql-store.js';
import type { WatchAnswer } from '../watch-connections.js';
import type { SqliteDriver } from './sqlite-driver.js';

const NOW = SQLITE.now;
/** how often watchEngine looks at the watched engine's process (ms): a pid check and one row read */
const PID_WATCH_MS = 20;
/** A requeue: READY / REVERT_READY again, or CANCELLED when the run has ended (rows.ts requeueSql). */
const REQUEUE = requeueSql('state', `(SELECT r.status FROM {p}runs r WHERE r.id = {p}atoms.run_id)`, NOW);

export class SqliteSweeps implements Sweeps {
  constructor(
    private readonly driver: SqliteDriver,
    private readonly core: SqlCore,
    /** is the engine with this pid, registered at `startedAt`, alive on this host? */
    private readonly isPidAlive: (pid: number, startedAt: Date) => boolean,
  ) {}

  /**
   * {@inheritDoc EngineLiveness.requeueExpired}
   *
   * SQLite has no session locks: `liveCheckAfterMs` is ignored and every engine's pid is
   * checked on every call.
   */
  async requeueExpired(_options: RequeueOptions): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    return this.driver.write('requeue the atoms of expired engines', async (s) => {
      // Engines whose lease ran out, or whose process is gone from this host (SQLite is one host).
      const engines = await s.rows(
        'read engines',
        `SELECT id, pid, started_at, lease_expires_at < ${NOW} AS expired, state FROM {p}engines`,
        [],
      );
      const dead = new Set<string>();
      for (const e of engines) {
        if (Number(e.expired) === 1 || e.state === 'dead' || !this.isPidAlive(Number(e.pid), new Date(Number(e.started_at))))
          dead.add(String(e.id));
      }
      const held = await s.rows(
        'read engines holding atoms',
        `SELECT DISTINCT claimed_by FROM {p}atoms WHERE claimed_by IS NOT NULL AND state IN ('RUNNING', 'REVERTING')`,
        [],
      );
      const known = new Set(engines.map((e) => String(e.id)));
      for (const h of held) if (!known.has(String(h.claimed_by))) dead.add(String(h.claimed_by));
      const out: { runId: string; index: number; engineId: string | null }[] = [];
      for (const id of dead) {
        for (const r of await this.requeueOn(s, id)) out.push({ ...r, engineId: id });
        await s.exec('mark an engine dead', `UPDATE {p}engines SET state = 'dead' WHERE id = ?`, [id]);
      }
      return out;
    });
  }

  async requeueEngine(engineId: string): Promise<number> {
    return this.driver.write('requeue the atoms of an engine', async (s) => (await this.requeueOn(s, engineId)).length);
  }

  /** Requeues one engine's atoms (CANCELLED where the run has ended) with their events. */
  private async requeueOn(s: SqlSession, engineId: string): Promise<{ runId: string; index: number }[]> {
    // the states they leave, for their events (RETURNING gives the new ones; one writer: nothing changes in between)
    const before = new Map<string, string>();
    for (const r of await s.rows(
      'read the atoms of an engine',
      `SELECT run_id, idx, state FROM {p}atoms WHERE claimed_by = ? AND state IN ('RUNNING', 'REVERTING')`,
      [engineId],
    )) {
      before.set(`${Number(r.idx)}:${String(r.run_id)}`, String(r.state));
    }
    const rows = await s.rows(
      'requeue the atoms of an engine',
      `UPDATE {p}atoms SET state = ${REQUEUE.state}, claimed_by = NULL, ready_at = ${REQUEUE.readyAt}, updated_at = ${NOW}
       WHERE claimed_by = ? AND state IN ('RUNNING', 'REVERTING') RETURNING run_id, idx, state, epoch`,
      [engineId],
    );
    await this.core.insertEvents(
      s,
      rows.map((r) => ({
        runId: String(r.run_id),
        atom: Number(r.idx),
        kind: requeueEventKind(String(r.state)),
        fromState: before.get(`${Number(r.idx)}:${String(r.run_id)}`) ?? null,
        toState: String(r.state),
        engineId,
        epoch: Number(r.epoch),
      })),
    );
    return rows.map((r) => ({ runId: String(r.run_id), index: Number(r.idx) }));
  }

  /**
   * {@inheritDoc EngineLiveness.watchEngine}
   *
   * The wait looks at the engine's process every {@link PID_WATCH_MS} ms with the same pid
   * check as the sweep, and answers `'free'` once it is gone (or the engine's row is).
   * Without a pid check (a store made without `isPidAlive`) every wait runs out (`'held'`).
   * A stopped (SIGSTOP) process is alive here: its lease decides.
   */
  async watchEngine(engineId: string, options: WatchOptions): Promise<WatchAnswer> {
    this.driver.assertOpen();
    const until = performance.now() + Math.max(1, options.maxWaitMs);
    for (;;) {
      if (options.signal.aborted || this.driver.closed) return 'aborted';
      const row = await this.driver.direct.row('watch an engine', `SELECT pid, started_at FROM {p}engines WHERE id = ?`, [engineId]);
      if (!row || !this.isPidAlive(Number(row.pid), new Date(Number(row.started_at)))) return 'free';
      const left = until - performance.now();
      if (left <= 0) return 'held';
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          options.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(PID_WATCH_MS, left));
        timer.unref(); // like the engine's timers: a watch does not keep the process alive
        options.signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}
