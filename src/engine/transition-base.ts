/**
 * The write primitives of a run's transitions (transitions.ts): every atom move is one
 * conditional write that checks the transition tables (docs/states.md) and queues its
 * event; the run's counters and status are gathered and written once per run by
 * {@link TransitionBase.flush}; a run ends once, in the transaction of the atom that ends
 * it. Also the types the engine's parts share about outcomes and transitions.
 *
 * Everything here runs inside one {@link RunTx} that holds the run's lock, so decisions
 * read a stable view of the run.
 */
import type { Rng } from '../core/clock.js';
import type { JsonValue } from '../core/json.js';
import type { AtomSpec, FlowGraph, InputSource } from '../flow/graph.js';
import type { Decider, FailureRecord } from '../flow/types.js';
import { providedValue } from '../flow/provided-value.js';
import type { AtomRow, AtomUpdate, ClaimedAtom, EventInput, JournalEntry, NewRun, RunTx } from '../store/store.js';
import { StokerError } from '../errors.js';
import type { WaitRequest } from './failure.js';
import { AtomState, RUN_TRANSITIONS, RunStatus, atomTransitionAllowed, isTerminalRun } from '../store/states.js';

/** How an execution (or revert) of a claimed atom ended. */
export type Outcome =
  | { kind: 'success'; result: JsonValue; journal: JournalEntry[] }
  | { kind: 'failure'; failure: FailureRecord; journal: JournalEntry[] }
  /**
   * the atom parks; for a child run, `child` is the run to start, built by the executor
   * before the commit so that a child the engine cannot build (an unknown flow) fails this
   * atom instead of raising inside a transaction shared with other runs
   */
  | { kind: 'suspend'; wait: WaitRequest; journal: JournalEntry[]; child?: NewRun }
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
  /**
   * Whether a local continuation may still be claimed under `engineId` (default: yes). An
   * engine that fenced itself, or registered again under a new id, while the transaction
   * ran must not claim: the claim would name an id with no lease behind it
   * (docs/reliability.md, "Self-fencing").
   */
  mayClaim?: () => boolean;
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
  /** atoms parked until a due time (a retry's backoff, a durable sleep): ms from the commit (wake-ups, protocol 6) */
  dueInMs?: number[];
}

export function emptyResult(): TransitionResult {
  return { continuations: [], madeReady: 0, fenced: [], finishedRuns: [], startedChildren: [], events: [] };
}

/** Forward-terminal states: an atom in one counts as done for the run's success. */
export const FORWARD_DONE: readonly AtomState[] = [AtomState.SUCCESS, AtomState.SKIPPED];
/** States an atom in a reverting scope may have that mean "it ran, or is running: revert it". */
export const EXECUTED: readonly AtomState[] = [AtomState.SUCCESS, AtomState.FAILURE, AtomState.RUNNING, AtomState.WAITING];
export const IN_REVERT: readonly AtomState[] = [AtomState.REVERT_PENDING, AtomState.REVERT_READY, AtomState.REVERTING];
export const OPEN: readonly AtomState[] = [
  AtomState.PENDING,
  AtomState.READY,
  AtomState.WAITING,
  AtomState.REVERT_PENDING,
  AtomState.REVERT_READY,
];

/** The state and write primitives one run's transition works with (see transitions.ts and revert-path.ts). */
export abstract class TransitionBase {
  protected readonly events: EventInput[] = [];

  protected pendingDelta = 0;

  protected revertDelta = 0;

  protected runPatchStatus: RunStatus | null = null;

  protected runFailure: FailureRecord | null = null;

  protected readonly atomCache = new Map<number, AtomRow>();

  protected finalResult: JsonValue | undefined;

  constructor(
    protected readonly tx: RunTx,
    protected readonly run: RunContext,
    protected readonly deps: TransitionDeps,
    protected readonly result: TransitionResult,
    protected freeSlots: number,
  ) {}

  protected get graph(): FlowGraph {
    return this.run.graph;
  }

  protected spec(index: number): AtomSpec {
    const s = this.graph.atoms[index];
    if (!s) throw new StokerError('STOKER_INTERNAL_INVARIANT', `atom ${index} is not in the graph of run ${this.run.id}`);
    return s;
  }

  protected status(): RunStatus {
    return this.runPatchStatus ?? this.tx.run(this.run.id).status;
  }

  protected event(
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
  protected countMove(from: AtomState, to: AtomState): void {
    const wasDone = FORWARD_DONE.includes(from);
    const isDone = FORWARD_DONE.includes(to);
    if (wasDone && !isDone) this.pendingDelta += 1;
    if (!wasDone && isDone) this.pendingDelta -= 1;
  }

  protected async atoms(indexes: readonly number[]): Promise<AtomRow[]> {
    const missing = indexes.filter((i) => !this.atomCache.has(i));
    if (missing.length > 0) for (const a of await this.tx.getAtoms(this.run.id, missing)) this.atomCache.set(a.index, a);
    return indexes.map((i) => this.atomCache.get(i)).filter((a): a is AtomRow => a !== undefined);
  }

  /** A conditional write of a non-claimed atom (its state is expected; the run lock makes misses rare). */
  protected async set(
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
  protected async setAll(atoms: readonly AtomRow[], to: AtomState, patch: Omit<AtomUpdate['patch'], 'state'> = {}): Promise<void> {
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

  protected async inputValue(src: InputSource): Promise<JsonValue | undefined> {
    const idx = src.from === 'atom' ? [src.atom] : [];
    const rows = await this.atoms(idx);
    return resolveInput(src, this.graph, this.run.args, new Map(rows.map((r) => [r.index, r.result])));
  }

  /** The fenced write for a claim: epoch and state must still be the claim's. */
  protected async fencedWrite(
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
  protected async missReason(claim: ClaimedAtom): Promise<'fenced' | 'revert'> {
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
  protected async finishRun(status: RunStatus, patch: { result?: JsonValue; failure?: FailureRecord | null }): Promise<void> {
    const from = this.runFrom(status);
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

  /** Cancels the run: nothing new starts; running atoms finish (their engines abort them) and record only. */
  async cancel(reason: string): Promise<boolean> {
    if (isTerminalRun(this.status())) return false;
    await this.finishRun(RunStatus.CANCELLED, { failure: { type: 'Cancelled', message: reason } });
    return true;
  }

  /**
   * The status the run row leaves when it moves to `to` in this transaction. A PENDING run
   * goes straight to CANCELLED or SUPERSEDED; anything else makes it RUNNING first (the
   * `run.running` event {@link flush} writes), so that is the state the move starts from.
   */
  protected runFrom(to: RunStatus): RunStatus {
    const from = this.status();
    return from === RunStatus.PENDING && !RUN_TRANSITIONS.PENDING.includes(to) ? RunStatus.RUNNING : from;
  }

  /** Writes the run row and queues the events: call once after all completions of this run. */
  async flush(): Promise<void> {
    const run = this.tx.run(this.run.id);
    const patch: Parameters<RunTx['updateRun']>[1] = {};
    if (this.pendingDelta !== 0) patch.pendingAtomsDelta = this.pendingDelta;
    if (this.revertDelta !== 0) patch.revertPendingDelta = this.revertDelta;
    let status = this.runPatchStatus;
    // the first transition of a run also moves it PENDING → RUNNING, unless it ends the run
    // straight from PENDING (a cancel or supersede: the row never was RUNNING)
    if (run.status === RunStatus.PENDING && (status === null || !RUN_TRANSITIONS.PENDING.includes(status))) {
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
export function assertTransition(from: AtomState, to: AtomState, name: string): void {
  if (!atomTransitionAllowed(from, to)) throw new StokerError('STOKER_INTERNAL_INVARIANT', `atom ${name} may not move ${from} → ${to}`);
}

export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
