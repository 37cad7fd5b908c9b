/**
 * What happens to a run when one of its atoms finishes (protocols 3 and 8): the fenced
 * write of the claim's outcome, then the forward path (successors, deciders, skips, local
 * continuation, run success), task retries with backoff, durable waits (sleep, signal,
 * child run), and, when an atom gives up, the revert path (revert-path.ts) on the write
 * primitives of transition-base.ts.
 *
 * Everything here runs inside one {@link RunTx} that holds the run's lock, so decisions
 * read a stable view of the run. The first write for a claim is fenced by its epoch; if it
 * misses, the claim was lost and nothing else is written for it.
 */
import type { JsonValue } from '../core/json.js';
import type { FailureRecord } from '../flow/types.js';
import type { AtomUpdate, ClaimedAtom, JournalEntry, NewRun } from '../store/store.js';
import { StokerError } from '../errors.js';
import { backoffDelayMs } from './backoff.js';
import type { WaitRequest } from './failure.js';
import { AtomState, RunStatus, isTerminalRun } from '../store/states.js';
import { RevertPath } from './revert-path.js';
import { assertTransition, resolveInput, type Completion } from './transition-base.js';

export {
  emptyResult,
  resolveInput,
  type Completion,
  type Outcome,
  type RunContext,
  type TransitionDeps,
  type TransitionResult,
} from './transition-base.js';

/**
 * Applies completions of one run inside `tx`. `freeSlots` bounds local continuation: the
 * engine may claim at most that many of the atoms this transaction makes ready.
 */
export class RunTransition extends RevertPath {
  async apply(c: Completion): Promise<void> {
    const { claim, outcome } = c;
    const runStatus = this.status();
    if (outcome.kind === 'release') {
      const back = claim.state === 'REVERTING' ? AtomState.REVERT_READY : AtomState.READY;
      if (
        !(await this.fencedWrite(
          claim,
          back,
          { claimedBy: null, execution: claim.execution - 1, readyAt: { delayMs: outcome.delayMs } },
          undefined,
          'atom.released',
        ))
      ) {
        await this.missReason(claim);
      } else this.result.madeReady += 1;
      return;
    }
    if (isTerminalRun(runStatus)) return this.recordAfterEnd(c);

    if (claim.state === 'REVERTING') {
      if (outcome.kind === 'reverted') {
        if (!(await this.fencedWrite(claim, AtomState.REVERTED, { claimedBy: null }))) return;
        this.countMove(AtomState.REVERTING, AtomState.REVERTED);
        await this.onReverted(claim.index);
      } else if (outcome.kind === 'revertFailed') {
        if (
          !(await this.fencedWrite(
            claim,
            AtomState.REVERT_FAILURE,
            { claimedBy: null, failure: outcome.failure },
            undefined,
            undefined,
            failureEventData(claim.attempt, outcome.failure),
          ))
        )
          return;
        await this.failRun(outcome.failure);
      }
      return;
    }

    switch (outcome.kind) {
      case 'success':
        return this.onSuccess(claim, outcome.result, outcome.journal);
      case 'failure':
        return this.onFailure(claim, outcome.failure, outcome.journal);
      case 'suspend':
        return this.onSuspend(claim, outcome.wait, outcome.journal, outcome.child);
      default:
        return;
    }
  }

  /** The run ended (cancelled, superseded, failed) while this atom ran: record its outcome, schedule nothing. */
  private async recordAfterEnd({ claim, outcome }: Completion): Promise<void> {
    // A task that fails once its run was cancelled was (almost always) aborted by the
    // cancellation: it ends CANCELLED, keeping its failure record, not FAILURE.
    const cancelled = this.status() === RunStatus.CANCELLED;
    const to =
      outcome.kind === 'success'
        ? AtomState.SUCCESS
        : outcome.kind === 'failure'
          ? cancelled
            ? AtomState.CANCELLED
            : AtomState.FAILURE
          : outcome.kind === 'reverted'
            ? AtomState.REVERTED
            : outcome.kind === 'revertFailed'
              ? AtomState.REVERT_FAILURE
              : AtomState.CANCELLED;
    const patch: AtomUpdate['patch'] = { claimedBy: null };
    if (outcome.kind === 'success') patch.result = outcome.result;
    if (outcome.kind === 'failure' || outcome.kind === 'revertFailed') patch.failure = outcome.failure;
    if (!(await this.fencedWrite(claim, to, patch))) await this.missReason(claim);
  }

  private async onSuccess(claim: ClaimedAtom, result: JsonValue, journal: JournalEntry[]): Promise<void> {
    const ok = await this.fencedWrite(claim, AtomState.SUCCESS, { claimedBy: null, result, journal, waitKind: null, waitRef: null }, false);
    if (!ok) {
      if ((await this.missReason(claim)) === 'revert') await this.joinRevert(claim, { result, journal });
      return;
    }
    this.countMove(AtomState.RUNNING, AtomState.SUCCESS);
    await this.forward([{ index: claim.index, result }]);
  }

  /**
   * Applies all completions of this run from one group commit. Successes (the common case)
   * share one fenced multi-row write and one successor update; the rest go one by one.
   */
  async applyAll(completions: readonly Completion[]): Promise<void> {
    const successes = completions.filter(
      (c): c is Completion & { outcome: { kind: 'success' } } => c.claim.state === 'RUNNING' && c.outcome.kind === 'success',
    );
    if (successes.length < 2 || isTerminalRun(this.status())) {
      for (const c of completions) await this.apply(c);
      return;
    }
    for (const c of completions) if (!successes.includes(c as (typeof successes)[number])) await this.apply(c);
    if (isTerminalRun(this.status())) {
      // one of the others ended the run: the successes are only recorded
      for (const c of successes) await this.apply(c);
      return;
    }
    const updates: AtomUpdate[] = successes.map((c) => {
      assertTransition(AtomState.RUNNING, AtomState.SUCCESS, this.spec(c.claim.index).name);
      return {
        index: c.claim.index,
        epoch: c.claim.epoch,
        expectStates: [AtomState.RUNNING],
        expectRevertRequested: false,
        patch: {
          state: AtomState.SUCCESS,
          claimedBy: null,
          result: c.outcome.result,
          journal: c.outcome.journal,
          waitKind: null,
          waitRef: null,
        },
      };
    });
    const oks = await this.tx.updateAtoms(this.run.id, updates);
    const finished: { index: number; result: JsonValue }[] = [];
    for (const [i, c] of successes.entries()) {
      if (oks[i]) {
        this.event(c.claim.index, 'atom.success', AtomState.RUNNING, AtomState.SUCCESS, undefined, c.claim.epoch);
        this.atomCache.delete(c.claim.index);
        this.countMove(AtomState.RUNNING, AtomState.SUCCESS);
        finished.push({ index: c.claim.index, result: c.outcome.result });
      } else if ((await this.missReason(c.claim)) === 'revert') {
        await this.joinRevert(c.claim, { result: c.outcome.result, journal: c.outcome.journal });
      }
    }
    if (finished.length > 0) await this.forward(finished);
  }

  /**
   * Decrements the successors of every finished atom in one statement per wave; READY ones
   * may be claimed locally; skips cascade wave by wave.
   */
  private async forward(finished: { index: number; result: JsonValue }[]): Promise<void> {
    let frontier: { index: number; result: JsonValue; skipped: boolean }[] = finished.map((f) => ({ ...f, skipped: false }));
    while (frontier.length > 0) {
      const next: typeof frontier = [];
      const entries = frontier.flatMap((done) =>
        this.spec(done.index).successors.map((s) => ({ index: s, disable: done.skipped || !this.decide(done.index, s, done.result) })),
      );
      const rows = entries.length > 0 ? await this.tx.decrementPending(this.run.id, entries) : [];
      const reachedZero = new Set<number>();
      for (const row of rows) {
        this.atomCache.set(row.index, row);
        if (row.pending !== 0 || reachedZero.has(row.index)) continue;
        reachedZero.add(row.index);
        if (row.state === AtomState.READY) {
          this.event(row.index, 'atom.ready', AtomState.PENDING, AtomState.READY);
          await this.readied(row.index);
        } else if (row.state === AtomState.PENDING && row.skip) {
          if (await this.set(row, AtomState.SKIPPED)) next.push({ index: row.index, result: null, skipped: true });
        }
      }
      frontier = next;
    }
    await this.maybeSucceedRun();
  }

  private decide(from: number, to: number, result: JsonValue): boolean {
    const id = this.spec(to).deciders?.[String(from)];
    if (id === undefined) return true;
    const decider = this.run.deciders?.get(id);
    if (!decider) return true;
    return decider(result, { [this.spec(from).name]: result }) !== false;
  }

  /** An atom became READY: claim it here when a slot is free, else leave it for any engine. */
  protected async readied(index: number): Promise<void> {
    if (this.freeSlots > 0 && (this.deps.mayClaim?.() ?? true)) {
      const engineId = this.deps.engineId;
      if (engineId === null) throw new StokerError('STOKER_INTERNAL_INVARIANT', `run ${this.run.id}: only an engine continues atoms`);
      const claim = await this.tx.claimAtom(this.run.id, index, engineId);
      if (claim) {
        this.event(index, 'atom.claimed', AtomState.READY, AtomState.RUNNING, { local: true }, claim.epoch);
        this.freeSlots -= 1;
        this.result.continuations.push(claim);
        this.atomCache.delete(index);
        return;
      }
    }
    this.result.madeReady += 1;
  }

  private async maybeSucceedRun(): Promise<void> {
    const run = this.tx.run(this.run.id);
    if (run.pendingAtoms + this.pendingDelta !== 0) return;
    if (this.status() !== RunStatus.RUNNING && this.status() !== RunStatus.PENDING) return;
    const outputs = await this.collectOutputs();
    await this.finishRun(RunStatus.SUCCESS, { result: outputs });
  }

  private async collectOutputs(): Promise<JsonValue> {
    const entries = Object.entries(this.graph.outputs);
    const atomIdx = [...new Set(entries.flatMap(([, src]) => (src.from === 'atom' ? [src.atom] : [])))];
    const rows = await this.atoms(atomIdx);
    const results = new Map(rows.map((r) => [r.index, r.result]));
    const out: Record<string, JsonValue> = {};
    for (const [name, src] of entries) {
      const v = resolveInput(src, this.graph, this.run.args, results);
      if (v !== undefined) out[name] = v;
    }
    return out;
  }

  private async onFailure(claim: ClaimedAtom, failure: FailureRecord, journal: JournalEntry[]): Promise<void> {
    const spec = this.spec(claim.index);
    const retry = spec.retry;
    const canRetry = retry !== undefined && claim.attempt < retry.attempts && failure.retryable !== false;
    if (canRetry) {
      const delayMs = backoffDelayMs(retry, claim.attempt + 1, this.deps.rng);
      const ok = await this.fencedWrite(
        claim,
        AtomState.READY,
        {
          claimedBy: null,
          failure,
          attempt: claim.attempt + 1,
          execution: 0,
          journal: [],
          waitKind: null,
          waitRef: null,
          readyAt: { delayMs },
        },
        false,
        'atom.retry_scheduled',
        { ...failureEventData(claim.attempt + 1, failure), delayMs },
      );
      if (ok) {
        this.result.madeReady += 1;
        if (delayMs > 0) (this.result.dueInMs ??= []).push(delayMs);
        return;
      }
    } else {
      // the final failure's event carries what a retry_scheduled event does
      const ok = await this.fencedWrite(
        claim,
        AtomState.FAILURE,
        { claimedBy: null, failure, journal },
        false,
        undefined,
        failureEventData(claim.attempt, failure),
      );
      if (ok) {
        await this.scopeFailed(spec.kind === 'retry' ? this.parentScope(spec.scope) : spec.scope, failure);
        return;
      }
    }
    if ((await this.missReason(claim)) === 'revert') await this.joinRevert(claim, { failure, journal });
  }

  private async onSuspend(claim: ClaimedAtom, wait: WaitRequest, journal: JournalEntry[], prepared?: NewRun): Promise<void> {
    const seq = journal.length;
    const entry: JournalEntry = { seq, kind: wait.kind, done: false };
    const patch: AtomUpdate['patch'] = { claimedBy: null, waitKind: wait.kind };
    let child: NewRun | null = null;
    if (wait.kind === 'sleep') {
      patch.readyAt = { delayMs: wait.ms };
      patch.waitRef = null;
      (this.result.dueInMs ??= []).push(wait.ms);
    } else if (wait.kind === 'signal') {
      entry.ref = wait.name;
      patch.waitRef = wait.name;
      patch.readyAt = null;
    } else {
      if (prepared === undefined) {
        throw new StokerError('STOKER_INTERNAL_INVARIANT', `run ${this.run.id}: atom ${claim.index} waits for a child run never built`);
      }
      child = prepared;
      entry.ref = child.id;
      patch.waitRef = child.id;
      patch.readyAt = null;
    }
    patch.journal = [...journal, entry];
    if (!(await this.fencedWrite(claim, AtomState.WAITING, patch, false))) {
      if ((await this.missReason(claim)) === 'revert') await this.joinRevert(claim, { journal });
      return;
    }
    if (wait.kind === 'signal') {
      // a signal sent before we parked: wake at once (the sender locks the run row, so this read is up to date)
      const seen = await this.tx.signalCount(this.run.id, wait.name);
      const consumed = journal.filter((j) => j.kind === 'signal' && j.ref === wait.name).length;
      if (seen > consumed) {
        await this.tx.updateAtoms(this.run.id, [
          { index: claim.index, expectStates: [AtomState.WAITING], patch: { readyAt: { delayMs: 0 } } },
        ]);
        this.result.madeReady += 1;
      }
    }
    if (child !== null) {
      await this.tx.startRun(child);
      this.result.startedChildren.push(child.id);
      this.result.madeReady += 1;
    }
  }
}

/** The data of an event that records a failure: the attempt, the failure's message, and its type and code. */
function failureEventData(attempt: number, failure: FailureRecord): { [k: string]: JsonValue } {
  const data: { [k: string]: JsonValue } = { attempt, failure: failure.message, type: failure.type };
  if (failure.code !== undefined) data.code = failure.code;
  return data;
}
