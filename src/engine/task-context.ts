/**
 * The `ctx` a task receives, with its durable waits (`sleep`, `waitForSignal`,
 * `runChild`). A wait that is not yet satisfied throws a {@link Suspension}: the engine
 * parks the atom (WAITING, holding no claim and no slot) and, once the wait is over and
 * the atom is claimed again, executes the task again from the start. Waits already
 * satisfied then return at once from the atom's journal, in the order they were made, so
 * code between them must be idempotent (the task's contract, docs/guide).
 */
import type { JsonValue } from '../core/json.js';
import { ValidationError } from '../errors.js';
import type { FlowGraph } from '../flow/graph.js';
import { NAME_RULE, isValidName, quoteName } from '../flow/names.js';
import type { FailureRecord, TaskContext } from '../flow/types.js';
import { RunStatus } from '../store/states.js';
import type { ClaimedAtom, JournalEntry, RunQueries, SignalRow } from '../store/store.js';
import { ChildRunFailedError, Suspension, type WaitRequest } from './failure.js';

/** Where a parked execution leaves the wait that parked it (set by the first wait not yet satisfied). */
export interface Parked {
  suspension: Suspension | null;
}

/**
 * Builds the context of one execution. `journal` is the atom's journal (a copy the caller
 * keeps: new entries are recorded with the outcome); `retryValue` the enclosing retry
 * controller's value. A promise only when the wait that parked the atom must be read from
 * the store first; otherwise (a first execution) the context itself, without a promise.
 */
export function taskContext(
  store: RunQueries,
  claim: ClaimedAtom,
  atomName: string,
  journal: JournalEntry[],
  abort: { readonly signal: AbortSignal },
  retryValue: JsonValue | undefined,
  parked: Parked,
): TaskContext | Promise<TaskContext> {
  const waits = new SignalCache(store, claim.runId);
  const make = (): TaskContext => contextOf({ claim, atomName, journal, abort, retryValue, parked }, waits);
  // The wait that parked this atom (the last entry, not done) is satisfied now that it was claimed again.
  const last = journal.at(-1);
  return !last || last.done ? make() : satisfy(store, journal, last, waits).then(make);
}

/** What the context of one execution is built from (taskContext's parameters). */
interface Execution {
  claim: ClaimedAtom;
  atomName: string;
  journal: JournalEntry[];
  abort: { readonly signal: AbortSignal };
  retryValue: JsonValue | undefined;
  parked: Parked;
}

/** The run's signals, read once per execution when a wait needs them. */
class SignalCache {
  private signals: SignalRow[] | null = null;

  constructor(
    private readonly store: RunQueries,
    private readonly runId: string,
  ) {}

  async load(): Promise<SignalRow[]> {
    return (this.signals ??= await this.store.getSignals(this.runId));
  }
}

/** Records the value of the wait that parked the atom (`last`, not done) in the journal. */
async function satisfy(store: RunQueries, journal: JournalEntry[], last: JournalEntry, waits: SignalCache): Promise<void> {
  if (last.kind === 'signal') {
    const nth = journal.filter((j) => j.kind === 'signal' && j.ref === last.ref).length - 1;
    last.value = (await waits.load()).filter((s) => s.name === last.ref)[nth]?.payload ?? null;
  } else if (last.kind === 'child' && last.ref) {
    const child = await store.getRun(last.ref);
    last.value = child
      ? { status: child.status, result: child.result, failure: child.failure as unknown as JsonValue }
      : { status: 'MISSING', result: null, failure: null };
  }
  last.done = true;
}

function contextOf(c: Execution, waits: SignalCache): TaskContext {
  const { claim, atomName, journal, abort, retryValue, parked } = c;
  const park = (s: Suspension): never => {
    parked.suspension ??= s;
    throw s;
  };
  const loadSignals = (): Promise<SignalRow[]> => waits.load();
  let seq = 0;
  return {
    runId: claim.runId,
    atomName,
    idempotencyKey: `${claim.runId}/${atomName}/${claim.attempt}`,
    fencingToken: `${claim.runId}/${atomName}/${claim.epoch}.${claim.attempt}`,
    attempt: claim.attempt,
    execution: claim.execution,
    // built on first use (LazyAbort in in-flight.ts)
    get signal() {
      return abort.signal;
    },
    retryValue,
    failure: claim.state === 'REVERTING' ? (claim.failure ?? undefined) : undefined,
    async sleep(ms: number): Promise<void> {
      if (!Number.isFinite(ms) || ms < 0)
        throw new ValidationError('STOKER_CONFIG_INVALID', `ctx.sleep needs a non-negative number of ms, got ${ms}`);
      const k = seq++;
      if (journal[k]) return;
      return park(new Suspension(k, { kind: 'sleep', ms }));
    },
    async waitForSignal(name: string): Promise<JsonValue> {
      // no signal with another name can ever be sent (RunClient.signal): waiting for one would park the atom for ever
      if (!isValidName(name)) {
        const e = new ValidationError(
          'STOKER_CONFIG_INVALID',
          `ctx.waitForSignal needs a signal name that is ${NAME_RULE}; got ${quoteName(name)}`,
          {
            details: { name: typeof name === 'string' ? (name as string).slice(0, 200) : null },
          },
        );
        throw Object.assign(e, { retryable: false });
      }
      const k = seq++;
      const e = journal[k];
      if (e) return e.value ?? null;
      const consumed = journal.filter((j) => j.kind === 'signal' && j.ref === name).length;
      const available = (await loadSignals()).filter((s) => s.name === name)[consumed];
      if (available) {
        journal.push({ seq: k, kind: 'signal', ref: name, done: true, value: available.payload });
        return available.payload;
      }
      return park(new Suspension(k, { kind: 'signal', name }));
    },
    async runChild(flow: string | FlowGraph, args: Record<string, JsonValue>, options?: { version?: string }): Promise<JsonValue> {
      const k = seq++;
      const e = journal[k];
      if (e) {
        const v = (e.value ?? {}) as { status?: string; result?: JsonValue; failure?: FailureRecord | null };
        if (v.status === RunStatus.SUCCESS) return v.result ?? null;
        throw new ChildRunFailedError(e.ref ?? '?', v.status ?? 'UNKNOWN', v.failure ?? null);
      }
      const wait: WaitRequest =
        typeof flow === 'string' ? { kind: 'child', flow, args } : { kind: 'child', flow: flow.flow, args, graph: flow };
      if (options?.version !== undefined) wait.version = options.version;
      return park(new Suspension(k, wait));
    },
  };
}
