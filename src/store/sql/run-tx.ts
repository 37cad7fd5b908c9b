/**
 * The {@link RunTx} of every SQL dialect: the operations of one run transaction over its
 * session, with the guards the port promises. A call after the transaction ended is
 * refused; after a database error inside it, every further call fails with that first
 * error (PostgreSQL and MySQL can only roll back then, and nothing must look committed).
 */
import { StoreError } from '../../errors.js';
import type { AtomState } from '../states.js';
import type { RunTx } from '../ports.js';
import type { AtomRow, AtomUpdate, ClaimedAtom, EventInput, NewRun, RunPatch, RunRow, StartResult } from '../types.js';
import { claimAtom, getAtoms, getAtomsInStates } from './atoms.js';
import type { SqlCore } from './core.js';
import type { SqlSession, TxState } from './driver.js';
import { updateRun } from './runs.js';
import { startRunOn } from './starts.js';
import { textCache } from './binder.js';

const texts = textCache();

export class SqlRunTx implements RunTx {
  constructor(
    private readonly core: SqlCore,
    private readonly s: SqlSession,
    /** the locked runs, kept current by updateRun */
    private readonly runs: Map<string, RunRow>,
    private readonly state: TxState,
  ) {}

  /**
   * Refuses calls after the transaction ended, and after a database error inside it (the
   * driver's session records the first one in the state: src/store/sql/transactions.ts).
   */
  private guarded<R>(what: string, op: () => Promise<R>): Promise<R> {
    if (this.state.done) {
      return Promise.reject(
        new StoreError('STOKER_STORE_QUERY_FAILED', `${this.core.label}: ${what} was called after its transaction ended`, {
          details: { purpose: what },
        }),
      );
    }
    if (this.state.failure !== undefined) return Promise.reject(this.state.failure);
    try {
      return op();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  run(runId: string): RunRow {
    const r = this.runs.get(runId);
    if (!r) throw new StoreError('STOKER_RUN_NOT_FOUND', `run ${runId} is not locked by this transaction (or does not exist)`);
    return r;
  }

  getAtoms(runId: string, indexes: readonly number[]): Promise<AtomRow[]> {
    return this.guarded('getAtoms', () => getAtoms(this.core.d, this.s, runId, indexes));
  }

  getAtomsInStates(runId: string, states: readonly AtomState[]): Promise<AtomRow[]> {
    return this.guarded('getAtomsInStates', () => getAtomsInStates(this.core.d, this.s, runId, states));
  }

  updateAtoms(runId: string, updates: readonly AtomUpdate[]): Promise<boolean[]> {
    return this.guarded('updateAtoms', () => this.core.updateAtoms(this.s, runId, updates));
  }

  decrementPending(runId: string, entries: readonly { index: number; disable: boolean }[]): Promise<AtomRow[]> {
    return this.guarded('decrementPending', async () =>
      entries.length === 0 ? [] : this.core.forms.decrementPending(this.s, runId, entries),
    );
  }

  claimAtom(runId: string, index: number, engineId: string): Promise<ClaimedAtom | null> {
    return this.guarded('claimAtom', () => claimAtom(this.core.d, this.s, runId, index, engineId));
  }

  updateRun(runId: string, patch: RunPatch): Promise<void> {
    return this.guarded('updateRun', async () => {
      const row = await updateRun(this.core.d, this.s, runId, patch);
      if (row) this.runs.set(runId, row);
    });
  }

  insertEvents(events: readonly EventInput[]): Promise<void> {
    return this.guarded('insertEvents', () => this.core.insertEvents(this.s, events));
  }

  startRun(run: NewRun): Promise<StartResult> {
    return this.guarded('startRun', () => startRunOn(this.core, this.s, run, false));
  }

  claimMore(engineId: string, limit: number): Promise<ClaimedAtom[]> {
    return this.guarded('claimMore', async () => (limit > 0 ? this.core.forms.claimMore(this.s, engineId, limit) : []));
  }

  signalCount(runId: string, name: string): Promise<number> {
    return this.guarded('signalCount', async () => {
      const text = texts(
        this.core.d,
        'signal count',
        (b) => `SELECT count(*) AS n FROM {p}signals WHERE run_id = ${b.bind('runId')} AND name = ${b.bind('name')}`,
      );
      return Number((await this.s.row('count signals', text, [runId, name]))!.n);
    });
  }
}
