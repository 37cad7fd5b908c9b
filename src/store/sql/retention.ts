/**
 * Retention (`Store.pruneRuns`) as statements of their own in one transaction, for the
 * dialects without data-modifying CTEs (MySQL, SQLite): pick the runs (locked, `SKIP
 * LOCKED`, so two pruners take different runs; SQLite has one writer), then delete their
 * events, atoms, signals and rows, and the engine rows left behind. PostgreSQL does it in
 * one statement (src/store/postgres/retention.ts).
 */
import { TERMINAL_RUN_STATUSES } from '../states.js';
import type { PruneResult } from '../types.js';
import { statement, type Binder } from './binder.js';
import type { SqlCore } from './core.js';
import type { SqlDriver, SqlSession } from './driver.js';

export interface PruneRequest {
  olderThanMs: number;
  limit: number;
  dryRun: boolean;
}

export async function pruneRuns(core: SqlCore, driver: SqlDriver, o: PruneRequest): Promise<PruneResult> {
  const { d } = core;
  const terminal = [...TERMINAL_RUN_STATUSES];
  const victims = (b: Binder): string => `SELECT r.id FROM {p}runs r
      WHERE ${d.inList(b, 'r.status', terminal, 'text')} AND r.finished_at < ${d.nowMinusMs(b, o.olderThanMs)}
        AND NOT EXISTS (SELECT 1 FROM {p}runs p WHERE p.id = r.parent_run_id AND NOT (${d.inList(b, 'p.status', terminal, 'text')}))
        AND NOT EXISTS (SELECT 1 FROM {p}runs c WHERE c.parent_run_id = r.id AND NOT (${d.inList(b, 'c.status', terminal, 'text')}))
      LIMIT ${b.bind(o.limit)}`;
  // engines whose lease ran out that long ago and that hold nothing (crashed engines leave them)
  const engines = (b: Binder): string => `{p}engines WHERE lease_expires_at < ${d.nowMinusMs(b, o.olderThanMs)}
        AND NOT EXISTS (SELECT 1 FROM {p}atoms a WHERE a.claimed_by = {p}engines.id AND a.state IN ('RUNNING', 'REVERTING'))`;
  const ids = async (s: SqlSession, suffix: string): Promise<string[]> => {
    const st = statement(d, (b) => `${victims(b)}${suffix}`);
    return (await s.rows(o.dryRun ? 'count runs to prune' : 'lock runs to prune', st.text, st.params)).map((r) => String(r.id));
  };
  if (o.dryRun) {
    return driver.read('count runs to prune', async (s) => {
      const runs = await ids(s, '');
      const count = async (table: string): Promise<number> => {
        if (runs.length === 0) return 0;
        const st = statement(d, (b) => `SELECT count(*) AS n FROM {p}${table} WHERE ${d.inIdSet(b, 'run_id', runs)}`);
        return Number((await s.row(`count ${table} to prune`, st.text, st.params))!.n);
      };
      const e = statement(d, (b) => `SELECT count(*) AS n FROM ${engines(b)}`);
      return {
        runs: runs.length,
        atoms: await count('atoms'),
        events: await count('events'),
        signals: await count('signals'),
        engines: Number((await s.row('count engines to prune', e.text, e.params))!.n),
      };
    });
  }
  return driver.transaction('prune runs', async (s) => {
    const runs = await ids(s, d.skipLocked);
    const del = async (table: string, column = 'run_id'): Promise<number> => {
      if (runs.length === 0) return 0;
      const st = statement(d, (b) => `DELETE FROM {p}${table} WHERE ${d.inIdSet(b, column, runs)}`);
      return s.exec(`prune ${table}`, st.text, st.params);
    };
    const events = await del('events');
    const atoms = await del('atoms');
    const signals = await del('signals');
    const deleted = await del('runs', 'id');
    const e = statement(d, (b) => `DELETE FROM ${engines(b)}`);
    return { runs: deleted, atoms, events, signals, engines: await s.exec('prune engines', e.text, e.params) };
  });
}
