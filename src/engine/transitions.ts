/**
 * What happens to a run when one of its atoms finishes: the forward path (successors,
 * deciders, skips, local continuation, run success), task retries, scope retries and
 * reverts in reverse dependency order (protocols 3 and 8 of DESIGN.md).
 *
 * Everything here runs inside one {@link RunTx} that holds the run's lock, so decisions
 * read a stable view of the run. The first write for a claim is fenced by its epoch; if it
 * misses, the claim was lost and nothing else is written for it.
 */
import type { Rng } from '../core/clock.js';
import type { JsonValue } from '../core/json.js';
import type { AtomSpec, FlowGraph, InputSource } from '../flow/graph.js';
import type { Decider, FailureRecord } from '../flow/types.js';
import { providedValue } from '../flow/provided-value.js';
import type { AtomRow, AtomUpdate, ClaimedAtom, EventInput, JournalEntry, NewRun, RunTx } from '../store/store.js';
import { StokerError } from '../errors.js';
import { backoffDelayMs } from './backoff.js';
import type { WaitRequest } from './failure.js';
import { AtomState, RunStatus, atomTransitionAllowed, isTerminalRun } from '../store/states.js';

/** How an execution (or revert) of a claimed atom ended. */
export type Outcome =
  | { kind: 'success'; result: JsonValue; journal: JournalEntry[] }
  | { kind: 'failure'; failure: FailureRecord; journal: JournalEntry[] }
  | { kind: 'suspend'; wait: WaitRequest; journal: JournalEntry[] }
  | { kind: 'reverted' }
  | { kind: 'revertFailed'; failure: FailureRecord }
  /** this engine cannot execute the atom (it does not have the flow's code): hand it back */
  | { kind: 'release'; delayMs: number };

export interface Completion {
  claim: ClaimedAtom;
  outcome: Outcome;
}

/** What the engine knows about a run: its immutable graph and, when registered, its code. */
export interface RunContext {
  id: string;
  graph: FlowGraph;
  args: Record<string, JsonValue>;
  parentRunId: string | null;
  parentAtom: number | null;
  deciders: ReadonlyMap<string, Decider> | null;
}

/** Services the transition logic needs from the engine. */
export interface TransitionDeps {
  /** recorded on events; null for a client that is no engine (a cancellation from the CLI) */
  engineId: string | null;
  rng: Rng;
  /** builds the NewRun for a child run (a registered flow, or a graph built at run time); throws when unknown */
  prepareChild(wait: Extract<WaitRequest, { kind: 'child' }>, parent: { runId: string; atom: number }): NewRun;
}

/** The results of one transaction, for the engine to act on after commit. */
export interface TransitionResult {
  /** claims made in the transaction (local continuation) */
  continuations: ClaimedAtom[];
  /** atoms made claimable for others (wake other engines) */
  madeReady: number;
  /** claims whose fenced write missed */
  fenced: ClaimedAtom[];
  /** runs that reached a terminal status */
  finishedRuns: { runId: string; status: RunStatus }[];
  /** child runs started */
  startedChildren: string[];
  /** of `continuations`, how many were claimed from any run (not successors) */
  claimedMore?: number;
  /** event rows to insert before commit (one statement for the whole transaction) */
  events: EventInput[];
}

export function emptyResult(): TransitionResult {
  return { continuations: [], madeReady: 0, fenced: [], finishedRuns: [], startedChildren: [], events: [] };
}

/** Forward-terminal states: an atom in one counts as done for the run's success. */
const FORWARD_DONE: readonly AtomState[] = [AtomState.SUCCESS, AtomState.SKIPPED];
/** States an atom in a reverting scope may have that mean "it ran, or is running: revert it". */
const EXECUTED: readonly AtomState[] = [AtomState.SUCCESS, AtomState.FAILURE, AtomState.RUNNING, AtomState.WAITING];
const IN_REVERT: readonly AtomState[] = [AtomState.REVERT_PENDING, AtomState.REVERT_READY, AtomState.REVERTING];
const OPEN: readonly AtomState[] = [
  AtomState.PENDING,
  AtomState.READY,
  AtomState.WAITING,
  AtomState.REVERT_PENDING,
  AtomState.REVERT_READY,
];

/**
 * Applies completions of one run inside `tx`. `freeSlots` bounds local continuation: the
 * engine may claim at most that many of the atoms this transaction makes ready.
 */
export class RunTransition {
  private readonly events: EventInput[] = [];
  private pendingDelta = 0;
  private revertDelta = 0;
  private runPatchStatus: RunStatus | null = null;
  private runFailure: FailureRecord | null = null;
  private readonly atomCache = new Map<number, AtomRow>();

  constructor(
    private readonly tx: RunTx,
    private readonly run: RunContext,
    private readonly deps: TransitionDeps,
    private readonly result: TransitionResult,
    private freeSlots: number,
  ) {}

  private get graph(): FlowGraph {
    return this.run.graph;
  }

  private spec(index: number): AtomSpec {
    const s = this.graph.atoms[index];
    if (!s) throw new StokerError('STOKER_INTERNAL_INVARIANT', `atom ${index} is not in the graph of run ${this.run.id}`);
    return s;
  }

  private status(): RunStatus {
    return this.runPatchStatus ?? this.tx.run(this.run.id).status;
  }

  private event(
    atom: number | null,
    kind: string,
    fromState: string | null,
    toState: string | null,
    data?: JsonValue,
    epoch?: number,
  ): void {
    this.events.push({
      runId: this.run.id,
      atom,
      kind,
      fromState,
      toState,
      engineId: this.deps.engineId,
      epoch: epoch ?? null,
      ...(data === undefined ? {} : { data }),
    });
  }

  /** Tracks `pending_atoms`: leaving or entering SUCCESS/SKIPPED changes the count of unfinished atoms. */
  private countMove(from: AtomState, to: AtomState): void {
    const wasDone = FORWARD_DONE.includes(from);
    const isDone = FORWARD_DONE.includes(to);
    if (wasDone && !isDone) this.pendingDelta += 1;
    if (!wasDone && isDone) this.pendingDelta -= 1;
  }

  private async atoms(indexes: readonly number[]): Promise<AtomRow[]> {
    const missing = indexes.filter((i) => !this.atomCache.has(i));
    if (missing.length > 0) for (const a of await this.tx.getAtoms(this.run.id, missing)) this.atomCache.set(a.index, a);
    return indexes.map((i) => this.atomCache.get(i)).filter((a): a is AtomRow => a !== undefined);
  }

  /** A conditional write of a non-claimed atom (its state is expected; the run lock makes misses rare). */
  private async set(
    atom: AtomRow,
    to: AtomState,
    patch: Omit<AtomUpdate['patch'], 'state'> = {},
    kind = `atom.${to.toLowerCase()}`,
  ): Promise<boolean> {
    assertTransition(atom.state, to, atom.name);
    const [ok] = await this.tx.updateAtoms(this.run.id, [
      { index: atom.index, expectStates: [atom.state], patch: { ...patch, state: to } },
    ]);
    if (!ok) {
      this.atomCache.delete(atom.index);
      return false;
    }
    this.countMove(atom.state, to);
    this.event(atom.index, kind, atom.state, to);
    this.atomCache.set(atom.index, { ...atom, ...definedOnly(patch), state: to } as AtomRow);
    return true;
  }

  /**
   * {@link set} for many atoms: one store call (one statement where the store can) per
   * state they leave, one event each. An atom whose state moved meanwhile is left alone.
   */
  private async setAll(atoms: readonly AtomRow[], to: AtomState, patch: Omit<AtomUpdate['patch'], 'state'> = {}): Promise<void> {
    const byState = new Map<AtomState, AtomRow[]>();
    for (const a of atoms) {
      assertTransition(a.state, to, a.name);
      byState.set(a.state, [...(byState.get(a.state) ?? []), a]);
    }
    for (const [from, group] of byState) {
      const ok = await this.tx.updateAtoms(
        this.run.id,
        group.map((a) => ({ index: a.index, expectStates: [from], patch: { ...patch, state: to } })),
      );
      group.forEach((atom, i) => {
        if (!ok[i]) {
          this.atomCache.delete(atom.index);
          return;
        }
        this.countMove(from, to);
        this.event(atom.index, `atom.${to.toLowerCase()}`, from, to);
        this.atomCache.set(atom.index, { ...atom, ...definedOnly(patch), state: to } as AtomRow);
      });
    }
  }

  // ------------------------------------------------------------------ entry

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
        if (!(await this.fencedWrite(claim, AtomState.REVERT_FAILURE, { claimedBy: null, failure: outcome.failure }))) return;
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
        return this.onSuspend(claim, outcome.wait, outcome.journal);
      default:
        return;
    }
  }

  /** The fenced write for a claim: epoch and state must still be the claim's. */
  private async fencedWrite(
    claim: ClaimedAtom,
    to: AtomState,
    patch: AtomUpdate['patch'],
    expectRevertRequested?: boolean,
    kind?: string,
    data?: JsonValue,
  ): Promise<boolean> {
    assertTransition(claim.state, to, this.spec(claim.index).name);
    const update: AtomUpdate = { index: claim.index, epoch: claim.epoch, expectStates: [claim.state], patch: { ...patch, state: to } };
    if (expectRevertRequested !== undefined) update.expectRevertRequested = expectRevertRequested;
    const [ok] = await this.tx.updateAtoms(this.run.id, [update]);
    if (ok) {
      this.event(claim.index, kind ?? `atom.${to.toLowerCase()}`, claim.state, to, data, claim.epoch);
      this.atomCache.delete(claim.index);
    }
    return ok === true;
  }

  /** Reads the claimed atom after a conditional write missed: fenced, or its scope is reverting? */
  private async missReason(claim: ClaimedAtom): Promise<'fenced' | 'revert'> {
    this.atomCache.delete(claim.index);
    const [row] = await this.atoms([claim.index]);
    if (row && row.epoch === claim.epoch && row.state === claim.state && row.revertRequested) return 'revert';
    this.result.fenced.push(claim);
    this.event(
      claim.index,
      'atom.fenced_write',
      claim.state,
      row?.state ?? null,
      { epoch: claim.epoch, currentEpoch: row?.epoch ?? null },
      claim.epoch,
    );
    return 'fenced';
  }

  /** The run ended (cancelled, superseded, failed) while this atom ran: record its outcome, schedule nothing. */
  private async recordAfterEnd({ claim, outcome }: Completion): Promise<void> {
    const to =
      outcome.kind === 'success'
        ? AtomState.SUCCESS
        : outcome.kind === 'failure'
          ? AtomState.FAILURE
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

  // ------------------------------------------------------------------ forward path

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
  private async readied(index: number): Promise<void> {
    if (this.freeSlots > 0) {
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

  // ------------------------------------------------------------------ failures and retries

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
        { attempt: claim.attempt + 1, delayMs, failure: failure.message },
      );
      if (ok) {
        this.result.madeReady += 1;
        return;
      }
    } else {
      const ok = await this.fencedWrite(claim, AtomState.FAILURE, { claimedBy: null, failure, journal }, false);
      if (ok) {
        await this.scopeFailed(spec.kind === 'retry' ? this.parentScope(spec.scope) : spec.scope, failure);
        return;
      }
    }
    if ((await this.missReason(claim)) === 'revert') await this.joinRevert(claim, { failure, journal });
  }

  private parentScope(scope: number): number | null {
    return this.graph.scopes[scope]?.parent ?? null;
  }

  /** Finds the nearest retry controller from `scope` outwards and lets it decide; none = revert everything. */
  private async scopeFailed(scope: number | null, failure: FailureRecord): Promise<void> {
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
  private async startRevert(scope: number, failure: FailureRecord, wholeRun = false): Promise<void> {
    const sc = this.graph.scopes[scope]!;
    const members = wholeRun ? this.graph.atoms.map((a) => a.index) : sc.atoms;
    if (wholeRun) {
      this.runPatchStatus = RunStatus.REVERTING;
      this.runFailure = failure;
      this.event(null, 'run.reverting', this.tx.run(this.run.id).status, RunStatus.REVERTING, { failure: failure.message });
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
  private async joinRevert(
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
  private async promote(a: AtomRow): Promise<void> {
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
  private async onReverted(index: number): Promise<void> {
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
  private async controllerDecides(ctlRow: AtomRow): Promise<void> {
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
  private async resetScope(scope: number, ctlRow: AtomRow): Promise<void> {
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

  private async maybeFinishRevert(): Promise<void> {
    if (this.status() !== RunStatus.REVERTING) return;
    const left = this.tx.run(this.run.id).revertPending + this.revertDelta;
    if (left > 0) return;
    await this.finishRun(RunStatus.REVERTED, { failure: this.runFailure ?? this.tx.run(this.run.id).failure });
  }

  private async failRun(failure: FailureRecord): Promise<void> {
    await this.finishRun(RunStatus.FAILED, { failure });
  }

  private async inputValue(src: InputSource): Promise<JsonValue | undefined> {
    const idx = src.from === 'atom' ? [src.atom] : [];
    const rows = await this.atoms(idx);
    return resolveInput(src, this.graph, this.run.args, new Map(rows.map((r) => [r.index, r.result])));
  }

  // ------------------------------------------------------------------ waits

  private async onSuspend(claim: ClaimedAtom, wait: WaitRequest, journal: JournalEntry[]): Promise<void> {
    const seq = journal.length;
    const entry: JournalEntry = { seq, kind: wait.kind, done: false };
    const patch: AtomUpdate['patch'] = { claimedBy: null, waitKind: wait.kind };
    let child: NewRun | null = null;
    if (wait.kind === 'sleep') {
      patch.readyAt = { delayMs: wait.ms };
      patch.waitRef = null;
    } else if (wait.kind === 'signal') {
      entry.ref = wait.name;
      patch.waitRef = wait.name;
      patch.readyAt = null;
    } else {
      child = this.deps.prepareChild(wait, { runId: this.run.id, atom: claim.index });
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

  // ------------------------------------------------------------------ run end

  private async finishRun(status: RunStatus, patch: { result?: JsonValue; failure?: FailureRecord | null }): Promise<void> {
    const from = this.status();
    this.runPatchStatus = status;
    // Open atoms will never run now. A run that succeeded has none (every atom is SUCCESS
    // or SKIPPED when pending_atoms reaches zero), so only other endings look for them.
    if (status !== RunStatus.SUCCESS) {
      const open = await this.tx.getAtomsInStates(this.run.id, OPEN);
      await this.setAll(open, AtomState.CANCELLED, { readyAt: null });
    }
    this.event(null, `run.${status.toLowerCase()}`, from, status, patch.failure ? { failure: patch.failure.message } : null);
    if (patch.result !== undefined) this.finalResult = patch.result;
    if (patch.failure !== undefined) this.runFailure = patch.failure;
    this.result.finishedRuns.push({ runId: this.run.id, status });
    if (this.run.parentRunId !== null && this.run.parentAtom !== null) {
      await this.tx.updateAtoms(this.run.parentRunId, [
        { index: this.run.parentAtom, expectStates: [AtomState.WAITING], patch: { readyAt: { delayMs: 0 } } },
      ]);
      this.result.madeReady += 1;
    }
  }

  private finalResult: JsonValue | undefined;

  /** Cancels the run: nothing new starts; running atoms finish (their engines abort them) and record only. */
  async cancel(reason: string): Promise<boolean> {
    if (isTerminalRun(this.status())) return false;
    await this.finishRun(RunStatus.CANCELLED, { failure: { type: 'Cancelled', message: reason } });
    return true;
  }

  /** Writes the run row and queues the events: call once after all completions of this run. */
  async flush(): Promise<void> {
    const run = this.tx.run(this.run.id);
    const patch: Parameters<RunTx['updateRun']>[1] = {};
    if (this.pendingDelta !== 0) patch.pendingAtomsDelta = this.pendingDelta;
    if (this.revertDelta !== 0) patch.revertPendingDelta = this.revertDelta;
    let status = this.runPatchStatus;
    if (run.status === RunStatus.PENDING) {
      // the first transition of a run also moves it PENDING → RUNNING
      this.events.unshift({
        runId: this.run.id,
        atom: null,
        kind: 'run.running',
        fromState: RunStatus.PENDING,
        toState: RunStatus.RUNNING,
        engineId: this.deps.engineId,
      });
      status ??= RunStatus.RUNNING;
    }
    if (status !== null && status !== run.status) patch.status = status;
    if (this.finalResult !== undefined) patch.result = this.finalResult;
    if (this.runFailure !== null && this.runFailure !== run.failure) patch.failure = this.runFailure;
    if (Object.keys(patch).length > 0) await this.tx.updateRun(this.run.id, patch);
    // events of all runs in the transaction are written together by the caller
    this.result.events.push(...this.events);
  }
}

/** Resolves one input from run arguments and atom results. `undefined` = not available. */
export function resolveInput(
  src: InputSource,
  graph: FlowGraph,
  args: Record<string, JsonValue>,
  results: ReadonlyMap<number, JsonValue | null>,
): JsonValue | undefined {
  switch (src.from) {
    case 'arg':
      return args[src.name];
    case 'value':
      return src.value;
    case 'atom': {
      const provider = graph.atoms[src.atom];
      if (!provider || !results.has(src.atom)) return undefined;
      return providedValue(results.get(src.atom) ?? null, provider, src.key);
    }
  }
}

/** The transition tables are the contract (docs/states.md): a move outside them is a bug here. */
function assertTransition(from: AtomState, to: AtomState, name: string): void {
  if (!atomTransitionAllowed(from, to)) throw new StokerError('STOKER_INTERNAL_INVARIANT', `atom ${name} may not move ${from} → ${to}`);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
