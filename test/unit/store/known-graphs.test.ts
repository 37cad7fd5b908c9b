/**
 * KnownGraphs (src/store/graphs.ts): the parsed graphs a store keeps are bounded both in
 * number and in the bytes of their JSON text, the oldest dropped first; a dropped graph's
 * hash stays known as committed, so starts still omit its text.
 */
import { describe, expect, it } from 'vitest';
import type { FlowGraph } from '../../../src/flow/graph.js';
import { KnownGraphs } from '../../../src/store/graphs.js';

const graph = (flow: string): FlowGraph => ({ flow }) as unknown as FlowGraph;

describe('KnownGraphs', () => {
  it('keeps at most maxParsed graphs, dropping the oldest, and still knows their hashes', () => {
    const known = new KnownGraphs(2, 1_000);
    known.remember('a', graph('a'), 10);
    known.remember('b', graph('b'), 10);
    known.remember('c', graph('c'), 10);
    expect(known.get('a')).toBeUndefined();
    expect(known.get('b')).toEqual(graph('b'));
    expect(known.get('c')).toEqual(graph('c'));
    expect(['a', 'b', 'c'].map((h) => known.has(h))).toEqual([true, true, true]);
  });

  it('keeps at most maxBytes of graph text, dropping as many of the oldest as it takes', () => {
    const known = new KnownGraphs(100, 100);
    known.remember('a', graph('a'), 40);
    known.remember('b', graph('b'), 40);
    known.remember('c', graph('c'), 30);
    // 110 bytes would not fit: a goes, b (40) and c (30) stay
    expect([known.get('a'), known.get('b')?.flow, known.get('c')?.flow]).toEqual([undefined, 'b', 'c']);
    known.remember('d', graph('d'), 95);
    expect([known.get('b'), known.get('c'), known.get('d')?.flow]).toEqual([undefined, undefined, 'd']);
  });

  it('does not keep a graph larger than the whole budget, nor evict others for it, but knows it is committed', () => {
    const known = new KnownGraphs(10, 100);
    known.remember('small', graph('small'), 50);
    known.remember('huge', graph('huge'), 101);
    expect(known.get('huge')).toBeUndefined();
    expect(known.has('huge')).toBe(true);
    expect(known.get('small')?.flow).toBe('small');
  });

  it('remembering a graph it holds again changes nothing', () => {
    const known = new KnownGraphs(2, 100);
    known.remember('a', graph('a'), 60);
    known.remember('a', graph('a'), 60);
    known.remember('b', graph('b'), 40);
    expect([known.get('a')?.flow, known.get('b')?.flow]).toEqual(['a', 'b']);
  });
});
