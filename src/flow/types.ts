/**
 * The shapes users write: tasks, flows and retry controllers. Pure data plus functions;
 * nothing here performs I/O.
 */
import type { JsonValue } from '../core/json.js';
import type { FlowGraph, RetryControllerSpec, TaskRetrySpec } from './graph.js';

/** A failure as stored: a user task's error becomes this data. */
export interface FailureRecord {
  type: string;
  message: string;
  stack?: string;
  code?: string;
  details?: JsonValue;
  retryable?: boolean;
  cause?: FailureRecord;
  /** the inner errors of an `AggregateError` (the first 20) */
  errors?: FailureRecord[];
}

/** What every execution of a task receives besides its inputs. */
export interface TaskContext {
  readonly runId: string;
  /** the atom's unique name within the flow */
  readonly atomName: string;
  /** `<runId>/<atomName>/<attempt>`: the same for every execution of one attempt */
  readonly idempotencyKey: string;
  /** `<runId>/<atomName>/<epoch>.<attempt>`: grows with every claim */
  readonly fencingToken: string;
  /** 1 for the first try, then 2, 3… (task retries and scope retries) */
  readonly attempt: number;
  /** how many times this attempt has been started (2 after a takeover) */
  readonly execution: number;
  /** aborted on cancel, timeout, lease loss or engine shutdown */
  readonly signal: AbortSignal;
  /** the value of the enclosing retry controller (for-each item, attempt number) */
  readonly retryValue: JsonValue | undefined;
  /** on the revert path: the failure of this atom, if it failed */
  readonly failure: FailureRecord | undefined;
  /**
   * Durable sleep: the first call parks the atom (WAITING, holding no claim) and throws an
   * internal suspension; after `ms` the atom is executed again and the same call returns.
   * Code before it therefore runs again: keep it idempotent.
   */
  sleep(ms: number): Promise<void>;
  /**
   * Parks the atom until `signal(runId, name, payload)` arrives; returns the payload. `name`
   * follows the naming rule of signals (a letter, then letters, digits, `_`, `.`, `-`; at most
   * 128): any other name throws `STOKER_CONFIG_INVALID` at once (not retried), since no such
   * signal could ever be sent.
   */
  waitForSignal(name: string): Promise<JsonValue>;
  /**
   * Starts a child run (once) and parks until it finishes; returns its result or throws its
   * failure. `flow` names a registered flow, or is a graph built at run time (buildGraph).
   * The child is built by the engine executing this task: when that engine has no flow of
   * that name (and version), or the arguments do not fit it, this atom fails with that error
   * (`STOKER_FLOW_NOT_FOUND`, `STOKER_RUN_MISSING_ARGUMENT`, …; not retried) and nothing
   * else is affected. In a rolling deploy, register a child flow on every engine that has
   * its parent before starting parents that use it.
   */
  runChild(flow: string | FlowGraph, args: Record<string, JsonValue>, options?: { version?: string }): Promise<JsonValue>;
}

/**
 * What a task may return: plain JSON, or nothing (stored as null). Any object type is
 * accepted, so that a value typed by an `interface` (which TypeScript never treats as an
 * index signature like JsonValue's) needs no cast; the engine checks the value when the task
 * returns and fails the task with `STOKER_INPUT_NOT_JSON`, naming the path, when it is not
 * plain JSON (a Date, a Map, a function, a class instance, a cycle; docs/errors.md).
 * BigInt, symbols and functions at the top level are compile errors.
 */
export type TaskResult = JsonValue | object | void;

/** A task's execute (or revert) function, untyped inputs. */
export type TaskFn = (inputs: Record<string, JsonValue>, ctx: TaskContext) => Promise<TaskResult> | TaskResult;

/**
 * The inputs a task receives: the names in `requires` and the keys of `inject`, each a JSON
 * value. When the names are not known at compile time (a `string[]` variable, or no
 * `requires`), any name.
 *
 * @example
 * ```ts
 * type In = TaskInputs<'sku' | 'amount'>; // { readonly sku: JsonValue; readonly amount: JsonValue }
 * ```
 */
export type TaskInputs<Name extends string = string> = string extends Name
  ? Record<string, JsonValue>
  : { readonly [K in Name]: JsonValue };

/** A task function whose inputs are typed by the names it requires. */
export type TypedTaskFn<Name extends string = string> = (inputs: TaskInputs<Name>, ctx: TaskContext) => Promise<TaskResult> | TaskResult;

/**
 * Options of {@link task}. `Requires` and `Injects` are inferred from `requires` and
 * `inject`, so `execute`'s inputs have exactly those names: a typo is a compile error.
 */
export interface TaskOptions<Requires extends string = string, Injects extends string = never> {
  name: string;
  execute: TypedTaskFn<Requires | Injects>;
  revert?: TypedTaskFn<Requires | Injects>;
  /** value names this task needs (argument names unless `rebind` says otherwise) */
  requires?: readonly Requires[];
  /** one name (whole result) or several (fields of an object result, or elements of an array) */
  provides?: string | readonly string[];
  /** argument name → value name to read it from */
  rebind?: Record<string, string>;
  /** constant inputs, fixed at definition time */
  inject?: { readonly [K in Injects]: JsonValue };
  /** attempts, or a full policy with exponential backoff and jitter */
  retry?: number | Partial<TaskRetrySpec>;
  timeoutMs?: number;
  /**
   * Executed by a `stoker worker` process over RabbitMQ instead of in the engine
   * (docs/amqp.md, "Remote tasks"); the engine still claims the atom and records the
   * outcome. The durable waits (`sleep`, `waitForSignal`, `runChild`) are not available to
   * a remote task. Default false.
   *
   * `true` sends the task's calls to a queue of its own, named after the task;
   * `{ queue: 'pool' }` to a queue shared with the other tasks that name it, so that calls
   * of different tasks made together travel in one message (a worker then consumes every
   * task of that queue). The queue name follows the rules of a task name.
   */
  remote?: boolean | { queue: string };
}

export interface TaskDefinition {
  readonly type: 'task';
  readonly name: string;
  readonly execute: TaskFn;
  readonly revert: TaskFn | undefined;
  readonly requires: readonly string[];
  readonly provides: readonly string[];
  readonly rebind: Readonly<Record<string, string>>;
  readonly inject: Readonly<Record<string, JsonValue>>;
  readonly retry: TaskRetrySpec | undefined;
  readonly timeoutMs: number | undefined;
  /** executed by a remote worker (see {@link TaskOptions.remote}); absent on definitions made by hand */
  readonly remote?: boolean;
  /** the queue shared with other tasks (`remote: { queue }`); absent: the task's own queue, named after it */
  readonly remoteQueue?: string;
}

/**
 * A retry controller for a sub-flow. Built by `times`, `forEach`, `parameterizedForEach`,
 * `alwaysRevert`, `revertAll`.
 */
export interface RetryController {
  readonly type: 'retry';
  readonly spec: RetryControllerSpec;
  /** value name under which the controller publishes its current value (for-each item or attempt) */
  readonly provides: string | undefined;
}

/** Decides at run time whether a guarded link is followed; false skips the target (SKIPPED). */
export type Decider = (result: JsonValue, history: Record<string, JsonValue>) => boolean;

export interface Link {
  from: string;
  to: string;
  decider?: Decider;
}

export interface FlowOptions {
  retry?: RetryController;
  /** version of a root flow (default "1") */
  version?: string;
}

export type PatternKind = 'linear' | 'unordered' | 'graph';

export interface FlowDefinition {
  readonly type: 'flow';
  readonly pattern: PatternKind;
  readonly name: string;
  readonly version: string;
  readonly children: readonly (TaskDefinition | FlowDefinition)[];
  readonly links: readonly Link[];
  readonly retry: RetryController | undefined;
}

/** A root flow compiled and ready to run: its graph plus the code the graph refers to. */
export interface CompiledFlow {
  readonly name: string;
  readonly version: string;
  readonly graph: FlowGraph;
  /** atom name → task definition (task atoms only) */
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  /** decider id → decider */
  readonly deciders: ReadonlyMap<string, Decider>;
}
