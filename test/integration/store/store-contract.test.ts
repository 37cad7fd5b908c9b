/**
 * The Store contract, run unchanged against every dialect (SQLite, PostgreSQL, MySQL/MariaDB).
 * Every adapter must return the same states, rows, events and errors; only timing and
 * clock resolution may differ.
 *
 * Tests that claim or requeue use their own table prefix (`fresh()`), because claims and
 * requeues act on every run in the tables.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AtomState } from '../../../src/store/states.js';
import { ValidationError, isStokerError } from '../../../src/errors.js';
import type { AtomRow, ClaimedAtom, RunTx, Store } from '../../../src/store/store.js';
import { openStore, parseStoreUrl } from '../../../src/store/open-store.js';
import { describeEachDialect, mysqlAdminUrl, postgresAdminUrl, probeDialect } from '../../helpers/databases.js';
import { graphOf, newRun, runId } from '../../helpers/graphs.js';
import { sqliteMigrations } from '../../../src/store/sqlite/migrations.js';
import { postgresMigrations } from '../../../src/store/postgres/migrations.js';
import { mysqlMigrations } from '../../../src/store/mysql/migrations.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const byIndex = (atoms: AtomRow[]) => new Map(atoms.map((a) => [a.index, a]));
const states = (atoms: AtomRow[]) => atoms.map((a) => a.state);

await describeEachDialect('store contract', (ctx) => {
  let prefixSeq = 0;
  /** A migrated store on tables of its own: nothing else claims or requeues there. */
  const fresh = (): Promise<Store> => ctx.db.open({ tablePrefix: `c${prefixSeq++}_` });
  /** the migration versions this build ships for the dialect, in order */
  const shipped = (): number[] =>
    ({ sqlite: sqliteMigrations, postgres: postgresMigrations, mysql: mysqlMigrations })[ctx.dialect]
      .map((m) => m.version)
      .sort((a, b) => a - b);
  /** what migrate returns for those: the core schema's migrations */
  const shippedRecords = () =>
    shipped().map((version) => ({
      module: 'core',
      version,
      name: { sqlite: sqliteMigrations, postgres: postgresMigrations, mysql: mysqlMigrations }[ctx.dialect].find(
        (m) => m.version === version,
      )!.name,
    }));

  // ------------------------------------------------------------------ capabilities

  it('declares its optional ports in its capabilities, and has exactly those', async () => {
    const s = await ctx.db.open();
    const caps = s.capabilities;
    expect(caps.name).toBe(ctx.dialect);
    expect(s.fast !== null).toBe(caps.fastCompletions);
    expect(s.wakeups !== null).toBe(caps.pushWakeups);
    expect(s.supervisor !== null).toBe(caps.localSupervisor);
    // what each dialect has today: one-call completions on PostgreSQL and MySQL, pushed
    // wake-ups everywhere, the local supervisor on SQLite (one host, one writer)
    expect([caps.fastCompletions, caps.pushWakeups, caps.localSupervisor]).toEqual(
      { sqlite: [false, true, true], postgres: [true, true, false], mysql: [true, true, false] }[ctx.dialect],
    );
  });

  // ------------------------------------------------------------------ migrations and clock

  it('migrate applies every shipped version once; later calls (and concurrent migrators) apply nothing', async () => {
    const s = await ctx.db.open({ tablePrefix: 'mig_', migrate: false });
    expect(await s.migrate()).toEqual(shippedRecords());
    expect(await s.migrate()).toEqual([]);
    const other = await ctx.db.open({ tablePrefix: 'mig_', migrate: false });
    expect(await other.migrate()).toEqual([]);

    // Two migrators at once. SQLite is single-writer: two connections in one thread would
    // block each other (capabilities.singleWriter), so there they take turns.
    const a = await ctx.db.open({ tablePrefix: 'mig2_', migrate: false });
    const b = await ctx.db.open({ tablePrefix: 'mig2_', migrate: false });
    const both = a.capabilities.singleWriter ? [await a.migrate(), await b.migrate()] : await Promise.all([a.migrate(), b.migrate()]);
    expect(both.flat()).toEqual(shippedRecords());
    const rows = await ctx.db.exec(`SELECT version, name, checksum FROM mig2_schema_migrations WHERE module = 'core' ORDER BY version`);
    expect(rows.map((r) => Number(r.version))).toEqual(shipped());
    expect(String(rows[0]!.checksum)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('migrate refuses a changed applied migration and a database newer than this build', async () => {
    const s = await ctx.db.open({ tablePrefix: 'sum_' });
    await ctx.db.exec(`UPDATE sum_schema_migrations SET checksum = 'tampered' WHERE module = 'core' AND version = 1`);
    const err = await s.migrate().then(
      () => null,
      (e: unknown) => e,
    );
    expect(isStokerError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'STOKER_STORE_MIGRATION_CHECKSUM', details: { module: 'core', version: 1, applied: 'tampered' } });

    const t = await ctx.db.open({ tablePrefix: 'new_' });
    await ctx.db.exec(
      `INSERT INTO new_schema_migrations (module, version, name, checksum, applied_at)
       SELECT 'core', 99, 'future', 'x', applied_at FROM new_schema_migrations WHERE module = 'core' AND version = 1`,
    );
    await expect(t.migrate()).rejects.toMatchObject({
      code: 'STOKER_STORE_SCHEMA_TOO_NEW',
      details: { module: 'core', applied: 99, known: Math.max(...shipped()) },
    });
  });

  it('now() is the database clock, and writes are stamped with it', async () => {
    const s = ctx.store;
    const local = Date.now();
    const t1 = await s.now();
    expect(t1).toBeInstanceOf(Date);
    // the servers run on this host: their clock agrees with ours within a second
    expect(Math.abs(t1.getTime() - local)).toBeLessThan(1000);
    const { run } = await s.startRun(newRun({ predecessors: [[]] }));
    const t2 = await s.now();
    expect(t2.getTime()).toBeGreaterThanOrEqual(t1.getTime());
    expect(run.createdAt.getTime()).toBeGreaterThanOrEqual(t1.getTime() - 1);
    expect(run.createdAt.getTime()).toBeLessThanOrEqual(t2.getTime() + 1);
    const [atom] = await s.getAtoms(run.id);
    expect(atom!.readyAt!.getTime()).toBeGreaterThanOrEqual(t1.getTime() - 1);
    expect(atom!.readyAt!.getTime()).toBeLessThanOrEqual(t2.getTime() + 1);
  });

  // ------------------------------------------------------------------ starting runs

  it('startRun inserts the run and its atoms, READY when they have no predecessors', async () => {
    const s = ctx.store;
    const graph = graphOf([[], [], [0, 1], [2]]);
    const args = { b: 2, a: [1, { c: 'x' }], unicode: 'é ✓ 🚀' };
    const id = runId();
    const res = await s.startRun({ id, flow: 'contract', version: '1', key: null, args, graph });
    expect(res.created).toBe(true);
    expect(res.superseded).toBeUndefined();
    expect(res.run).toMatchObject({
      id,
      flow: 'contract',
      version: '1',
      key: null,
      status: 'PENDING',
      args,
      result: null,
      failure: null,
      parentRunId: null,
      parentAtom: null,
      pendingAtoms: 4,
      revertPending: 0,
      atomCount: 4,
      finishedAt: null,
    });
    expect(res.run.createdAt).toBeInstanceOf(Date);
    expect(res.run.updatedAt).toBeInstanceOf(Date);
    expect(await s.getRun(id)).toEqual(res.run);
    expect(await s.getRunGraph(id)).toEqual(graph);
    expect(await s.getRun('no-such-run')).toBeNull();
    expect(await s.getRunGraph('no-such-run')).toBeNull();

    const atoms = await s.getAtoms(id);
    expect(atoms.map((a) => a.index)).toEqual([0, 1, 2, 3]);
    expect(atoms.map((a) => a.name)).toEqual(['step0', 'step1', 'step2', 'step3']);
    expect(states(atoms)).toEqual(['READY', 'READY', 'PENDING', 'PENDING']);
    expect(atoms.map((a) => a.pending)).toEqual([0, 0, 2, 1]);
    expect(atoms.map((a) => a.readyAt === null)).toEqual([false, false, true, true]);
    for (const a of atoms) {
      expect(a).toMatchObject({
        runId: id,
        revertPending: 0,
        skip: false,
        revertRequested: false,
        epoch: 0,
        claimedBy: null,
        attempt: 1,
        execution: 0,
      });
      expect(a).toMatchObject({ result: null, failure: null, journal: [], waitKind: null, waitRef: null });
    }

    const events = await s.listEvents({ runId: id });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      runId: id,
      atom: null,
      kind: 'run.created',
      fromState: null,
      toState: 'PENDING',
      engineId: null,
      epoch: null,
      data: null,
    });
    expect(events[0]!.at).toBeInstanceOf(Date);

    const child = await s.startRun(newRun({ parentRunId: id, parentAtom: 2 }));
    expect(child.run).toMatchObject({ parentRunId: id, parentAtom: 2, atomCount: 1 });
  });

  it('a key makes starts idempotent: same arguments return the active run, others conflict', async () => {
    const s = ctx.store;
    const key = runId('key');
    const a = await s.startRun(newRun({ key, args: { x: 1, y: [1, 2] } }));
    expect(a.created).toBe(true);
    expect(a.run.key).toBe(key);

    const twinId = runId();
    const b = await s.startRun(newRun({ id: twinId, key, args: { y: [1, 2], x: 1 } }));
    expect(b.created).toBe(false);
    expect(b.run.id).toBe(a.run.id);
    expect(b.run).toEqual(a.run);
    expect(await s.getRun(twinId)).toBeNull();

    await expect(s.startRun(newRun({ key, args: { x: 2 } }))).rejects.toMatchObject({
      code: 'STOKER_RUN_KEY_CONFLICT',
      details: { runId: a.run.id, key },
    });
    // same arguments but another flow is a conflict too
    await expect(s.startRun(newRun({ key, flow: 'other', args: { x: 1, y: [1, 2] } }))).rejects.toMatchObject({
      code: 'STOKER_RUN_KEY_CONFLICT',
    });
    expect(await s.listRuns({ key })).toHaveLength(1);
  });

  it('concurrent starts with one new key create exactly one run', async () => {
    const s = ctx.store;
    const key = runId('race');
    const results = await Promise.all(Array.from({ length: 6 }, () => s.startRun(newRun({ key, args: { same: true } }))));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.run.id)).size).toBe(1);
    expect(await s.listRuns({ key })).toHaveLength(1);
  });

  it('supersede marks the active run SUPERSEDED and cancels its atoms that are not running', async () => {
    const s = await fresh();
    const key = runId('sup');
    const old = await s.startRun(newRun({ key, args: { v: 1 }, predecessors: [[], [], [0]] }));
    const [claim] = await s.claimAtoms('engine-a', 1);
    expect(claim).toBeDefined();

    const newId = runId();
    const next = await s.startRun(newRun({ id: newId, key, args: { v: 2 }, supersede: true }));
    expect(next.created).toBe(true);
    expect(next.superseded).toBe(old.run.id);
    expect(next.run).toMatchObject({ id: newId, key, status: 'PENDING' });

    const oldRun = (await s.getRun(old.run.id))!;
    expect(oldRun.status).toBe('SUPERSEDED');
    expect(oldRun.finishedAt).toBeInstanceOf(Date);
    const oldAtoms = byIndex(await s.getAtoms(old.run.id));
    for (const a of oldAtoms.values()) {
      if (a.index === claim!.index) expect(a).toMatchObject({ state: 'RUNNING', claimedBy: 'engine-a', epoch: 1 });
      else expect(a).toMatchObject({ state: 'CANCELLED', readyAt: null });
    }
    const oldEvents = await s.listEvents({ runId: old.run.id });
    expect(oldEvents.at(-1)).toMatchObject({ kind: 'run.superseded', toState: 'SUPERSEDED', data: { cancelledAtoms: 2 } });
    // every atom it cancelled has its own event, naming the state it left
    const cancelledEvents = oldEvents.filter((e) => e.kind === 'atom.cancelled').map((e) => [e.atom, e.fromState, e.toState]);
    const readyLeft = claim!.index === 0 ? 1 : 0;
    expect(cancelledEvents).toEqual(
      [
        [readyLeft, 'READY', 'CANCELLED'],
        [2, 'PENDING', 'CANCELLED'],
      ].sort((x, y) => Number(x[0]) - Number(y[0])),
    );
    expect((await s.listEvents({ runId: newId }))[0]).toMatchObject({ kind: 'run.created', data: { supersedes: old.run.id } });

    // the key now belongs to the new run
    const again = await s.startRun(newRun({ key, args: { v: 2 } }));
    expect(again).toMatchObject({ created: false, run: { id: newId } });
  });

  // ------------------------------------------------------------------ claims

  it('claimAtoms respects the limit and ready_at, bumps epoch and execution, and records atom.claimed', async () => {
    const s = await fresh();
    const { run } = await s.startRun(newRun({ predecessors: [[], [], [], [], []] }));
    // atom 4 is parked one minute ahead
    const parked = await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [{ index: 4, expectStates: ['READY'], patch: { readyAt: { delayMs: 60_000 } } }]),
    );
    expect(parked).toEqual([true]);

    expect(await s.claimAtoms('e1', 0)).toEqual([]);
    const first = await s.claimAtoms('e1', 2);
    expect(first).toHaveLength(2);
    const second = await s.claimAtoms('e2', 10);
    expect(second).toHaveLength(2);
    expect(await s.claimAtoms('e3', 10)).toEqual([]);

    const claimed = [...first, ...second];
    expect(claimed.map((c) => c.index).sort()).toEqual([0, 1, 2, 3]);
    // a store that reads the run's row in the claim's own round trip (PostgreSQL's statement,
    // MySQL's procedure) gives it on one atom per run and batch
    const row = await s.getRun(run.id);
    for (const batch of [first, second]) {
      const withRun = batch.filter((c) => c.run !== undefined);
      expect(withRun.length).toBe(ctx.dialect === 'sqlite' ? 0 : 1);
      for (const c of withRun) expect(c.run).toEqual(row);
    }
    for (const { run: _row, ...c } of claimed) {
      expect(c).toEqual<ClaimedAtom>({
        runId: run.id,
        index: c.index,
        state: 'RUNNING',
        epoch: 1,
        attempt: 1,
        execution: 1,
        journal: [],
        failure: null,
      });
    }
    const atoms = byIndex(await s.getAtoms(run.id));
    for (const c of first)
      expect(atoms.get(c.index)).toMatchObject({ state: 'RUNNING', claimedBy: 'e1', epoch: 1, execution: 1, readyAt: null });
    for (const c of second)
      expect(atoms.get(c.index)).toMatchObject({ state: 'RUNNING', claimedBy: 'e2', epoch: 1, execution: 1, readyAt: null });
    const now = await s.now();
    expect(atoms.get(4)).toMatchObject({ state: 'READY', epoch: 0, claimedBy: null });
    expect(atoms.get(4)!.readyAt!.getTime()).toBeGreaterThan(now.getTime() + 50_000);

    const events = (await s.listEvents({ runId: run.id })).filter((e) => e.kind === 'atom.claimed');
    expect(events).toHaveLength(4);
    for (const e of events) {
      const c = claimed.find((x) => x.index === e.atom)!;
      expect(e).toMatchObject({
        runId: run.id,
        fromState: 'READY',
        toState: 'RUNNING',
        epoch: 1,
        data: null,
        engineId: first.includes(c) ? 'e1' : 'e2',
      });
    }

    // made ready now, atom 4 is claimed next
    await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [{ index: 4, expectStates: ['READY'], patch: { readyAt: { delayMs: 0 } } }]),
    );
    expect((await s.claimAtoms('e3', 10)).map((c) => c.index)).toEqual([4]);
  });

  it('claimAtoms picks up WAITING atoms (execution + 1) and REVERT_READY atoms (REVERTING, execution kept)', async () => {
    const s = await fresh();
    const { run } = await s.startRun(newRun({ predecessors: [[], []] }));
    const claims = await s.claimAtoms('e1', 2);
    expect(claims).toHaveLength(2);
    const failure = { type: 'Error', message: 'boom' };
    const ok = await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [
        {
          index: 0,
          epoch: 1,
          expectStates: ['RUNNING'],
          patch: {
            state: 'WAITING',
            waitKind: 'sleep',
            readyAt: { delayMs: 0 },
            claimedBy: null,
            journal: [{ seq: 0, kind: 'sleep', done: false }],
          },
        },
        {
          index: 1,
          epoch: 1,
          expectStates: ['RUNNING'],
          patch: { state: 'REVERT_READY', readyAt: { delayMs: 0 }, claimedBy: null, failure },
        },
      ]),
    );
    expect(ok).toEqual([true, true]);
    const again = await s.claimAtoms('e2', 5);
    const got = new Map(again.map(({ run: _row, ...c }) => [c.index, c]));
    expect(got.get(0)).toEqual({
      runId: run.id,
      index: 0,
      state: 'RUNNING',
      epoch: 2,
      attempt: 1,
      execution: 2,
      journal: [{ seq: 0, kind: 'sleep', done: false }],
      failure: null,
    });
    expect(got.get(1)).toEqual({ runId: run.id, index: 1, state: 'REVERTING', epoch: 2, attempt: 1, execution: 1, journal: [], failure });
    const events = (await s.listEvents({ runId: run.id })).filter((e) => e.kind === 'atom.claimed' && e.epoch === 2);
    expect(events.map((e) => [e.atom, e.toState, e.engineId]).sort()).toEqual([
      [0, 'RUNNING', 'e2'],
      [1, 'REVERTING', 'e2'],
    ]);
  });

  it('concurrent claimers never get the same atom (200 atoms, 4 claimers, limit 7)', async () => {
    const prefix = `cc${prefixSeq++}_`;
    const s = await ctx.db.open({ tablePrefix: prefix });
    const runIds: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { run } = await s.startRun(newRun({ predecessors: Array.from({ length: 10 }, () => []) }));
      runIds.push(run.id);
    }
    // four independent stores, as four engine processes would have (SQLite is single-writer:
    // engines in one process share one store, whose calls interleave on the event loop)
    const claimers = s.capabilities.singleWriter
      ? [s, s, s, s]
      : await Promise.all([0, 1, 2, 3].map(() => ctx.db.open({ tablePrefix: prefix, poolSize: 3 })));
    const got = await Promise.all(
      claimers.map(async (c, i) => {
        const mine: ClaimedAtom[] = [];
        for (;;) {
          const batch = await c.claimAtoms(`claimer-${i}`, 7);
          expect(batch.length).toBeLessThanOrEqual(7);
          if (batch.length === 0) break;
          // a batch over several runs: the run's row on exactly one atom of each (PostgreSQL, MySQL)
          const runsOf = new Set(batch.map((b) => b.runId));
          const withRun = batch.filter((b) => b.run !== undefined);
          expect(withRun.length).toBe(ctx.dialect === 'sqlite' ? 0 : runsOf.size);
          for (const b of withRun) expect(b.run!.id).toBe(b.runId);
          mine.push(...batch);
        }
        return mine;
      }),
    );
    const all = got.flat();
    expect(all).toHaveLength(200);
    expect(new Set(all.map((c) => `${c.runId}/${c.index}`)).size).toBe(200);
    expect(all.every((c) => c.epoch === 1 && c.execution === 1 && c.state === 'RUNNING')).toBe(true);
    expect(await s.claimAtoms('late', 7)).toEqual([]);
    // the rows agree with what each claimer was told
    const owner = new Map<string, string>();
    got.forEach((mine, i) => mine.forEach((c) => owner.set(`${c.runId}/${c.index}`, `claimer-${i}`)));
    let events = 0;
    for (const id of runIds) {
      for (const a of await s.getAtoms(id))
        expect(a).toMatchObject({ state: 'RUNNING', epoch: 1, claimedBy: owner.get(`${id}/${a.index}`) });
      for (const e of (await s.listEvents({ runId: id })).filter((x) => x.kind === 'atom.claimed')) {
        expect(e.engineId).toBe(owner.get(`${id}/${e.atom}`));
        events++;
      }
    }
    expect(events).toBe(200);
  });

  // ------------------------------------------------------------------ run transactions

  it('fenced updateAtoms: false on a stale epoch or a moved state, true on the current claim', async () => {
    const s = await fresh();
    const { run } = await s.startRun(newRun({ predecessors: [[], [0]] }));
    const [claim] = await s.claimAtoms('e1', 1);
    expect(claim).toMatchObject({ index: 0, epoch: 1 });
    const done = { state: 'SUCCESS' as AtomState, result: { ok: true, n: [1, 2], s: 'ü' }, claimedBy: null };

    const results = await s.runTransaction([run.id], async (tx) => [
      ...(await tx.updateAtoms(run.id, [{ index: 0, epoch: 0, expectStates: ['RUNNING'], patch: done }])),
      ...(await tx.updateAtoms(run.id, [{ index: 0, epoch: 1, expectStates: ['READY'], patch: done }])),
      ...(await tx.updateAtoms(run.id, [{ index: 0, epoch: 2, patch: done }])),
    ]);
    expect(results).toEqual([false, false, false]);
    expect((await s.getAtoms(run.id))[0]).toMatchObject({ state: 'RUNNING', result: null, claimedBy: 'e1' });

    const ok = await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [
        { index: 0, epoch: 1, expectStates: ['RUNNING'], patch: done },
        { index: 0, epoch: 1, expectStates: ['RUNNING'], patch: done },
      ]),
    );
    expect(ok).toEqual([true, false]);
    expect((await s.getAtoms(run.id))[0]).toMatchObject({ state: 'SUCCESS', result: done.result, claimedBy: null, epoch: 1 });

    // "matched but unchanged" is a match, never a fence (MySQL: FOUND_ROWS)
    const same = await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [{ index: 0, epoch: 1, expectStates: ['SUCCESS'], patch: { state: 'SUCCESS' } }]),
    );
    expect(same).toEqual([true]);
  });

  it('updateAtoms writes every patch field and honours expectRevertRequested', async () => {
    const s = ctx.store;
    const { run } = await s.startRun(newRun({ predecessors: [[], [0]] }));
    const journal = [
      { seq: 0, kind: 'sleep' as const, done: true },
      { seq: 1, kind: 'signal' as const, ref: 'go', done: true, value: { a: [1, null] } },
    ];
    const failure = { type: 'TypeError', message: 'bad', stack: 'at x', retryable: false, cause: { type: 'Error', message: 'inner' } };
    const [ok] = await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [
        {
          index: 1,
          expectStates: ['PENDING'],
          patch: {
            state: 'WAITING',
            pending: 7,
            revertPending: 3,
            skip: true,
            revertRequested: true,
            attempt: 4,
            execution: 5,
            result: [1, 'two', { three: 3 }],
            failure,
            journal,
            waitKind: 'signal',
            waitRef: 'go',
            readyAt: null,
            claimedBy: 'someone',
          },
        },
      ]),
    );
    expect(ok).toBe(true);
    const a = (await s.getAtoms(run.id))[1]!;
    expect(a).toMatchObject({
      state: 'WAITING',
      pending: 7,
      revertPending: 3,
      skip: true,
      revertRequested: true,
      attempt: 4,
      execution: 5,
      result: [1, 'two', { three: 3 }],
      failure,
      journal,
      waitKind: 'signal',
      waitRef: 'go',
      readyAt: null,
      claimedBy: 'someone',
      epoch: 0,
    });
    const r = await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [
        { index: 1, expectRevertRequested: false, patch: { attempt: 9 } },
        { index: 1, expectRevertRequested: true, patch: { revertRequested: false, skip: false, result: null, failure: null } },
      ]),
    );
    expect(r).toEqual([false, true]);
    expect((await s.getAtoms(run.id))[1]).toMatchObject({ attempt: 4, revertRequested: false, skip: false, result: null, failure: null });
  });

  it('updateAtoms in one call: cleared ready_at on several atoms, and a delay on one atom beside one without', async () => {
    const s = await fresh();
    const { run } = await s.startRun(newRun({ predecessors: [[], [], [], []] }));
    const before = byIndex(await s.getAtoms(run.id));
    const now = (await s.now()).getTime();
    expect(
      await s.runTransaction([run.id], (tx) =>
        tx.updateAtoms(run.id, [
          { index: 0, expectStates: ['READY'], patch: { state: 'CANCELLED', readyAt: null } },
          { index: 1, expectStates: ['READY'], patch: { state: 'CANCELLED', readyAt: null } },
        ]),
      ),
    ).toEqual([true, true]);
    expect(
      await s.runTransaction([run.id], (tx) =>
        tx.updateAtoms(run.id, [
          { index: 2, expectStates: ['READY'], patch: { waitRef: 'kept' } },
          { index: 3, expectStates: ['READY'], patch: { waitRef: 'delayed', readyAt: { delayMs: 60_000 } } },
        ]),
      ),
    ).toEqual([true, true]);
    const after = byIndex(await s.getAtoms(run.id));
    expect([0, 1].map((i) => [after.get(i)!.state, after.get(i)!.readyAt])).toEqual([
      ['CANCELLED', null],
      ['CANCELLED', null],
    ]);
    expect(after.get(2)).toMatchObject({ state: 'READY', waitRef: 'kept', readyAt: before.get(2)!.readyAt });
    expect(after.get(3)).toMatchObject({ state: 'READY', waitRef: 'delayed' });
    expect(after.get(3)!.readyAt!.getTime()).toBeGreaterThan(now + 50_000);
  });

  it('decrementPending counts down PENDING atoms, makes them READY at 0, and ORs disable into skip', async () => {
    const s = ctx.store;
    const { run } = await s.startRun(newRun({ predecessors: [[], [], [0, 1], [0], [0, 1], [0, 1]] }));
    const out = await s.runTransaction([run.id], async (tx) => {
      const steps: AtomRow[][] = [];
      steps.push(await tx.decrementPending(run.id, [{ index: 2, disable: false }]));
      steps.push(
        await tx.decrementPending(run.id, [
          { index: 2, disable: false },
          { index: 3, disable: true },
        ]),
      );
      steps.push(
        await tx.decrementPending(run.id, [
          { index: 4, disable: true },
          { index: 4, disable: false },
        ]),
      );
      steps.push(await tx.decrementPending(run.id, [{ index: 0, disable: false }])); // READY: not PENDING, untouched
      steps.push(await tx.decrementPending(run.id, [{ index: 5, disable: false }]));
      steps.push(await tx.decrementPending(run.id, [{ index: 5, disable: true }]));
      steps.push(await tx.decrementPending(run.id, []));
      return steps;
    });
    const pick = (rows: AtomRow[]) =>
      rows.map((a) => ({ index: a.index, pending: a.pending, skip: a.skip, state: a.state, ready: a.readyAt !== null }));
    expect(pick(out[0]!)).toEqual([{ index: 2, pending: 1, skip: false, state: 'PENDING', ready: false }]);
    expect(pick(out[1]!)).toEqual([
      { index: 2, pending: 0, skip: false, state: 'READY', ready: true },
      { index: 3, pending: 0, skip: true, state: 'PENDING', ready: false },
    ]);
    expect(pick(out[2]!)).toEqual([
      { index: 4, pending: 1, skip: true, state: 'PENDING', ready: false },
      { index: 4, pending: 0, skip: true, state: 'PENDING', ready: false },
    ]);
    expect(out[3]).toEqual([]);
    expect(pick(out[4]!)).toEqual([{ index: 5, pending: 1, skip: false, state: 'PENDING', ready: false }]);
    expect(pick(out[5]!)).toEqual([{ index: 5, pending: 0, skip: true, state: 'PENDING', ready: false }]);
    expect(out[6]).toEqual([]);
    const atoms = await s.getAtoms(run.id);
    expect(atoms.map((a) => a.pending)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(states(atoms)).toEqual(['READY', 'READY', 'READY', 'PENDING', 'PENDING', 'PENDING']);
    expect(atoms.map((a) => a.skip)).toEqual([false, false, false, true, true, true]);
  });

  it('claimAtom (local continuation) claims only a READY atom, without an event', async () => {
    const s = await fresh();
    const { run } = await s.startRun(newRun({ predecessors: [[], [0]] }));
    const [pendingClaim, claim, twice] = await s.runTransaction([run.id], async (tx) => [
      await tx.claimAtom(run.id, 1, 'e1'),
      await tx.claimAtom(run.id, 0, 'e1'),
      await tx.claimAtom(run.id, 0, 'e2'),
    ]);
    expect(pendingClaim).toBeNull();
    expect(twice).toBeNull();
    expect(claim).toEqual({ runId: run.id, index: 0, state: 'RUNNING', epoch: 1, attempt: 1, execution: 1, journal: [], failure: null });
    expect((await s.getAtoms(run.id))[0]).toMatchObject({ state: 'RUNNING', claimedBy: 'e1', epoch: 1, execution: 1, readyAt: null });
    expect((await s.listEvents({ runId: run.id })).map((e) => e.kind)).toEqual(['run.created']);
    expect(await s.claimAtoms('e3', 5)).toEqual([]);
  });

  it('updateRun applies deltas and statuses; a terminal status frees the key', async () => {
    const s = ctx.store;
    const key = runId('upd');
    const { run } = await s.startRun(newRun({ key, args: { n: 1 }, predecessors: [[], [], []] }));
    const seen = await s.runTransaction([run.id], async (tx) => {
      const before = tx.run(run.id);
      await tx.updateRun(run.id, { status: 'RUNNING', pendingAtomsDelta: -1 });
      const afterFirst = tx.run(run.id);
      await tx.updateRun(run.id, { revertPending: 3 });
      await tx.updateRun(run.id, { revertPendingDelta: -1 });
      const afterDelta = tx.run(run.id).revertPending;
      await tx.updateRun(run.id, { revertPending: 5, revertPendingDelta: 1 });
      return { before, afterFirst, afterDelta, afterBoth: tx.run(run.id).revertPending };
    });
    expect(seen.before).toMatchObject({ status: 'PENDING', pendingAtoms: 3 });
    expect(seen.afterFirst).toMatchObject({ status: 'RUNNING', pendingAtoms: 2, finishedAt: null });
    expect(seen.afterDelta).toBe(2);
    expect(seen.afterBoth).toBe(6);

    // still active: the key is taken
    await expect(s.startRun(newRun({ key, args: { n: 2 } }))).rejects.toMatchObject({ code: 'STOKER_RUN_KEY_CONFLICT' });

    const failure = { type: 'Error', message: 'x', details: { deep: [1, { y: true }] } };
    await s.runTransaction([run.id], async (tx) => {
      await tx.updateRun(run.id, { status: 'SUCCESS', result: { total: 3, list: ['a'] }, failure, pendingAtomsDelta: -2, finished: true });
    });
    const done = (await s.getRun(run.id))!;
    expect(done).toMatchObject({ status: 'SUCCESS', result: { total: 3, list: ['a'] }, failure, pendingAtoms: 0, revertPending: 6, key });
    expect(done.finishedAt).toBeInstanceOf(Date);
    expect(done.updatedAt.getTime()).toBeGreaterThanOrEqual(run.updatedAt.getTime());

    const next = await s.startRun(newRun({ key, args: { n: 2 } }));
    expect(next.created).toBe(true);
    expect(next.run.id).not.toBe(run.id);
    expect((await s.listRuns({ key })).map((r) => r.id)).toEqual([next.run.id, run.id]);
  });

  it('runTransaction serialises transactions on one run and locks several runs in id order', async () => {
    const s = ctx.store;
    const a = (await s.startRun(newRun({ id: runId('lock-a') }))).run;
    const b = (await s.startRun(newRun({ id: runId('lock-b') }))).run;
    const seenA: number[] = [];
    await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        s.runTransaction(i % 2 === 0 ? [a.id, b.id] : [b.id, a.id, a.id], async (tx) => {
          seenA.push(tx.run(a.id).revertPending);
          await tx.updateRun(a.id, { revertPendingDelta: 1 });
          await tx.updateRun(b.id, { revertPendingDelta: 2 });
        }),
      ),
    );
    // every transaction saw the previous one's write: the run lock serialised them
    expect([...seenA].sort((x, y) => x - y)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect((await s.getRun(a.id))!.revertPending).toBe(16);
    expect((await s.getRun(b.id))!.revertPending).toBe(32);

    const value = await s.runTransaction([a.id, 'missing-run'], async (tx) => {
      expect(() => tx.run('missing-run')).toThrowError(expect.objectContaining({ code: 'STOKER_RUN_NOT_FOUND' }) as Error);
      return tx.run(a.id).id;
    });
    expect(value).toBe(a.id);
  });

  it('a deadlock is retried as a whole transaction: both commit and nothing applies twice', async () => {
    const s = ctx.store;
    const a = (await s.startRun(newRun({ id: runId('dl-a') }))).run;
    const b = (await s.startRun(newRun({ id: runId('dl-b') }))).run;
    // Each transaction locks its own run and atom, waits for the other to do the same, then
    // writes the other's atom: a textbook deadlock that the database breaks by aborting one.
    let arrived = 0;
    let release!: () => void;
    const bothThere = new Promise<void>((r) => (release = r));
    const barrier = async () => {
      arrived += 1;
      if (arrived >= 2) release();
      await Promise.race([bothThere, sleep(300)]); // single-writer SQLite never gets both here
    };
    let calls = 0;
    const cross = (mine: string, theirs: string, n: number) =>
      s.runTransaction([mine], async (tx) => {
        calls += 1;
        await tx.updateAtoms(mine, [{ index: 0, patch: { attempt: n } }]);
        await tx.updateRun(mine, { revertPendingDelta: 1 });
        await barrier();
        await tx.updateAtoms(theirs, [{ index: 0, patch: { execution: n } }]);
        return n;
      });
    expect(await Promise.all([cross(a.id, b.id, 11), cross(b.id, a.id, 22)])).toEqual([11, 22]);
    expect(calls).toBe(s.capabilities.singleWriter ? 2 : 3);
    expect((await s.getAtoms(a.id))[0]).toMatchObject({ attempt: 11, execution: 22 });
    expect((await s.getAtoms(b.id))[0]).toMatchObject({ attempt: 22, execution: 11 });
    expect((await s.getRun(a.id))!.revertPending).toBe(1);
    expect((await s.getRun(b.id))!.revertPending).toBe(1);
  });

  it.runIf(ctx.dialect !== 'sqlite')('a transaction object used after its transaction ended is refused', async () => {
    const s = ctx.store;
    const { run } = await s.startRun(newRun());
    let leaked: RunTx | undefined;
    await s.runTransaction([run.id], async (tx) => {
      leaked = tx;
    });
    await expect(leaked!.updateAtoms(run.id, [{ index: 0, patch: { attempt: 5 } }])).rejects.toMatchObject({
      code: 'STOKER_STORE_QUERY_FAILED',
    });
    expect((await s.getAtoms(run.id))[0]!.attempt).toBe(1);
  });

  it('a thrown error rolls the whole transaction back and reaches the caller unchanged', async () => {
    const s = ctx.store;
    const { run } = await s.startRun(newRun({ predecessors: [[], [0]] }));
    const childId = runId('child');
    const boom = new Error('boom');
    await expect(
      s.runTransaction([run.id], async (tx) => {
        expect(await tx.updateAtoms(run.id, [{ index: 0, expectStates: ['READY'], patch: { state: 'SKIPPED', readyAt: null } }])).toEqual([
          true,
        ]);
        await tx.decrementPending(run.id, [{ index: 1, disable: false }]);
        await tx.updateRun(run.id, { status: 'RUNNING', pendingAtomsDelta: -1 });
        await tx.insertEvents([{ runId: run.id, atom: 0, kind: 'atom.skipped', fromState: 'READY', toState: 'SKIPPED' }]);
        await tx.startRun(newRun({ id: childId, parentRunId: run.id, parentAtom: 0 }));
        expect(tx.run(run.id).status).toBe('RUNNING');
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await s.getRun(run.id)).toEqual(run);
    const atoms = await s.getAtoms(run.id);
    expect(states(atoms)).toEqual(['READY', 'PENDING']);
    expect(atoms[1]!.pending).toBe(1);
    expect((await s.listEvents({ runId: run.id })).map((e) => e.kind)).toEqual(['run.created']);
    expect(await s.getRun(childId)).toBeNull();
    expect(await s.listEvents({ runId: childId })).toEqual([]);

    // a key conflict inside a transaction rolls back the same way
    const key = runId('txkey');
    await s.startRun(newRun({ key, args: { a: 1 } }));
    await expect(
      s.runTransaction([run.id], async (tx) => {
        await tx.updateRun(run.id, { status: 'RUNNING' });
        await tx.startRun(newRun({ key, args: { a: 2 } }));
      }),
    ).rejects.toMatchObject({ code: 'STOKER_RUN_KEY_CONFLICT' });
    expect((await s.getRun(run.id))!.status).toBe('PENDING');
  });

  // ------------------------------------------------------------------ reads

  it('events of every run follow one cursor: afterId pages through all runs in id order', async () => {
    const s = await fresh();
    const a = (await s.startRun(newRun({ predecessors: [[]] }))).run;
    const b = (await s.startRun(newRun({ predecessors: [[]] }))).run;
    await s.runTransaction([a.id], (tx) => tx.insertEvents([{ runId: a.id, atom: 0, kind: 'test.a' }]));
    const all = await s.listEvents();
    expect(all.map((e) => [e.runId, e.kind])).toEqual([
      [a.id, 'run.created'],
      [b.id, 'run.created'],
      [a.id, 'test.a'],
    ]);
    // a follower remembers the last id it saw and asks for what came after
    const first = await s.listEvents({ limit: 2 });
    expect(first.map((e) => e.id)).toEqual(all.slice(0, 2).map((e) => e.id));
    await s.runTransaction([b.id], (tx) => tx.insertEvents([{ runId: b.id, atom: null, kind: 'test.b' }]));
    const next = await s.listEvents({ afterId: first.at(-1)!.id });
    expect(next.map((e) => [e.runId, e.kind])).toEqual([
      [a.id, 'test.a'],
      [b.id, 'test.b'],
    ]);
    expect(await s.listEvents({ afterId: next.at(-1)!.id })).toEqual([]);
  });

  it('events keep their order; afterId and limit page through them', async () => {
    const s = ctx.store;
    const { run } = await s.startRun(newRun({ predecessors: [[]] }));
    const input = Array.from({ length: 7 }, (_, i) => ({
      runId: run.id,
      atom: i % 2 === 0 ? 0 : null,
      kind: `test.e${i}`,
      fromState: i === 1 ? 'READY' : null,
      toState: i === 1 ? 'RUNNING' : null,
      engineId: i === 2 ? 'engine-x' : null,
      epoch: i === 2 ? 42 : null,
      data: i === 3 ? { nested: { list: [1, 'a', null], ok: true } } : null,
    }));
    await s.runTransaction([run.id], (tx) => tx.insertEvents(input));
    const events = await s.listEvents({ runId: run.id });
    expect(events.map((e) => e.kind)).toEqual(['run.created', ...input.map((e) => e.kind)]);
    const ids = events.map((e) => e.id);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [i, e] of events.slice(1).entries()) {
      const { runId: rid, atom, kind, fromState, toState, engineId, epoch, data } = e;
      expect({ runId: rid, atom, kind, fromState, toState, engineId, epoch, data }).toEqual(input[i]);
      expect(e.at).toBeInstanceOf(Date);
    }
    expect((await s.listEvents({ runId: run.id, afterId: ids[2]! })).map((e) => e.id)).toEqual(ids.slice(3));
    expect((await s.listEvents({ runId: run.id, afterId: ids[2]!, limit: 2 })).map((e) => e.id)).toEqual(ids.slice(3, 5));
    expect(await s.listEvents({ runId: 'no-such-run' })).toEqual([]);
  });

  it('listRuns filters and pages; getRunStatuses and getAtomResults read in bulk', async () => {
    const s = await fresh();
    const ids = ['r1', 'r2', 'r3', 'r4', 'r5'].map((x) => `${x}-${runId()}`);
    for (const [i, id] of ids.entries()) {
      await s.startRun(
        newRun({ id, flow: i % 2 === 0 ? 'even' : 'odd', key: i === 2 ? 'k-three' : null, parentRunId: i >= 3 ? ids[0]! : null }),
      );
    }
    await s.runTransaction([ids[1]!], (tx) => tx.updateRun(ids[1]!, { status: 'RUNNING' }));
    expect((await s.listRuns()).map((r) => r.id)).toEqual([...ids].reverse());
    expect((await s.listRuns({ limit: 2 })).map((r) => r.id)).toEqual([ids[4], ids[3]]);
    expect((await s.listRuns({ before: ids[3]!, limit: 2 })).map((r) => r.id)).toEqual([ids[2], ids[1]]);
    expect((await s.listRuns({ before: ids[0]! })).map((r) => r.id)).toEqual([]);
    expect((await s.listRuns({ flow: 'even' })).map((r) => r.id)).toEqual([ids[4], ids[2], ids[0]]);
    expect((await s.listRuns({ status: ['RUNNING'] })).map((r) => r.id)).toEqual([ids[1]]);
    expect((await s.listRuns({ status: ['RUNNING', 'PENDING'], flow: 'odd' })).map((r) => r.id)).toEqual([ids[3], ids[1]]);
    expect((await s.listRuns({ key: 'k-three' })).map((r) => r.id)).toEqual([ids[2]]);
    expect((await s.listRuns({ parentRunId: ids[0]! })).map((r) => r.id)).toEqual([ids[4], ids[3]]);

    const statuses = await s.getRunStatuses([ids[0]!, ids[1]!, 'missing']);
    expect([...statuses.entries()].sort()).toEqual([
      [ids[0], 'PENDING'],
      [ids[1], 'RUNNING'],
    ]);
    expect((await s.getRunStatuses([])).size).toBe(0);

    const { run } = await s.startRun(newRun({ predecessors: [[], [], []] }));
    await s.claimAtoms('e', 100);
    await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [
        { index: 0, epoch: 1, patch: { state: 'SUCCESS', result: { v: 0 } } },
        { index: 2, epoch: 1, patch: { state: 'SUCCESS', result: 'two' } },
      ]),
    );
    const results = await s.getAtomResults(run.id, [0, 1, 2, 9]);
    expect([...results.entries()].sort()).toEqual([
      [0, { v: 0 }],
      [1, null],
      [2, 'two'],
    ]);
    expect((await s.getAtomResults(run.id, [])).size).toBe(0);
  });

  // ------------------------------------------------------------------ signals and waits

  it('sendSignal refuses a run that has ended (STOKER_RUN_NOT_ACTIVE) and stores nothing', async () => {
    const s = await fresh();
    const { run } = await s.startRun(newRun({ predecessors: [[]] }));
    await s.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status: 'CANCELLED', finished: true }));
    await expect(s.sendSignal(run.id, 'go', 1)).rejects.toMatchObject({
      code: 'STOKER_RUN_NOT_ACTIVE',
      details: { runId: run.id, status: 'CANCELLED' },
    });
    expect(await s.getSignals(run.id)).toEqual([]);
    expect((await s.listEvents({ runId: run.id })).filter((e) => e.kind === 'run.signal')).toEqual([]);
    await expect(s.sendSignal('no-such-run', 'go', 1)).rejects.toMatchObject({ code: 'STOKER_RUN_NOT_FOUND' });
  });

  it('sendSignal stores the signal and wakes atoms waiting for that name', async () => {
    const s = await fresh();
    const { run } = await s.startRun(newRun({ predecessors: [[], []] }));
    expect(await s.claimAtoms('e1', 2)).toHaveLength(2);
    await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [
        { index: 0, epoch: 1, patch: { state: 'WAITING', waitKind: 'signal', waitRef: 'go', readyAt: null, claimedBy: null } },
        { index: 1, epoch: 1, patch: { state: 'WAITING', waitKind: 'signal', waitRef: 'Go', readyAt: null, claimedBy: null } },
      ]),
    );
    expect(await s.claimAtoms('e1', 5)).toEqual([]);

    expect(await s.sendSignal(run.id, 'other', 1)).toBe(0);
    expect(await s.sendSignal(run.id, 'go ', 'trailing space is another name')).toBe(0);
    expect(await s.claimAtoms('e1', 5)).toEqual([]);
    expect(await s.sendSignal(run.id, 'go', { x: [1, 2] })).toBe(1);
    const atoms = byIndex(await s.getAtoms(run.id));
    expect(atoms.get(0)!.readyAt).toBeInstanceOf(Date);
    expect(atoms.get(1)!.readyAt).toBeNull(); // names compare exactly ('Go' ≠ 'go')

    const woke = (await s.claimAtoms('e2', 5)).map(({ run: _row, ...c }) => c);
    expect(woke).toEqual([{ runId: run.id, index: 0, state: 'RUNNING', epoch: 2, attempt: 1, execution: 2, journal: [], failure: null }]);

    const signals = await s.getSignals(run.id);
    expect(signals.map((x) => [x.name, x.payload])).toEqual([
      ['other', 1],
      ['go ', 'trailing space is another name'],
      ['go', { x: [1, 2] }],
    ]);
    for (const x of signals) {
      expect(x.runId).toBe(run.id);
      expect(x.at).toBeInstanceOf(Date);
    }
    const counts = await s.runTransaction([run.id], async (tx) => [
      await tx.signalCount(run.id, 'go'),
      await tx.signalCount(run.id, 'Go'),
      await tx.signalCount(run.id, 'other'),
    ]);
    expect(counts).toEqual([1, 0, 1]);
    expect((await s.listEvents({ runId: run.id })).filter((e) => e.kind === 'run.signal').map((e) => e.data)).toEqual([
      { name: 'other', woke: 0 },
      { name: 'go ', woke: 0 },
      { name: 'go', woke: 1 },
    ]);
    await expect(s.sendSignal('no-such-run', 'go', null)).rejects.toMatchObject({ code: 'STOKER_RUN_NOT_FOUND' });
    expect(await s.getSignals('no-such-run')).toEqual([]);
  });

  it('wakeAtom makes a WAITING atom claimable now and leaves other states alone', async () => {
    const s = await fresh();
    const { run } = await s.startRun(newRun({ predecessors: [[], [0]] }));
    await s.claimAtoms('e1', 1);
    await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [
        { index: 0, epoch: 1, patch: { state: 'WAITING', waitKind: 'child', waitRef: 'child-run', readyAt: null, claimedBy: null } },
      ]),
    );
    await s.wakeAtom(run.id, 1); // PENDING: untouched
    expect((await s.getAtoms(run.id))[1]).toMatchObject({ state: 'PENDING', readyAt: null });
    await s.wakeAtom(run.id, 0);
    expect((await s.getAtoms(run.id))[0]!.readyAt).toBeInstanceOf(Date);
    expect((await s.claimAtoms('e2', 5)).map((c) => [c.index, c.epoch, c.execution])).toEqual([[0, 2, 2]]);
  });

  // ------------------------------------------------------------------ engines and liveness

  it('engines register, renew, list with lease age and held atoms, and are requeued when their lease expires', async () => {
    const s = await fresh();
    const pid = process.pid;
    await s.registerEngine({ id: 'e-alive', host: 'host-1', pid, version: '1.2.3', leaseMs: 60_000 });
    await s.registerEngine({ id: 'e-short', host: 'host-2', pid, version: '1.2.3', leaseMs: 1 });
    await expect(s.registerEngine({ id: 'e-alive', host: 'host-1', pid, version: '1.2.3', leaseMs: 60_000 })).rejects.toMatchObject({
      code: 'STOKER_STORE_QUERY_FAILED',
    });
    expect(await s.heartbeat('e-alive', 60_000)).toBe(true);
    expect(await s.heartbeat('e-unknown', 60_000)).toBe(false);

    const { run } = await s.startRun(newRun({ predecessors: [[], [], [], []] }));
    const [a0] = await s.claimAtoms('e-alive', 1);
    const short = await s.claimAtoms('e-short', 2);
    const [gone] = await s.claimAtoms('e-gone', 1); // an engine without a row
    expect([a0, ...short, gone].map((c) => c!.index).sort()).toEqual([0, 1, 2, 3]);
    // one of e-short's atoms is on the revert path
    const [s1, s2] = short as [ClaimedAtom, ClaimedAtom];
    await s.runTransaction([run.id], (tx) =>
      tx.updateAtoms(run.id, [
        {
          index: s2.index,
          epoch: 1,
          expectStates: ['RUNNING'],
          patch: { state: 'REVERT_READY', readyAt: { delayMs: 0 }, claimedBy: null },
        },
      ]),
    );
    expect(await s.claimAtoms('e-short', 1)).toMatchObject([{ index: s2.index, state: 'REVERTING', epoch: 2 }]);

    await sleep(30);
    const engines = new Map((await s.listEngines()).map((e) => [e.id, e]));
    expect([...engines.keys()].sort()).toEqual(['e-alive', 'e-short']);
    const alive = engines.get('e-alive')!;
    expect(alive).toMatchObject({ host: 'host-1', pid, version: '1.2.3', state: 'alive', atomsHeld: 1 });
    expect(alive.leaseAgeMs).toBeGreaterThanOrEqual(0);
    expect(alive.leaseAgeMs).toBeLessThan(5_000);
    expect(alive.startedAt).toBeInstanceOf(Date);
    expect(alive.leaseExpiresAt.getTime() - alive.heartbeatAt.getTime()).toBeGreaterThan(59_000);
    const expired = engines.get('e-short')!;
    expect(expired).toMatchObject({ state: 'dead', atomsHeld: 2 });
    expect(expired.leaseAgeMs).toBeGreaterThanOrEqual(20);

    await s.setEngineState('e-alive', 'draining');
    expect((await s.listEngines()).find((e) => e.id === 'e-alive')!.state).toBe('draining');
    await s.setEngineState('e-alive', 'alive');

    const requeued = await s.requeueExpired();
    const key = (r: { runId: string; index: number; engineId: string | null }) => `${r.engineId}/${r.index}`;
    expect(requeued.map(key).sort()).toEqual([`e-gone/${gone!.index}`, `e-short/${s1.index}`, `e-short/${s2.index}`].sort());
    expect(requeued.every((r) => r.runId === run.id)).toBe(true);

    const atoms = byIndex(await s.getAtoms(run.id));
    expect(atoms.get(a0!.index)).toMatchObject({ state: 'RUNNING', claimedBy: 'e-alive', epoch: 1 });
    expect(atoms.get(s1.index)).toMatchObject({ state: 'READY', claimedBy: null, epoch: 1 });
    expect(atoms.get(s2.index)).toMatchObject({ state: 'REVERT_READY', claimedBy: null, epoch: 2 });
    expect(atoms.get(gone!.index)).toMatchObject({ state: 'READY', claimedBy: null, epoch: 1 });
    for (const i of [s1.index, s2.index, gone!.index]) expect(atoms.get(i)!.readyAt).toBeInstanceOf(Date);

    const events = (await s.listEvents({ runId: run.id })).filter((e) => e.kind === 'atom.requeued');
    expect(events.map((e) => [e.atom, e.toState, e.engineId, e.epoch]).sort()).toEqual(
      [
        [s1.index, 'READY', 'e-short', 1],
        [s2.index, 'REVERT_READY', 'e-short', 2],
        [gone!.index, 'READY', 'e-gone', 1],
      ].sort(),
    );

    // the expired engine was marked dead: it must stop writing
    expect(await s.heartbeat('e-short', 60_000)).toBe(false);
    expect((await s.listEngines()).find((e) => e.id === 'e-short')).toMatchObject({ state: 'dead', atomsHeld: 0 });
    expect(await s.requeueExpired()).toEqual([]);

    // a takeover claims with a new epoch and counts the execution
    const retaken = new Map((await s.claimAtoms('e-alive', 5)).map((c) => [c.index, c]));
    expect(retaken.get(s1.index)).toMatchObject({ state: 'RUNNING', epoch: 2, execution: 2 });
    expect(retaken.get(s2.index)).toMatchObject({ state: 'REVERTING', epoch: 3, execution: 1 });

    expect(await s.requeueEngine('e-alive')).toBe(4);
    expect(await s.requeueEngine('e-alive')).toBe(0);
    expect(states(await s.getAtoms(run.id)).sort()).toEqual(['READY', 'READY', 'READY', 'REVERT_READY']);
    expect((await s.listEngines()).find((e) => e.id === 'e-alive')!.atomsHeld).toBe(0);

    await s.deregisterEngine('e-alive');
    expect((await s.listEngines()).map((e) => e.id)).toEqual(['e-short']);
  });

  it('a requeue never hands out an atom of a run that has ended: it cancels it (requeueExpired and requeueEngine)', async () => {
    const s = await fresh();
    const pid = process.pid;
    await s.registerEngine({ id: 'e-live', host: 'h', pid, version: 't', leaseMs: 60_000 });
    await s.registerEngine({ id: 'e-lapsed', host: 'h', pid, version: 't', leaseMs: 1 });
    // each run: atom 0 held (running, or reverting), then the run ends around it
    const ended = async (holder: string, status: 'CANCELLED' | 'FAILED', reverting: boolean) => {
      const { run } = await s.startRun(newRun({ predecessors: [[]] }));
      const [c] = (await s.claimAtoms(holder, 10)).filter((x) => x.runId === run.id);
      if (reverting) {
        await s.runTransaction([run.id], (tx) =>
          tx.updateAtoms(run.id, [
            {
              index: 0,
              epoch: c!.epoch,
              expectStates: ['RUNNING'],
              patch: { state: 'REVERT_READY', readyAt: { delayMs: 0 }, claimedBy: null },
            },
          ]),
        );
        expect((await s.claimAtoms(holder, 10)).filter((x) => x.runId === run.id)).toMatchObject([{ state: 'REVERTING' }]);
      }
      await s.runTransaction([run.id], (tx) => tx.updateRun(run.id, { status }));
      return run.id;
    };
    const lapsedRunning = await ended('e-lapsed', 'CANCELLED', false);
    const lapsedReverting = await ended('e-lapsed', 'FAILED', true);
    const liveRunning = await ended('e-live', 'CANCELLED', false);
    // a run still going, for contrast: its atom is requeued as always
    const { run: going } = await s.startRun(newRun({ predecessors: [[]] }));
    expect((await s.claimAtoms('e-lapsed', 10)).map((c) => c.runId)).toEqual([going.id]);

    await sleep(20);
    const requeued = await s.requeueExpired();
    expect(requeued.map((r) => r.runId).sort()).toEqual([lapsedRunning, lapsedReverting, going.id].sort());
    expect(await s.requeueEngine('e-live')).toBe(1);

    for (const id of [lapsedRunning, lapsedReverting, liveRunning]) {
      expect((await s.getAtoms(id))[0]).toMatchObject({ state: 'CANCELLED', claimedBy: null, readyAt: null });
      const last = (await s.listEvents({ runId: id })).filter((e) => e.atom === 0).at(-1)!;
      expect([last.kind, last.toState]).toEqual(['atom.cancelled', 'CANCELLED']);
    }
    expect((await s.getAtoms(going.id))[0]).toMatchObject({ state: 'READY', claimedBy: null });
    // nothing of the ended runs can be claimed again
    expect((await s.claimAtoms('e-live', 10)).map((c) => c.runId)).toEqual([going.id]);
    await s.deregisterEngine('e-live');
  });

  // ------------------------------------------------------------------ dialect specifics

  it.runIf(ctx.dialect === 'postgres')('postgres: a schema option keeps the tables in that schema', async () => {
    const s = await openStore(ctx.url, { schema: 'stoker_extra', tablePrefix: 'x_' });
    try {
      expect(await s.migrate()).toEqual(shippedRecords());
      const { run } = await s.startRun(newRun());
      expect((await s.getRun(run.id))!.id).toBe(run.id);
      const tables = await ctx.db.exec(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'stoker_extra' ORDER BY table_name`,
      );
      expect(tables.map((t) => t.table_name)).toEqual([
        'x_atoms',
        'x_engines',
        'x_events',
        'x_graphs',
        'x_locks',
        'x_runs',
        'x_schema_migrations',
        'x_signals',
      ]);
    } finally {
      await s.close();
    }
  });

  it('pruneRuns deletes old finished runs with their atoms, events and signals, and nothing else', async () => {
    const s = await fresh();
    const finish = (id: string, status: 'SUCCESS' | 'FAILED' | 'CANCELLED') => s.runTransaction([id], (tx) => tx.updateRun(id, { status }));
    // done: finished, no family; family: a finished parent with a finished child; stale:
    // a finished child of a parent still running; busy: a finished parent of a child still running
    const done = await s.startRun(newRun({ predecessors: [[], [0]] }));
    await s.sendSignal(done.run.id, 'go', { x: 1 });
    const parent = await s.startRun(newRun());
    const child = await s.startRun(newRun({ parentRunId: parent.run.id, parentAtom: 0 }));
    const running = await s.startRun(newRun());
    const stale = await s.startRun(newRun({ parentRunId: running.run.id, parentAtom: 0 }));
    const busy = await s.startRun(newRun());
    const busyChild = await s.startRun(newRun({ parentRunId: busy.run.id, parentAtom: 0 }));
    const active = await s.startRun(newRun());
    for (const [r, st] of [
      [done, 'SUCCESS'],
      [parent, 'FAILED'],
      [child, 'CANCELLED'],
      [stale, 'SUCCESS'],
      [busy, 'SUCCESS'],
    ] as const)
      await finish(r.run.id, st);
    await sleep(20);
    const gone = [done.run.id, parent.run.id, child.run.id];
    const kept = [running.run.id, stale.run.id, busy.run.id, busyChild.run.id, active.run.id];

    // too recent: nothing; a dry run counts and deletes nothing
    expect(await s.pruneRuns({ olderThanMs: 3_600_000, limit: 100 })).toEqual({ runs: 0, atoms: 0, events: 0, signals: 0, engines: 0 });
    const eventsOf = async (ids: string[]) => (await Promise.all(ids.map((id) => s.listEvents({ runId: id })))).flat().length;
    const expected = { runs: 3, atoms: 4, events: await eventsOf(gone), signals: 1, engines: 0 };
    expect(await s.pruneRuns({ olderThanMs: 0, limit: 100, dryRun: true })).toEqual(expected);
    expect((await s.getRuns(gone)).length).toBe(3);

    // a limit of 2 takes two of the three, the next call the last one
    const first = await s.pruneRuns({ olderThanMs: 0, limit: 2 });
    expect(first.runs).toBe(2);
    const second = await s.pruneRuns({ olderThanMs: 0, limit: 2 });
    expect(second.runs).toBe(1);
    for (const k of ['atoms', 'events', 'signals'] as const) expect(first[k] + second[k], k).toBe(expected[k]);
    expect(await s.getRuns(gone)).toEqual([]);
    for (const id of gone) {
      expect(await s.getAtoms(id)).toEqual([]);
      expect(await s.listEvents({ runId: id })).toEqual([]);
      expect(await s.getSignals(id)).toEqual([]);
    }
    expect((await s.getRuns(kept)).map((r) => r.id).sort()).toEqual([...kept].sort());
    expect((await s.pruneRuns({ olderThanMs: 0, limit: 100 })).runs).toBe(0);

    // once the family's last active member ends, it goes too
    await finish(running.run.id, 'SUCCESS');
    await finish(busyChild.run.id, 'SUCCESS');
    await sleep(20);
    expect((await s.pruneRuns({ olderThanMs: 0, limit: 100 })).runs).toBe(4);
    expect((await s.getRuns(kept)).map((r) => r.id)).toEqual([active.run.id]);
  });

  it('pruneRuns deletes the rows of engines whose lease ran out long ago and that hold nothing', async () => {
    const s = await fresh();
    const gone = `gone-${runId()}`;
    const holder = `holder-${runId()}`;
    await s.registerEngine({ id: gone, host: 'h', pid: 1, version: 't', leaseMs: 1 });
    await s.registerEngine({ id: holder, host: 'h', pid: 2, version: 't', leaseMs: 1 });
    await s.startRun(newRun());
    expect(await s.claimAtoms(holder, 1)).toHaveLength(1);
    await sleep(30);
    expect((await s.pruneRuns({ olderThanMs: 3_600_000, limit: 10 })).engines).toBe(0);
    expect((await s.pruneRuns({ olderThanMs: 0, limit: 10, dryRun: true })).engines).toBe(1);
    expect((await s.pruneRuns({ olderThanMs: 0, limit: 10 })).engines).toBe(1);
    expect((await s.listEngines()).map((e) => e.id).sort()).toEqual([holder]);
    await s.deregisterEngine(gone);
    await s.deregisterEngine(holder);
  });

  it('pruneRuns refuses options it cannot use', async () => {
    for (const bad of [
      { olderThanMs: -1, limit: 10 },
      { olderThanMs: Number.NaN, limit: 10 },
      { olderThanMs: 0, limit: 0 },
      { olderThanMs: 0, limit: 1.5 },
    ]) {
      const err = await ctx.store.pruneRuns(bad).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(bad)).toBeInstanceOf(ValidationError);
      expect(err, JSON.stringify(bad)).toMatchObject({ code: 'STOKER_CONFIG_INVALID' });
    }
  });

  it('sessions carry the R12 settings', async () => {
    if (ctx.dialect === 'sqlite') {
      const db = (ctx.store as unknown as { driver: { db: { pragma(p: string, o: { simple: true }): unknown } } }).driver.db;
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    } else if (ctx.dialect === 'postgres') {
      const pool = (ctx.store as unknown as { driver: { pool: { query(sql: string): Promise<{ rows: Record<string, string>[] }> } } })
        .driver.pool;
      const settings = (
        await pool.query(
          `SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt,
                  current_setting('idle_in_transaction_session_timeout') AS it, current_setting('application_name') AS app,
                  current_setting('tcp_keepalives_idle') AS ki, current_setting('tcp_keepalives_interval') AS kint,
                  current_setting('tcp_keepalives_count') AS kc`,
        )
      ).rows[0]!;
      expect(settings).toEqual({ st: '30s', lt: '5s', it: '15s', app: 'stoker-store', ki: '10', kint: '5', kc: '3' });
    } else {
      const driver = (
        ctx.store as unknown as {
          driver: { acquire(p: string): Promise<{ query(sql: string): Promise<[Record<string, unknown>[]]>; release(): void }> };
        }
      ).driver;
      const acquire = driver.acquire.bind(driver);
      const conn = await acquire('test');
      try {
        const [rows] = await conn.query(
          `SHOW SESSION VARIABLES WHERE Variable_name IN ('time_zone', 'innodb_lock_wait_timeout', 'tx_isolation', 'transaction_isolation')`,
        );
        const vars = Object.fromEntries(rows.map((r) => [String(r.Variable_name), String(r.Value)]));
        expect(vars).toMatchObject({ time_zone: '+00:00', innodb_lock_wait_timeout: '5' });
        expect(vars.transaction_isolation ?? vars.tx_isolation).toBe('READ-COMMITTED');
      } finally {
        conn.release();
      }
    }
  });
});

// -------------------------------------------------------------------- openStore

const mysqlDown = (await probeDialect('mysql')) !== null;
const postgresDown = (await probeDialect('postgres')) !== null;

describe('openStore', () => {
  it('parses the accepted URL forms', () => {
    expect(parseStoreUrl('sqlite:///var/lib/stoker.db')).toEqual({ dialect: 'sqlite', path: '/var/lib/stoker.db' });
    expect(parseStoreUrl('sqlite:data/stoker.db')).toEqual({ dialect: 'sqlite', path: 'data/stoker.db' });
    expect(parseStoreUrl('sqlite:/abs/stoker.db')).toEqual({ dialect: 'sqlite', path: '/abs/stoker.db' });
    expect(parseStoreUrl('sqlite::memory:')).toEqual({ dialect: 'sqlite', path: ':memory:' });
    expect(parseStoreUrl('postgres://u:p@db:5433/stoker')).toEqual({ dialect: 'postgres', url: 'postgres://u:p@db:5433/stoker' });
    expect(parseStoreUrl('postgresql://db/stoker')).toMatchObject({ dialect: 'postgres' });
    expect(parseStoreUrl('mysql://root@db/stoker')).toMatchObject({ dialect: 'mysql' });
    expect(parseStoreUrl('mariadb://root@db:3307/stoker')).toMatchObject({ dialect: 'mysql' });
  });

  it.each([
    ['redis://localhost:6379/0', 'unknown scheme'],
    ['no scheme at all', 'no scheme'],
    ['', 'empty'],
    ['sqlite:', 'no path'],
    ['postgres://user:s3cret@[::1/db', 'malformed'],
    ['postgres:/missing-slashes/db', 'must start with'],
    ['mysql://root@127.0.0.1:3306/', 'names no database'],
    ['mysql://root@127.0.0.1:99999/db', 'malformed'],
  ])('rejects %j with STOKER_STORE_URL_INVALID', async (url, why) => {
    const err = await openStore(url).then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err).toMatchObject({ code: 'STOKER_STORE_URL_INVALID' });
    expect(err!.message).toContain(why);
    for (const form of ['sqlite:PATH', 'sqlite::memory:', 'postgres://', 'mysql://']) expect(err!.message).toContain(form);
    expect(err!.message).not.toContain('s3cret');
  });

  it('opens SQLite in memory without migrating it', async () => {
    const s = await openStore('sqlite::memory:');
    try {
      expect(s.capabilities.name).toBe('sqlite');
      expect(await s.now()).toBeInstanceOf(Date);
      expect((await s.migrate()).map((m) => [m.module, m.version])).toEqual(sqliteMigrations.map((m) => ['core', m.version]));
    } finally {
      await s.close();
    }
    await expect(openStore('sqlite::memory:', { schema: 'x' })).rejects.toMatchObject({ code: 'STOKER_CONFIG_INVALID' });
    await expect(openStore('sqlite::memory:', { schema: 'x' })).rejects.toBeInstanceOf(ValidationError);
    await expect(openStore('sqlite::memory:', { tablePrefix: 'Bad-Prefix' })).rejects.toBeInstanceOf(ValidationError);
  });

  it('reports an unusable SQLite path as STOKER_STORE_UNREACHABLE', async () => {
    // a directory that cannot exist: its parent is a regular file
    const dir = mkdtempSync(join(tmpdir(), 'stoker-open-'));
    try {
      writeFileSync(join(dir, 'file'), 'x');
      await expect(openStore(`sqlite:${join(dir, 'file', 'sub', 'stoker.db')}`)).rejects.toMatchObject({
        code: 'STOKER_STORE_UNREACHABLE',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['postgres://127.0.0.1:1/x', /PostgreSQL at 127\.0\.0\.1:1\/x.*ECONNREFUSED/],
    ['mysql://root@127.0.0.1:1/x', /MySQL at 127\.0\.0\.1:1\/x.*ECONNREFUSED/],
  ])('fails fast with STOKER_STORE_UNREACHABLE for a closed port: %s', async (url, message) => {
    const started = Date.now();
    const err = await openStore(url).then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err).toMatchObject({ code: 'STOKER_STORE_UNREACHABLE' });
    expect(err!.message).toMatch(message);
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it.skipIf(mysqlDown)('refuses wrong MySQL credentials with STOKER_STORE_UNREACHABLE, without echoing the password', async () => {
    const u = new URL(mysqlAdminUrl());
    u.username = 'root';
    u.password = 'definitely-wrong-password';
    const err = await openStore(u.toString()).then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err).toMatchObject({ code: 'STOKER_STORE_UNREACHABLE' });
    expect(err!.message).toMatch(/Access denied/);
    expect(err!.message).not.toContain('definitely-wrong-password');
  });

  it.skipIf(postgresDown)('reports an unknown PostgreSQL database as STOKER_STORE_UNREACHABLE', async () => {
    const u = new URL(postgresAdminUrl());
    u.pathname = '/stoker_no_such_database';
    await expect(openStore(u.toString())).rejects.toMatchObject({
      code: 'STOKER_STORE_UNREACHABLE',
      message: expect.stringMatching(/stoker_no_such_database.*does not exist/) as string,
    });
  });

  it.skipIf(mysqlDown)('reports an unknown MySQL database as STOKER_STORE_UNREACHABLE', async () => {
    const u = new URL(mysqlAdminUrl());
    u.pathname = '/stoker_no_such_database';
    await expect(openStore(u.toString())).rejects.toMatchObject({ code: 'STOKER_STORE_UNREACHABLE' });
  });
});
