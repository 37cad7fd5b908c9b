/** The peer ring of EngineOptions.watchPeers: whom each engine watches. */
import { describe, expect, it } from 'vitest';
import { ringSuccessor, watchTarget } from '../../../../src/engine/liveness/peer-ring.js';

describe('ringSuccessor', () => {
  it('is the next id in order, the last one wrapping around to the first', () => {
    const ids = ['c', 'a', 'b'];
    expect(ringSuccessor('a', ids)).toBe('b');
    expect(ringSuccessor('b', ids)).toBe('c');
    expect(ringSuccessor('c', ids)).toBe('a');
  });

  it('watches every engine exactly once when each engine watches its successor', () => {
    const ids = Array.from({ length: 7 }, (_, i) => `e-${(i * 37) % 101}`);
    const watched = ids.map((id) => ringSuccessor(id, ids));
    expect(new Set(watched).size).toBe(ids.length);
    expect(watched.every((w, i) => w !== ids[i])).toBe(true);
  });

  it('works for an engine not listed yet, and finds nobody when alone', () => {
    expect(ringSuccessor('b', ['a', 'c'])).toBe('c');
    expect(ringSuccessor('z', ['a', 'c'])).toBe('a');
    expect(ringSuccessor('a', ['a'])).toBeNull();
    expect(ringSuccessor('a', [])).toBeNull();
  });

  it('two engines watch each other', () => {
    expect(ringSuccessor('x', ['x', 'y'])).toBe('y');
    expect(ringSuccessor('y', ['x', 'y'])).toBe('x');
  });
});

describe('watchTarget: the ring runs over processes', () => {
  const e = (id: string, pid: number, host = 'h1') => ({ id, host, pid });

  it('the lowest id of each process watches the next process, the others follow', () => {
    const engines = [e('a', 1), e('d', 1), e('b', 2), e('c', 3), e('e', 3)];
    expect(watchTarget(e('a', 1), engines)).toEqual({ role: 'watch', peer: 'b' });
    expect(watchTarget(e('d', 1), engines)).toEqual({ role: 'follower' });
    expect(watchTarget(e('b', 2), engines)).toEqual({ role: 'watch', peer: 'c' });
    expect(watchTarget(e('c', 3), engines)).toEqual({ role: 'watch', peer: 'a' });
    expect(watchTarget(e('e', 3), engines)).toEqual({ role: 'follower' });
  });

  it('every process is watched by exactly one other', () => {
    const engines = Array.from({ length: 12 }, (_, i) => e(`id-${(i * 7919) % 1000}`, i % 4, i % 2 ? 'h1' : 'h2'));
    const watched = engines.flatMap((x) => {
      const r = watchTarget(x, engines);
      return r.role === 'watch' ? [r.peer] : [];
    });
    const processOf = (id: string) => engines.find((x) => x.id === id)!;
    const keys = watched.map((id) => `${processOf(id).host}/${processOf(id).pid}`);
    expect(new Set(keys).size).toBe(new Set(engines.map((x) => `${x.host}/${x.pid}`)).size);
    expect(keys).toHaveLength(new Set(keys).size);
  });

  it('the same pid on another host is another process; alone means nothing to watch', () => {
    expect(watchTarget(e('a', 1, 'h1'), [e('b', 1, 'h2')])).toEqual({ role: 'watch', peer: 'b' });
    expect(watchTarget(e('a', 1), [e('a', 1), e('b', 1)])).toEqual({ role: 'alone' });
    expect(watchTarget(e('b', 1), [e('a', 1), e('b', 1)])).toEqual({ role: 'follower' });
    // not listed yet (registering): it still takes its place
    expect(watchTarget(e('a', 1), [e('b', 2)])).toEqual({ role: 'watch', peer: 'b' });
  });
});
