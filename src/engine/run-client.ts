/**
 * The run client: starts, cancels, signals, lists and waits for runs, without being a
 * worker. The CLI and the API use it on its own; every engine has one (`engine.client`) and
 * delegates its own `startRun`, `cancel`, `signal` and `waitForRun` to it.
 *
 * Runs start from a registered flow (by name and version), or from a graph built at run
 * time (`startGraph`, src/flow/build-graph.ts) whose atoms name the step types that execute
 * them. Either way the graph is stored with the run, by content hash.
 *
 * @example
 * ```ts
 * const client = new RunClient({ store, flows });
 * const { run } = await client.startRun('order', { sku: 'kettle' }, { key: 'order-1001' });
 * const done = await client.waitForRun(run.id, { timeoutMs: 60_000 });
 * ```
 */
import { checkJson, storableText, unstorableText } from '../core/canonical-json.js';
import { systemClock, systemRng, type Clock, type Rng, type TimerHandle } from '../core/clock.js';
import { systemHostProcess, type HostProcess } from '../core/host-process.js';
import { randomId, type IdGenerator } from '../core/ids.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import { ConflictError, NotFoundError, StokerError, ValidationError } from '../errors.js';
import { checkGraph } from '../flow/build-graph.js';
import type { FlowGraph } from '../flow/graph.js';
import { NAME_RULE, isValidName, quoteName } from '../flow/names.js';
import { graphDigest } from '../store/graphs.js';
import { isTerminalRun } from '../store/states.js';
import type { NewRun, RunFilter, RunRow, StartResult, Store } from '../store/store.js';
import { lockSet } from './committer.js';
import type { WaitRequest } from './failure.js';
import { RunCache, type FlowLookup } from './run-cache.js';
import { RunTransition, emptyResult } from './transitions.js';
import { WakeHub } from './wake-hub.js';

/** Size limits of what a client sends (bytes): run arguments, signal payloads. */
export const RUN_LIMITS = Object.freeze({ maxArgsBytes: 64 * 1024 * 16, maxPayloadBytes: 256 * 1024 });

/** How to raise each limit, named in `STOKER_INPUT_TOO_LARGE` messages (docs/errors.md). */
export const LIMIT_OPTIONS = Object.freeze({
  args: 'maxArgsBytes (stoker run/engine: --max-args-bytes or STOKER_MAX_ARGS_BYTES)',
  results: 'maxResultBytes (stoker run/engine/signal: --max-result-bytes or STOKER_MAX_RESULT_BYTES)',
});

/** Runs per `startRuns` call: one statement's worth of parameters, and a bounded transaction. */
const MAX_BULK_START = 10_000;

/**
 * How long after a relayed start the store's own wake-up follows it, where that wake-up is
 * slow (`Wakeups.deferInStarts`, MySQL/MariaDB; docs/amqp.md, "Wake-ups"). Long enough for
 * the engine the relay woke to have claimed (2–4 ms here): sent at once, the store's scan of
 * the process list and its `KILL QUERY`s ran beside that claim and made it slower (idle
 * starts on MariaDB with AMQP, three pairs taking turns: medians 8.2, 10.4, 6.6 ms against
 * 6.4, 8.4, 5.5 without it). Starts within it share one wake-up.
 */
export const STORE_FOLLOW_UP_MS = 20;

export interface RunClientOptions {
  store: Store;
  /** the registered flows runs may be started from (none: only `startGraph`) */
  flows?: FlowLookup;
  /** shared with this process's engines: they are woken at once, and cancels reach their atoms */
  wakeHub?: WakeHub;
  clock?: Clock;
  rng?: Rng;
  ids?: IdGenerator;
  /** largest run arguments accepted (bytes; default 1 MiB) */
  maxArgsBytes?: number;
  /** largest signal payload accepted (bytes; default 256 KiB) */
  maxPayloadBytes?: number;
  /** recorded as the `engineId` of the events this client writes (an engine passes its own id) */
  actor?: () => string | null;
  /** what `waitForRun` keeps alive while it waits (default: this Node process) */
  hostProcess?: HostProcess;
}

export interface StartRunOptions {
  key?: string;
  supersede?: boolean;
  version?: string;
}

export class RunClient {
  readonly store: Store;
  private readonly flows: FlowLookup | null;
  private readonly hub: WakeHub;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly ids: IdGenerator;
  private readonly limits: { maxArgsBytes: number; maxPayloadBytes: number };
  private readonly actor: () => string | null;
  private readonly host: HostProcess;
  /** the store's wake-up that follows relayed starts: its timer while it waits, then the call */
  private followUp: { timer: TimerHandle | null; sent: Promise<void> | null } = { timer: null, sent: null };

  constructor(options: RunClientOptions) {
    this.store = options.store;
    this.flows = options.flows ?? null;
    this.hub = options.wakeHub ?? new WakeHub();
    this.clock = options.clock ?? systemClock;
    this.rng = options.rng ?? systemRng;
    this.ids = options.ids ?? randomId;
    this.host = options.hostProcess ?? systemHostProcess;
    this.limits = {
      maxArgsBytes: options.maxArgsBytes ?? RUN_LIMITS.maxArgsBytes,
      maxPayloadBytes: options.maxPayloadBytes ?? RUN_LIMITS.maxPayloadBytes,
    };
    this.actor = options.actor ?? (() => null);
  }

  /** Starts a run of a registered flow (protocol 1). Idempotent by `key`; with `supersede`, replaces the active run of that key. */
  async startRun(flow: string, args: JsonObject = {}, options: StartRunOptions = {}): Promise<StartResult> {
    const run = this.prepareFlowRun(flow, args, options.version, options.key ?? null);
    if (options.supersede) run.supersede = true;
    return this.start(run);
  }

  /**
   * Starts a run of a graph built at run time (buildGraph): its atoms are executed by the
   * step types they name, on any engine that has them registered. Idempotent by `key` as
   * {@link startRun}; `supersede` replaces the active run of that key (a newer stack
   * action wins over an older one, protocol 7).
   */
  async startGraph(graph: FlowGraph, args: JsonObject = {}, options: Omit<StartRunOptions, 'version'> = {}): Promise<StartResult> {
    checkGraph(graph);
    const run = this.newRun(graph, args, options.key ?? null);
    if (options.supersede) run.supersede = true;
    return this.start(run);
  }

  /**
   * Does ahead of time what {@link startGraph} computes first for a graph (its checks, its
   * JSON text and content hash, kept with the graph object), for a caller that can do it
   * while it waits on the database: a stack action of 10,000 resources hashes a 5 MB graph.
   */
  prepareGraph(graph: FlowGraph): void {
    graphDigest(checkGraph(graph));
  }

  private async start(run: NewRun): Promise<StartResult> {
    // With a relay, its message is the fast wake-up; where the store's own would delay it
    // (Wakeups.deferInStarts), the store's follows it instead (docs/amqp.md, "Wake-ups").
    const wakeups = this.store.wakeups;
    const relayFirst = run.wakeup === undefined && wakeups?.deferInStarts === true && this.hub.relayed;
    if (relayFirst) run.wakeup = false;
    // There (MySQL/MariaDB) the relay's message goes out as soon as the run's rows are
    // written, naming the run: the hearers' claims wait for the commit it overlaps.
    let announced = false;
    const options = relayFirst ? { onInserted: () => (announced = this.hub.announceStarting(run.id)) } : undefined;
    const res = await this.store.startRun(run, options);
    if (!res.created) return res;
    if (announced) this.hub.wake();
    else this.hub.announce();
    if (relayFirst && run.graph.atoms.some((a) => a.predecessors.length === 0)) this.followWithStoreWakeup();
    return res;
  }

  /**
   * Wakes the store's listeners {@link STORE_FOLLOW_UP_MS} after a relayed start (at most one
   * call waiting at a time). A hint: a lost one costs the poll interval of engines without
   * the relay. {@link flush} sends a waiting one at once.
   */
  private followWithStoreWakeup(): void {
    if (this.followUp.timer) return;
    this.followUp.timer = this.clock.setTimer(STORE_FOLLOW_UP_MS, () => this.sendFollowUp());
  }

  private sendFollowUp(): void {
    this.followUp.timer = null;
    const sent = (this.store.wakeups?.notify() ?? Promise.resolve()).catch(() => undefined);
    this.followUp.sent = sent;
    void sent.then(() => {
      if (this.followUp.sent === sent) this.followUp.sent = null;
    });
  }

  /**
   * Sends the store's wake-up that a relayed start left waiting, if any, and waits for it:
   * call it before the store closes (the runtime and engines do, when they stop), so that
   * engines without the relay hear of the last starts at once rather than at their poll.
   */
  async flush(): Promise<void> {
    if (this.followUp.timer) {
      this.followUp.timer.cancel();
      this.sendFollowUp();
    }
    await this.followUp.sent;
  }

  /**
   * Starts many runs of one flow at once, without keys: all of them or none, in one
   * statement on PostgreSQL and one transaction elsewhere. For bulk producers (imports,
   * fan-out from another system); `startRun` remains the call for keyed, idempotent starts.
   */
  async startRuns(flow: string, argsList: readonly JsonObject[], options: { version?: string } = {}): Promise<RunRow[]> {
    if (argsList.length > MAX_BULK_START) {
      throw new ValidationError(
        'STOKER_CONFIG_INVALID',
        `startRuns takes at most ${MAX_BULK_START} runs at a time, got ${argsList.length}: split the list`,
      );
    }
    const runs = argsList.map((args) => this.prepareFlowRun(flow, args, options.version, null));
    if (runs.length === 0) return [];
    const rows = await this.store.startRuns(runs);
    this.hub.announce();
    return rows;
  }

  /** The run a parked atom starts as its child (a registered flow, or a graph built at run time). */
  prepareChild(wait: Extract<WaitRequest, { kind: 'child' }>, parent: { runId: string; atom: number }): NewRun {
    if (wait.graph !== undefined) return this.newRun(checkGraph(wait.graph), wait.args, null, parent);
    return this.prepareFlowRun(wait.flow, wait.args, wait.version, null, parent);
  }

  private prepareFlowRun(
    flowName: string,
    args: JsonObject,
    version: string | undefined,
    key: string | null,
    parent?: { runId: string; atom: number },
  ): NewRun {
    if (!this.flows) {
      throw new NotFoundError('STOKER_FLOW_NOT_FOUND', `no flows are registered with this client: cannot start flow ${flowName}`, {
        details: { flow: flowName },
      });
    }
    const flow = this.flows.get(flowName, version);
    return this.newRun(flow.graph, args, key, parent);
  }

  private newRun(graph: FlowGraph, args: JsonObject, key: string | null, parent?: { runId: string; atom: number }): NewRun {
    const name = graph.flow;
    checkJson(args, `arguments of flow ${name}`, { maxBytes: this.limits.maxArgsBytes, maxDepth: 64, raise: LIMIT_OPTIONS.args });
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new ValidationError('STOKER_FLOW_INVALID', `arguments of flow ${name} must be a JSON object`);
    }
    const missing = graph.arguments.filter((a) => !(a in args));
    if (missing.length > 0) {
      throw new ValidationError(
        'STOKER_RUN_MISSING_ARGUMENT',
        `flow ${name} needs argument${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
        {
          details: { flow: name, missing },
        },
      );
    }
    if (key !== null && (key.length === 0 || key.length > 255)) {
      throw new ValidationError('STOKER_CONFIG_INVALID', `a run key must be 1 to 255 characters long`);
    }
    const badKey = key === null ? null : unstorableText(key);
    if (badKey !== null)
      throw new ValidationError('STOKER_INPUT_UNSTORABLE_TEXT', `the run key has ${badKey}, which not every database can store`);
    return {
      id: this.ids(),
      flow: graph.flow,
      version: graph.version,
      key,
      args,
      graph,
      parentRunId: parent?.runId ?? null,
      parentAtom: parent?.atom ?? null,
    };
  }

  /** Cancels a run: no new atoms start; in-flight ones see `ctx.signal` aborted. Child runs are cancelled too. */
  async cancel(runId: string, givenReason = 'cancelled by request'): Promise<RunRow> {
    const reason = storableText(givenReason);
    const row = await this.store.getRun(runId);
    if (!row) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
    if (isTerminalRun(row.status)) {
      throw new ConflictError('STOKER_RUN_NOT_ACTIVE', `run ${runId} already ended ${row.status}`, {
        details: { runId, status: row.status },
      });
    }
    const ctx = await new RunCache(this.store, this.flows).context(runId, row);
    const deps = {
      engineId: this.actor(),
      rng: this.rng,
    };
    await this.store.runTransaction(lockSet(ctx), async (tx) => {
      const result = emptyResult();
      const t = new RunTransition(tx, ctx, deps, result, 0);
      await t.cancel(reason);
      await t.flush();
      await tx.insertEvents(result.events);
    });
    this.hub.runCancelled(runId, reason);
    for (const child of await this.store.listRuns({ parentRunId: runId, status: ['PENDING', 'RUNNING', 'REVERTING'] })) {
      await this.cancel(child.id, `parent run ${runId} cancelled`).catch(() => undefined);
    }
    this.hub.runEnded(runId);
    return (await this.store.getRun(runId))!;
  }

  /** Sends a named signal with a JSON payload to a run (stored; wakes atoms waiting for it). */
  async signal(runId: string, name: string, payload: JsonValue = null): Promise<number> {
    if (!isValidName(name)) {
      throw new ValidationError('STOKER_CONFIG_INVALID', `signal name ${quoteName(name)} must be ${NAME_RULE}`);
    }
    checkJson(payload, `payload of signal ${name}`, { maxBytes: this.limits.maxPayloadBytes, maxDepth: 64, raise: LIMIT_OPTIONS.results });
    const woke = await this.store.sendSignal(runId, name, payload);
    if (woke > 0) this.hub.announce();
    return woke;
  }

  getRun(runId: string): Promise<RunRow | null> {
    return this.store.getRun(runId);
  }

  listRuns(filter?: RunFilter): Promise<RunRow[]> {
    return this.store.listRuns(filter);
  }

  /**
   * Resolves when the run has reached a terminal status: at once when an engine of this
   * process ends it, else at the next look (every `pollMs`, default 250). Rejects with
   * `STOKER_RUN_WAIT_TIMEOUT` after `timeoutMs` (the run goes on). Keeps the Node process
   * alive while it waits: engines' timers do not, so a script awaiting a run that sleeps or
   * backs off would otherwise exit (code 13, unsettled top-level await; docs/guide.md).
   */
  async waitForRun(runId: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<RunRow> {
    const release = this.host.keepAlive();
    try {
      return await this.waitUntilEnded(runId, options);
    } finally {
      release();
    }
  }

  private async waitUntilEnded(runId: string, options: { timeoutMs?: number; pollMs?: number }): Promise<RunRow> {
    const deadline = this.clock.monotonicMs() + (options.timeoutMs ?? Number.POSITIVE_INFINITY);
    for (;;) {
      const row = await this.store.getRun(runId);
      if (!row) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
      if (isTerminalRun(row.status)) return row;
      const left = deadline - this.clock.monotonicMs();
      if (left <= 0) {
        throw new StokerError('STOKER_RUN_WAIT_TIMEOUT', `run ${runId} is still ${row.status} after ${options.timeoutMs} ms`, {
          details: { runId, status: row.status, timeoutMs: options.timeoutMs ?? null },
        });
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          off();
          timer.cancel();
          resolve();
        };
        const off = this.hub.onRunEnded(runId, done);
        const timer = this.clock.setTimer(Math.min(left, options.pollMs ?? 250), done);
      });
    }
  }
}
