/**
 * The atoms this engine is executing right now, with the abort controller each task sees
 * as `ctx.signal`. The claim loop counts them to know its free slots; the committer removes
 * them once their outcome is recorded; cancellation, self-fencing and shutdown abort them.
 */
import { StokerError, type ErrorCode } from '../errors.js';
import type { ClaimedAtom } from '../store/store.js';

export interface InFlightAtom {
  claim: ClaimedAtom;
  abort: AbortController;
}

export class InFlight {
  private readonly atoms = new Map<string, InFlightAtom>();

  static key(runId: string, index: number): string {
    return `${runId}/${index}`;
  }

  get size(): number {
    return this.atoms.size;
  }

  add(claim: ClaimedAtom): InFlightAtom {
    const entry = { claim, abort: new AbortController() };
    this.atoms.set(InFlight.key(claim.runId, claim.index), entry);
    return entry;
  }

  delete(runId: string, index: number): void {
    this.atoms.delete(InFlight.key(runId, index));
  }

  /** the runs of the atoms in flight, each once */
  runIds(): string[] {
    return [...new Set([...this.atoms.values()].map((f) => f.claim.runId))];
  }

  /** aborts the atoms of one run (cancelled, failed, reverted elsewhere) */
  abortRun(runId: string, reason: string): void {
    for (const f of this.atoms.values()) {
      if (f.claim.runId === runId) f.abort.abort(new StokerError('STOKER_RUN_NOT_ACTIVE', reason));
    }
  }

  /** aborts every atom: the engine stops (`STOKER_ENGINE_STOPPED`) or fenced itself (`STOKER_ENGINE_FENCED`) */
  abortAll(code: Extract<ErrorCode, 'STOKER_ENGINE_STOPPED' | 'STOKER_ENGINE_FENCED'>, reason: string): void {
    for (const f of this.atoms.values()) f.abort.abort(new StokerError(code, reason));
  }
}
