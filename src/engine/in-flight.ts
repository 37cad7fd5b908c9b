/**
 * The atoms this engine is executing right now, with the abort handle whose signal each task
 * sees as `ctx.signal`, and how many of them are out with remote workers. The claim loop counts
 * them to know its free slots (local and remote apart: docs/amqp.md, "Performance"); the committer removes
 * them once their outcome is recorded; cancellation, self-fencing and shutdown abort them.
 */
import { StokerError, type ErrorCode } from '../errors.js';
import type { ClaimedAtom } from '../store/store.js';

/**
 * An abort controller made on first use. Most executions end without their task reading
 * `ctx.signal`, and Node builds an `AbortSignal` (an `EventTarget`) slowly: the signal, the
 * listener the executor put on it and its race cost about 8 µs of CPU per atom, against
 * under 1 µs for this handle (measured in one process, interleaved), a few per cent of the
 * engine's CPU per atom of a linear flow of no-op tasks. The executor waits for an abort
 * through {@link onAbort}; the signal is built when the task (or a remote call) asks for
 * it, already aborted if the abort came first.
 */
export class LazyAbort {
  private controller: AbortController | null = null;
  private abortedWith: { reason: unknown } | null = null;
  private listeners: ((reason: unknown) => void)[] | null = null;

  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith.reason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.abortedWith !== null;
  }

  /** the reason given to {@link abort}, undefined before it */
  get reason(): unknown {
    return this.abortedWith?.reason;
  }

  /** the first call wins, as with an AbortController */
  abort(reason: unknown): void {
    if (this.abortedWith) return;
    this.abortedWith = { reason };
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = null;
    for (const l of listeners ?? []) l(reason);
  }

  /** calls `fn` once with the reason when aborted (at once if it already was) */
  onAbort(fn: (reason: unknown) => void): void {
    if (this.abortedWith) fn(this.abortedWith.reason);
    else (this.listeners ??= []).push(fn);
  }
}

export interface InFlightAtom {
  claim: ClaimedAtom;
  abort: LazyAbort;
  /** handed to a remote worker (docs/amqp.md, "Performance"): holds no local slot */
  remote: boolean;
  /** the atom's code started here or went to a worker (or the atom left) */
  placed: boolean;
  /** called once it is placed (those waiting in {@link InFlight.placed}); null: nobody waits */
  onPlaced: (() => void)[] | null;
  /** its placement counted in {@link InFlight.remoteShare} */
  counted: boolean;
}

/** Marks an atom placed and lets those waiting for it go on. */
function markPlaced(entry: InFlightAtom): void {
  if (entry.placed) return;
  entry.placed = true;
  const waiting = entry.onPlaced;
  entry.onPlaced = null;
  for (const go of waiting ?? []) go();
}

/** weight of the latest placement in {@link InFlight.remoteShare} */
const SHARE_WEIGHT = 0.1;

export class InFlight {
  private readonly atoms = new Map<string, InFlightAtom>();
  private remoteCount = 0;
  /**
   * The share of the atoms placed lately that went to remote workers (a moving average, 0
   * to 1): the claim loop claims that share of its free remote slots on top of its local
   * ones (docs/amqp.md, "Performance").
   */
  remoteShare = 0;
  private localRunning = 0;
  private readonly localWaiting: (() => void)[] = [];

  static key(runId: string, index: number): string {
    return `${runId}/${index}`;
  }

  get size(): number {
    return this.atoms.size;
  }

  /** atoms out with remote workers */
  get remote(): number {
    return this.remoteCount;
  }

  /** atoms executing in this process (they hold the engine's `concurrency` slots) */
  get local(): number {
    return this.atoms.size - this.remoteCount;
  }

  isRemote(runId: string, index: number): boolean {
    return this.atoms.get(InFlight.key(runId, index))?.remote === true;
  }

  /**
   * The atom's code starts: here, or in a remote worker, and then its slot is free for
   * local work (the claim loop counts it against `remoteConcurrency` instead). Returns
   * true when that freed a local slot.
   */
  place(runId: string, index: number, remote: boolean): boolean {
    const entry = this.atoms.get(InFlight.key(runId, index));
    if (!entry) return false;
    markPlaced(entry);
    if (!entry.counted) {
      entry.counted = true;
      this.remoteShare = this.remoteShare * (1 - SHARE_WEIGHT) + (remote ? SHARE_WEIGHT : 0);
    }
    if (!remote || entry.remote) return false;
    entry.remote = true;
    this.remoteCount += 1;
    return true;
  }

  /**
   * Waits for one of the `limit` local slots. A claim sized for expected remote atoms may
   * bring local ones beyond `concurrency`: they wait here, claimed, until a slot frees.
   */
  async acquireLocal(limit: number): Promise<void> {
    if (this.localRunning < limit) {
      this.localRunning += 1;
      return;
    }
    await new Promise<void>((resolve) => this.localWaiting.push(resolve));
  }

  /** gives a local slot back: to the first atom waiting for one, if any */
  releaseLocal(): void {
    const next = this.localWaiting.shift();
    if (next) next();
    else this.localRunning -= 1;
  }

  /**
   * Resolves once each of these atoms has been placed ({@link place}) or has left. The
   * promise of each is made here, for those not yet placed: most atoms are never waited for
   * (only an engine with remote workers waits), and a promise per atom is CPU per atom.
   */
  async placed(claims: readonly ClaimedAtom[]): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const c of claims) {
      const entry = this.atoms.get(InFlight.key(c.runId, c.index));
      if (entry && !entry.placed) waits.push(new Promise<void>((resolve) => (entry.onPlaced ??= []).push(resolve)));
    }
    await Promise.all(waits);
  }

  add(claim: ClaimedAtom): InFlightAtom {
    const key = InFlight.key(claim.runId, claim.index);
    this.delete(claim.runId, claim.index);
    const entry: InFlightAtom = { claim, abort: new LazyAbort(), remote: false, placed: false, onPlaced: null, counted: false };
    this.atoms.set(key, entry);
    return entry;
  }

  delete(runId: string, index: number): void {
    const key = InFlight.key(runId, index);
    const entry = this.atoms.get(key);
    if (!entry) return;
    if (entry.remote) this.remoteCount -= 1;
    markPlaced(entry);
    this.atoms.delete(key);
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
