/**
 * Remote tasks (docs/amqp.md, "Remote tasks"): the engine claims an atom as usual, and
 * instead of running the task's code it hands the execution to a {@link RemoteExecutor}
 * (RabbitMQ: a request on the task's queue, a reply from a `stoker worker`). The outcome
 * comes back here and is recorded with the same fenced write as a local one; the task's
 * timeout and abort signal apply as for a local task (an abort is forwarded to the worker).
 */
import type { JsonValue } from '../core/json.js';
import type { AtomSpec } from '../flow/graph.js';
import type { RemoteCall, RemoteOutcome } from '../flow/remote-call.js';
import type { FailureRecord, TaskContext } from '../flow/types.js';
import type { ClaimedAtom } from '../store/store.js';
import type { EngineRunContext } from './run-cache.js';
import type { AtomCode } from './step-resolver.js';

export type { RemoteCall, RemoteOutcome } from '../flow/remote-call.js';

/** Sends executions to workers; resolves with their outcome, rejects when `signal` aborts or the transport fails. */
export interface RemoteExecutor {
  call(request: RemoteCall, signal: AbortSignal): Promise<RemoteOutcome>;
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
  remoteTasks: ReadonlySet<string>,
  local: AtomCode,
  run: EngineRunContext,
  spec: AtomSpec,
  claim: ClaimedAtom,
): AtomCode | null {
  if (spec.step !== undefined || run.flow === null) return null;
  if ((local as { remote?: boolean }).remote !== true && !remoteTasks.has(spec.name)) return null;
  const flow = run.flow;
  const call = async (kind: RemoteCall['kind'], inputs: Record<string, JsonValue>, ctx: TaskContext): Promise<JsonValue> => {
    const outcome = await remote.call(
      {
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
      },
      ctx.signal,
    );
    if (!outcome.ok) throw new RemoteTaskFailure(outcome.failure);
    return outcome.result;
  };
  return {
    execute: (inputs, ctx) => call('execute', inputs, ctx),
    revert: local.revert ? (inputs, ctx) => call('revert', inputs, ctx) : undefined,
  };
}
