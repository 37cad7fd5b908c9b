/**
 * PostgreSQL: the named statements of a draining queue (the claim, and the fast finish that
 * also claims for the slots it frees) and of the fast completions (one atom, a batch of one
 * run's atoms) take their atoms by key whatever the statistics say.
 * Their generic plans are made once per connection, from statistics that a queue always
 * outruns: here taken while every atom was READY and none RUNNING, the case in which the
 * finish statement read the finished atoms through `atoms_running` (every running atom for
 * each one), and both statements hashed the claimed rows against a scan of every atom
 * (fast-success.ts and claims.ts say why and what it cost).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLAIM_SQL } from '../../../src/store/postgres/claims.js';
import {
  FAST_BATCH_SQL,
  FAST_FINISH_ONE_SQL,
  FAST_FINISH_SQL,
  FAST_SUCCESS_SQL,
  fastBatchParams,
  fastFinishParams,
  fastSuccessParams,
} from '../../../src/store/postgres/fast-success.js';
import type { ClaimedAtom, Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';
import { newRun } from '../../helpers/graphs.js';

describe.runIf(testDialects().includes('postgres'))('PostgreSQL generic plans of a draining queue', () => {
  let db: TestStore | null = null;
  let store: Store;
  let client: pg.Client;
  beforeAll(async () => {
    db = await createTestStore('postgres');
    if (!db) return;
    store = db.store;
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  /** the generic plan of `sql` (table prefix `stoker_`) for these parameters of these types, as text */
  async function genericPlan(name: string, sql: string, params: unknown[], types: string[]): Promise<string> {
    const literal = (v: unknown, i: number) =>
      Array.isArray(v)
        ? `ARRAY[${v.map((x) => client.escapeLiteral(String(x))).join(', ')}]::${types[i]}`
        : `${client.escapeLiteral(String(v))}::${types[i]}`;
    await client.query('SET plan_cache_mode = force_generic_plan');
    await client.query(`PREPARE ${name} AS ${sql.replaceAll('{p}', 'stoker_')}`);
    const plan = await client.query(`EXPLAIN EXECUTE ${name}(${params.map(literal).join(', ')})`);
    return plan.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
  }

  /** on empty tables, 2,000 one-atom runs, ANALYZEd while all their atoms were READY, then 64 claimed (RUNNING) */
  async function drainingQueue() {
    // each test from an empty queue: atoms an earlier test left RUNNING would be in the statistics
    await client.query('TRUNCATE stoker_events, stoker_atoms, stoker_runs CASCADE');
    for (let i = 0; i < 4; i++) await store.startRuns(Array.from({ length: 500 }, () => newRun({ predecessors: [[]] })));
    await client.query('ANALYZE');
    const claims = await store.claimAtoms('e1', 64);
    expect(claims).toHaveLength(64);
    return claims;
  }

  const finishOf = (c: ClaimedAtom) => ({ runId: c.runId, index: c.index, epoch: c.epoch, result: null, journal: [], outputs: {} });
  const FINISH_TYPES = ['text[]', 'int[]', 'bigint[]', 'text[]', 'text[]', 'text[]', 'text', 'int'];
  const FINISH_ONE_TYPES = ['text', 'int', 'bigint', 'text', 'text', 'text', 'text', 'int'];
  const SUCCESS_TYPES = ['text', 'int', 'bigint', 'jsonb', 'jsonb', 'int[]', 'int', 'text', 'int', 'int'];
  const BATCH_TYPES = [
    'text',
    'int[]',
    'bigint[]',
    'text[]',
    'text[]',
    'int',
    'int[]',
    'int[]',
    'int[]',
    'text',
    'int',
    'int',
    'int',
    'int',
    'int',
  ];

  it('the fast finish takes each finished atom by its key and the claimed ones by ctid', async (ctx) => {
    if (!db) return ctx.skip();
    const claims = await drainingQueue();
    const many = fastFinishParams({ finishes: claims.map(finishOf), claimMore: 64, engineId: 'e1' });
    // and the form for one run, with scalar parameters
    const one = fastFinishParams({ finishes: [finishOf(claims[0]!)], claimMore: 64, engineId: 'e1' });
    for (const plan of [
      await genericPlan('finish', FAST_FINISH_SQL, many, FINISH_TYPES),
      await genericPlan('finish_one', FAST_FINISH_ONE_SQL, one, FINISH_ONE_TYPES),
    ]) {
      expect(plan).not.toMatch(/atoms_running/);
      expect(plan).not.toMatch(/Seq Scan on stoker_atoms/);
      expect(plan).toMatch(/Tid Scan on stoker_atoms/);
    }
  });

  it('the claim takes the rows it locked by ctid', async (ctx) => {
    if (!db) return ctx.skip();
    await drainingQueue();
    const plan = await genericPlan('claim', CLAIM_SQL, ['e1', 64], ['text', 'int']);
    expect(plan).not.toMatch(/Seq Scan on stoker_atoms/);
    expect(plan).toMatch(/Tid Scan on stoker_atoms/);
  });

  it('the fast success and the fast batch take the completed atoms by their key', async (ctx) => {
    if (!db) return ctx.skip();
    const [c] = await drainingQueue();
    const step = { index: c!.index, epoch: c!.epoch, result: null, journal: [], successors: [1] };
    const success = fastSuccessParams({ runId: c!.runId, ...step, claim: 1, engineId: 'e1' });
    const batch = fastBatchParams({ runId: c!.runId, successes: [step], claim: [1], engineId: 'e1', claimMore: 4 });
    for (const plan of [
      await genericPlan('success', FAST_SUCCESS_SQL, success, SUCCESS_TYPES),
      await genericPlan('batch', FAST_BATCH_SQL, batch, BATCH_TYPES),
    ]) {
      expect(plan).not.toMatch(/atoms_running/);
      expect(plan).not.toMatch(/Seq Scan on stoker_atoms/);
    }
  });
});
