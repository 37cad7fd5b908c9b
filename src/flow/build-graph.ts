/**
 * Graphs built at run time, for runs that no registered flow describes: a layer above the
 * engine (a stack action, generated from a template and the stored resource states) lists
 * its steps, each executed by a registered step type (step-type.ts), with the steps it
 * waits for and the values it takes from them. {@link buildGraph} checks the list and
 * numbers the atoms in a dependency order; {@link checkGraph} checks any graph handed to
 * the engine, however it was made. The result is stored with the run like a compiled flow's
 * graph, by content hash, so every engine executes the same plan.
 */
import { checkJson } from '../core/canonical-json.js';
import type { JsonValue } from '../core/json.js';
import { ValidationError } from '../errors.js';
import { FLOW_LIMITS } from './compile.js';
import { GRAPH_FORMAT, type AtomSpec, type FlowGraph, type InputSource, type TaskRetrySpec } from './graph.js';
import { checkName, checkVersion, quoteName } from './names.js';
import { normalizeRetry, normalizeTimeout } from './task.js';
import { topologicalOrder } from './topological-order.js';

/**
 * Size limits of a graph built at run time. Larger than a compiled flow's atoms
 * ({@link FLOW_LIMITS}): a generated graph is bounded by the layer that generates it (a stack
 * action by its resources-per-stack limit, which operators raise for big stacks).
 */
export const GRAPH_LIMITS = Object.freeze({ maxSteps: 100_000, maxEdges: FLOW_LIMITS.maxEdges });

/**
 * The graphs {@link buildGraph} returned: checked as they were built, so {@link checkGraph}
 * does not walk them again. A stack action's start built and then checked the same graph:
 * with a group of 10,000 members the second walk (every atom's parameters as plain JSON, its
 * edges both ways) was 103 ms of the engine's CPU profile of the start (bench/claim-probe.ts
 * --cpu-prof, docs/orchestration.md, Performance).
 */
const built = new WeakSet<FlowGraph>();

/** Where a step's input (or a run output) comes from. */
export type GraphInput = { step: string; key?: string } | { arg: string } | { value: JsonValue };

/** One step of a {@link GraphSpec}. */
export interface StepSpec {
  /** unique within the graph (an atom name) */
  name: string;
  /** the registered step type that executes it */
  type: string;
  /** stored with the graph and given to the step type (plain JSON) */
  params?: JsonValue;
  /** steps this one waits for (besides those it takes inputs from) */
  after?: readonly string[];
  /** input name → where its value comes from; a step input also makes this step wait for that step */
  inputs?: Readonly<Record<string, GraphInput>>;
  /** attempts of this step, or a policy with backoff (as a task's `retry`) */
  retry?: number | Partial<TaskRetrySpec>;
  timeoutMs?: number;
  /** the step type can undo it: the atom takes part in the revert path */
  revert?: boolean;
}

/** A graph to build: its name and version (shown as the run's flow), its steps, and the run's outputs. */
export interface GraphSpec {
  name: string;
  version?: string;
  steps: readonly StepSpec[];
  /** output name → value, for the run's result */
  outputs?: Readonly<Record<string, GraphInput>>;
}

/**
 * Builds the graph of a list of steps: atoms numbered in a dependency order (ties in list
 * order), every step in the root scope. Throws a ValidationError naming the step and field
 * for a duplicate or invalid name, an unknown step referenced, a dependency cycle (with the
 * cycle, `a → b → a`), parameters that are not plain JSON, or a graph beyond the flow limits.
 *
 * @example
 * ```ts
 * const g = buildGraph({
 *   name: 'stack-create', steps: [
 *     { name: 'net', type: 'resource.create', params: { type: 'OS::Heat::None' } },
 *     { name: 'server', type: 'resource.create', params: { type: 'OS::Heat::None' }, inputs: { net: { step: 'net' } } },
 *   ],
 * });
 * await client.startGraph(g, {});
 * ```
 */
export function buildGraph(spec: GraphSpec): FlowGraph {
  const graphName = checkName(spec.name, 'graph name');
  const version = checkVersion(spec.version ?? '1', `graph ${quoteName(graphName)}`);
  if (!Array.isArray(spec.steps)) throw invalid(`graph ${quoteName(graphName)}: steps must be an array`);
  const steps = spec.steps;
  if (steps.length > GRAPH_LIMITS.maxSteps) {
    throw new ValidationError(
      'STOKER_FLOW_TOO_LARGE',
      `graph ${quoteName(graphName)} has ${steps.length} steps, more than ${GRAPH_LIMITS.maxSteps}`,
      {
        details: { graph: graphName, limit: GRAPH_LIMITS.maxSteps },
      },
    );
  }
  const position = new Map<string, number>();
  steps.forEach((s, i) => {
    const name = checkName(s?.name, `step name (steps[${i}])`);
    if (position.has(name)) {
      throw new ValidationError('STOKER_FLOW_DUPLICATE_NAME', `graph ${quoteName(graphName)}: two steps are named ${quoteName(name)}`, {
        details: { graph: graphName, step: name },
      });
    }
    position.set(name, i);
  });
  const where = (i: number, field: string): string => `graph ${quoteName(graphName)}, step ${quoteName(steps[i]!.name)}, ${field}`;
  const refer = (i: number, field: string, target: string): number => {
    const at = position.get(target);
    if (at === undefined) throw invalid(`${where(i, field)}: no step is named ${quoteName(target)}`);
    if (at === i) throw invalid(`${where(i, field)}: a step cannot wait for itself`);
    return at;
  };

  // predecessors by list position, de-duplicated
  const preds: Set<number>[] = steps.map(() => new Set<number>());
  let edges = 0;
  steps.forEach((s, i) => {
    checkName(s.type, `step type (${where(i, 'type')})`);
    for (const [k, target] of (s.after ?? []).entries()) preds[i]!.add(refer(i, `after[${k}]`, target));
    for (const [input, source] of Object.entries<GraphInput>(s.inputs ?? {})) {
      checkName(input, `input name (${where(i, 'inputs')})`);
      if (source !== null && typeof source === 'object' && 'step' in source) preds[i]!.add(refer(i, `inputs.${input}`, source.step));
    }
    edges += preds[i]!.size;
  });
  if (edges > FLOW_LIMITS.maxEdges) {
    throw new ValidationError(
      'STOKER_FLOW_TOO_LARGE',
      `graph ${quoteName(graphName)} has more than ${FLOW_LIMITS.maxEdges} dependency edges`,
      {
        details: { graph: graphName, limit: FLOW_LIMITS.maxEdges },
      },
    );
  }
  const successors: number[][] = steps.map(() => []);
  preds.forEach((set, i) => set.forEach((p) => successors[p]!.push(i)));
  const sorted = topologicalOrder(successors);
  if (!sorted.ok) {
    const cycle = sorted.cycle.map((i) => steps[i]!.name);
    throw new ValidationError('STOKER_FLOW_CYCLE', `graph ${quoteName(graphName)} has a dependency cycle: ${cycle.join(' → ')}`, {
      details: { graph: graphName, cycle },
    });
  }
  const indexOf = new Map<number, number>(sorted.order.map((pos, index) => [pos, index]));
  const source = (i: number, field: string, g: GraphInput): InputSource => {
    if (g !== null && typeof g === 'object') {
      if ('step' in g) {
        const atom = indexOf.get(refer(i, field, g.step))!;
        if (g.key === undefined) return { from: 'atom', atom };
        return { from: 'atom', atom, key: checkName(g.key, `key (${where(i, field)})`) };
      }
      if ('arg' in g) return { from: 'arg', name: checkName(g.arg, `argument name (${where(i, field)})`) };
      if ('value' in g) {
        checkJson(g.value, where(i, field));
        return { from: 'value', value: g.value };
      }
    }
    throw invalid(`${where(i, field)}: must be { step }, { arg } or { value }`);
  };

  const atoms: AtomSpec[] = sorted.order.map((pos, index) => {
    const s = steps[pos]!;
    const fail = (field: string, problem: string): never => {
      throw invalid(`${where(pos, field)}: ${problem}`);
    };
    const params = s.params ?? null;
    checkJson(params, where(pos, 'params'));
    const inputs: Record<string, InputSource> = {};
    for (const [name, g] of Object.entries<GraphInput>(s.inputs ?? {})) inputs[name] = source(pos, `inputs.${name}`, g);
    const atom: AtomSpec = {
      index,
      name: s.name,
      kind: 'task',
      scope: 0,
      inputs,
      provides: [],
      predecessors: [...preds[pos]!].map((p) => indexOf.get(p)!).sort((a, b) => a - b),
      successors: successors[pos]!.map((p) => indexOf.get(p)!).sort((a, b) => a - b),
      hasRevert: s.revert === true,
      step: { type: s.type, params },
    };
    const retry = normalizeRetry(s.retry, fail, where(pos, 'retry'));
    if (retry) atom.retry = { ...retry };
    const timeoutMs = normalizeTimeout(s.timeoutMs, fail);
    if (timeoutMs !== undefined) atom.timeoutMs = timeoutMs;
    return atom;
  });

  const outputs: Record<string, InputSource> = {};
  for (const [name, g] of Object.entries<GraphInput>(spec.outputs ?? {})) {
    checkName(name, `output name of graph ${quoteName(graphName)}`);
    if (g !== null && typeof g === 'object' && 'step' in g) {
      const at = position.get(g.step);
      if (at === undefined) throw invalid(`graph ${quoteName(graphName)}, outputs.${name}: no step is named ${quoteName(g.step)}`);
      outputs[name] = g.key === undefined ? { from: 'atom', atom: indexOf.get(at)! } : { from: 'atom', atom: indexOf.get(at)!, key: g.key };
    } else if (g !== null && typeof g === 'object' && 'arg' in g) outputs[name] = { from: 'arg', name: g.arg };
    else if (g !== null && typeof g === 'object' && 'value' in g) outputs[name] = { from: 'value', value: g.value };
    else throw invalid(`graph ${quoteName(graphName)}, outputs.${name}: must be { step }, { arg } or { value }`);
  }
  const args = new Set<string>();
  for (const a of atoms) for (const src of Object.values(a.inputs)) if (src.from === 'arg') args.add(src.name);
  for (const src of Object.values(outputs)) if (src.from === 'arg') args.add(src.name);
  const graph: FlowGraph = {
    format: GRAPH_FORMAT,
    flow: graphName,
    version,
    atoms,
    scopes: [{ index: 0, name: graphName, parent: null, controller: null, atoms: atoms.map((a) => a.index) }],
    arguments: [...args].sort(),
    outputs,
  };
  freezeStructure(graph);
  built.add(graph);
  return graph;
}

/**
 * Freezes what {@link checkGraph} would walk (the graph, its atoms, their edges, inputs and
 * step references, its scopes and outputs; step parameters stay as given), so that editing a
 * built graph in place throws a TypeError where the edit is made (ES modules are strict)
 * instead of reaching the store unchecked.
 */
function freezeStructure(graph: FlowGraph): void {
  for (const a of graph.atoms) {
    for (const part of [a.predecessors, a.successors, a.provides, a.inputs, a.deciders, a.step]) if (part) Object.freeze(part);
    for (const src of Object.values(a.inputs)) Object.freeze(src);
    Object.freeze(a);
  }
  for (const scope of graph.scopes) Object.freeze(Object.freeze(scope).atoms);
  for (const part of [graph.atoms, graph.scopes, graph.arguments, graph.outputs, graph]) Object.freeze(part);
}

/**
 * Checks a graph handed to the engine before a run of it is stored: atoms numbered 0..n-1,
 * edges that go forward and agree on both ends, inputs that name a predecessor's result
 * (or an ancestor's), scopes that exist, step references that name a type. O(atoms + edges).
 * Throws `STOKER_FLOW_INVALID` naming the atom and field. Graphs from {@link buildGraph} and
 * compiled flows always pass; a graph object {@link buildGraph} returned is not walked again
 * (it was checked as it was built, and its structure is frozen: to change it, build anew).
 *
 * @example
 * ```ts
 * checkGraph(JSON.parse(text) as FlowGraph);
 * ```
 */
export function checkGraph(graph: FlowGraph): FlowGraph {
  if (built.has(graph)) return graph;
  const fail = (problem: string): never => {
    throw invalid(`graph ${quoteName(graph?.flow)}: ${problem}`);
  };
  if (graph === null || typeof graph !== 'object') fail('must be an object');
  if (graph.format !== GRAPH_FORMAT) fail(`format must be ${GRAPH_FORMAT}, got ${quoteName(graph.format)}`);
  checkName(graph.flow, 'graph name');
  checkVersion(graph.version, `graph ${quoteName(graph.flow)}`);
  if (!Array.isArray(graph.atoms) || !Array.isArray(graph.scopes)) fail('atoms and scopes must be arrays');
  const n = graph.atoms.length;
  if (n > GRAPH_LIMITS.maxSteps) fail(`has ${n} atoms, more than ${GRAPH_LIMITS.maxSteps}`);
  // Every edge as both of its ends list it (`from * n + to`), so that checking that they
  // agree costs O(atoms + edges): looked up with `includes` in the other end's list, a step
  // after a group of 10,000 members cost 5·10^7 comparisons, 165 ms of a stack action's start
  // (bench/claim-probe.ts --cpu-prof), and a graph at the step limit would have cost minutes.
  const listedAsPredecessor = new Set<number>();
  const listedAsSuccessor = new Set<number>();
  // -1 for an index that is no atom's: the checks below fail on it before any lookup
  const edge = (from: number, to: number): number =>
    Number.isInteger(from) && Number.isInteger(to) && from >= 0 && to >= 0 && from < n && to < n ? from * n + to : -1;
  graph.atoms.forEach((a, i) => {
    if (Array.isArray(a?.predecessors)) for (const p of a.predecessors) listedAsPredecessor.add(edge(p, i));
    if (Array.isArray(a?.successors)) for (const s of a.successors) listedAsSuccessor.add(edge(i, s));
  });
  const names = new Set<string>();
  graph.atoms.forEach((a, i) => {
    const at = `atom ${i}`;
    if (a.index !== i) fail(`${at}: index must be ${i}, got ${quoteName(a.index)}`);
    checkName(a.name, `atom name (${at})`);
    if (names.has(a.name)) fail(`two atoms are named ${quoteName(a.name)}`);
    names.add(a.name);
    if (a.kind !== 'task' && a.kind !== 'retry') fail(`${at} (${a.name}): kind must be task or retry`);
    if (!Number.isInteger(a.scope) || graph.scopes[a.scope] === undefined) fail(`${at} (${a.name}): no scope ${quoteName(a.scope)}`);
    for (const p of a.predecessors) {
      if (!Number.isInteger(p) || p < 0 || p >= i) fail(`${at} (${a.name}): predecessor ${String(p)} must be an earlier atom`);
      if (!listedAsSuccessor.has(edge(p, i))) fail(`${at} (${a.name}): atom ${p} does not list it as a successor`);
    }
    for (const s of a.successors) {
      if (!Number.isInteger(s) || s <= i || s >= n) fail(`${at} (${a.name}): successor ${String(s)} must be a later atom`);
      if (!listedAsPredecessor.has(edge(i, s))) fail(`${at} (${a.name}): atom ${s} does not list it as a predecessor`);
    }
    for (const [name, src] of Object.entries(a.inputs ?? {})) {
      if (src?.from === 'atom' && (!Number.isInteger(src.atom) || src.atom < 0 || src.atom >= i)) {
        fail(`${at} (${a.name}), input ${quoteName(name)}: must come from an earlier atom`);
      }
    }
    if (a.step !== undefined) {
      checkName(a.step?.type, `step type (${at})`);
      checkJson(a.step.params, `parameters of ${at} (${a.name})`);
    }
  });
  return graph;
}

function invalid(message: string): ValidationError {
  return new ValidationError('STOKER_FLOW_INVALID', message);
}
