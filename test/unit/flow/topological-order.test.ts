import { describe, it, expect } from 'vitest';
import { topologicalOrder } from '../../../src/flow/topological-order.js';

describe('topologicalOrder', () => {
  it('orders with ties by number', () => {
    expect(topologicalOrder([[3], [3], [0], []])).toEqual({ ok: true, order: [1, 2, 0, 3] });
  });
  it('returns one cycle starting at its smallest node', () => {
    expect(topologicalOrder([[1], [2], [3], [1]])).toEqual({ ok: false, cycle: [1, 2, 3, 1] });
    expect(topologicalOrder([[0]])).toEqual({ ok: false, cycle: [0, 0] });
  });
  it('handles a 100,000-long chain without recursion', () => {
    const n = 100_000;
    const successors = Array.from({ length: n }, (_, i) => (i + 1 < n ? [i + 1] : []));
    const result = topologicalOrder(successors);
    expect(result.ok && result.order.length).toBe(n);
    successors[n - 1] = [0];
    const cyclic = topologicalOrder(successors);
    expect(cyclic.ok ? 0 : cyclic.cycle.length).toBe(n + 1);
  });
});
