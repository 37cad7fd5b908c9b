/**
 * The {@link RunTx} of every SQL dialect: the operations of one run transaction over its
 * session, with the guards the port promises. A call after the transaction ended is
 * refused; after a database error inside it, every further call fails with that first
 * error (PostgreSQL and MySQL can only roll back then, and nothing must look committed).
 */
import { StoreError, isStokerError } from '../../errors.js';
import type { AtomState } from '../states.js';
import type { RunTx } from '../ports.js';
import type { AtomRow, AtomUpdate, ClaimedAtom, EventInput, NewRun, RunPatch, RunRow, StartResult } from '../types.js';
import { claimAtom, getAtoms, getAtomsInStates } from './atoms.js';
import type { SqlCore } from './core.js';
import type { SqlSession, TxState } from './driver.js';
import { updateRun } from './runs.js';
import { startRunOn } from './starts.js';

export class SqlRunTx implements RunTx {
  constructor(
    private readonly core: SqlCore,
    private readonly s: SqlSession,
    /** the locked runs, kept current by updateRun */
    private readonly runs: Map<string, RunRow>,
    private readonly state: TxState,
  ) {}

  /** Refuses calls after the transaction ended or failed; remembers the first database error. */
  private async guarded<R>(what: string, op: () => Promise<R>): Promise<R> {
    if (this.state.done) {
      throw new StoreError('STOKER_STORE_QUERY_FAILED', `${this.core.label}: ${what} was called after its transaction ended`, {
        details: { purpose: what },
      });
    }
    if (this.state.failure !== undefined) throw this.state.failure;
    try {
      return await op();
    } catch (e) {
      if (isStokerError(e) && (e.code === 'STOKER_STORE_QUERY_FAILED' || e.code === 'STOKER_STORE_UNREACHABLE')) this.state.failure ??= e;
      throw e;
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
      const d = this.core.d;
      const rows = await this.s.rows(
        'count signals',
        `SELECT count(*) AS n FROM {p}signals WHERE run_id = ${d.placeholder(1)} AND name = ${d.placeholder(2)}`,
        [runId, name],
      );
      return Number(rows[0]!.n);
    });
  }
}
