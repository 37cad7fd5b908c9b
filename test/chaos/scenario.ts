/**
 * Per-dialect scaffolding of a chaos scenario: its own database, a temp directory for the
 * side-effect log, a fleet of engine processes that is always cleaned up, and the final
 * check of the history. (Kept apart from harness.ts, which the benchmark uses outside vitest.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { EXPECTED_STATUS } from '../fixtures/chaos-flows.js';
import { createTestStore, type Dialect, type TestStore } from '../helpers/databases.js';
import { checkHistory, collectHistory, formatVerdict, type History, type Verdict } from './checker.js';
import { Fleet, readEffects, sleep, submitRuns, waitFor, type EngineProc, type Submitted } from './harness.js';

export interface Scenario {
  readonly dialect: Dialect;
  /** null when the dialect's server is unreachable (the tests skip) */
  readonly db: TestStore | null;
  readonly store: Store;
  readonly fleet: Fleet;
  /** the side-effect log every task of this scenario appends to */
  readonly log: string;
  readonly dir: string;
}

/** Registers beforeAll/afterAll for one scenario on one dialect; use inside a describe. */
export function useScenario(dialect: Dialect, label: string): Scenario {
  let db: TestStore | null = null;
  let fleet: Fleet | null = null;
  let dir = '';
  beforeAll(async () => {
    db = await createTestStore(dialect);
    dir = mkdtempSync(join(tmpdir(), `stoker-chaos-${label}-`));
    if (db) fleet = new Fleet(db.url);
  });
  afterAll(async () => {
    await fleet?.cleanup();
    await db?.drop();
    if (dir && process.env.CHAOS_KEEP_LOGS !== '1') rmSync(dir, { recursive: true, force: true });
  });
  return {
    dialect,
    get db() {
      return db;
    },
    get store() {
      if (!db) throw new Error(`no ${dialect} database`);
      return db.store;
    },
    get fleet() {
      if (!fleet) throw new Error(`no ${dialect} fleet`);
      return fleet;
    },
    get log() {
      return join(dir, 'effects.jsonl');
    },
    get dir() {
      return dir;
    },
  };
}

/**
 * Waits until `p` is executing a task (a start without its end in the side-effect log),
 * submitting three more runs every 20 polls while it has none (the other engines may have
 * drained the queue); what it submits is added to `submitted`.
 */
export async function untilExecuting(s: Scenario, p: EngineProc, submitted: Submitted[], stepMs: number): Promise<void> {
  let polls = 0;
  await waitFor(
    async () => {
      const mine = readEffects(s.log).filter((l) => l.pid === p.pid);
      if (mine.filter((l) => l.phase === 'start').length > mine.filter((l) => l.phase === 'end').length) return true;
      if (polls++ % 20 === 0) submitted.push(...(await submitRuns(s.store, 3, { log: s.log, stepMs })));
      return undefined;
    },
    20_000,
    `${p.name} to be executing a task`,
  );
}

/** Submits runs until `p` starts a task after `since` (the others have spare slots too); false if it does not within 20 s. */
export async function worksAgain(s: Scenario, p: EngineProc, submitted: Submitted[], since: number, stepMs: number): Promise<boolean> {
  return waitFor(
    async () => {
      submitted.push(...(await submitRuns(s.store, 3, { log: s.log, stepMs })));
      await sleep(300);
      return readEffects(s.log).some((l) => l.pid === p.pid && l.phase === 'start' && l.t > since) || undefined;
    },
    20_000,
    `${p.name} to work again`,
  ).catch(() => false);
}

/** Collects the history of the submitted runs and checks it; prints the verdict. */
export async function verify(s: Scenario, submitted: readonly Submitted[], label: string): Promise<{ verdict: Verdict; history: History }> {
  return checkSubmitted(s.store, s.log, submitted, `${label} on ${s.dialect}`);
}

/** The same for any store and side-effect log (private servers too). */
export async function checkSubmitted(
  store: Store,
  log: string,
  submitted: readonly Submitted[],
  label: string,
): Promise<{ verdict: Verdict; history: History }> {
  const history = await collectHistory(
    store,
    submitted.map((r) => ({ id: r.id, flow: r.flow, ...(EXPECTED_STATUS[r.flow] ? { expect: EXPECTED_STATUS[r.flow] } : {}) })),
    readEffects(log),
  );
  const verdict = checkHistory(history);
  console.log(formatVerdict(verdict, label));
  return { verdict, history };
}
