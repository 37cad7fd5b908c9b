/**
 * The shared statements of one store: its dialect's fragments, the statement forms its
 * dialect writes its own way, and the graphs it knows. The shared operations
 * (./sql-store.ts, ./run-tx.ts, ./starts.ts) go through it wherever a dialect may have a
 * form of its own; where it has none, the shared form (./atoms.ts, ./events.ts,
 * ./starts.ts) is used.
 */
import type { FlowGraph } from '../../flow/graph.js';
import { KnownGraphs } from '../graphs.js';
import type { AtomRow, AtomUpdate, ClaimedAtom, EventInput } from '../types.js';
import { insertAtomRows, updateAtoms } from './atoms.js';
import type { SqlDialect } from './dialect.js';
import type { SqlSession } from './driver.js';
import { insertEventRows } from './events.js';
import { supersedeRun } from './starts.js';

/**
 * Statements a dialect writes in a shape of its own. Optional ones have a shared form;
 * `decrementPending` and `claimMore` differ in every dialect.
 */
export interface StatementForms {
  /** a new run's atom rows (shared: multi-row INSERTs) */
  insertAtoms?(s: SqlSession, runId: string, atoms: FlowGraph['atoms']): Promise<void>;
  /** event rows, in order (shared: multi-row INSERTs); never called with none */
  insertEvents?(s: SqlSession, events: readonly EventInput[]): Promise<void>;
  /** several atom updates in one statement, or null when this batch is not for it (shared: one statement each) */
  updateAtomsBatch?(s: SqlSession, runId: string, updates: readonly AtomUpdate[]): Promise<boolean[]> | null;
  /** marks a superseded run's open atoms CANCELLED, with their events (shared: lock, one update, events) */
  supersede?(s: SqlSession, runId: string): Promise<void>;
  /** queues starts that supersede `key`, inside their transaction (PostgreSQL: an advisory transaction lock) */
  queueSupersede?(s: SqlSession, key: string): Promise<void>;
  /** wakes other engines' pollers when this transaction commits (PostgreSQL: NOTIFY; SQLite: the wake file) */
  announce?(s: SqlSession): Promise<void>;
  /** {@link RunTx.decrementPending} (never called with no entries) */
  decrementPending(s: SqlSession, runId: string, entries: readonly { index: number; disable: boolean }[]): Promise<AtomRow[]>;
  /** {@link RunTx.claimMore}: claims of any run inside a run transaction (limit > 0) */
  claimMore(s: SqlSession, engineId: string, limit: number): Promise<ClaimedAtom[]>;
}

export class SqlCore {
  /** graphs this store has seen committed (src/store/graphs.ts) */
  readonly graphs = new KnownGraphs();

  constructor(
    readonly d: SqlDialect,
    /** the database's name in messages */
    readonly label: string,
    readonly forms: StatementForms,
  ) {}

  insertEvents(s: SqlSession, events: readonly EventInput[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return this.forms.insertEvents ? this.forms.insertEvents(s, events) : insertEventRows(this.d, s, events);
  }

  insertAtoms(s: SqlSession, runId: string, atoms: FlowGraph['atoms']): Promise<void> {
    if (atoms.length === 0) return Promise.resolve();
    return this.forms.insertAtoms ? this.forms.insertAtoms(s, runId, atoms) : insertAtomRows(this.d, s, runId, atoms);
  }

  updateAtoms(s: SqlSession, runId: string, updates: readonly AtomUpdate[]): Promise<boolean[]> {
    return this.forms.updateAtomsBatch?.(s, runId, updates) ?? updateAtoms(this.d, s, runId, updates);
  }

  supersede(s: SqlSession, runId: string): Promise<void> {
    return this.forms.supersede ? this.forms.supersede(s, runId) : supersedeRun(this, s, runId);
  }
}
