/**
 * Remote tasks (docs/amqp.md, "Remote tasks"): the engine claims an atom as usual, and
 * instead of running the task's code it hands the execution to a {@link RemoteExecutor}
 * (RabbitMQ: a request on the task's queue, a reply from a `stoker worker`). The outcome
 * comes back here and is recorded with the same fenced write as a local one; the task's
 * timeout and abort signal apply as for a local task (an abort is forwarded to the worker).
 */
import type { JsonValue } from '../core/json.js';
import type { AtomSpec } from '../flow/graph.js';
import { remoteQueueOf, type RemoteCall, type RemoteOutcome } from '../flow/remote-call.js';
import type { FailureRecord, TaskContext } from '../flow/types.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { EngineReport, EventInput } from '../store/types.js';
import type { ClaimedAtom, Store } from '../store/store.js';
import type { EngineRunContext } from './run-cache.js';
import type { AtomCode } from './step-resolver.js';

export type { RemoteCall, RemoteOutcome } from '../flow/remote-call.js';

/** Sends executions to workers; resolves with their outcome, rejects when `signal` aborts or the transport fails. */
export interface RemoteExecutor {
  /**
   * `queue`: the task's queue (its own name, or the one it shares: `remote: { queue }`);
   * `onStarted` is called once, when a worker first says it works on the call
   */
  call(request: RemoteCall, signal: AbortSignal, how: { queue: string; onStarted?: (() => void) | undefined }): Promise<RemoteOutcome>;
  /** the broker's name of a task's queue (for events and listings) */
  queueFor?(queue: string): string;
}

/** How long a remote call waits unstarted before the engine records `atom.queued_remotely` (docs/amqp.md). */
export const REMOTE_WAIT_REPORT_MS = 1000;

interface RemoteWait {
  runId: string;
  atom: number;
  epoch: number;
  task: string;
  queue: string | null;
  /** monotonic ms when the call was sent */
  sentAt: number;
  started: boolean;
  /** `atom.queued_remotely` was recorded for it */
  reported: boolean;
}

/**
 * Remote calls a worker has not started yet (docs/amqp.md, "No worker for a task"). Nothing
 * is written for a call a worker starts within {@link REMOTE_WAIT_REPORT_MS}: the hot path
 * stays free of extra writes. A call left waiting longer gets one `atom.queued_remotely`
 * event (task, queue, waited so far), and, when a worker finally starts it,
 * `atom.remote_started` (waited in all); the events found in one check share one INSERT.
 * The count and the oldest wait go with the engine's lease renewal ({@link summary}).
 */
export class RemoteWaits {
  private readonly waits = new Set<RemoteWait>();
  private readonly notes: EventInput[] = [];
  private timer: TimerHandle | null = null;
  private stopped = false;

  constructor(
    private readonly core: { readonly clock: Clock; readonly store: Store; readonly id: string; emitError(e: unknown): void },
    private readonly reportMs = REMOTE_WAIT_REPORT_MS,
  ) {}

  /** Tracks one call; returns what to call when a worker starts it and when it ends. */
  track(call: RemoteCall, queue: string | null): { started: () => void; ended: () => void } {
    const w: RemoteWait = {
      runId: call.runId,
      atom: call.atom,
      epoch: call.epoch,
      task: call.task,
      queue,
      sentAt: this.core.clock.monotonicMs(),
      started: false,
      reported: false,
    };
    this.waits.add(w);
    this.arm();
    const started = (): void => {
      if (w.started) return;
      w.started = true;
      if (w.reported) this.note(w, 'atom.remote_started');
    };
    return {
      started,
      ended: () => {
        started(); // a reply whose started notice was lost: the worker ran it all the same
        this.waits.delete(w);
      },
    };
  }

  /** calls no worker has started, and how long the oldest has waited (ms) */
  summary(): EngineReport {
    const now = this.core.clock.monotonicMs();
    let queued = 0;
    let oldest: number | null = null;
    for (const w of this.waits) {
      if (w.started) continue;
      queued += 1;
      oldest = Math.max(oldest ?? 0, now - w.sentAt);
    }
    return { remoteQueued: queued, remoteOldestMs: oldest };
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
  }

  private note(w: RemoteWait, kind: 'atom.queued_remotely' | 'atom.remote_started'): void {
    const waitedMs = Math.round(this.core.clock.monotonicMs() - w.sentAt);
    this.notes.push({
      runId: w.runId,
      atom: w.atom,
      kind,
      engineId: this.core.id,
      // an observation, not a write made for the claim (written outside its fenced
      // transaction, possibly after its outcome): the claim's epoch goes in the data
      epoch: null,
      data: { task: w.task, queue: w.queue, epoch: w.epoch, waitedMs },
    });
    this.arm();
  }

  /** one check every half threshold while calls wait or notes are unwritten */
  private arm(): void {
    if (this.stopped || this.timer || (this.waits.size === 0 && this.notes.length === 0)) return;
    this.timer = this.core.clock.setTimer(Math.max(10, this.reportMs / 2), () => {
      this.timer = null;
      this.check();
      this.arm();
    });
  }

  private check(): void {
    const now = this.core.clock.monotonicMs();
    for (const w of this.waits) {
      if (!w.started && !w.reported && now - w.sentAt >= this.reportMs) {
        w.reported = true;
        this.note(w, 'atom.queued_remotely');
      }
    }
    if (this.notes.length === 0) return;
    const events = this.notes.splice(0);
    this.core.store.appendEvents(events).catch((e: unknown) => this.core.emitError(e));
  }
}

/** A worker's failure, rethrown in the engine so that the stored record is the worker's own. */
export class RemoteTaskFailure extends Error {
  constructor(readonly record: FailureRecord) {
    super(record.message);
    this.name = record.type;
  }
}

/**
 * The code an engine runs for a remote atom: a call to the executor, or null when the atom
 * is not remote (a step type, a task not marked `remote` and not named in `remoteTasks`).
 */
export function remoteCode(
  remote: RemoteExecutor,
  waits: RemoteWaits | null,
  remoteTasks: ReadonlySet<string>,
  local: AtomCode,
  run: EngineRunContext,
  spec: AtomSpec,
  claim: ClaimedAtom,
): AtomCode | null {
  if (spec.step !== undefined || run.flow === null) return null;
  const definition = local as { remote?: boolean; remoteQueue?: string };
  if (definition.remote !== true && !remoteTasks.has(spec.name)) return null;
  const flow = run.flow;
  const queue = remoteQueueOf({ name: spec.name, remoteQueue: definition.remoteQueue });
  const call = async (kind: RemoteCall['kind'], inputs: Record<string, JsonValue>, ctx: TaskContext): Promise<JsonValue> => {
    const request: RemoteCall = {
      kind,
      task: spec.name,
      flow: flow.name,
      version: flow.version,
      runId: claim.runId,
      atom: claim.index,
      epoch: claim.epoch,
      attempt: claim.attempt,
      execution: claim.execution,
      idempotencyKey: ctx.idempotencyKey,
      fencingToken: ctx.fencingToken,
      inputs,
      retryValue: ctx.retryValue ?? null,
      failure: ctx.failure ?? null,
      timeoutMs: spec.timeoutMs ?? null,
    };
    const wait = waits?.track(request, remote.queueFor?.(queue) ?? null);
    let outcome: RemoteOutcome;
    try {
      outcome = await remote.call(request, ctx.signal, { queue, onStarted: wait?.started });
    } finally {
      wait?.ended();
    }
    if (!outcome.ok) throw new RemoteTaskFailure(outcome.failure);
    return outcome.result;
  };
  return {
    execute: (inputs, ctx) => call('execute', inputs, ctx),
    revert: local.revert ? (inputs, ctx) => call('revert', inputs, ctx) : undefined,
  };
}
