/**
 * `Worker`: executes remote tasks (docs/amqp.md, "Remote tasks") in a process that has the
 * task code and the AMQP URL but no database URL. It consumes the durable queues of its
 * tasks (each task's own, or a queue several tasks share: `remote: { queue }`), runs each
 * request with a task context (run id, idempotency key, fencing token, attempt, execution,
 * an abort signal that fires on the engine's cancel or the task's timeout) and replies to
 * the engine that sent it, which records the outcome. Results have the same size limit as
 * in the engine. The durable waits (`sleep`, `waitForSignal`, `runChild`) need the
 * database: a remote task that calls one fails with `STOKER_REMOTE_WAIT_UNSUPPORTED`.
 *
 * @example
 * ```ts
 * const worker = await Worker.open({
 *   amqp: { url: 'amqp://guest:guest@127.0.0.1:5672/', key: process.env.STOKER_AMQP_KEY! },
 *   flows: [orderFlow],
 *   concurrency: 32,
 * });
 * …
 * await worker.stop(); // running tasks finish first (up to 30 s)
 * ```
 */
import { checkJson } from '../core/canonical-json.js';
import type { JsonValue } from '../core/json.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { toFailureRecord } from '../engine/failure.js';
import { RUN_LIMITS } from '../engine/run-client.js';
import { StokerError, ValidationError } from '../errors.js';
import { FlowRegistry } from '../flow/registry.js';
import { remoteQueueOf } from '../flow/remote-call.js';
import type { CompiledFlow, FlowDefinition, TaskContext, TaskDefinition } from '../flow/types.js';
import type { AmqpTaskConsumer } from '../transport/amqp/amqp-task-consumer.js';
import type { RemoteRequest, RemoteResult } from '../transport/amqp/remote-protocol.js';
import { openAmqp, type Amqp, type AmqpOptions } from './amqp.js';

export interface WorkerOptions {
  /** the broker, with the signing key shared with the engines (required) */
  amqp: AmqpOptions & { key: string };
  /** the flows whose remote tasks this worker executes (a registry, or flows to register) */
  flows: FlowRegistry | readonly (FlowDefinition | CompiledFlow)[];
  /**
   * task names to consume (default: every task marked `remote` in `flows`); a queue shared
   * by several tasks is consumed whole, so these must name all of its tasks or none
   */
  tasks?: readonly string[];
  /** requests executed at once, and request messages taken from each queue before they are acknowledged (default 10) */
  concurrency?: number;
  /** largest result a task may return, in bytes (default as in the engine: 256 KiB) */
  maxResultBytes?: number;
  logger?: Logger;
}

export class Worker {
  private stopped: Promise<void> | null = null;

  private constructor(
    private readonly amqp: Amqp,
    private readonly consumer: AmqpTaskConsumer,
    /** the task names this worker consumes */
    readonly tasks: readonly string[],
    /** the queues it consumes them from (names without the prefix) */
    readonly queues: readonly string[],
  ) {}

  /** counters: executed, replied (in `replyMessages` messages), undeliverable replies, cancellations, and rejected messages by reason */
  get stats(): Record<string, number> {
    return {
      ...this.consumer.stats,
      ...this.amqp.rejected,
      inFlight: this.consumer.inFlight,
      reconnects: this.amqp.connection.stats.reconnects,
    };
  }

  /** Checks the options, connects (bounded) and starts consuming. */
  static async open(options: WorkerOptions): Promise<Worker> {
    const registry = options.flows instanceof FlowRegistry ? options.flows : registryOf(options.flows);
    const byName = tasksByName(registry);
    const tasks = options.tasks ? [...new Set(options.tasks)] : [...byName.entries()].filter(([, t]) => t.remote === true).map(([n]) => n);
    const unknown = tasks.filter((t) => !byName.has(t));
    if (unknown.length > 0) {
      throw new ValidationError(
        'STOKER_CONFIG_INVALID',
        `the flows have no task named ${unknown.join(', ')} (tasks: ${[...byName.keys()].join(', ') || 'none'})`,
      );
    }
    if (tasks.length === 0) {
      throw new ValidationError(
        'STOKER_CONFIG_INVALID',
        'no task to execute: mark tasks `remote: true` in the flows, or name them with --tasks',
      );
    }
    const queues = queuesOf(registry, tasks);
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
      throw new ValidationError('STOKER_CONFIG_INVALID', `concurrency must be an integer from 1 to 10000, got ${String(concurrency)}`);
    }
    const maxResultBytes = options.maxResultBytes ?? RUN_LIMITS.maxPayloadBytes;
    const log = options.logger ?? silentLogger;
    const amqp = await openAmqp({ ...options.amqp, name: options.amqp.name ?? 'stoker-worker', logger: log });
    try {
      const consumer = await amqp.consume({
        queues,
        concurrency,
        handle: (request, abort) => execute(registry, request, abort, maxResultBytes),
      });
      return new Worker(amqp, consumer, tasks, [...queues.keys()]);
    } catch (e) {
      await amqp.close();
      throw e;
    }
  }

  /** Stops taking requests, lets running ones finish for up to `drainMs` (default 30 s), then closes the connection. */
  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopped ??= (async () => {
      await this.consumer.stop(options.drainMs ?? 30_000);
      await this.amqp.close();
    })();
    return this.stopped;
  }
}

function registryOf(flows: readonly (FlowDefinition | CompiledFlow)[]): FlowRegistry {
  const r = new FlowRegistry();
  for (const f of flows) r.register(f);
  return r;
}

function tasksByName(registry: FlowRegistry): Map<string, TaskDefinition> {
  const out = new Map<string, TaskDefinition>();
  for (const flow of registry.list()) for (const [name, t] of flow.tasks) if (!out.has(name) || t.remote) out.set(name, t);
  return out;
}

/**
 * The queues of `tasks`, each with the task names this worker accepts on it: a task's queue
 * as each flow defines it (a flow version may move a task to a shared queue). Throws when a
 * shared queue has remote tasks that `tasks` leaves out: the worker would take their calls
 * from the queue and could not run them.
 */
function queuesOf(registry: FlowRegistry, tasks: readonly string[]): Map<string, Set<string>> {
  const chosen = new Set(tasks);
  const queues = new Map<string, Set<string>>();
  const routed = new Map<string, Set<string>>();
  for (const flow of registry.list()) {
    for (const [name, t] of flow.tasks) {
      const queue = remoteQueueOf(t);
      if (chosen.has(name)) add(queues, queue, name);
      if (t.remote === true) add(routed, queue, name);
    }
  }
  for (const [queue, names] of queues) {
    const missing = [...(routed.get(queue) ?? [])].filter((n) => !chosen.has(n)).sort();
    if (missing.length === 0) continue;
    throw new ValidationError(
      'STOKER_CONFIG_INVALID',
      `queue ${queue} is shared by tasks the worker leaves out: ${missing.join(', ')} (it executes ${[...names].sort().join(', ')}); ` +
        'a worker consumes a whole queue, so name all of its tasks, or none to execute every remote task',
      { details: { queue, missing } },
    );
  }
  return queues;
}

function add(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}

/**
 * Runs one request; never rejects (what happened is the outcome). `abort` is the call's
 * controller (its signal is `ctx.signal`): the task's timeout aborts it too.
 */
async function execute(
  registry: FlowRegistry,
  request: RemoteRequest,
  abort: AbortController,
  maxResultBytes: number,
): Promise<RemoteResult> {
  const fail = (e: unknown, retryable?: boolean): RemoteResult => {
    const failure = toFailureRecord(e);
    return { ok: false, failure: retryable === undefined ? failure : { ...failure, retryable } };
  };
  const flow = registry.has(request.flow, request.version) ? registry.get(request.flow, request.version) : null;
  const task = flow?.tasks.get(request.task);
  if (!task) {
    return fail(
      new StokerError('STOKER_TASK_NOT_FOUND', `this worker has no task ${request.task} in flow ${request.flow}@${request.version}`),
      false,
    );
  }
  const fn = request.kind === 'revert' ? task.revert : task.execute;
  if (!fn) return { ok: true, result: null };
  let timer: NodeJS.Timeout | undefined;
  const stopped = new Promise<never>((_, reject) => {
    abort.signal.addEventListener(
      'abort',
      () => reject(abort.signal.reason instanceof Error ? abort.signal.reason : new Error('aborted')),
      {
        once: true,
      },
    );
  });
  if (request.timeoutMs !== null) {
    timer = setTimeout(() => {
      const err = new StokerError('STOKER_TASK_TIMEOUT', `task ran longer than ${request.timeoutMs} ms`);
      (err as StokerError & { retryable: boolean }).retryable = true;
      abort.abort(err);
    }, request.timeoutMs);
  }
  try {
    const value = await Promise.race([Promise.resolve().then(() => fn(request.inputs, contextOf(request, abort.signal))), stopped]);
    const result: JsonValue = value === undefined ? null : (value as JsonValue);
    try {
      checkJson(result, `result of ${request.task}`, { maxBytes: maxResultBytes, maxDepth: 64 });
    } catch (e) {
      return fail(e, false);
    }
    return { ok: true, result };
  } catch (e) {
    return fail(e);
  } finally {
    clearTimeout(timer);
  }
}

function contextOf(request: RemoteRequest, signal: AbortSignal): TaskContext {
  const unsupported = (what: string): Promise<never> =>
    Promise.reject(
      Object.assign(
        new StokerError(
          'STOKER_REMOTE_WAIT_UNSUPPORTED',
          `ctx.${what} needs the database: a remote task (${request.task}) cannot wait durably`,
        ),
        { retryable: false },
      ),
    );
  return {
    runId: request.runId,
    atomName: request.task,
    idempotencyKey: request.idempotencyKey,
    fencingToken: request.fencingToken,
    attempt: request.attempt,
    execution: request.execution,
    signal,
    retryValue: request.retryValue ?? undefined,
    failure: request.failure ?? undefined,
    sleep: () => unsupported('sleep'),
    waitForSignal: () => unsupported('waitForSignal'),
    runChild: () => unsupported('runChild'),
  };
}
