/**
 * The PostgreSQL one-statement completion must behave exactly like the general path, and
 * must write nothing when it cannot (fenced claim, run about to finish, run not RUNNING,
 * scope reverting).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { createTestStore, type TestStore } from '../../helpers/databases.js';
import { newRun } from '../../helpers/graphs.js';

describe('fast success path (postgres)', () => {
  let db: TestStore | null = null;
  let store: Store;
  beforeAll(async () => {
    db = await createTestStore('postgres');
    if (db) store = db.store;
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** a 3-atom chain whose run is RUNNING and whose first atom is claimed by engine e1 */
  async function chainWithClaim() {
    const run = newRun({ predecessors: [[], [0], [1]] });
    await store.startRun(run);
    await store.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status: 'RUNNING' }));
    const [claim] = await store.claimAtoms('e1', 1);
    return { run, claim: claim! };
  }

  it('completes, decrements and claims the successor in one statement', async (ctx) => {
    if (!db) return ctx.skip();
    const { run, claim } = await chainWithClaim();
    const r = await store.completeSuccessFast!({ runId: run.id, index: 0, epoch: claim.epoch, result: { v: 1 }, journal: [], successors: [1], claim: 1, engineId: 'e1' });
    expect(r.handled).toBe(true);
    expect(r.claimed).toMatchObject({ runId: run.id, index: 1, state: 'RUNNING', epoch: 1, execution: 1 });
    const atoms = await store.getAtoms(run.id);
    expect(atoms.map((a) => [a.state, a.pending])).toEqual([['SUCCESS', 0], ['RUNNING', 0], ['PENDING', 1]]);
    expect(atoms[0]!.result).toEqual({ v: 1 });
    expect((await store.getRun(run.id))!.pendingAtoms).toBe(2);
    const kinds = (await store.listEvents(run.id)).map((e) => `${e.atom}:${e.kind}`);
    expect(kinds).toEqual(expect.arrayContaining(['0:atom.success', '1:atom.ready', '1:atom.claimed']));
  });

  it('writes nothing for a stale epoch (fenced)', async (ctx) => {
    if (!db) return ctx.skip();
    const { run, claim } = await chainWithClaim();
    const r = await store.completeSuccessFast!({ runId: run.id, index: 0, epoch: claim.epoch - 1, result: 1, journal: [], successors: [1], claim: 1, engineId: 'e1' });
    expect(r).toEqual({ handled: false, claimed: null, madeReady: 0 });
    const atoms = await store.getAtoms(run.id);
    expect(atoms.map((a) => a.state)).toEqual(['RUNNING', 'PENDING', 'PENDING']);
    expect((await store.getRun(run.id))!.pendingAtoms).toBe(3);
  });

  it('writes nothing when the atom would finish the run, or the run is not RUNNING, or a revert was requested', async (ctx) => {
    if (!db) return ctx.skip();
    const single = newRun({ predecessors: [[]] });
    await store.startRun(single);
    await store.runTransaction([single.id], (tx) => tx.updateRun(single.id, { status: 'RUNNING' }));
    const [c1] = await store.claimAtoms('e1', 1);
    expect((await store.completeSuccessFast!({ runId: single.id, index: 0, epoch: c1!.epoch, result: 1, journal: [], successors: [], claim: null, engineId: 'e1' })).handled).toBe(false);
    expect((await store.getAtoms(single.id))[0]!.state).toBe('RUNNING');

    const { run, claim } = await chainWithClaim();
    await store.runTransaction([run.id], (tx) => tx.updateAtoms(run.id, [{ index: 0, patch: { revertRequested: true } }]));
    expect((await store.completeSuccessFast!({ runId: run.id, index: 0, epoch: claim.epoch, result: 1, journal: [], successors: [1], claim: 1, engineId: 'e1' })).handled).toBe(false);
    await store.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status: 'CANCELLED' }));
    await store.runTransaction([run.id], (tx) => tx.updateAtoms(run.id, [{ index: 0, patch: { revertRequested: false } }]));
    expect((await store.completeSuccessFast!({ runId: run.id, index: 0, epoch: claim.epoch, result: 1, journal: [], successors: [1], claim: 1, engineId: 'e1' })).handled).toBe(false);
    expect((await store.getAtoms(run.id)).map((a) => a.state)).toEqual(['RUNNING', 'PENDING', 'PENDING']);
  });
});

describe('batched fenced writes (postgres)', () => {
  let db: TestStore | null = null;
  beforeAll(async () => {
    db = await createTestStore('postgres');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('applies a same-shaped batch in one statement, each row under its own epoch fence', async (ctx) => {
    if (!db) return ctx.skip();
    const store = db.store;
    const run = newRun({ predecessors: [[], [], [], []] });
    await store.startRun(run);
    const claims = await store.claimAtoms('e1', 4);
    expect(claims).toHaveLength(4);
    const byIdx = new Map(claims.map((c) => [c.index, c]));
    const oks = await store.runTransaction([run.id], (tx) =>
      tx.updateAtoms(
        run.id,
        [0, 1, 2, 3].map((i) => ({
          index: i,
          // atom 2 carries a stale epoch: it must be fenced while the others land
          epoch: byIdx.get(i)!.epoch - (i === 2 ? 1 : 0),
          expectStates: ['RUNNING' as const],
          expectRevertRequested: false,
          patch: { state: 'SUCCESS' as const, claimedBy: null, result: { i }, journal: [] },
        })),
      ),
    );
    expect(oks).toEqual([true, true, false, true]);
    const atoms = await store.getAtoms(run.id);
    expect(atoms.map((a) => a.state)).toEqual(['SUCCESS', 'SUCCESS', 'RUNNING', 'SUCCESS']);
    expect(atoms[3]!.result).toEqual({ i: 3 });
    expect(atoms[0]!.claimedBy).toBeNull();
    expect(atoms[2]!.claimedBy).toBe('e1');
  });
});
