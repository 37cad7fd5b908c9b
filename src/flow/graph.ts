/**
 * The compiled form of a flow: plain JSON, stored with every run so that in-flight runs
 * never change when code changes. The engine schedules from this and from the atom rows.
 * Each atom names what executes it: a step type and its parameters (`step`, for graphs a
 * layer above generated, see build-graph.ts), or else the task of the run's registered
 * flow with the atom's name.
 *
 * Atoms are numbered 0..n-1 in a topological order of `edges` (every edge goes from a
 * lower index to a higher one). Scope 0 is the root flow.
 */
import type { JsonValue } from '../core/json.js';

export const GRAPH_FORMAT = 1;

/** Where one input of an atom comes from. */
export type InputSource =
  /** a run argument, by name */
  | { from: 'arg'; name: string }
  /**
   * The result of an atom. `key` is absent when the atom provides a single name (the whole
   * result is the value). When the atom provides several names, compilation always sets
   * `key` to the value *name* (never a number): the value is `result[key]` for an object
   * result, and `result[provides.indexOf(key)]` for an array result (by position in the
   * provider's `provides`). `providedValue()` in `flow/provided-value.ts` implements this.
   */
  | { from: 'atom'; atom: number; key?: string | number }
  /** a constant injected at definition time (`inject`) */
  | { from: 'value'; value: JsonValue };

/** Per-task retry: attempts of the same atom, with exponential backoff and jitter. */
export interface TaskRetrySpec {
  /** total attempts, including the first (1 = no retry) */
  attempts: number;
  /** delay before the 2nd attempt */
  backoffMs: number;
  /** growth factor per attempt */
  factor: number;
  /** cap on one delay */
  maxBackoffMs: number;
  /** 0..1, the fraction of each delay that is randomised */
  jitter: number;
}

/** What a retry controller does when its scope fails. */
export type RetryControllerSpec =
  | { kind: 'times'; attempts: number }
  | { kind: 'forEach'; values: JsonValue[] }
  | { kind: 'parameterizedForEach'; valuesFrom: InputSource }
  | { kind: 'alwaysRevert' }
  | { kind: 'revertAll' };

/**
 * What executes an atom of a generated graph: a registered step type (src/flow/step-type.ts)
 * and the parameters it is given. Stored with the graph, so every engine runs the same plan.
 */
export interface StepRef {
  /** the step type's name, e.g. `stack.resource.create` */
  type: string;
  params: JsonValue;
}

export interface AtomSpec {
  index: number;
  /** unique within the flow; without `step`, the registered flow maps it back to code */
  name: string;
  /** set: a step type executes this atom (and no registered flow is needed) */
  step?: StepRef;
  kind: 'task' | 'retry';
  /** innermost scope that contains this atom (for a retry atom: the scope it controls) */
  scope: number;
  /** argument name → where its value comes from */
  inputs: Record<string, InputSource>;
  /** names under which the result is published: one name = whole result; several = fields/elements */
  provides: string[];
  /** atom indexes this atom waits for */
  predecessors: number[];
  /** atom indexes that wait for this atom */
  successors: number[];
  /** edges into this atom guarded by a decider: predecessor index → decider id */
  deciders?: Record<string, string>;
  retry?: TaskRetrySpec;
  timeoutMs?: number;
  /** only for kind 'retry' */
  controller?: RetryControllerSpec;
  /** whether the task has a revert function (no revert = nothing to claim on the revert path) */
  hasRevert: boolean;
}

export interface ScopeSpec {
  index: number;
  name: string;
  /** enclosing scope, null for the root */
  parent: number | null;
  /** the retry controller atom of this scope, if any */
  controller: number | null;
  /** every atom inside this scope, directly or in nested scopes (the controller included) */
  atoms: number[];
}

export interface FlowGraph {
  format: typeof GRAPH_FORMAT;
  flow: string;
  version: string;
  atoms: AtomSpec[];
  scopes: ScopeSpec[];
  /** run arguments the flow needs (requirements no atom provides) */
  arguments: string[];
  /** value name → producing atom, for the run's result */
  outputs: Record<string, InputSource>;
}
