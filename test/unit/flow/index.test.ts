import { describe, it, expect } from 'vitest';
import * as flow from '../../../src/flow/index.js';

describe('flow index', () => {
  it('exports the public pieces that work together', () => {
    const fetch = flow.task({
      name: 'fetch',
      requires: ['url'],
      provides: ['body', 'status'],
      execute: () => ['x', 200],
    });
    const store = flow.task({ name: 'store', requires: ['body'], execute: () => null });
    const registry = new flow.FlowRegistry();
    const compiled = registry.register(
      flow.linear('crawl', [fetch, flow.unordered('save', [store], { retry: flow.times(2) })], { version: '3' }),
    );
    expect(registry.get('crawl').version).toBe('3');
    expect(compiled.graph.format).toBe(flow.GRAPH_FORMAT);
    expect(compiled.graph.arguments).toEqual(['url']);
    const input = compiled.graph.atoms.find((a) => a.name === 'store')?.inputs.body;
    expect(input).toEqual({ from: 'atom', atom: 0, key: 'body' });
    const provider = compiled.graph.atoms[0];
    expect(provider && input?.from === 'atom' ? flow.providedValue(['x', 200], provider, input.key) : null).toBe('x');
    expect(typeof flow.forEach).toBe('function');
    expect(typeof flow.parameterizedForEach).toBe('function');
    expect(typeof flow.alwaysRevert).toBe('function');
    expect(typeof flow.revertAll).toBe('function');
    expect(typeof flow.graph).toBe('function');
    expect(flow.FLOW_LIMITS).toEqual({ maxAtoms: 10_000, maxDepth: 64, maxEdges: 1_000_000 });
  });
});
