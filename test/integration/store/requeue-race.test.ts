/**
 * A requeue judges the run's status under the run's lock (issue 11): an atom of a dead
 * engine must never become READY in a run that a transaction ends at the same time. Here a
 * session holds such a transaction open (the run row locked, its status changed, not yet
 * committed) while the sweep runs: the sweep leaves the atom alone, and once that
 * transaction has committed the next sweep cancels it. PostgreSQL and MariaDB; SQLite has
 * one writer, so no transaction can be open beside the sweep.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';
import { newRun } from '../../helpers/graphs.js';

/** One session with a transaction that cancels a run, committed only when asked. */
interface HeldTx {
  begin(runId: string): Promise<void>;
  commit(): Promise<void>;
  close(): Promise<void>;
}

async function heldTx(dialect: 'postgres' | 'mysql', url: string): Promise<HeldTx> {
  if (dialect === 'postgres') {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return {
      begin: async (runId) => {
        await c.query('BEGIN');
        await c.query(`SELECT id FROM stoker_runs WHERE id = $1 FOR UPDATE`, [runId]);
        await c.query(`UPDATE stoker_runs SET status = 'CANCELLED', finished_at = now() WHERE id = $1`, [runId]);
      },
      commit: async () => void (await c.query('COMMIT')),
      close: () => c.end(),
    };
  }
  const c = await mysql.createConnection(url);
  await c.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
  return {
    begin: async (runId) => {
      await c.query('BEGIN');
      await c.query(`SELECT id FROM stoker_runs WHERE id = ? FOR UPDATE`, [runId]);
      await c.query(`UPDATE stoker_runs SET status = 'CANCELLED', finished_at = NOW(6) WHERE id = ?`, [runId]);
    },
    commit: async () => void (await c.query('COMMIT')),
    close: () => c.end(),
  };
}

for (const dialect of testDialects().filter((d): d is 'postgres' | 'mysql' => d !== 'sqlite')) {
  describe(`requeue and a run ending at the same time on ${dialect}`, () => {
    let db: TestStore | null = null;
    let store: Store;
    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (db) store = db.store;
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('never makes an atom READY in a run that a concurrent transaction ends', async (ctx) => {
      if (db === null) return ctx.skip();
      const { run } = await store.startRun(newRun({ predecessors: [[]] }));
      // claimed by an engine that has no row: the sweep takes its atoms
      expect(await store.claimAtoms('gone-engine', 1)).toHaveLength(1);
      const tx = await heldTx(dialect, db.url);
      try {
        await tx.begin(run.id);
        // the run row is locked by a transaction that ends the run: leave the atom for now
        expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([]);
        await tx.commit();
      } finally {
        await tx.close();
      }
      expect((await store.getAtoms(run.id))[0]!.state).toBe('RUNNING');
      expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([{ runId: run.id, index: 0, engineId: 'gone-engine' }]);
      const [atom] = await store.getAtoms(run.id);
      expect(atom!.state).toBe('CANCELLED');
      expect(atom!.readyAt).toBeNull();
    });
  });
}
