import { describe, it, expect } from 'vitest';
import { compileFlow } from '../../../src/flow/compile.js';
import { graph, linear, unordered } from '../../../src/flow/patterns.js';
import { forEach, parameterizedForEach, revertAll, times } from '../../../src/flow/retry.js';
import { GRAPH_FORMAT, type FlowGraph } from '../../../src/flow/graph.js';
import { atom, edges, ix, preds, t } from './helpers.js';

/** Every edge goes forward, predecessors and successors agree and are sorted. */
function expectWellFormed(g: FlowGraph): void {
  g.atoms.forEach((a, i) => {
    expect(a.index).toBe(i);
    expect([...a.predecessors].sort((x, y) => x - y)).toEqual(a.predecessors);
    expect([...a.successors].sort((x, y) => x - y)).toEqual(a.successors);
    for (const s of a.successors) {
      expect(s).toBeGreaterThan(i);
      expect(g.atoms[s]?.predecessors).toContain(i);
    }
    for (const p of a.predecessors) {
      expect(p).toBeLessThan(i);
      expect(g.atoms[p]?.successors).toContain(i);
    }
  });
}

describe('compileFlow: patterns', () => {
  it('chains a linear flow and records scope, arguments and outputs', () => {
    const compiled = compileFlow(
      linear('order', [
        t('reserve', { requires: ['orderId'], provides: 'reservation' }),
        t('charge', { requires: ['reservation', 'card'], provides: 'payment' }),
        t('ship', { requires: ['reservation'] }),
      ]),
    );
    const g = compiled.graph;
    expect(compiled.name).toBe('order');
    expect(compiled.version).toBe('1');
    expect(g.format).toBe(GRAPH_FORMAT);
    expect(g.flow).toBe('order');
    expect(g.atoms.map((a) => a.name)).toEqual(['reserve', 'charge', 'ship']);
    expect(edges(g)).toEqual(['charge->ship', 'reserve->charge', 'reserve->ship']);
    expect(atom(g, 'reserve')).toEqual({
      index: 0,
      name: 'reserve',
      kind: 'task',
      scope: 0,
      inputs: { orderId: { from: 'arg', name: 'orderId' } },
      provides: ['reservation'],
      predecessors: [],
      successors: [1, 2],
      hasRevert: false,
    });
    expect(atom(g, 'charge').inputs).toEqual({
      reservation: { from: 'atom', atom: 0 },
      card: { from: 'arg', name: 'card' },
    });
    expect(g.scopes).toEqual([{ index: 0, name: 'order', parent: null, controller: null, atoms: [0, 1, 2] }]);
    expect(g.arguments).toEqual(['card', 'orderId']);
    expect(g.outputs).toEqual({ reservation: { from: 'atom', atom: 0 }, payment: { from: 'atom', atom: 1 } });
    expect([...compiled.tasks.keys()]).toEqual(['reserve', 'charge', 'ship']);
    expect(compiled.deciders.size).toBe(0);
    expectWellFormed(g);
  });

  it('leaves the children of an unordered flow unlinked', () => {
    const g = compileFlow(unordered('fetch', [t('users'), t('orders'), t('stock')])).graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['users', 'orders', 'stock']);
    expect(edges(g)).toEqual([]);
    expect(g.atoms.every((a) => a.predecessors.length === 0)).toBe(true);
  });

  it('orders a graph flow by links and inferred data flow, numbering topologically', () => {
    // Defined backwards on purpose: the numbering must follow the dependencies.
    const g = compileFlow(graph('g', [t('c', { requires: ['x'] }), t('b', { provides: 'x' }), t('a')], [{ from: 'a', to: 'b' }])).graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['a', 'b', 'c']);
    expect(edges(g)).toEqual(['a->b', 'b->c']);
    expect(atom(g, 'c').inputs).toEqual({ x: { from: 'atom', atom: 1 } });
    expect(g.arguments).toEqual([]);
    expectWellFormed(g);
  });

  it('breaks ties between ready atoms in definition order', () => {
    const g = compileFlow(
      graph(
        'g',
        [t('z'), t('y'), t('x'), t('w')],
        [
          { from: 'x', to: 'w' },
          { from: 'z', to: 'w' },
        ],
      ),
    ).graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['z', 'y', 'x', 'w']);
  });

  it('links a nested flow as a whole in a linear flow', () => {
    const g = compileFlow(linear('root', [t('a'), unordered('par', [t('b'), t('c')]), t('d')])).graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(edges(g)).toEqual(['a->b', 'a->c', 'b->d', 'c->d']);
    expect(g.scopes).toEqual([
      { index: 0, name: 'root', parent: null, controller: null, atoms: [0, 1, 2, 3] },
      { index: 1, name: 'par', parent: 0, controller: null, atoms: [1, 2] },
    ]);
    expect(atom(g, 'b').scope).toBe(1);
    expect(atom(g, 'd').scope).toBe(0);
  });

  it('links from the sinks and to the sources of nested flows in a graph flow', () => {
    const g = compileFlow(
      graph(
        'root',
        [linear('first', [t('a1'), t('a2')]), linear('second', [t('b1'), t('b2')]), t('c')],
        [
          { from: 'first', to: 'second' },
          { from: 'second', to: 'c' },
        ],
      ),
    ).graph;
    expect(edges(g)).toEqual(['a1->a2', 'a2->b1', 'b1->b2', 'b2->c']);
  });

  it('infers data flow across nesting levels, and keeps unrelated branches parallel', () => {
    const g = compileFlow(
      graph('root', [
        linear('make', [t('build', { provides: 'artifact' }), t('test')]),
        unordered('publish', [t('upload', { requires: ['artifact'] }), t('announce')]),
      ]),
    ).graph;
    expect(edges(g)).toEqual(['build->test', 'build->upload']);
    expect(preds(g, 'announce')).toEqual([]);
    expect(atom(g, 'upload').inputs).toEqual({ artifact: { from: 'atom', atom: ix(g, 'build') } });
  });

  it('uses the value name as key for multi-provides atoms and the whole result otherwise', () => {
    const g = compileFlow(
      linear('dims', [
        t('measure', { provides: ['width', 'height'] }),
        t('label', { provides: 'text' }),
        t('render', { requires: ['height', 'text', 'width'] }),
      ]),
    ).graph;
    expect(atom(g, 'render').inputs).toEqual({
      height: { from: 'atom', atom: 0, key: 'height' },
      text: { from: 'atom', atom: 1 },
      width: { from: 'atom', atom: 0, key: 'width' },
    });
    expect(g.outputs).toEqual({
      width: { from: 'atom', atom: 0, key: 'width' },
      height: { from: 'atom', atom: 0, key: 'height' },
      text: { from: 'atom', atom: 1 },
    });
  });

  it('applies rebind and inject', () => {
    const g = compileFlow(
      linear('thumbs', [
        t('upload', { provides: 'uploaded' }),
        t('resize', {
          requires: ['image', 'size'],
          rebind: { image: 'uploaded', size: 'thumbSize' },
          inject: { quality: 90, mode: { fit: 'cover' } },
        }),
      ]),
    ).graph;
    expect(atom(g, 'resize').inputs).toEqual({
      image: { from: 'atom', atom: 0 },
      size: { from: 'arg', name: 'thumbSize' },
      quality: { from: 'value', value: 90 },
      mode: { from: 'value', value: { fit: 'cover' } },
    });
    expect(g.arguments).toEqual(['thumbSize']);
    expect(preds(g, 'resize')).toEqual(['upload']);
  });

  it('takes an injected constant instead of a provider for the same argument', () => {
    const g = compileFlow(graph('g', [t('p', { provides: 'x' }), t('c', { requires: ['x'], inject: { x: 1 } })])).graph;
    expect(atom(g, 'c').inputs).toEqual({ x: { from: 'value', value: 1 } });
    expect(edges(g)).toEqual([]);
  });

  it('copies hasRevert, retry and timeoutMs from the task', () => {
    const g = compileFlow(
      linear('f', [t('a', { revert: () => null, retry: 4, timeoutMs: 5000 }), t('b', { retry: { attempts: 2, jitter: 0 } })]),
    ).graph;
    expect(atom(g, 'a')).toMatchObject({
      hasRevert: true,
      timeoutMs: 5000,
      retry: { attempts: 4, backoffMs: 100, factor: 2, maxBackoffMs: 30000, jitter: 0.2 },
    });
    expect(atom(g, 'b').hasRevert).toBe(false);
    expect(atom(g, 'b').retry).toEqual({ attempts: 2, backoffMs: 100, factor: 2, maxBackoffMs: 30000, jitter: 0 });
    expect('timeoutMs' in atom(g, 'b')).toBe(false);
  });

  it('uses the root version and ignores versions of nested flows', () => {
    const compiled = compileFlow(linear('root', [linear('inner', [t('a')], { version: '7' })], { version: '2.1' }));
    expect(compiled.version).toBe('2.1');
    expect(compiled.graph.version).toBe('2.1');
  });

  it('is deterministic, frozen and survives a JSON round trip', () => {
    const build = () =>
      graph('g', [
        t('a', { provides: 'x' }),
        unordered('u', [t('b', { requires: ['x'] }), t('c', { requires: ['x'] })], { retry: times(2) }),
        t('d', { requires: ['x', 'y'] }),
      ]);
    const first = compileFlow(build()).graph;
    expect(compileFlow(build()).graph).toEqual(first);
    expect(JSON.parse(JSON.stringify(first))).toEqual(first);
    expect(Object.isFrozen(first.atoms[0])).toBe(true);
    expect(Object.isFrozen(first.atoms[0]?.predecessors)).toBe(true);
  });
});

describe('compileFlow: retry controllers', () => {
  it('places the controller at the start of its scope', () => {
    const compiled = compileFlow(linear('root', [t('a'), linear('sub', [t('b'), t('c')], { retry: times(3) }), t('d')]));
    const g = compiled.graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['a', 'sub.retry', 'b', 'c', 'd']);
    expect(edges(g)).toEqual(['a->sub.retry', 'b->c', 'c->d', 'sub.retry->b']);
    expect(atom(g, 'sub.retry')).toEqual({
      index: 1,
      name: 'sub.retry',
      kind: 'retry',
      scope: 1,
      inputs: {},
      provides: [],
      predecessors: [0],
      successors: [2],
      controller: { kind: 'times', attempts: 3 },
      hasRevert: false,
    });
    expect(g.scopes[1]).toEqual({ index: 1, name: 'sub', parent: 0, controller: 1, atoms: [1, 2, 3] });
    // Controllers are not tasks: the engine finds no code for them.
    expect(compiled.tasks.has('sub.retry')).toBe(false);
  });

  it('links the controller to every atom of the scope that waits for nothing in it', () => {
    const g = compileFlow(
      unordered('root', [t('x'), graph('sub', [t('a'), t('b'), t('c')], [{ from: 'a', to: 'c' }], { retry: revertAll() })]),
    ).graph;
    expect(edges(g)).toEqual(['a->c', 'sub.retry->a', 'sub.retry->b']);
    expect(atom(g, 'sub.retry').controller).toEqual({ kind: 'revertAll' });
  });

  it('gives a retry controller on the root scope 0', () => {
    const g = compileFlow(unordered('root', [t('a'), t('b')], { retry: times(2) })).graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['root.retry', 'a', 'b']);
    expect(g.scopes[0]).toEqual({ index: 0, name: 'root', parent: null, controller: 0, atoms: [0, 1, 2] });
    expect(edges(g)).toEqual(['root.retry->a', 'root.retry->b']);
  });

  it('moves an edge leaving a retry scope to leave from all of its sinks', () => {
    const g = compileFlow(
      graph('root', [unordered('sub', [t('p', { provides: 'v' }), t('q')], { retry: times(2) }), t('consumer', { requires: ['v'] })]),
    ).graph;
    // consumer needs only p's value, but must not start while q may still fail and
    // make the controller retry (and re-run p).
    expect(preds(g, 'consumer')).toEqual(['p', 'q']);
    expect(atom(g, 'consumer').inputs).toEqual({ v: { from: 'atom', atom: ix(g, 'p') } });
    expect(edges(g)).toEqual(['p->consumer', 'q->consumer', 'sub.retry->p', 'sub.retry->q']);
  });

  it('moves the edge from an inner atom to the sinks of the outermost retry scope it leaves', () => {
    const g = compileFlow(
      graph('root', [
        linear('outer', [linear('inner', [t('p', { provides: 'v' }), t('r')], { retry: times(2) }), t('s')], {
          retry: times(3),
        }),
        t('consumer', { requires: ['v'] }),
        t('free'),
      ]),
    ).graph;
    expect(preds(g, 'consumer')).toEqual(['s']);
    expect(atom(g, 'p').successors.map((i) => g.atoms[i]?.name)).toEqual(['r']);
    expect(preds(g, 'free')).toEqual([]);
    expectWellFormed(g);
  });

  it('keeps an edge that stays inside the retry scope as it is', () => {
    const g = compileFlow(
      linear('root', [graph('sub', [t('p', { provides: 'v' }), t('c', { requires: ['v'] }), t('q')], [], { retry: times(2) })]),
    ).graph;
    expect(preds(g, 'c')).toEqual(['p']);
  });

  it('publishes the controller value to atoms inside its scope only', () => {
    const g = compileFlow(
      linear('root', [
        linear('place', [t('create', { requires: ['zone'] })], {
          retry: forEach(['az-1', 'az-2'], { provides: 'zone' }),
        }),
        t('report', { requires: ['zone'] }),
      ]),
    ).graph;
    expect(atom(g, 'place.retry')).toMatchObject({
      provides: ['zone'],
      controller: { kind: 'forEach', values: ['az-1', 'az-2'] },
    });
    expect(atom(g, 'create').inputs).toEqual({ zone: { from: 'atom', atom: ix(g, 'place.retry') } });
    // Outside the scope the name is not visible, so it is a run argument.
    expect(atom(g, 'report').inputs).toEqual({ zone: { from: 'arg', name: 'zone' } });
    expect(g.arguments).toEqual(['zone']);
    expect(g.outputs).toEqual({});
  });

  it('lets sibling scopes publish controller values under the same name', () => {
    const g = compileFlow(
      unordered('root', [
        linear('one', [t('a', { requires: ['attempt'] })], { retry: times(2, { provides: 'attempt' }) }),
        linear('two', [t('b', { requires: ['attempt'] })], { retry: times(3, { provides: 'attempt' }) }),
      ]),
    ).graph;
    expect(atom(g, 'a').inputs).toEqual({ attempt: { from: 'atom', atom: ix(g, 'one.retry') } });
    expect(atom(g, 'b').inputs).toEqual({ attempt: { from: 'atom', atom: ix(g, 'two.retry') } });
  });

  it('compiles parameterizedForEach from a run argument', () => {
    const g = compileFlow(
      linear('root', [linear('place', [t('create')], { retry: parameterizedForEach('zones', { provides: 'zone' }) })]),
    ).graph;
    expect(atom(g, 'place.retry')).toMatchObject({
      inputs: { zones: { from: 'arg', name: 'zones' } },
      controller: { kind: 'parameterizedForEach', valuesFrom: { from: 'arg', name: 'zones' } },
    });
    expect(g.arguments).toEqual(['zones']);
  });

  it('compiles parameterizedForEach from an earlier atom and waits for it', () => {
    const g = compileFlow(
      graph('root', [linear('place', [t('create')], { retry: parameterizedForEach('zones') }), t('listZones', { provides: 'zones' })]),
    ).graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['listZones', 'place.retry', 'create']);
    expect(atom(g, 'place.retry').controller).toEqual({
      kind: 'parameterizedForEach',
      valuesFrom: { from: 'atom', atom: 0 },
    });
    expect(edges(g)).toEqual(['listZones->place.retry', 'place.retry->create']);
    expect(g.arguments).toEqual([]);
  });
});

describe('compileFlow: deciders', () => {
  it('gives each guarded link an id on the target atom and in the compiled flow', () => {
    const paid = (result: unknown): boolean => result === true;
    const big = (result: unknown): boolean => typeof result === 'number' && result > 10;
    const compiled = compileFlow(
      graph(
        'order',
        [t('charge'), t('ship'), t('count'), t('bulk')],
        [
          { from: 'charge', to: 'ship', decider: paid },
          { from: 'count', to: 'bulk', decider: big },
          { from: 'charge', to: 'bulk' },
        ],
      ),
    );
    const g = compiled.graph;
    expect(atom(g, 'ship').deciders).toEqual({ [String(ix(g, 'charge'))]: 'd0' });
    expect(atom(g, 'bulk').deciders).toEqual({ [String(ix(g, 'count'))]: 'd1' });
    expect('deciders' in atom(g, 'charge')).toBe(false);
    expect([...compiled.deciders.keys()]).toEqual(['d0', 'd1']);
    expect(compiled.deciders.get('d0')).toBe(paid);
    expect(compiled.deciders.get('d1')).toBe(big);
  });

  it('guards every edge of a link to a nested flow', () => {
    const go = (): boolean => true;
    const g = compileFlow(
      graph('root', [t('check'), unordered('work', [t('a'), t('b')])], [{ from: 'check', to: 'work', decider: go }]),
    ).graph;
    const check = String(ix(g, 'check'));
    expect(atom(g, 'a').deciders).toEqual({ [check]: 'd0' });
    expect(atom(g, 'b').deciders).toEqual({ [check]: 'd0' });
  });

  it('keeps the guard when data flow infers the same edge', () => {
    const go = (): boolean => true;
    const g = compileFlow(
      graph('root', [t('a', { provides: 'x' }), t('b', { requires: ['x'] })], [{ from: 'a', to: 'b', decider: go }]),
    ).graph;
    expect(edges(g)).toEqual(['a->b']);
    expect(atom(g, 'b').deciders).toEqual({ '0': 'd0' });
  });
});

describe('compileFlow: numbering', () => {
  it('numbers a larger mixed graph so every edge goes forward', () => {
    const layer = (prefix: string, n: number, retry: boolean) =>
      unordered(
        prefix,
        Array.from({ length: n }, (_, i) => t(`${prefix}${i}`, { provides: `${prefix}v${i}`, requires: i > 0 ? [] : ['seed'] })),
        retry ? { retry: times(2) } : {},
      );
    const g = compileFlow(
      graph(
        'root',
        [
          t('last', { requires: ['Av0', 'Bv3', 'Cv1'] }),
          layer('C', 4, false),
          layer('B', 5, true),
          linear('Achain', [layer('A', 3, false), t('Aend')]),
        ],
        [
          { from: 'Achain', to: 'B' },
          { from: 'B', to: 'C' },
        ],
      ),
    ).graph;
    expectWellFormed(g);
    // B3 is inside B's retry scope, so 'last' waits for all of B.
    expect(preds(g, 'last')).toEqual(['A0', 'B0', 'B1', 'B2', 'B3', 'B4', 'C1']);
    expect(g.atoms[0]?.name).toBe('A0');
    expect(g.arguments).toEqual(['seed']);
  });
});
