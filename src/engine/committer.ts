/**
 * Records outcomes (protocols 3 and 8). Completions are queued and committed in groups: one
 * transaction for all that arrived together (group commit), through the store's
 * one-statement fast paths where it has them (fast-commits.ts) and the general run
 * transaction (transitions.ts) for everything else. After a commit it acts on what the
 * transaction did: continuations are launched, finished runs announced, other engines
 * woken once per batch, fenced writes counted.
 *
 * Runs are isolated: when a batch fails, each run's completions are committed again alone,
 * and an error raised by Stoker's own transition code for one run (not the database's)
 * fails that run's atoms with the error. So no error raised for one run rolls back or
 * holds up the completions of another (issue 11: a child of an unknown flow used to stall
 * every run whose completions shared its batch).
 */
import { isStokerError } from '../errors.js';
import { slotsFreedBy } from './claim-loop.js';
import type { EngineCore } from './engine-core.js';
import { toFailureRecord } from './failure.js';
import { FastCommits, mergeResults } from './fast-commits.js';
import type { EngineRunContext } from './run-cache.js';
import { RunTransition, emptyResult, type Completion, type TransitionDeps, type TransitionResult } from './transitions.js';

export class Committer {
  private readonly queue: Completion[] = [];
  private flushing: Promise<void> | null = null;
  /**
   * A flush loop is running or about to: set by `enqueue`, cleared by the loop in the same
   * step as its last look at the queue. (`flushing` is cleared a few microtasks later, by
   * its `finally`: a completion queued in between would have waited for the next one.)
   */
  private active = false;
  private readonly fast: FastCommits;

  constructor(
    private readonly core: EngineCore,
    private readonly launch: (claim: Completion['claim']) => void,
  ) {
    this.fast = new FastCommits(core);
  }

  /** resolves when every queued completion has been committed (or given up) */
  get idle(): Promise<void> {
    return this.flushing ?? Promise.resolve();
  }

  enqueue(c: Completion): void {
    this.queue.push(c);
    if (this.active) return;
    this.active = true;
    // Group commit: while other atoms are still executing, wait one turn of the event loop
    // for those finishing in the same turn (no-op tasks at concurrency 16: 16 atoms per
    // commit instead of about 5). A lone completion (a linear flow) is sent at once, in this
    // turn: no other atom can join it.
    const others = this.core.inflight.size > this.queue.length;
    const flushed = others ? new Promise<void>((resolve) => this.core.clock.defer(resolve)).then(() => this.flushLoop()) : this.flushLoop();
    const settled: Promise<void> = flushed.finally(() => {
      if (this.flushing === settled) this.flushing = null;
    });
    this.flushing = settled;
  }

  private async flushLoop(): Promise<void> {
    const core = this.core;
    // the finally runs in the same step as the loop's last look at the queue (no await between)
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, core.settings.maxBatch);
        let result: TransitionResult | null = null;
        let firstError: unknown = undefined;
        try {
          result = await this.commit(batch);
        } catch (e) {
          core.emitError(e);
          firstError = e;
        }
        if (result) {
          this.settle(batch, result, false);
        } else {
          // One attempt of the whole batch failed: commit each run's completions alone, so that
          // whatever went wrong for one run cannot roll back or hold up the others.
          const groups = [...byRun(batch).values()];
          for (const group of groups) await this.commitAlone(group, firstError, groups.length > 1);
        }
        core.slotFreed();
      }
    } finally {
      this.active = false;
    }
  }

  /**
   * Commits the completions of one run, trying again while our claims can still be valid:
   * dropping a completion would leave its atom RUNNING under our (live) lease; once the lease
   * is gone, others take over. An error raised by our own code inside the transaction (not a
   * database error) rolled it back and would be raised again: the run's atoms then fail with
   * it, once; the run's retry and revert rules take it from there.
   */
  private async commitAlone(group: Completion[], firstError: unknown, retryFirst: boolean): Promise<void> {
    const core = this.core;
    let completions = group;
    let result: TransitionResult | null = null;
    // a database error may have come after the commit landed (B1, B2); ours come before it
    let ambiguous = isStoreError(firstError);
    let lastError = retryFirst ? undefined : firstError;
    for (let attempt = 1; result === null; attempt++) {
      if (lastError !== undefined && !isStoreError(lastError)) {
        if (completions.every(isFailure)) {
          // Even the failure cannot be recorded. Leave the atoms RUNNING under our id: they
          // are handed back when this engine stops (or taken over if it dies), and nothing
          // else is held up. Fencing ourselves instead would abort every other run's tasks.
          core.log.error(
            { runId: group[0]!.claim.runId, atoms: group.map((c) => c.claim.index), err: lastError },
            'the outcome of these atoms cannot be recorded; they stay RUNNING until this engine stops or the run is cancelled',
          );
          break;
        }
        completions = completions.map((c) => this.asFailure(c, lastError));
      }
      try {
        result = await this.commit(completions);
      } catch (e) {
        core.emitError(e);
        lastError = e;
        if (isStoreError(e)) {
          ambiguous = true;
          if (!core.leaseValid() || (core.stopping && attempt >= 5)) break;
          await core.clock.sleep(Math.min(5000, 50 * 2 ** attempt));
        }
      }
    }
    if (result === null && !ambiguous) {
      for (const c of completions) {
        core.inflight.delete(c.claim.runId, c.claim.index);
        core.runs.unremember(c.claim.runId, c.claim.index);
      }
      return;
    }
    this.settle(completions, result, ambiguous);
  }

  /** A completion whose commit raised `error` in our own code, turned into the atom's failure. */
  private asFailure(c: Completion, error: unknown): Completion {
    const failure = { ...toFailureRecord(error), retryable: false };
    this.core.runs.unremember(c.claim.runId, c.claim.index);
    if (c.claim.state === 'REVERTING') return { claim: c.claim, outcome: { kind: 'revertFailed', failure } };
    const journal = 'journal' in c.outcome ? c.outcome.journal : c.claim.journal;
    return { claim: c.claim, outcome: { kind: 'failure', failure, journal } };
  }

  /** After a batch (or a run's part of one) was committed or given up. */
  private settle(batch: Completion[], result: TransitionResult | null, ambiguous: boolean): void {
    const core = this.core;
    for (const c of batch) core.inflight.delete(c.claim.runId, c.claim.index);
    if (ambiguous || result === null) {
      // A failed attempt may have committed (with claims of its own) before the error, or
      // the batch was given up and its atoms stay RUNNING under our id: either way, give
      // the id up so that the reapers requeue what it holds (docs/reliability.md B1, B2).
      core.fenceSelf(result === null ? 'completions could not be recorded' : 'commit outcome was unknown');
      // What this engine holds must be what was recorded (R14): a result whose commit
      // failed or is unknown may be recorded differently by another execution.
      if (result === null) for (const c of batch) core.runs.unremember(c.claim.runId, c.claim.index);
    }
    if (result) this.committed(result);
  }

  private committed(result: TransitionResult): void {
    const core = this.core;
    core.stats.commits += 1;
    for (const f of result.fenced) {
      core.stats.fencedWrites += 1;
      core.runs.unremember(f.runId, f.index);
      core.log.warn({ runId: f.runId, atom: f.index, epoch: f.epoch }, 'fenced write: claim lost, result dropped');
      core.events.emit('fenced', f);
    }
    for (const r of result.finishedRuns) {
      core.runs.forget(r.runId);
      core.events.emit('run.finished', r);
      core.hub.runEnded(r.runId);
    }
    core.stats.continuations += result.continuations.length;
    for (const c of result.continuations) {
      if (core.stopping) continue;
      core.stats.claimed += 1;
      this.launch(c);
    }
    // a timer due within the poll interval: announced when it is due, not found at a poll
    for (const ms of result.dueInMs ?? []) if (ms <= core.settings.pollMs) core.dueWakeups.after(ms);
    if (result.madeReady > 0) {
      // this process's engines, and other processes through the hub's relays (AMQP) and
      // the store (NOTIFY, the wake file): once per commit batch, never inside the transaction
      core.hub.announce();
      core.store.wakeups?.notify().catch((e: unknown) => core.emitError(e));
    }
  }

  private async commit(batch: Completion[]): Promise<TransitionResult> {
    // keep successful results for local continuation inputs
    for (const c of batch) if (c.outcome.kind === 'success') this.core.runs.remember(c.claim.runId, c.claim.index, c.outcome.result);
    const fast = this.fast;
    const one = await fast.single(batch);
    if (one) return one;
    const some = (await fast.batchOfOneRun(batch)) ?? (await fast.finishes(batch)) ?? (await fast.perRun(batch));
    if (!some) return this.commitGeneral(batch);
    if (some.rest.length === 0) return some.result;
    // some claims of the batch were lost meanwhile: the general path records why
    this.core.stats.commits += 1;
    return mergeResults(some.result, await this.commitGeneral(some.rest));
  }

  /** The general completion: one transaction that locks the batch's runs and applies the transition rules. */
  private async commitGeneral(batch: Completion[]): Promise<TransitionResult> {
    const core = this.core;
    const runs = byRun(batch);
    const contexts = await Promise.all([...runs.keys()].map((id) => core.runs.context(id)));
    const locks = [...new Set(contexts.flatMap((c) => lockSet(c)))];
    // A fenced engine records what it finished but takes nothing new. Every claim of the
    // transaction names the id the engine held when it began, and none is made once the
    // engine fenced itself meanwhile (seed 21909: a completion in flight claimed under the
    // id its fenced engine was about to register, an id with no engine row behind it).
    const engineId = core.id;
    const mayClaim = (): boolean => !core.stopping && !core.fencedOut && core.id === engineId;
    const deps: TransitionDeps = { engineId, rng: core.rng, mayClaim };
    const stopping = !mayClaim();
    return core.store.runTransaction(locks, async (tx) => {
      const result = emptyResult();
      const slots = stopping ? 0 : slotsFreedBy(core, batch);
      let free = slots;
      for (const ctx of contexts) {
        const t = new RunTransition(tx, ctx, deps, result, free);
        await t.applyAll(runs.get(ctx.id)!);
        await t.flush();
        core.faultPoint('in-run-transition', { runId: ctx.id, atom: runs.get(ctx.id)![0]!.claim.index });
        free = Math.max(0, slots - result.continuations.length);
      }
      if (result.events.length > 0) await tx.insertEvents(result.events);
      // slots this batch frees and no continuation took: claim for them in the same commit
      if (free > 0 && mayClaim()) {
        const more = await tx.claimMore(engineId, free);
        result.continuations.push(...more);
        result.claimedMore = more.length;
      }
      const first = batch[0]!.claim;
      core.faultPoint('inside-fenced-tx', { runId: first.runId, atom: first.index });
      return result;
    });
  }
}

/** The runs a transaction of this run locks: the run, and its parent (a child's end wakes the parent's atom). */
export function lockSet(run: Pick<EngineRunContext, 'id' | 'parentRunId'>): string[] {
  return run.parentRunId ? [run.id, run.parentRunId] : [run.id];
}

/** The completions of a batch by run, in the order the runs first appear. */
function byRun(batch: readonly Completion[]): Map<string, Completion[]> {
  const out = new Map<string, Completion[]>();
  for (const c of batch) {
    const list = out.get(c.claim.runId);
    if (list) list.push(c);
    else out.set(c.claim.runId, [c]);
  }
  return out;
}

/**
 * Whether `e` may be the database's (transient, and after COMMIT of unknown outcome): every
 * error but those our own code raises before COMMIT, which rolled the transaction back and
 * would be raised again: a StokerError of another area (`STOKER_FLOW_NOT_FOUND`, …) or a
 * programming error (TypeError, RangeError, ReferenceError). An error we cannot place
 * counts as the database's: retried, never turned into a task's failure (a raw driver
 * error taken for ours once left atoms RUNNING under a live engine: C12b, issue 11).
 */
function isStoreError(e: unknown): boolean {
  if (e === undefined) return false;
  if (isStokerError(e)) return e.code.startsWith('STOKER_STORE_');
  return !(e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError);
}

function isFailure(c: Completion): boolean {
  return c.outcome.kind === 'failure' || c.outcome.kind === 'revertFailed';
}
