/**
 * Executes claimed atoms: reads what an execution needs (the run's graph, the atom's
 * inputs, the enclosing retry controller's value), finds the atom's code through the
 * engine's resolver, runs it with its context, timeout and abort signal, and turns what
 * happened into an {@link Outcome} for the committer. No transaction is open while task
 * code runs.
 */
import { checkJson } from '../core/canonical-json.js';
import type { TimerHandle } from '../core/clock.js';
import type { JsonValue } from '../core/json.js';
import { StokerError, ValidationError, isStokerError } from '../errors.js';
import type { AtomSpec, RetryControllerSpec } from '../flow/graph.js';
import type { TaskContext } from '../flow/types.js';
import type { ClaimedAtom, JournalEntry, NewRun } from '../store/store.js';
import type { EngineCore } from './engine-core.js';
import type { LazyAbort } from './in-flight.js';
import { Suspension, toFailureRecord, type WaitRequest } from './failure.js';
import type { EngineRunContext } from './run-cache.js';
import type { AtomCode } from './step-resolver.js';
import { LIMIT_OPTIONS } from './run-client.js';
import { taskContext, type Parked } from './task-context.js';
import { remoteCode } from './remote-tasks.js';
import type { Outcome, RunContext } from './transitions.js';

interface Prepared {
  run: EngineRunContext;
  spec: AtomSpec;
  inputs: { values: Record<string, JsonValue>; missing: string[] };
  controllerValue: JsonValue | null;
}

/** Builds the run a parked atom starts as its child (the run client's job: see RunClient.prepareChild); throws when it cannot. */
export type PrepareChild = (wait: Extract<WaitRequest, { kind: 'child' }>, parent: { runId: string; atom: number }) => NewRun;

export class Executor {
  constructor(
    private readonly core: EngineCore,
    private readonly prepareChild: PrepareChild,
  ) {}

  /** Executes one claimed atom; never rejects for the task's sake (a task's failure is an outcome). */
  async execute(claim: ClaimedAtom, abort: LazyAbort): Promise<Outcome> {
    try {
      return await this.executeClaim(claim, abort);
    } finally {
      // an atom that ended before its code started (a retry controller, a release, a store
      // error) is placed too: the claim loop waits for its claims to be placed
      this.core.inflight.place(claim.runId, claim.index, false);
    }
  }

  private async executeClaim(claim: ClaimedAtom, abort: LazyAbort): Promise<Outcome> {
    const core = this.core;
    let prepared: Prepared;
    try {
      // without an await when everything is held in memory (the common case: see prepare)
      const p = this.prepare(claim);
      prepared = p instanceof Promise ? await p : p;
    } catch (e) {
      // The store failed before the task started: that is not the task's failure. Hand
      // the atom back (found by the simulation: such errors used to revert whole runs).
      if (isStokerError(e) && e.code.startsWith('STOKER_STORE_')) {
        core.emitError(e);
        return { kind: 'release', delayMs: core.settings.pollMs };
      }
      throw e;
    }
    if (!core.leaseValid()) {
      // docs/reliability.md R9: never start a side effect once our lease may have run out (a resumed zombie),
      // and claim nothing more under this id: without fencing, a lease that is stale while
      // the claims still pass could make a tight claim-and-release loop.
      if (!core.fencedOut) core.fenceSelf('lease ran out before a task could start');
      return { kind: 'release', delayMs: 0 };
    }
    return this.executePrepared(claim, abort, prepared);
  }

  /**
   * Everything an execution needs from the store, loaded before the task starts. Returned
   * as it is, without a promise, when the run's graph and the atom's inputs are held in
   * memory (the next atom of a run this engine works on): each await costs a turn of the
   * microtask queue and a promise, a measurable part of a no-op atom's CPU.
   */
  private prepare(claim: ClaimedAtom): Prepared | Promise<Prepared> {
    const run = this.core.runs.cached(claim.runId);
    const spec = run?.graph.atoms[claim.index];
    if (run === undefined || spec === undefined || spec.kind === 'retry') return this.prepareAsync(claim);
    const inputs = this.core.runs.heldInputs(run, spec.inputs);
    return inputs ? { run, spec, inputs, controllerValue: null } : this.prepareAsync(claim);
  }

  private async prepareAsync(claim: ClaimedAtom): Promise<Prepared> {
    const runs = this.core.runs;
    const run = await runs.context(claim.runId, claim.run);
    const spec = run.graph.atoms[claim.index];
    if (!spec) throw new StokerError('STOKER_INTERNAL_INVARIANT', `run ${claim.runId} has no atom ${claim.index}`);
    const inputs = await runs.inputs(run, spec.inputs);
    const controllerValue = spec.kind === 'retry' ? await this.controllerValue(spec.controller!, claim.attempt, run) : null;
    return { run, spec, inputs, controllerValue };
  }

  private async executePrepared(claim: ClaimedAtom, abort: LazyAbort, { run, spec, inputs, controllerValue }: Prepared): Promise<Outcome> {
    const core = this.core;
    core.stats.executed += 1;
    if (spec.kind === 'retry') return { kind: 'success', result: controllerValue, journal: [] };

    const found = core.resolver.resolve(run, spec);
    if (found.kind === 'elsewhere') {
      // Another engine (with this flow or step type registered) should run it: hand it
      // back, and look again later in case it gets registered here.
      core.runs.forgetGraph(claim.runId);
      return { kind: 'release', delayMs: core.settings.pollMs };
    }
    if (found.kind === 'missing') {
      return claim.state === 'REVERTING'
        ? { kind: 'revertFailed', failure: found.failure }
        : { kind: 'failure', failure: found.failure, journal: claim.journal };
    }
    const remote = core.remote && remoteCode(core.remote, core.remoteWaits, core.settings.remoteTasks, found.code, run, spec, claim);
    const code = remote || found.code;
    // a remote atom frees its local slot (docs/amqp.md, "Performance"): claim more at once
    if (core.inflight.place(claim.runId, claim.index, remote !== null)) core.wake();
    if (remote || !core.remote) return this.runCode(claim, abort, run, spec, inputs, code);
    // a claim sized for expected remote atoms may have brought local ones beyond the
    // engine's `concurrency`: they wait for a local slot (docs/amqp.md, "Performance")
    await core.inflight.acquireLocal(core.settings.concurrency);
    try {
      return await this.runCode(claim, abort, run, spec, inputs, code);
    } finally {
      core.inflight.releaseLocal();
    }
  }

  private async runCode(
    claim: ClaimedAtom,
    abort: LazyAbort,
    run: Prepared['run'],
    spec: Prepared['spec'],
    inputs: Prepared['inputs'],
    code: AtomCode,
  ): Promise<Outcome> {
    const core = this.core;
    const journal = claim.journal.map((j) => ({ ...j }));
    const parked: Parked = { suspension: null };
    let ctx: TaskContext;
    try {
      const scope = this.scopeValue(run, claim.index);
      const made = taskContext(core.store, claim, spec.name, journal, abort, scope instanceof Promise ? await scope : scope, parked);
      ctx = made instanceof Promise ? await made : made;
    } catch (e) {
      if (isStokerError(e) && e.code.startsWith('STOKER_STORE_')) {
        core.emitError(e);
        return { kind: 'release', delayMs: core.settings.pollMs };
      }
      throw e;
    }
    core.faultPoint('before-execute', { runId: claim.runId, atom: claim.index });

    if (claim.state === 'REVERTING') {
      try {
        await this.withTimeout(() => code.revert!(inputs.values, ctx), spec.timeoutMs, abort);
        return { kind: 'reverted' };
      } catch (e) {
        return { kind: 'revertFailed', failure: toFailureRecord(e) };
      }
    }
    if (inputs.missing.length > 0) {
      return {
        kind: 'failure',
        failure: { type: 'MissingInput', message: `atom ${spec.name} has no value for ${inputs.missing.join(', ')}`, retryable: false },
        journal,
      };
    }
    try {
      const value = await this.withTimeout(() => code.execute(inputs.values, ctx), spec.timeoutMs, abort);
      // A wait parks the atom even if the task caught the suspension and carried on.
      if (parked.suspension) return this.suspended(claim, parked.suspension, journal);
      const result: JsonValue = value === undefined ? null : (value as JsonValue);
      try {
        checkJson(result, `result of ${spec.name}`, { maxBytes: core.settings.maxResultBytes, maxDepth: 64, raise: LIMIT_OPTIONS.results });
      } catch (e) {
        return { kind: 'failure', failure: { ...toFailureRecord(e), retryable: false }, journal };
      }
      core.faultPoint('after-side-effect-before-result', { runId: claim.runId, atom: claim.index });
      return { kind: 'success', result, journal };
    } catch (e) {
      const s = parked.suspension ?? (e instanceof Suspension ? e : null);
      if (s) return this.suspended(claim, s, journal);
      return { kind: 'failure', failure: toFailureRecord(e), journal };
    }
  }

  /**
   * The outcome of a parked execution. A child run is built here, before the commit: one
   * this engine cannot build (no flow of that name and version, missing or bad arguments)
   * fails the atom with that error, not retried. Built inside the commit it raised there and
   * rolled back the completions of every other run in the batch, again and again (docs/reliability.md).
   */
  private suspended(claim: ClaimedAtom, s: Suspension, journal: JournalEntry[]): Outcome {
    const kept = journal.slice(0, s.seq);
    if (s.wait.kind !== 'child') return { kind: 'suspend', wait: s.wait, journal: kept };
    try {
      const child = this.prepareChild(s.wait, { runId: claim.runId, atom: claim.index });
      return { kind: 'suspend', wait: s.wait, journal: kept, child };
    } catch (e) {
      return { kind: 'failure', failure: { ...toFailureRecord(e), retryable: false }, journal: kept };
    }
  }

  private async withTimeout<T>(fn: () => T | Promise<T>, timeoutMs: number | undefined, abort: LazyAbort): Promise<T> {
    const work = Promise.resolve().then(fn);
    if (timeoutMs === undefined && !abort.aborted) {
      // still stop waiting when the engine aborts (cancel, lease loss); one promise, not a
      // race of two (this runs once per atom)
      return new Promise<T>((resolve, reject) => {
        work.then(resolve, reject);
        abort.onAbort((reason) => reject(abortError(reason)));
      });
    }
    let timer: TimerHandle | null = null;
    const timeout = new Promise<never>((_, reject) => {
      if (timeoutMs === undefined) return;
      timer = this.core.clock.setTimer(timeoutMs, () => {
        const err = new StokerError('STOKER_TASK_TIMEOUT', `task ran longer than ${timeoutMs} ms`);
        (err as StokerError & { retryable: boolean }).retryable = true;
        reject(err);
      });
    });
    try {
      return await Promise.race([work, timeout, abortPromise(abort)]);
    } finally {
      (timer as TimerHandle | null)?.cancel();
    }
  }

  /** What a retry controller provides on its n-th attempt: the for-each item, or the attempt number. */
  private async controllerValue(ctl: RetryControllerSpec, attempt: number, run: RunContext): Promise<JsonValue> {
    switch (ctl.kind) {
      case 'forEach': {
        if (ctl.values.length === 0) throw new ValidationError('STOKER_FLOW_INVALID', 'forEach retry controller has no values');
        return ctl.values[Math.min(attempt, ctl.values.length) - 1] ?? null;
      }
      case 'parameterizedForEach': {
        const { values } = await this.core.runs.inputs(run, { list: ctl.valuesFrom });
        const list = values.list;
        if (!Array.isArray(list) || list.length === 0) {
          throw new ValidationError('STOKER_FLOW_INVALID', 'parameterizedForEach needs a non-empty list of values');
        }
        return list[Math.min(attempt, list.length) - 1] ?? null;
      }
      default:
        return attempt;
    }
  }

  /**
   * The current value of the nearest retry controller around an atom (for-each item,
   * attempt); undefined at once, without a promise, for an atom in no controller's scope.
   */
  private scopeValue(run: RunContext, index: number): JsonValue | undefined | Promise<JsonValue | undefined> {
    const spec = run.graph.atoms[index]!;
    let scope: number | null = spec.kind === 'retry' ? (run.graph.scopes[spec.scope]?.parent ?? null) : spec.scope;
    while (scope !== null) {
      const sc = run.graph.scopes[scope]!;
      if (sc.controller !== null) {
        return this.core.runs.inputs(run, { v: { from: 'atom', atom: sc.controller } }).then((r) => r.values.v);
      }
      scope = sc.parent;
    }
    return undefined;
  }
}

function abortError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error('aborted');
}

function abortPromise(abort: LazyAbort): Promise<never> {
  return new Promise((_, reject) => abort.onAbort((reason) => reject(abortError(reason))));
}
