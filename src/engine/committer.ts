/**
 * Records outcomes (protocols 3 and 8). Completions are queued and committed in groups: one
 * transaction for all that arrived together (group commit), through the store's
 * one-statement fast paths where it has them (fast-commits.ts) and the general run
 * transaction (transitions.ts) for everything else. After a commit it acts on what the
 * transaction did: continuations are launched, finished runs announced, other engines
 * woken once per batch, fenced writes counted.
 */
import type { NewRun } from '../store/store.js';
import type { EngineCore } from './engine-core.js';
import type { WaitRequest } from './failure.js';
import { FastCommits, mergeResults } from './fast-commits.js';
import type { EngineRunContext } from './run-cache.js';
import { RunTransition, emptyResult, type Completion, type TransitionDeps, type TransitionResult } from './transitions.js';

/** Builds the run a parked atom starts as its child (the run client's job: see RunClient.prepareChild). */
export type PrepareChild = (wait: Extract<WaitRequest, { kind: 'child' }>, parent: { runId: string; atom: number }) => NewRun;

export class Committer {
  private readonly queue: Completion[] = [];
  private flushing: Promise<void> | null = null;
  private readonly fast: FastCommits;

  constructor(
    private readonly core: EngineCore,
    private readonly launch: (claim: Completion['claim']) => void,
    private readonly prepareChild: PrepareChild,
  ) {
    this.fast = new FastCommits(core);
  }

  /** resolves when every queued completion has been committed (or given up) */
  get idle(): Promise<void> {
    return this.flushing ?? Promise.resolve();
  }

  enqueue(c: Completion): void {
    this.queue.push(c);
    if (this.flushing) return;
    // Group commit: while other atoms are still executing, wait one turn of the event loop
    // for those finishing in the same turn (no-op tasks at concurrency 16: 16 atoms per
    // commit instead of about 5). A lone completion (a linear flow) is sent at once.
    const others = this.core.inflight.size > this.queue.length;
    const ready = others ? new Promise<void>((resolve) => this.core.clock.defer(resolve)) : Promise.resolve();
    this.flushing = ready.then(() => this.flushLoop()).finally(() => (this.flushing = null));
  }

  private async flushLoop(): Promise<void> {
    const core = this.core;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, core.settings.maxBatch);
      let result: TransitionResult | null = null;
      // Keep trying while our claims can still be valid: dropping a completion would leave
      // its atom RUNNING under our (live) lease. Once the lease is gone, others take over.
      let ambiguous = false;
      for (let attempt = 1; result === null; attempt++) {
        try {
          result = await this.commit(batch);
        } catch (e) {
          ambiguous = true;
          core.emitError(e);
          if (!core.leaseValid() || (core.stopping && attempt >= 5)) break;
          await core.clock.sleep(Math.min(5000, 50 * 2 ** attempt));
        }
      }
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
      core.wake();
    }
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
    if (result.madeReady > 0) {
      core.hub.wake();
      // other processes: one NOTIFY per commit batch, never inside the transaction
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
    const byRun = new Map<string, Completion[]>();
    for (const c of batch) {
      const list = byRun.get(c.claim.runId);
      if (list) list.push(c);
      else byRun.set(c.claim.runId, [c]);
    }
    const contexts = await Promise.all([...byRun.keys()].map((id) => core.runs.context(id)));
    const locks = [...new Set(contexts.flatMap((c) => lockSet(c)))];
    // a fenced engine records what it finished but takes nothing new under its old id
    const stopping = core.stopping || core.fencedOut;
    return core.store.runTransaction(locks, async (tx) => {
      const result = emptyResult();
      let free = stopping ? 0 : batch.length;
      for (const ctx of contexts) {
        const t = new RunTransition(tx, ctx, this.transitionDeps(), result, free);
        await t.applyAll(byRun.get(ctx.id)!);
        await t.flush();
        free = Math.max(0, batch.length - result.continuations.length);
      }
      if (result.events.length > 0) await tx.insertEvents(result.events);
      // slots this batch frees and no continuation took: claim for them in the same commit
      if (free > 0 && !stopping) {
        const more = await tx.claimMore(core.id, free);
        result.continuations.push(...more);
        result.claimedMore = more.length;
      }
      const first = batch[0]!.claim;
      core.faultPoint('inside-fenced-tx', { runId: first.runId, atom: first.index });
      return result;
    });
  }

  transitionDeps(): TransitionDeps {
    return { engineId: this.core.id, rng: this.core.rng, prepareChild: this.prepareChild };
  }
}

/** The runs a transaction of this run locks: the run, and its parent (a child's end wakes the parent's atom). */
export function lockSet(run: Pick<EngineRunContext, 'id' | 'parentRunId'>): string[] {
  return run.parentRunId ? [run.id, run.parentRunId] : [run.id];
}
