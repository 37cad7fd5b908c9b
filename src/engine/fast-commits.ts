/**
 * The store's one-statement completions (protocol 3 on PostgreSQL: src/store/postgres/
 * fast-success.ts), used by the committer when the store declares them
 * (`capabilities.fastCompletions`) and the batch fits: one success whose run goes on,
 * several successes of one run, successes that each finish their run, or a mix of runs sent
 * as one statement per run at once. Each returns null (or leaves completions in `rest`)
 * when its statement did not apply; the general transaction then records them. A statement
 * whose answer was lost may have committed: the engine then gives its id up.
 */
import type { JsonValue } from '../core/json.js';
import type { FlowGraph } from '../flow/graph.js';
import { RunStatus } from '../store/states.js';
import type { FastBatchResult, FastFinishResult, FastSuccessResult } from '../store/store.js';
import type { EngineCore } from './engine-core.js';
import { slotsFreedBy } from './claim-loop.js';
import { emptyResult, resolveInput, type Completion, type Outcome, type TransitionResult } from './transitions.js';

/** Runs whose commit versions {@link FastCommits} remembers at most (the oldest are forgotten first). */
const MAX_SHARED_RUNS = 1024;

export class FastCommits {
  /**
   * Per run this engine commits batches to: the `row_version` its last batch left on the
   * run row, and whether another transaction had changed the row between its two last
   * batches (another engine commits to the run too).
   */
  private readonly versions = new Map<string, { next: number; shared: boolean }>();

  constructor(private readonly core: EngineCore) {}

  /**
   * A lone success in a run without deciders goes through the store's one-statement fast
   * path when it has one (PostgreSQL); null = use the general transaction.
   */
  async single(batch: Completion[]): Promise<TransitionResult | null> {
    const only = batch.length === 1 ? batch[0] : undefined;
    if (!only || !this.core.store.fast || only.outcome.kind !== 'success' || only.claim.state !== 'RUNNING') return null;
    const ctx = this.core.runs.cached(only.claim.runId) ?? (await this.core.runs.context(only.claim.runId));
    // The final atom (a run of one atom, the last of a linear flow) ends its run: that is
    // finishes()'s case, or the general path's for a child run. This statement would
    // change nothing, at the cost of a round trip.
    if (ctx.hasDeciders || ctx.finalAtom === only.claim.index) return null;
    // not a step of a chain, with a slot to fill: batchOfOneRun's statement claims for it
    if (!this.core.stopping && !this.core.fencedOut && this.fillsItsSlot(only, ctx.graph, slotsFreedBy(this.core, batch))) return null;
    const successors = ctx.graph.atoms[only.claim.index]?.successors ?? [];
    const r: FastSuccessResult = await this.core.store.fast
      .completeSuccess({
        runId: only.claim.runId,
        index: only.claim.index,
        epoch: only.claim.epoch,
        result: only.outcome.result,
        journal: only.outcome.journal,
        successors,
        claim: this.core.stopping || this.core.fencedOut || slotsFreedBy(this.core, batch) === 0 ? null : (successors[0] ?? null),
        engineId: this.core.id,
      })
      // The statement may have committed (with a claim) although we got no answer: give the
      // id up after this batch; the general path then finds the fence moved or completes it.
      .catch((e: unknown) => {
        this.core.emitError(e);
        this.core.fenceSelf('fast completion outcome unknown');
        return { handled: false, claimed: null, madeReady: 0 };
      });
    if (!r.handled) return null;
    this.noteVersion(only.claim.runId, r.runVersion);
    return { ...emptyResult(), continuations: r.claimed ? [r.claimed] : [], madeReady: r.madeReady };
  }

  /**
   * Whether a lone success goes through the batch statement rather than the single one:
   * it frees a slot (`slots` > 0) and is not a step of a chain (one successor that waits for
   * it alone, which the single statement claims). The batch statement also claims for the
   * freed slot, where the single one left it to a claim statement of its own after the
   * commit: a second round trip and commit for every task that ends alone (tasks that take
   * a while, resource steps; bench/claim-probe.ts counted 240 claims of one atom in the 263
   * of a group of 1,000 created by one engine). Not for a run other engines commit to as
   * well (the statement would hold the run's lock while it claims).
   */
  private fillsItsSlot(only: Completion, graph: FlowGraph, slots: number): boolean {
    if (slots === 0 || this.versions.get(only.claim.runId)?.shared === true) return false;
    const successors = graph.atoms[only.claim.index]?.successors ?? [];
    return !(successors.length === 1 && graph.atoms[successors[0]!]?.predecessors.length === 1);
  }

  /**
   * Several successes of one run without deciders go through the store's one-statement
   * batch path when it has one (PostgreSQL). null = use the general transaction for all;
   * otherwise `rest` holds the completions the statement did not write.
   */
  async batchOfOneRun(batch: Completion[]): Promise<{ result: TransitionResult; rest: Completion[] } | null> {
    const first = batch[0];
    if (!first || !this.core.store.fast) return null;
    const runId = first.claim.runId;
    if (!batch.every((c) => c.claim.runId === runId && c.outcome.kind === 'success' && c.claim.state === 'RUNNING')) return null;
    const ctx = await this.core.runs.context(runId);
    if (ctx.hasDeciders) return null;
    const stopping = this.core.stopping || this.core.fencedOut;
    // a lone success only when single() left it to this statement for the slot it frees
    const lone = batch.length === 1;
    if (lone && (stopping || ctx.finalAtom === first.claim.index || !this.fillsItsSlot(first, ctx.graph, slotsFreedBy(this.core, batch))))
      return null;
    const inBatch = new Set(batch.map((c) => c.claim.index));
    const successes = batch.map((c) => {
      const outcome = c.outcome as Extract<Outcome, { kind: 'success' }>;
      return {
        index: c.claim.index,
        epoch: c.claim.epoch,
        result: outcome.result,
        journal: outcome.journal,
        successors: ctx.graph.atoms[c.claim.index]?.successors ?? [],
      };
    });
    const slots = stopping ? 0 : slotsFreedBy(this.core, batch);
    // Claimed here: the successors that wait for nothing outside the batch. Each one named is
    // counted against the slots, claimed or not, so a join that other atoms still hold back
    // would keep a freed slot empty (a group's resource steps all lead to one: every batch
    // left a slot to a claim of its own). A join whose last predecessors are in the batch
    // but not all of them becomes READY and is claimed as any ready atom.
    const claim = [...new Set(successes.flatMap((s) => s.successors))]
      .filter((i) => !inBatch.has(i) && (ctx.graph.atoms[i]?.predecessors.every((p) => inBatch.has(p)) ?? false))
      .slice(0, slots);
    // A run other engines commit to as well: the claims for the freed slots go in a claim
    // statement of their own after the commit, not inside this statement, which holds the
    // run's lock until it commits (ARCHITECTURE.md, "Cost per atom": engines sharing a run).
    const shared = this.versions.get(runId)?.shared === true;
    const claimMore = shared ? 0 : slots - claim.length;
    let r: FastBatchResult;
    try {
      r = await this.core.store.fast.completeSuccesses({
        runId,
        successes,
        claim,
        claimMore,
        engineId: this.core.id,
      });
    } catch (e) {
      // It may have committed (with claims) although we got no answer: as in single().
      this.core.emitError(e);
      this.core.fenceSelf('fast completion outcome unknown');
      return null;
    }
    if (r.written.length === 0) return null;
    this.noteVersion(runId, r.runVersion);
    // the slots the statement did not claim for: the claim loop claims for them
    if (claimMore < slots - claim.length) this.core.wake();
    const written = new Set(r.written);
    const result: TransitionResult = {
      ...emptyResult(),
      continuations: r.continuations,
      madeReady: r.madeReady,
      claimedMore: r.claimedMore,
    };
    return { result, rest: batch.filter((c) => !written.has(c.claim.index)) };
  }
  /**
   * Remembers the run row's version a batch found (`found`, under the run's lock) and left
   * (one more: the batch's own update). Found other than what our last batch left, the run
   * row was changed in between: by another engine's commit, as a rule (a commit of this
   * engine outside this path counts too, which only moves one batch's claims).
   */
  private noteVersion(runId: string, found: number | undefined): void {
    if (found === undefined) return;
    const last = this.versions.get(runId);
    this.versions.delete(runId);
    if (this.versions.size >= MAX_SHARED_RUNS) this.versions.delete(this.versions.keys().next().value!);
    this.versions.set(runId, { next: found + 1, shared: last !== undefined && last.next !== found });
  }

  /**
   * Successes that each finish their run (the run's last open atom; runs without deciders
   * and without a parent to wake, one completion per run) go through the store's
   * one-statement finish when it has one (PostgreSQL). The outputs are computed here, from
   * the results this engine holds; a run whose outputs need results it does not hold takes
   * the general path. null = use the general transaction for all.
   */
  async finishes(batch: Completion[]): Promise<{ result: TransitionResult; rest: Completion[] } | null> {
    if (batch.length === 0 || !this.core.store.fast) return null;
    if (new Set(batch.map((c) => c.claim.runId)).size !== batch.length) return null;
    const finishes = [];
    for (const c of batch) {
      if (c.outcome.kind !== 'success' || c.claim.state !== 'RUNNING') return null;
      const ctx = await this.core.runs.context(c.claim.runId);
      const spec = ctx.graph.atoms[c.claim.index];
      if (ctx.hasDeciders || ctx.parentRunId !== null || !spec || spec.successors.length > 0) return null;
      const results = this.core.runs.heldResults(c.claim.runId);
      results.set(c.claim.index, c.outcome.result);
      const outputs: Record<string, JsonValue> = {};
      for (const [name, src] of Object.entries(ctx.graph.outputs)) {
        if (src.from === 'atom' && !results.has(src.atom)) return null;
        const v = resolveInput(src, ctx.graph, ctx.args, results);
        if (v !== undefined) outputs[name] = v;
      }
      finishes.push({
        runId: c.claim.runId,
        index: c.claim.index,
        epoch: c.claim.epoch,
        result: c.outcome.result,
        journal: c.outcome.journal,
        outputs,
      });
    }
    const stopping = this.core.stopping || this.core.fencedOut;
    let r: FastFinishResult;
    try {
      r = await this.core.store.fast.finishRuns({
        finishes,
        claimMore: stopping ? 0 : slotsFreedBy(this.core, batch),
        engineId: this.core.id,
      });
    } catch (e) {
      this.core.emitError(e);
      this.core.fenceSelf('fast completion outcome unknown');
      return null;
    }
    if (r.finished.length === 0) return null;
    const done = new Set(r.finished.map((f) => `${f.runId}/${f.index}`));
    const result: TransitionResult = {
      ...emptyResult(),
      continuations: r.continuations,
      claimedMore: r.continuations.length,
      finishedRuns: r.finished.map((f) => ({ runId: f.runId, status: RunStatus.SUCCESS })),
    };
    return { result, rest: batch.filter((c) => !done.has(`${c.claim.runId}/${c.claim.index}`)) };
  }
  /**
   * A batch of several runs that no single fast statement takes (graphs of many runs in
   * flight): one fast statement per run, sent at once on separate connections (different
   * runs share no row, so they do not wait for each other, and the database flushes their
   * commits together). The runs each of them finish go in one finish statement. What no
   * statement wrote is returned in `rest` for the general transaction. null: nothing to
   * gain (one run, or a store without the statements).
   */
  async perRun(batch: Completion[]): Promise<{ result: TransitionResult; rest: Completion[] } | null> {
    if (!this.core.store.fast) return null;
    const byRun = new Map<string, Completion[]>();
    for (const c of batch) byRun.set(c.claim.runId, [...(byRun.get(c.claim.runId) ?? []), c]);
    if (byRun.size < 2) return null;
    // a lone sink success may finish its run: those go together through the finish statement
    const finishing: Completion[] = [];
    const groups: Completion[][] = [];
    for (const group of byRun.values()) {
      const only = group.length === 1 ? group[0]! : null;
      const ctx = only ? await this.core.runs.context(only.claim.runId) : null;
      if (only && ctx && (ctx.graph.atoms.length === 1 || (ctx.graph.atoms[only.claim.index]?.successors.length ?? 1) === 0))
        finishing.push(only);
      else groups.push(group);
    }
    const unwritten = (input: Completion[]) => ({ result: emptyResult(), rest: input, wrote: false });
    const wrote = (input: Completion[], r: { result: TransitionResult; rest: Completion[] }) => ({
      ...r,
      wrote: r.rest.length < input.length,
    });
    const outcomes = await Promise.all([
      ...(finishing.length > 0 ? [this.finishes(finishing).then((r) => (r ? wrote(finishing, r) : unwritten(finishing)))] : []),
      ...groups.map((g) =>
        g.length === 1
          ? this.single(g).then((r) => (r ? wrote(g, { result: r, rest: [] }) : unwritten(g)))
          : this.batchOfOneRun(g).then((r) => (r ? wrote(g, r) : unwritten(g))),
      ),
    ]);
    const rest = outcomes.flatMap((o) => o.rest);
    if (rest.length === batch.length) return null;
    // each statement that wrote something was a commit of its own (the flush counts one)
    this.core.stats.commits += outcomes.filter((o) => o.wrote).length - 1;
    return { result: outcomes.map((o) => o.result).reduce(mergeResults, emptyResult()), rest };
  }
}

/** The results of two commits of one flush: `b`'s fields after `a`'s (fenced, events and children too). */
export function mergeResults(a: TransitionResult, b: TransitionResult): TransitionResult {
  return {
    ...b,
    continuations: [...a.continuations, ...b.continuations],
    finishedRuns: [...a.finishedRuns, ...b.finishedRuns],
    fenced: [...a.fenced, ...b.fenced],
    startedChildren: [...a.startedChildren, ...b.startedChildren],
    events: [...a.events, ...b.events],
    madeReady: a.madeReady + b.madeReady,
    claimedMore: (a.claimedMore ?? 0) + (b.claimedMore ?? 0),
    dueInMs: [...(a.dueInMs ?? []), ...(b.dueInMs ?? [])],
  };
}
