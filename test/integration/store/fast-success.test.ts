/**
 * The one-round-trip completions (PostgreSQL: one statement each; MySQL/MariaDB: one stored
 * procedure call each) must behave exactly like the general path, and must write nothing
 * when they cannot (fenced claim, run about to finish, run neither PENDING nor RUNNING,
 * scope reverting). Run on every dialect of STOKER_TEST_DIALECTS that has them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';
import { newRun } from '../../helpers/graphs.js';

/** the dialects with one-round-trip completions (capabilities.fastCompletions) */
const FAST_DIALECTS = testDialects().filter((d) => d !== 'sqlite');

for (const dialect of FAST_DIALECTS) {
  describe(`fast success path (${dialect})`, () => {
    let db: TestStore | null = null;
    let store: Store;
    beforeAll(async () => {
      db = await createTestStore(dialect);
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
      const r = await store.fast!.completeSuccess({
        runId: run.id,
        index: 0,
        epoch: claim.epoch,
        result: { v: 1 },
        journal: [],
        successors: [1],
        claim: 1,
        engineId: 'e1',
      });
      expect(r.handled).toBe(true);
      expect(r.claimed).toMatchObject({ runId: run.id, index: 1, state: 'RUNNING', epoch: 1, execution: 1 });
      const atoms = await store.getAtoms(run.id);
      expect(atoms.map((a) => [a.state, a.pending])).toEqual([
        ['SUCCESS', 0],
        ['RUNNING', 0],
        ['PENDING', 1],
      ]);
      expect(atoms[0]!.result).toEqual({ v: 1 });
      expect((await store.getRun(run.id))!.pendingAtoms).toBe(2);
      const events = await store.listEvents({ runId: run.id });
      expect(events.map((e) => `${e.atom}:${e.kind}`)).toEqual(expect.arrayContaining(['0:atom.success', '1:atom.claimed']));
      // one write took the successor from PENDING to RUNNING: one event says so
      expect(events.filter((e) => e.atom === 1).map((e) => [e.kind, e.fromState, e.toState, e.epoch, e.data])).toEqual([
        ['atom.claimed', 'PENDING', 'RUNNING', 1, { local: true }],
      ]);
    });

    it("a run's first completion also moves it PENDING → RUNNING, with run.running first, as the general path does", async (ctx) => {
      if (!db) return ctx.skip();
      const run = newRun({ predecessors: [[], [0], [1]] });
      await store.startRun(run);
      const claim = (await store.claimAtoms('e1', 10)).find((c) => c.runId === run.id)!;
      expect((await store.getRun(run.id))!.status).toBe('PENDING');
      const r = await store.fast!.completeSuccess({
        runId: run.id,
        index: 0,
        epoch: claim.epoch,
        result: 1,
        journal: [],
        successors: [1],
        claim: 1,
        engineId: 'e1',
      });
      expect(r.handled).toBe(true);
      expect((await store.getRun(run.id))!).toMatchObject({ status: 'RUNNING', pendingAtoms: 2 });
      const events = (await store.listEvents({ runId: run.id })).filter(
        (e) => (e.kind !== 'run.created' && e.kind !== 'atom.claimed') || e.atom === 1,
      );
      expect(events.map((e) => [e.kind, e.atom, e.fromState, e.toState, e.engineId])).toEqual([
        ['run.running', null, 'PENDING', 'RUNNING', 'e1'],
        ['atom.success', 0, 'RUNNING', 'SUCCESS', 'e1'],
        ['atom.claimed', 1, 'PENDING', 'RUNNING', 'e1'],
      ]);
      // the next completion finds it RUNNING: no second run.running
      const next = await store.fast!.completeSuccess({
        runId: run.id,
        index: 1,
        epoch: r.claimed!.epoch,
        result: 2,
        journal: [],
        successors: [2],
        claim: 2,
        engineId: 'e1',
      });
      expect(next.handled).toBe(true);
      expect((await store.listEvents({ runId: run.id })).filter((e) => e.kind === 'run.running')).toHaveLength(1);
    });

    it('a successor it does not claim becomes READY, with its own event', async (ctx) => {
      if (!db) return ctx.skip();
      const { run, claim } = await chainWithClaim();
      const r = await store.fast!.completeSuccess({
        runId: run.id,
        index: 0,
        epoch: claim.epoch,
        result: 1,
        journal: [],
        successors: [1],
        claim: null,
        engineId: 'e1',
      });
      // PostgreSQL also tells the run row's version it found under the lock (FastCommits)
      expect(r).toEqual({
        handled: true,
        claimed: null,
        madeReady: 1,
        ...(dialect === 'postgres' ? { runVersion: expect.any(Number) } : {}),
      });
      expect((await store.getAtoms(run.id)).map((a) => [a.state, a.claimedBy])).toEqual([
        ['SUCCESS', null],
        ['READY', null],
        ['PENDING', null],
      ]);
      const events = (await store.listEvents({ runId: run.id })).filter((e) => e.atom === 1);
      expect(events.map((e) => [e.kind, e.fromState, e.toState])).toEqual([['atom.ready', 'PENDING', 'READY']]);
      // the tests share the tables: leave nothing claimable behind
      expect(await store.claimAtoms('e-cleanup', 10)).toMatchObject([{ runId: run.id, index: 1 }]);
    });

    it('writes nothing for a stale epoch (fenced)', async (ctx) => {
      if (!db) return ctx.skip();
      const { run, claim } = await chainWithClaim();
      const r = await store.fast!.completeSuccess({
        runId: run.id,
        index: 0,
        epoch: claim.epoch - 1,
        result: 1,
        journal: [],
        successors: [1],
        claim: 1,
        engineId: 'e1',
      });
      expect(r).toEqual({ handled: false, claimed: null, madeReady: 0 });
      const atoms = await store.getAtoms(run.id);
      expect(atoms.map((a) => a.state)).toEqual(['RUNNING', 'PENDING', 'PENDING']);
      expect((await store.getRun(run.id))!.pendingAtoms).toBe(3);
    });

    it('claims the successor only when this atom was its last unfinished predecessor, and counts the others down', async (ctx) => {
      if (!db) return ctx.skip();
      // atom 0 precedes 2 and 3; atom 3 also waits for atom 1
      const graph = { predecessors: [[], [], [0], [0, 1]] };
      const complete = async (claim: number) => {
        const run = newRun(graph);
        await store.startRun(run);
        await store.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status: 'RUNNING' }));
        const first = (await store.claimAtoms('e1', 10)).find((c) => c.runId === run.id && c.index === 0)!;
        const r = await store.fast!.completeSuccess({
          runId: run.id,
          index: 0,
          epoch: first.epoch,
          result: 0,
          journal: [],
          successors: [2, 3],
          claim,
          engineId: 'e1',
        });
        const atoms = (await store.getAtoms(run.id)).map((a) => [a.state, a.pending]);
        const events = (await store.listEvents({ runId: run.id })).filter((e) => (e.atom ?? 0) >= 2).map((e) => [e.atom, e.kind]);
        return { r, atoms, events, run };
      };
      // atom 3 still waits for atom 1: not claimed, one predecessor fewer; atom 2 becomes READY
      const notLast = await complete(3);
      expect(notLast.r).toMatchObject({ handled: true, claimed: null, madeReady: 1 });
      expect(notLast.atoms.slice(2)).toEqual([
        ['READY', 0],
        ['PENDING', 1],
      ]);
      expect(notLast.events).toEqual([[2, 'atom.ready']]);
      // the tests share the tables: leave nothing claimable behind
      expect(await store.claimAtoms('e-cleanup', 10)).toMatchObject([{ runId: notLast.run.id, index: 2 }]);
      const last = await complete(2);
      expect(last.r).toMatchObject({ handled: true, madeReady: 0, claimed: { runId: last.run.id, index: 2, state: 'RUNNING', epoch: 1 } });
      expect(last.atoms.slice(2)).toEqual([
        ['RUNNING', 0],
        ['PENDING', 1],
      ]);
      expect(last.events).toEqual([[2, 'atom.claimed']]);
    });

    it('writes nothing when the atom would finish the run, or the run is not RUNNING, or a revert was requested', async (ctx) => {
      if (!db) return ctx.skip();
      const single = newRun({ predecessors: [[]] });
      await store.startRun(single);
      await store.runTransaction([single.id], (tx) => tx.updateRun(single.id, { status: 'RUNNING' }));
      const [c1] = await store.claimAtoms('e1', 1);
      expect(
        (
          await store.fast!.completeSuccess({
            runId: single.id,
            index: 0,
            epoch: c1!.epoch,
            result: 1,
            journal: [],
            successors: [],
            claim: null,
            engineId: 'e1',
          })
        ).handled,
      ).toBe(false);
      expect((await store.getAtoms(single.id))[0]!.state).toBe('RUNNING');

      const { run, claim } = await chainWithClaim();
      await store.runTransaction([run.id], (tx) => tx.updateAtoms(run.id, [{ index: 0, patch: { revertRequested: true } }]));
      expect(
        (
          await store.fast!.completeSuccess({
            runId: run.id,
            index: 0,
            epoch: claim.epoch,
            result: 1,
            journal: [],
            successors: [1],
            claim: 1,
            engineId: 'e1',
          })
        ).handled,
      ).toBe(false);
      await store.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status: 'CANCELLED' }));
      await store.runTransaction([run.id], (tx) => tx.updateAtoms(run.id, [{ index: 0, patch: { revertRequested: false } }]));
      expect(
        (
          await store.fast!.completeSuccess({
            runId: run.id,
            index: 0,
            epoch: claim.epoch,
            result: 1,
            journal: [],
            successors: [1],
            claim: 1,
            engineId: 'e1',
          })
        ).handled,
      ).toBe(false);
      expect((await store.getAtoms(run.id)).map((a) => a.state)).toEqual(['RUNNING', 'PENDING', 'PENDING']);
    });

    it('PostgreSQL: runs on a connection of its own (stoker-<role>-hot), opened again after it was lost', async (ctx) => {
      if (!db || dialect !== 'postgres') return ctx.skip();
      const run = newRun({ predecessors: [[], [0], [1], [2], [3], [4]] });
      await store.startRun(run);
      let [claim] = (await store.claimAtoms('e1', 10)).filter((c) => c.runId === run.id);
      const step = async (index: number) => {
        const r = await store.fast!.completeSuccess({
          runId: run.id,
          index,
          epoch: claim!.epoch,
          result: index,
          journal: [],
          successors: [index + 1],
          claim: index + 1,
          engineId: 'e1',
        });
        expect(r.handled).toBe(true);
        claim = r.claimed!;
      };
      const hot = async () =>
        db!.exec(`SELECT pid, query FROM pg_stat_activity WHERE application_name = 'stoker-store-hot' AND datname = current_database()`);
      await step(0); // through the pool; opens the connection
      for (let i = 0; i < 100 && (await hot()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await step(1);
      const [first] = await hot();
      expect(String(first?.query)).toContain("SET state = 'SUCCESS', result = $4::jsonb"); // the fast statement, the last it ran
      await db.exec(`SELECT pg_terminate_backend(${Number(first!.pid)})`);
      // the lost connection fails at most the statement in flight on it (an unknown outcome, as on a pooled one)
      for (let i = 0; i < 100 && (await hot()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      await step(2);
      for (let i = 0; i < 100 && (await hot()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await step(3);
      const [second] = await hot();
      expect(Number(second?.pid)).not.toBe(Number(first!.pid));
      expect(String(second?.query)).toContain("SET state = 'SUCCESS', result = $4::jsonb");
      expect((await store.getAtoms(run.id)).map((a) => a.state)).toEqual([
        'SUCCESS',
        'SUCCESS',
        'SUCCESS',
        'SUCCESS',
        'RUNNING',
        'PENDING',
      ]);
    });
  });

  describe(`batched fenced writes (${dialect})`, () => {
    let db: TestStore | null = null;
    beforeAll(async () => {
      db = await createTestStore(dialect);
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

  describe(`fast batch path (${dialect})`, () => {
    let db: TestStore | null = null;
    let store: Store;
    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (db) store = db.store;
    });
    afterAll(async () => {
      await db?.drop();
    });

    /** atoms 0, 1, 2 → 3 → 4 (fan-in, then a tail), RUNNING, the three roots claimed by e1 */
    async function fanIn() {
      const run = newRun({ predecessors: [[], [], [], [0, 1, 2], [3]] });
      await store.startRun(run);
      await store.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status: 'RUNNING' }));
      const claims = (await store.claimAtoms('e1', 3)).filter((c) => c.runId === run.id).sort((a, b) => a.index - b.index);
      expect(claims.map((c) => c.index)).toEqual([0, 1, 2]);
      return { run, claims };
    }
    const success = (c: { index: number; epoch: number }, successors: number[]) => ({
      index: c.index,
      epoch: c.epoch,
      result: { i: c.index },
      journal: [],
      successors,
    });

    it('completes the batch, counts the successor down by all of it and claims it, in one statement', async (ctx) => {
      if (!db) return ctx.skip();
      const { run, claims } = await fanIn();
      const r = await store.fast!.completeSuccesses({
        runId: run.id,
        successes: claims.map((c) => success(c, [3])),
        claim: [3],
        claimMore: 0,
        engineId: 'e1',
      });
      expect(r.written.sort()).toEqual([0, 1, 2]);
      expect(r.continuations).toHaveLength(1);
      expect(r.continuations[0]).toMatchObject({ runId: run.id, index: 3, state: 'RUNNING', epoch: 1, execution: 1 });
      const atoms = await store.getAtoms(run.id);
      expect(atoms.map((a) => [a.state, a.pending])).toEqual([
        ['SUCCESS', 0],
        ['SUCCESS', 0],
        ['SUCCESS', 0],
        ['RUNNING', 0],
        ['PENDING', 1],
      ]);
      expect(atoms.map((a) => a.result)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, null, null]);
      expect((await store.getRun(run.id))!.pendingAtoms).toBe(2);
      const events = await store.listEvents({ runId: run.id });
      expect(events.map((e) => `${e.atom}:${e.kind}`)).toEqual(
        expect.arrayContaining(['0:atom.success', '1:atom.success', '2:atom.success', '3:atom.claimed']),
      );
      expect(events.filter((e) => e.atom === 3).map((e) => [e.kind, e.fromState, e.toState, e.data])).toEqual([
        ['atom.claimed', 'PENDING', 'RUNNING', { local: true }],
      ]);
    });

    it('reports the run row version it found under the lock, so that engines see other commits to the run (PostgreSQL)', async (ctx) => {
      if (!db || dialect !== 'postgres') return ctx.skip();
      const run = newRun({ predecessors: [[], [], [], [], []] });
      await store.startRun(run);
      const claims = (await store.claimAtoms('e1', 5)).filter((c) => c.runId === run.id).sort((a, b) => a.index - b.index);
      const batch = (cs: typeof claims) =>
        store.fast!.completeSuccesses({ runId: run.id, successes: cs.map((c) => success(c, [])), claim: [], claimMore: 0, engineId: 'e1' });
      const first = await batch(claims.slice(0, 2));
      expect(first.written.sort()).toEqual([0, 1]);
      const version = async () => Number((await db!.exec(`SELECT row_version FROM stoker_runs WHERE id = '${run.id}'`))[0]!.row_version);
      const before = await version();
      expect(first.runVersion).toBe(before - 1);
      // nothing else committed to the run: the next batch finds what the first one left
      const second = await batch(claims.slice(2, 3));
      expect(second.runVersion).toBe(before);
      // another transaction changed the run row in between: the version moved on
      await store.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status: 'RUNNING' }));
      const third = await batch(claims.slice(3, 4));
      expect(third.runVersion).toBeGreaterThan(before + 1);
    });

    it("a PENDING run's first batch moves it to RUNNING, with run.running first", async (ctx) => {
      if (!db) return ctx.skip();
      const run = newRun({ predecessors: [[], [], [], [0, 1, 2], [3]] });
      await store.startRun(run);
      const claims = (await store.claimAtoms('e1', 3)).filter((c) => c.runId === run.id);
      expect(claims).toHaveLength(3);
      const r = await store.fast!.completeSuccesses({
        runId: run.id,
        successes: claims.map((c) => success(c, [3])),
        claim: [3],
        claimMore: 0,
        engineId: 'e1',
      });
      expect(r.written.sort()).toEqual([0, 1, 2]);
      expect((await store.getRun(run.id))!).toMatchObject({ status: 'RUNNING', pendingAtoms: 2 });
      const kinds = (await store.listEvents({ runId: run.id }))
        .map((e) => e.kind)
        .filter((k) => k !== 'run.created' && k !== 'atom.claimed');
      expect(kinds).toEqual(['run.running', 'atom.success', 'atom.success', 'atom.success']);
    });

    it('writes only the successes whose fence holds, and counts only those', async (ctx) => {
      if (!db) return ctx.skip();
      const { run, claims } = await fanIn();
      const stale = claims.map((c) => (c.index === 1 ? { ...c, epoch: c.epoch - 1 } : c));
      const r = await store.fast!.completeSuccesses({
        runId: run.id,
        successes: stale.map((c) => success(c, [3])),
        claim: [3],
        claimMore: 0,
        engineId: 'e1',
      });
      expect(r.written.sort()).toEqual([0, 2]);
      expect(r.continuations).toEqual([]);
      const atoms = await store.getAtoms(run.id);
      expect(atoms.map((a) => [a.state, a.pending])).toEqual([
        ['SUCCESS', 0],
        ['RUNNING', 0],
        ['SUCCESS', 0],
        ['PENDING', 1],
        ['PENDING', 1],
      ]);
      expect((await store.getRun(run.id))!.pendingAtoms).toBe(3);
    });

    it('writes nothing when the batch would finish the run or the run is not RUNNING', async (ctx) => {
      if (!db) return ctx.skip();
      const two = newRun({ predecessors: [[], []] });
      await store.startRun(two);
      await store.runTransaction([two.id], (tx) => tx.updateRun(two.id, { status: 'RUNNING' }));
      const cs = (await store.claimAtoms('e1', 2)).filter((c) => c.runId === two.id);
      expect(cs).toHaveLength(2);
      const r = await store.fast!.completeSuccesses({
        runId: two.id,
        successes: cs.map((c) => success(c, [])),
        claim: [],
        claimMore: 4,
        engineId: 'e1',
      });
      expect(r).toEqual({ written: [], continuations: [], claimedMore: 0, madeReady: 0 });
      expect((await store.getAtoms(two.id)).map((a) => a.state)).toEqual(['RUNNING', 'RUNNING']);

      const { run, claims } = await fanIn();
      await store.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status: 'CANCELLED' }));
      const r2 = await store.fast!.completeSuccesses({
        runId: run.id,
        successes: claims.map((c) => success(c, [3])),
        claim: [3],
        claimMore: 0,
        engineId: 'e1',
      });
      expect(r2.written).toEqual([]);
      expect((await store.getAtoms(run.id)).map((a) => a.state)).toEqual(['RUNNING', 'RUNNING', 'RUNNING', 'PENDING', 'PENDING']);
    });

    it('claims READY atoms of any run for the slots it frees', async (ctx) => {
      if (!db) return ctx.skip();
      const { run, claims } = await fanIn();
      const other = newRun({ predecessors: [[], []] });
      await store.startRun(other);
      const r = await store.fast!.completeSuccesses({
        runId: run.id,
        successes: claims.slice(0, 2).map((c) => success(c, [3])),
        claim: [],
        claimMore: 5,
        engineId: 'e2',
      });
      expect(r.written.sort()).toEqual([0, 1]);
      expect(r.claimedMore).toBe(2);
      expect(r.continuations.map((c) => [c.runId, c.index, c.state]).sort()).toEqual([
        [other.id, 0, 'RUNNING'],
        [other.id, 1, 'RUNNING'],
      ]);
      expect((await store.getAtoms(other.id)).map((a) => a.claimedBy)).toEqual(['e2', 'e2']);
    });
  });

  describe(`fast finish path (${dialect})`, () => {
    let db: TestStore | null = null;
    let store: Store;
    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (db) store = db.store;
    });
    afterAll(async () => {
      await db?.drop();
    });

    /** n one-atom runs, each claimed by e1 (still PENDING: no transition yet) */
    async function oneAtomRuns(n: number) {
      const runs = Array.from({ length: n }, () => newRun({ predecessors: [[]] }));
      for (const r of runs) await store.startRun(r);
      const ids = new Set(runs.map((r) => r.id));
      const claims = (await store.claimAtoms('e1', 100)).filter((c) => ids.has(c.runId));
      expect(claims).toHaveLength(n);
      return { runs, claims };
    }
    const finish = (c: { runId: string; index: number; epoch: number }, outputs: Record<string, number> = {}) => ({
      runId: c.runId,
      index: c.index,
      epoch: c.epoch,
      result: { r: c.runId },
      journal: [],
      outputs,
    });

    it('finishes several runs in one statement: atom and run rows, outputs, the history of each run', async (ctx) => {
      if (!db) return ctx.skip();
      const { claims } = await oneAtomRuns(3);
      const r = await store.fast!.finishRuns({ finishes: claims.map((c, i) => finish(c, { n: i })), claimMore: 0, engineId: 'e1' });
      expect(r.finished.map((f) => f.runId).sort()).toEqual(claims.map((c) => c.runId).sort());
      expect(r.continuations).toEqual([]);
      for (const [i, c] of claims.entries()) {
        const run = (await store.getRun(c.runId))!;
        expect(run).toMatchObject({ status: 'SUCCESS', pendingAtoms: 0, result: { n: i } });
        expect(run.finishedAt).not.toBeNull();
        expect((await store.getAtoms(c.runId))[0]).toMatchObject({ state: 'SUCCESS', result: { r: c.runId }, claimedBy: null });
        const events = (await store.listEvents({ runId: c.runId })).map((e) => `${e.kind}:${e.fromState ?? ''}>${e.toState ?? ''}`);
        expect(events).toEqual([
          'run.created:>PENDING',
          'atom.claimed:READY>RUNNING',
          'run.running:PENDING>RUNNING',
          'atom.success:RUNNING>SUCCESS',
          'run.success:RUNNING>SUCCESS',
        ]);
      }
    });

    it('skips runs whose fence misses, that have work left, that ended, or that have a parent; writes the others', async (ctx) => {
      if (!db) return ctx.skip();
      const { claims } = await oneAtomRuns(3);
      const [stale, cancelled, fine] = claims as [(typeof claims)[0], (typeof claims)[0], (typeof claims)[0]];
      await store.runTransaction([cancelled.runId], (tx) => tx.updateRun(cancelled.runId, { status: 'CANCELLED' }));
      const twoAtoms = newRun({ predecessors: [[], []] });
      await store.startRun(twoAtoms);
      const [left] = (await store.claimAtoms('e1', 100)).filter((c) => c.runId === twoAtoms.id);
      const child = newRun({ predecessors: [[]], parentRunId: fine.runId, parentAtom: 0 });
      await store.startRun(child);
      const [childClaim] = (await store.claimAtoms('e1', 100)).filter((c) => c.runId === child.id);
      const r = await store.fast!.finishRuns({
        finishes: [finish({ ...stale, epoch: stale.epoch - 1 }), finish(cancelled), finish(fine), finish(left!), finish(childClaim!)],
        claimMore: 0,
        engineId: 'e1',
      });
      expect(r.finished).toEqual([{ runId: fine.runId, index: 0 }]);
      expect((await store.getRun(stale.runId))!.status).toBe('PENDING');
      expect((await store.getRun(cancelled.runId))!.status).toBe('CANCELLED');
      expect((await store.getRun(twoAtoms.id))!.pendingAtoms).toBe(2);
      expect((await store.getRun(child.id))!.status).toBe('PENDING');
      expect((await store.getAtoms(stale.runId))[0]!.state).toBe('RUNNING');
      expect((await store.getAtoms(child.id))[0]!.state).toBe('RUNNING');
    });

    it('claims READY atoms for the freed slots, only when it wrote something', async (ctx) => {
      if (!db) return ctx.skip();
      const { claims } = await oneAtomRuns(2);
      const waiting = newRun({ predecessors: [[], []] });
      await store.startRun(waiting);
      const none = await store.fast!.finishRuns({
        finishes: claims.map((c) => finish({ ...c, epoch: c.epoch + 5 })),
        claimMore: 5,
        engineId: 'e2',
      });
      expect(none).toEqual({ finished: [], continuations: [] });
      expect((await store.getAtoms(waiting.id)).map((a) => a.state)).toEqual(['READY', 'READY']);
      const r = await store.fast!.finishRuns({ finishes: claims.map((c) => finish(c)), claimMore: 5, engineId: 'e2' });
      expect(r.finished).toHaveLength(2);
      expect(r.continuations.map((c) => [c.runId, c.index, c.state]).sort()).toEqual([
        [waiting.id, 0, 'RUNNING'],
        [waiting.id, 1, 'RUNNING'],
      ]);
      // PostgreSQL's statement also returns the row of each run it claimed from, beside the
      // run's first atom, as the claim statement does: the engine starts them without
      // reading the run (MariaDB's procedure does not)
      const withRun = r.continuations.filter((c) => c.run !== undefined);
      expect(withRun.map((c) => [c.index, c.run])).toEqual(dialect === 'postgres' ? [[0, await store.getRun(waiting.id)]] : []);
    });
  });
  describe(`values through the fast paths (${dialect})`, () => {
    let db: TestStore | null = null;
    let store: Store;
    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (db) store = db.store;
    });
    afterAll(async () => {
      await db?.drop();
    });

    // what JSON text can hold that SQL string handling could get wrong (MySQL passes batches
    // as JSON text and returns claims as JSON text)
    const tricky = {
      s: 'quote " backslash \\ slash / tab \t newline \n ls \u2028 emoji 😀 é \\u0041 $[0] {p}',
      n: [1, -0.5, 1e21, 0],
      nested: { a: [null, true, false, {}, []], '': 'empty key' },
    };
    const journal = [{ seq: 1, kind: 'signal' as const, ref: 'sig "x"', done: true, value: tricky }];

    it('results, journals and outputs come back unchanged from each path, and through a claim', async (ctx) => {
      if (!db) return ctx.skip();
      // one success (its successor claimed), then a batch of two, then a run finished
      const chain = newRun({ predecessors: [[], [0], [1]] });
      await store.startRun(chain);
      const [c0] = (await store.claimAtoms('e1', 10)).filter((c) => c.runId === chain.id);
      const one = await store.fast!.completeSuccess({
        runId: chain.id,
        index: 0,
        epoch: c0!.epoch,
        result: tricky,
        journal,
        successors: [1],
        claim: 1,
        engineId: 'e1',
      });
      expect(one.handled).toBe(true);
      const wide = newRun({ predecessors: [[], [], [0, 1]] });
      await store.startRun(wide);
      const roots = (await store.claimAtoms('e1', 10)).filter((c) => c.runId === wide.id);
      expect(roots).toHaveLength(2);
      const batch = await store.fast!.completeSuccesses({
        runId: wide.id,
        successes: roots.map((c) => ({ index: c.index, epoch: c.epoch, result: [tricky, c.index], journal, successors: [2] })),
        claim: [],
        claimMore: 0,
        engineId: 'e1',
      });
      expect(batch.written.sort()).toEqual([0, 1]);
      const single = newRun({ predecessors: [[]] });
      await store.startRun(single);
      const [s0] = (await store.claimAtoms('e1', 10)).filter((c) => c.runId === single.id);
      const fin = await store.fast!.finishRuns({
        finishes: [{ runId: single.id, index: 0, epoch: s0!.epoch, result: tricky, journal, outputs: { out: tricky } }],
        claimMore: 0,
        engineId: 'e1',
      });
      expect(fin.finished).toEqual([{ runId: single.id, index: 0 }]);

      const [a0] = await store.getAtoms(chain.id);
      expect([a0!.result, a0!.journal]).toEqual([tricky, journal]);
      expect((await store.getAtoms(wide.id)).slice(0, 2).map((a) => [a.result, a.journal])).toEqual([
        [[tricky, 0], journal],
        [[tricky, 1], journal],
      ]);
      expect((await store.getAtoms(single.id))[0]!.result).toEqual(tricky);
      expect((await store.getRun(single.id))!.result).toEqual({ out: tricky });

      // a claim hands back the atom's journal and failure as stored
      const parked = newRun({ predecessors: [[]] });
      await store.startRun(parked);
      const failure = { type: 'Error', message: tricky.s, details: tricky };
      await store.runTransaction([parked.id], (tx) => tx.updateAtoms(parked.id, [{ index: 0, patch: { journal, failure } }]));
      const [claim] = (await store.claimAtoms('e1', 10)).filter((c) => c.runId === parked.id);
      expect([claim!.journal, claim!.failure]).toEqual([journal, failure]);
    });
  });
}
