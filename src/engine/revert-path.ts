/**
 * The revert path of a run's transitions (protocol 8): when an atom gives up, the nearest
 * retry controller of its scope decides (retry the scope, revert it and fail outwards, or
 * revert everything); executed atoms of a reverting scope revert in reverse dependency
 * order, each once its executed successors have; atoms still running are flagged and join
 * when they finish; a retry controller is the last of its scope to revert and then resets
 * the scope or fails outwards; a failing revert ends the run FAILED.
 */
import type { FailureRecord } from '../flow/types.js';
import type { JsonValue } from '../core/json.js';
import type { AtomRow, AtomUpdate, ClaimedAtom, JournalEntry } from '../store/store.js';
import { StokerError } from '../errors.js';
import { AtomState, RunStatus } from '../store/states.js';
import { EXECUTED, FORWARD_DONE, IN_REVERT, TransitionBase } from './transition-base.js';

export abstract class RevertPath extends TransitionBase {
  /** an atom became READY: the forward path decides whether this engine continues it (transitions.ts) */
  protected abstract readied(index: number): Promise<void>;

  protected parentScope(scope: number): number | null {
    return this.graph.scopes[scope]?.parent ?? null;
  }

  /** Finds the nearest retry controller from `scope` outwards and lets it decide; none = revert everything. */
  protected async scopeFailed(scope: number | null, failure: FailureRecord): Promise<void> {
    let s = scope;
    while (s !== null) {
      const sc = this.graph.scopes[s]!;
      if (sc.controller !== null) {
        const ctl = this.spec(sc.controller).controller;
        if (ctl?.kind === 'revertAll') break;
        await this.startRevert(s, failure);
        return;
      }
      s = sc.parent;
    }
    await this.startRevert(0, failure, true);
  }

  /**
   * Starts reverting scope `scope`: open atoms stop, executed ones are reverted in reverse
   * dependency order, running ones are flagged to revert when they finish. The scope's
   * controller (or, for the whole run, the run's revert counter) completes last.
   */
  protected async startRevert(scope: number, failure: FailureRecord, wholeRun = false): Promise<void> {
    const sc = this.graph.scopes[scope]!;
    const members = wholeRun ? this.graph.atoms.map((a) => a.index) : sc.atoms;
    if (wholeRun) {
      const from = this.runFrom(RunStatus.REVERTING);
      this.runPatchStatus = RunStatus.REVERTING;
      this.runFailure = failure;
      this.event(null, 'run.reverting', from, RunStatus.REVERTING, { failure: failure.message });
    }
    // 1. stop what has not started: READY → PENDING first, so a concurrent claim either won
    //    (the atom is RUNNING and gets flagged below) or cannot happen any more; then flag
    //    what is running. Neither a claim nor a requeue takes the run lock, so the rows are
    //    read afresh, not from what this transaction saw before, and a flag that misses (the
    //    atom was requeued, RUNNING → READY, meanwhile) means: look again. Found by the
    //    simulation (seed 1912): an unflagged requeued atom was claimed again and succeeded
    //    in the reverting run, and the atoms before it waited for its revert for ever.
    let rows: AtomRow[] = [];
    for (let look = 1; ; look++) {
      for (const i of members) this.atomCache.delete(i);
      for (const a of await this.atoms(members)) {
        if (a.state === AtomState.READY) await this.set(a, AtomState.PENDING, { readyAt: null }, 'atom.unscheduled');
      }
      rows = await this.atoms(members);
      const running = rows.filter((a) => a.state === AtomState.RUNNING && !a.revertRequested);
      const flagged =
        running.length === 0
          ? []
          : await this.tx.updateAtoms(
              this.run.id,
              running.map((a) => ({ index: a.index, expectStates: [AtomState.RUNNING], patch: { revertRequested: true } })),
            );
      for (const a of running) this.atomCache.delete(a.index);
      if (flagged.every(Boolean)) break;
      // every miss moves an atom out of RUNNING for good (requeued, then unscheduled above)
      if (look > members.length)
        throw new StokerError(
          'STOKER_INTERNAL_INVARIANT',
          `run ${this.run.id}: atoms kept moving while its revert started (${look} looks)`,
        );
    }
    rows = await this.atoms(members);
    const inR = new Set(rows.filter((a) => EXECUTED.includes(a.state) || IN_REVERT.includes(a.state)).map((a) => a.index));
    // the controller of a retried scope is the last node of the revert, never reverted itself here
    const controller = wholeRun ? null : sc.controller;
    if (wholeRun) this.revertDelta = [...inR].length - this.tx.run(this.run.id).revertPending;

    for (const a of rows) {
      if (!inR.has(a.index)) continue;
      const succ = this.spec(a.index).successors.filter((s) => inR.has(s)).length;
      // running atoms were flagged above: they revert when they finish
      if (a.state === AtomState.RUNNING) continue;
      if (IN_REVERT.includes(a.state)) {
        // already reverting inside a nested scope: make sure its controller will not retry
        if (!a.revertRequested) await this.tx.updateAtoms(this.run.id, [{ index: a.index, patch: { revertRequested: true } }]);
        this.atomCache.delete(a.index);
        continue;
      }
      // Nested controllers inside the reverting scope must not retry their own scope: flag them.
      await this.set(a, AtomState.REVERT_PENDING, {
        revertPending: succ,
        readyAt: null,
        waitKind: null,
        waitRef: null,
        revertRequested: a.index !== controller,
      });
    }
    // 2. promote every atom whose count is already zero (leaves of the reverse order)
    for (const a of await this.atoms([...inR])) {
      if (a.state === AtomState.REVERT_PENDING && a.revertPending === 0) await this.promote(a);
    }
    if (wholeRun) await this.maybeFinishRevert();
  }

  /** A RUNNING atom of a reverting scope finished: it joins the revert. */
  protected async joinRevert(
    claim: ClaimedAtom,
    outcome: { result?: JsonValue; failure?: FailureRecord; journal: JournalEntry[] },
  ): Promise<void> {
    const patch: AtomUpdate['patch'] = { claimedBy: null, journal: outcome.journal, revertPending: 0, waitKind: null, waitRef: null };
    if (outcome.result !== undefined) patch.result = outcome.result;
    if (outcome.failure !== undefined) patch.failure = outcome.failure;
    if (!(await this.fencedWrite(claim, AtomState.REVERT_PENDING, patch))) {
      await this.missReason(claim);
      return;
    }
    const [row] = await this.atoms([claim.index]);
    if (row) await this.promote(row);
  }

  /** An atom's successors are all reverted: run its revert (claimable), or skip straight to REVERTED. */
  protected async promote(a: AtomRow): Promise<void> {
    const spec = this.spec(a.index);
    if (spec.kind === 'retry' && !a.revertRequested && this.status() !== RunStatus.REVERTING) {
      await this.controllerDecides(a);
      return;
    }
    if (spec.kind === 'task' && spec.hasRevert) {
      if (await this.set(a, AtomState.REVERT_READY, { readyAt: { delayMs: 0 } })) this.result.madeReady += 1;
      return;
    }
    if (await this.set(a, AtomState.REVERTED, { revertRequested: false })) await this.onReverted(a.index);
  }

  /** `index` is reverted: its predecessors waiting in REVERT_PENDING count down. */
  protected async onReverted(index: number): Promise<void> {
    if (this.status() === RunStatus.REVERTING) this.revertDelta -= 1;
    const preds = await this.atoms(this.spec(index).predecessors);
    for (const p of preds) {
      if (p.state !== AtomState.REVERT_PENDING) continue;
      const left = p.revertPending - 1;
      await this.tx.updateAtoms(this.run.id, [
        { index: p.index, expectStates: [AtomState.REVERT_PENDING], patch: { revertPending: left } },
      ]);
      const updated = { ...p, revertPending: left };
      this.atomCache.set(p.index, updated);
      if (left === 0) await this.promote(updated);
    }
    await this.maybeFinishRevert();
  }

  /** The scope of controller `ctl` is reverted: retry it, or fail outwards. */
  protected async controllerDecides(ctlRow: AtomRow): Promise<void> {
    const spec = this.spec(ctlRow.index);
    const ctl = spec.controller!;
    const attempt = ctlRow.attempt;
    let retry = false;
    if (ctl.kind === 'times') retry = attempt < ctl.attempts;
    else if (ctl.kind === 'forEach') retry = attempt < ctl.values.length;
    else if (ctl.kind === 'parameterizedForEach') {
      const values = await this.inputValue(ctl.valuesFrom);
      retry = Array.isArray(values) && attempt < values.length;
    }
    if (retry) {
      await this.resetScope(spec.scope, ctlRow);
      return;
    }
    const failure: FailureRecord = ctlRow.failure ??
      this.runFailure ?? { type: 'ScopeFailed', message: `scope ${this.graph.scopes[spec.scope]!.name} failed` };
    if (await this.set(ctlRow, AtomState.REVERTED, { revertRequested: false }, 'atom.reverted')) {
      this.event(ctlRow.index, 'scope.reverted', null, null, { scope: this.graph.scopes[spec.scope]!.name, attempts: attempt });
      await this.onReverted(ctlRow.index);
      await this.scopeFailed(this.parentScope(spec.scope), failure);
    }
  }

  /** Every atom of the scope back to PENDING with fresh counts; the controller runs again. */
  protected async resetScope(scope: number, ctlRow: AtomRow): Promise<void> {
    const sc = this.graph.scopes[scope]!;
    const members = new Set(sc.atoms);
    const rows = await this.atoms(sc.atoms);
    const outsidePreds = [...new Set(sc.atoms.flatMap((i) => this.spec(i).predecessors.filter((p) => !members.has(p))))];
    const outside = new Map((await this.atoms(outsidePreds)).map((r) => [r.index, r]));
    for (const a of rows) {
      if (a.index === ctlRow.index) continue;
      const pending = this.spec(a.index).predecessors.filter(
        (p) => members.has(p) || !FORWARD_DONE.includes(outside.get(p)?.state ?? AtomState.PENDING),
      ).length;
      const fresh = {
        pending,
        revertPending: 0,
        skip: false,
        revertRequested: false,
        attempt: a.attempt + 1,
        execution: 0,
        result: null,
        journal: [],
        waitKind: null,
        waitRef: null,
        readyAt: null,
      };
      if (a.state === AtomState.PENDING) {
        // never ran: only its counters start over, no state transition
        await this.tx.updateAtoms(this.run.id, [{ index: a.index, expectStates: [AtomState.PENDING], patch: fresh }]);
        this.atomCache.delete(a.index);
      } else {
        await this.set(a, AtomState.PENDING, fresh, 'atom.reset');
      }
    }
    this.event(ctlRow.index, 'scope.retry', null, null, { scope: sc.name, attempt: ctlRow.attempt + 1 });
    if (await this.set(ctlRow, AtomState.READY, { attempt: ctlRow.attempt + 1, execution: 0, revertPending: 0, readyAt: { delayMs: 0 } })) {
      await this.readied(ctlRow.index);
    }
  }

  protected async maybeFinishRevert(): Promise<void> {
    if (this.status() !== RunStatus.REVERTING) return;
    const left = this.tx.run(this.run.id).revertPending + this.revertDelta;
    if (left > 0) return;
    await this.finishRun(RunStatus.REVERTED, { failure: this.runFailure ?? this.tx.run(this.run.id).failure });
  }

  protected async failRun(failure: FailureRecord): Promise<void> {
    await this.finishRun(RunStatus.FAILED, { failure });
  }
}
