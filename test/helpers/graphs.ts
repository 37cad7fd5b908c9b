/**
 * Hand-built FlowGraphs for store tests, which need graphs but not the flow compiler.
 *
 * @example
 * ```ts
 * graphOf([[], [], [0, 1]]); // atoms 0 and 1 are roots, atom 2 waits for both
 * ```
 */
import { GRAPH_FORMAT, type FlowGraph } from '../../src/flow/graph.js';
import type { JsonObject } from '../../src/core/json.js';
import type { NewRun } from '../../src/store/store.js';

/** A graph whose atom i waits for the atoms listed in `predecessors[i]` (all lower indexes). */
export function graphOf(predecessors: number[][], flow = 'contract', version = '1'): FlowGraph {
  const atoms = predecessors.map((preds, index) => {
    for (const p of preds) if (p >= index) throw new Error(`atom ${index}: predecessor ${p} must have a lower index`);
    return {
      index,
      name: `step${index}`,
      kind: 'task' as const,
      scope: 0,
      inputs: {},
      provides: [],
      predecessors: [...preds],
      successors: [] as number[],
      hasRevert: true,
    };
  });
  for (const a of atoms) for (const p of a.predecessors) atoms[p]!.successors.push(a.index);
  return {
    format: GRAPH_FORMAT,
    flow,
    version,
    atoms,
    scopes: [{ index: 0, name: flow, parent: null, controller: null, atoms: atoms.map((a) => a.index) }],
    arguments: [],
    outputs: {},
  };
}

let seq = 0;

/** A unique, sortable run id. */
export function runId(prefix = 'run'): string {
  seq += 1;
  return `${prefix}-${Date.now().toString(36)}-${String(seq).padStart(5, '0')}`;
}

/** A NewRun with sensible defaults. */
export function newRun(options: Partial<NewRun> & { predecessors?: number[][]; args?: JsonObject } = {}): NewRun {
  const { predecessors, ...rest } = options;
  const graph = rest.graph ?? graphOf(predecessors ?? [[]], rest.flow ?? 'contract', rest.version ?? '1');
  return {
    id: rest.id ?? runId(),
    flow: rest.flow ?? graph.flow,
    version: rest.version ?? graph.version,
    key: rest.key ?? null,
    args: rest.args ?? {},
    graph,
    ...(rest.parentRunId !== undefined ? { parentRunId: rest.parentRunId } : {}),
    ...(rest.parentAtom !== undefined ? { parentAtom: rest.parentAtom } : {}),
    ...(rest.supersede !== undefined ? { supersede: rest.supersede } : {}),
  };
}
