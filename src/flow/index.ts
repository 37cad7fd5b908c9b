/**
 * The flow layer: define tasks and flows, compile them to a JSON graph, register them.
 * Pure: nothing here performs I/O.
 *
 * @example
 * ```ts
 * import { task, linear, FlowRegistry } from './flow/index.js';
 * const hello = task({ name: 'hello', requires: ['who'], execute: ({ who }) => `hi ${String(who)}` });
 * new FlowRegistry().register(linear('greet', [hello]));
 * ```
 */
export { task, TASK_RETRY_DEFAULTS, MAX_TIMEOUT_MS } from './task.js';
export { times, forEach, parameterizedForEach, alwaysRevert, revertAll, type RetryControllerOptions } from './retry.js';
export { linear, unordered, graph, DEFAULT_FLOW_VERSION, type FlowChild } from './patterns.js';
export { compileFlow, FLOW_LIMITS } from './compile.js';
export { FlowRegistry } from './registry.js';
export { providedValue } from './provided-value.js';
export { compareVersions } from './compare-versions.js';
export { isTaskDefinition, isFlowDefinition, isRetryController, isCompiledFlow } from './guards.js';
export { NAME_PATTERN, VERSION_PATTERN, isValidName } from './names.js';
export { GRAPH_FORMAT } from './graph.js';
export type { AtomSpec, FlowGraph, InputSource, RetryControllerSpec, ScopeSpec, StepRef, TaskRetrySpec } from './graph.js';
export type {
  CompiledFlow,
  Decider,
  FailureRecord,
  FlowDefinition,
  FlowOptions,
  Link,
  PatternKind,
  RetryController,
  TaskContext,
  TaskDefinition,
  TaskFn,
  TaskInputs,
  TaskOptions,
  TaskResult,
  TypedTaskFn,
} from './types.js';
