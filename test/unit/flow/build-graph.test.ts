import { describe, expect, it, vi } from 'vitest';
import { buildGraph, checkGraph } from '../../../src/flow/build-graph.js';
import { compileFlow, linear, task, unordered, graph } from '../../../src/flow/index.js';
import { StepTypeRegistry } from '../../../src/flow/step-type.js';
import type { FlowGraph } from '../../../src/flow/graph.js';

const err = (fn: () => unknown): { code: string; message: string } => {
  try {
    fn();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected an error');
};

describe('buildGraph', () => {
  it('numbers steps in a dependency order (ties in list order) with edges from `after` and step inputs', () => {
    const g = buildGraph({
      name: 'stack-create',
      steps: [
        { name: 'server', type: 'res.create', params: { t: 'S' }, inputs: { port: { step: 'port', key: 'id' } } },
        { name: 'net', type: 'res.create', params: { t: 'N' } },
        { name: 'port', type: 'res.create', params: { t: 'P' }, after: ['net'], inputs: { size: { arg: 'size' } } },
        { name: 'log', type: 'res.create' },
      ],
      outputs: { server: { step: 'server' } },
    });
    // of the steps ready at once, the one listed first goes first
    expect(g.atoms.map((a) => a.name)).toEqual(['net', 'port', 'server', 'log']);
    const byName = Object.fromEntries(g.atoms.map((a) => [a.name, a]));
    expect(byName.port!.predecessors).toEqual([byName.net!.index]);
    expect(byName.server!.predecessors).toEqual([byName.port!.index]);
    expect(byName.net!.successors).toEqual([byName.port!.index]);
    expect(byName.server!.inputs.port).toEqual({ from: 'atom', atom: byName.port!.index, key: 'id' });
    expect(byName.port!.step).toEqual({ type: 'res.create', params: { t: 'P' } });
    expect(byName.log!.step).toEqual({ type: 'res.create', params: null });
    expect(g.arguments).toEqual(['size']);
    expect(g.outputs).toEqual({ server: { from: 'atom', atom: byName.server!.index } });
    expect(checkGraph(g)).toBe(g);
  });

  it('names the cycle, the unknown step and the duplicate', () => {
    const cyc = err(() =>
      buildGraph({
        name: 'g',
        steps: [
          { name: 'a', type: 't', after: ['c'] },
          { name: 'b', type: 't', after: ['a'] },
          { name: 'c', type: 't', inputs: { x: { step: 'b' } } },
        ],
      }),
    );
    expect(cyc.code).toBe('STOKER_FLOW_CYCLE');
    expect(cyc.message).toContain('a → b → c → a');
    const unknown = err(() => buildGraph({ name: 'g', steps: [{ name: 'a', type: 't', after: ['ghost'] }] }));
    expect(unknown).toMatchObject({ code: 'STOKER_FLOW_INVALID' });
    expect(unknown.message).toContain("graph 'g', step 'a', after[0]: no step is named 'ghost'");
    const dup = err(() =>
      buildGraph({
        name: 'g',
        steps: [
          { name: 'a', type: 't' },
          { name: 'a', type: 't' },
        ],
      }),
    );
    expect(dup.code).toBe('STOKER_FLOW_DUPLICATE_NAME');
    const self = err(() => buildGraph({ name: 'g', steps: [{ name: 'a', type: 't', after: ['a'] }] }));
    expect(self.message).toContain('cannot wait for itself');
  });

  it('refuses parameters that are not plain JSON, bad names and bad retry options', () => {
    expect(err(() => buildGraph({ name: 'g', steps: [{ name: 'a', type: 't', params: { f: NaN } }] })).message).toContain(
      "graph 'g', step 'a', params is not plain JSON at $.f: NaN (JSON has finite numbers only; use null or a string)",
    );
    expect(err(() => buildGraph({ name: 'g', steps: [{ name: 'a b', type: 't' }] })).code).toBe('STOKER_FLOW_INVALID');
    expect(err(() => buildGraph({ name: 'g', steps: [{ name: 'a', type: 'bad type!' }] })).code).toBe('STOKER_FLOW_INVALID');
    expect(err(() => buildGraph({ name: 'g', steps: [{ name: 'a', type: 't', retry: 0 }] })).message).toContain('retry');
    const g = buildGraph({
      name: 'g',
      steps: [{ name: 'a', type: 't', retry: { attempts: 3, backoffMs: 10 }, timeoutMs: 500, revert: true }],
    });
    expect(g.atoms[0]).toMatchObject({ retry: { attempts: 3, backoffMs: 10 }, timeoutMs: 500, hasRevert: true });
  });

  it('builds 10,000 steps in a chain without recursion', () => {
    const steps = Array.from({ length: 10_000 }, (_, i) => ({ name: `s${i}`, type: 't', ...(i > 0 ? { after: [`s${i - 1}`] } : {}) }));
    const g = buildGraph({ name: 'chain', steps: steps.reverse() });
    expect(g.atoms[0]!.name).toBe('s0');
    expect(g.atoms[9_999]!.name).toBe('s9999');
  });
});

describe('checkGraph', () => {
  it('passes every compiled flow', () => {
    const t = (name: string, requires: string[] = [], provides?: string) =>
      task({ name, requires, ...(provides ? { provides } : {}), execute: () => 1 });
    const flows = [
      linear('l', [t('a', [], 'x'), t('b', ['x'])]),
      unordered('u', [t('a'), t('b')]),
      graph('g', [t('a', [], 'x'), t('b', ['x'], 'y'), t('c', ['x', 'y'])]),
    ];
    for (const f of flows) expect(checkGraph(compileFlow(f).graph)).toBeTruthy();
  });

  it('names what is wrong with a hand-made graph', () => {
    const good = buildGraph({
      name: 'g',
      steps: [
        { name: 'a', type: 't' },
        { name: 'b', type: 't', after: ['a'] },
      ],
    });
    const broken = (edit: (g: FlowGraph) => void): string => {
      const g = structuredClone(good);
      edit(g);
      return err(() => checkGraph(g)).message;
    };
    expect(
      broken((g) => {
        g.atoms[0]!.successors = [];
        g.atoms[1]!.predecessors = [1];
      }),
    ).toContain('predecessor 1 must be an earlier atom');
    expect(broken((g) => (g.atoms[0]!.successors = []))).toContain('does not list it as a successor');
    expect(broken((g) => (g.atoms[1]!.index = 5))).toContain('index must be 1');
    expect(broken((g) => ((g as { format: number }).format = 2))).toContain('format must be 1');
    expect(broken((g) => (g.atoms[1]!.step = { type: 'no good', params: null }))).toContain('step type');
    expect(broken((g) => (g.atoms[0]!.inputs = { x: { from: 'atom', atom: 1 } }))).toContain('must come from an earlier atom');
  });
});

describe('checkGraph on a wide fan-in', () => {
  it('reads each list of edges a bounded number of times, not once per edge (a step after a group of members)', () => {
    const members = 2_000;
    const built = buildGraph({
      name: 'group',
      steps: [
        ...Array.from({ length: members }, (_, i) => ({ name: `m${i}`, type: 't' })),
        { name: 'finish', type: 't', after: Array.from({ length: members }, (_, i) => `m${i}`) },
      ],
    });
    // count the reads of the finish step's predecessors (before: one `includes` scan of them per member); a copy,
    // as handed to the engine from elsewhere (the object buildGraph returned is not walked again)
    const g = structuredClone(built);
    let reads = 0;
    const finish = g.atoms[members]!;
    finish.predecessors = new Proxy([...finish.predecessors], {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads += 1;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    expect(checkGraph(g)).toBe(g);
    expect(reads).toBeLessThanOrEqual(3 * members);
    // and a fan-in whose ends disagree is still found
    const broken = structuredClone({ ...g, atoms: g.atoms.map((a) => ({ ...a, predecessors: [...a.predecessors] })) });
    broken.atoms[members]!.predecessors = broken.atoms[members]!.predecessors.filter((p) => p !== 7);
    expect(err(() => checkGraph(broken)).message).toContain('atom 7 (m7): atom 2000 does not list it as a predecessor');
  });
});

describe('checkGraph of a graph buildGraph returned', () => {
  it('does not walk it again: buildGraph checked it as it built it (a stack action builds its graph, then starts it)', () => {
    const g = buildGraph({
      name: 'group',
      steps: [
        ...Array.from({ length: 100 }, (_, i) => ({ name: `m${i}`, type: 't', params: { name: `m${i}` } })),
        { name: 'finish', type: 't', after: Array.from({ length: 100 }, (_, i) => `m${i}`) },
      ],
    });
    // checkGraph's walk asks Number.isInteger of every atom's index, scope and edges
    const isInteger = vi.spyOn(Number, 'isInteger');
    try {
      expect(checkGraph(g)).toBe(g);
      expect(isInteger).not.toHaveBeenCalled();
      checkGraph(structuredClone(g));
      expect(isInteger.mock.calls.length).toBeGreaterThan(300);
    } finally {
      isInteger.mockRestore();
    }
    // its structure is frozen: an edit in place fails where it is made, instead of passing unchecked
    expect(() => (g.atoms[100]!.predecessors as number[]).pop()).toThrow(TypeError);
    expect(() => g.atoms.push(g.atoms[0]!)).toThrow(TypeError);
    expect(() => {
      (g.atoms[3] as { name: string }).name = 'renamed';
    }).toThrow(TypeError);
    expect(() => {
      g.atoms = [];
    }).toThrow(TypeError);
    // a copy of it is checked in full
    const copy = structuredClone({ ...g, atoms: [...g.atoms] });
    copy.atoms[100] = { ...copy.atoms[100]!, predecessors: copy.atoms[100]!.predecessors.filter((p) => p !== 7) };
    expect(err(() => checkGraph(copy)).message).toContain('atom 7 (m7): atom 100 does not list it as a predecessor');
  });
});

describe('StepTypeRegistry', () => {
  it('finds types by name; a second type under a taken name is a conflict', () => {
    const steps = new StepTypeRegistry();
    const a = { type: 'res.create', execute: () => 1 };
    steps.register(a).register(a);
    expect(steps.get('res.create')).toBe(a);
    expect(steps.find('nope')).toBeUndefined();
    expect(err(() => steps.get('nope'))).toMatchObject({ code: 'STOKER_STEP_TYPE_NOT_FOUND' });
    expect(err(() => steps.register({ type: 'res.create', execute: () => 2 }))).toMatchObject({ code: 'STOKER_STEP_TYPE_CONFLICT' });
    expect(steps.types()).toEqual(['res.create']);
  });
});
