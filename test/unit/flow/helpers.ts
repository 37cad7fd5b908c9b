import { ValidationError, type ErrorCode, isStokerError } from '../../../src/errors.js';
import { task } from '../../../src/flow/task.js';
import type { AtomSpec, FlowGraph } from '../../../src/flow/graph.js';
import type { TaskDefinition, TaskOptions } from '../../../src/flow/types.js';

/** A task that does nothing, with whatever options the test needs. */
export function t(name: string, options: Partial<TaskOptions> = {}): TaskDefinition {
  return task({ name, execute: () => null, ...options });
}

/** Runs `fn`, expects it to throw a StokerError with `code`, and returns the error. */
export function expectError(fn: () => unknown, code: ErrorCode): ValidationError {
  try {
    fn();
  } catch (error) {
    if (!isStokerError(error)) throw new Error(`expected a StokerError ${code}, got ${String(error)}`, { cause: error });
    if (error.code !== code) throw new Error(`expected ${code}, got ${error.code}: ${error.message}`, { cause: error });
    return error as ValidationError;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

/** The atom called `name`. */
export function atom(graph: FlowGraph, name: string): AtomSpec {
  const found = graph.atoms.find((a) => a.name === name);
  if (found === undefined) throw new Error(`no atom ${name} in ${graph.atoms.map((a) => a.name).join(', ')}`);
  return found;
}

/** Index of the atom called `name`. */
export function ix(graph: FlowGraph, name: string): number {
  return atom(graph, name).index;
}

/** Edges as `from->to` names, sorted, for readable assertions. */
export function edges(graph: FlowGraph): string[] {
  return graph.atoms.flatMap((a) => a.successors.map((s) => `${a.name}->${graph.atoms[s]?.name ?? '?'}`)).sort();
}

/** Names of the predecessors of atom `name`, sorted. */
export function preds(graph: FlowGraph, name: string): string[] {
  return atom(graph, name)
    .predecessors.map((p) => graph.atoms[p]?.name ?? '?')
    .sort();
}
