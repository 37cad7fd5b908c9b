/**
 * Stoker's public API. Explicit named exports only; importing this module loads no
 * database driver (drivers are imported when `openStore` needs one).
 *
 * @example
 * ```ts
 * import { Engine, FlowRegistry, linear, task, openStore } from 'stoker';
 * ```
 */
export {
  task,
  linear,
  unordered,
  graph,
  times,
  forEach,
  parameterizedForEach,
  alwaysRevert,
  revertAll,
  compileFlow,
  FlowRegistry,
} from './flow/index.js';
export { buildGraph, checkGraph, type GraphSpec, type StepSpec, type GraphInput } from './flow/build-graph.js';
export { StepTypeRegistry, type StepType } from './flow/step-type.js';
export type {
  AtomSpec,
  CompiledFlow,
  Decider,
  FailureRecord,
  FlowDefinition,
  FlowGraph,
  FlowOptions,
  InputSource,
  Link,
  RetryController,
  StepRef,
  TaskContext,
  TaskDefinition,
  TaskInputs,
  TaskOptions,
  TaskResult,
  TypedTaskFn,
} from './flow/index.js';
export {
  Engine,
  type EngineOptions,
  type EngineEvents,
  type EngineListener,
  type FlowLookup,
  type StartRunOptions,
} from './engine/engine.js';
export { RunClient, RUN_LIMITS, type RunClientOptions } from './engine/run-client.js';
export { DefaultStepResolver, type StepResolver, type Resolution, type AtomCode } from './engine/step-resolver.js';
export { WakeHub, type WakeRelay } from './engine/wake-hub.js';
export { RunStatus, AtomState, RUN_TRANSITIONS, ATOM_TRANSITIONS, isTerminalRun } from './store/states.js';
export { ChildRunFailedError } from './engine/failure.js';
export {
  createLocks,
  LOCK_LIMITS,
  type Locks,
  type LocksOptions,
  type AcquireOptions,
  type WithLockOptions,
  type HeldLock,
  type LockContext,
} from './engine/locks.js';
export { openStore } from './store/open-store.js';
export type { Store, RunRow, AtomRow, EventRow, EngineRow, EventFilter, StartResult, DialectCapabilities } from './store/store.js';
export { runJson, atomJson, eventJson, engineJson, lockJson } from './views/json.js';
export type { AcquiredLock, LockRow, LockFilter } from './store/store.js';
export {
  createRuntime,
  loadFlowsModule,
  openAmqp,
  type Amqp,
  type AmqpOptions,
  type Runtime,
  type RuntimeOptions,
} from './runtime/index.js';
export {
  StokerError,
  ValidationError,
  NotFoundError,
  ConflictError,
  StoreError,
  TransportError,
  ErrorCodes,
  isStokerError,
  type ErrorCode,
} from './errors.js';
export type { JsonValue, JsonObject } from './core/json.js';
export { systemClock, seededRng, type Clock, type Rng } from './core/clock.js';
export { systemHostProcess, type HostProcess, type StopSignal } from './core/host-process.js';
export type { Logger } from './core/logger.js';
