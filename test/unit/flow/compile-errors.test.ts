import { describe, it, expect } from 'vitest';
import { compileFlow, FLOW_LIMITS } from '../../../src/flow/compile.js';
import { graph, linear, unordered } from '../../../src/flow/patterns.js';
import { forEach, parameterizedForEach, times } from '../../../src/flow/retry.js';
import type { FlowDefinition } from '../../../src/flow/types.js';
import { ValidationError } from '../../../src/errors.js';
import { expectError, t } from './helpers.js';

describe('compileFlow: cycles', () => {
  it('reports one concrete cycle of explicit links', () => {
    const error = expectError(
      () =>
        compileFlow(
          graph(
            'loop',
            [t('a'), t('b'), t('c'), t('d')],
            [
              { from: 'a', to: 'b' },
              { from: 'b', to: 'c' },
              { from: 'c', to: 'a' },
              { from: 'c', to: 'd' },
            ],
          ),
        ),
      'STOKER_FLOW_CYCLE',
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toBe("The flow 'loop' has a dependency cycle: a → b → c → a.");
    expect(error.details).toEqual({ flow: 'loop', cycle: ['a', 'b', 'c', 'a'] });
  });

  it('reports a cycle made of a link and inferred data flow', () => {
    const error = expectError(
      () => compileFlow(graph('g', [t('a', { requires: ['x'] }), t('b', { provides: 'x' })], [{ from: 'a', to: 'b' }])),
      'STOKER_FLOW_CYCLE',
    );
    expect(error.message).toContain('a → b → a');
  });

  it('reports a cycle through nested flows by atom names', () => {
    const error = expectError(
      () =>
        compileFlow(
          graph(
            'root',
            [linear('one', [t('a1'), t('a2', { requires: ['y'] })]), linear('two', [t('b1', { provides: 'y' }), t('b2')])],
            [{ from: 'one', to: 'two' }],
          ),
        ),
      'STOKER_FLOW_CYCLE',
    );
    expect(error.details.cycle).toEqual(['a2', 'b1', 'a2']);
  });

  it('reports a cycle created by moving an edge to the end of a retry scope', () => {
    // c needs p's value, so it waits for all of the retried flow, including q; but q needs
    // c's value: q → c → q.
    const error = expectError(
      () =>
        compileFlow(
          graph('root', [
            unordered('sub', [t('p', { provides: 'v' }), t('q', { requires: ['w'] })], { retry: times(2) }),
            t('c', { requires: ['v'], provides: 'w' }),
          ]),
        ),
      'STOKER_FLOW_CYCLE',
    );
    expect(error.details.cycle).toEqual(['q', 'c', 'q']);
  });

  it('rejects a self-link when the graph is defined', () => {
    const error = expectError(() => graph('g', [t('a')], [{ from: 'a', to: 'a' }]), 'STOKER_FLOW_CYCLE');
    expect(error.message).toBe("Link 0 of graph flow 'g' links 'a' to itself.");
  });

  it('rejects a task that requires its own value', () => {
    const error = expectError(() => compileFlow(linear('f', [t('a', { requires: ['x'], provides: 'x' })])), 'STOKER_FLOW_CYCLE');
    expect(error.message).toContain("a → a (task 'a' requires 'x', which it provides itself)");
  });
});

describe('compileFlow: names and providers', () => {
  it('rejects two tasks with one name in different nested flows', () => {
    const error = expectError(
      () => compileFlow(linear('root', [linear('x', [t('same')]), unordered('y', [t('same')])])),
      'STOKER_FLOW_DUPLICATE_NAME',
    );
    expect(error.message).toBe("The name 'same' is used twice in flow 'root': by task 'same' in flow 'x' and by task 'same' in flow 'y'.");
  });

  it('rejects a flow named like a task', () => {
    const error = expectError(
      () => compileFlow(linear('root', [t('step'), linear('step2', [linear('step', [t('other')])])])),
      'STOKER_FLOW_DUPLICATE_NAME',
    );
    expect(error.message).toContain("by task 'step' in flow 'root' and by flow 'step' in flow 'step2'");
  });

  it('rejects the same task object used twice', () => {
    const shared = t('shared');
    expectError(() => compileFlow(linear('root', [shared, linear('sub', [shared])])), 'STOKER_FLOW_DUPLICATE_NAME');
  });

  it('rejects a task named like a retry controller', () => {
    const error = expectError(
      () => compileFlow(linear('root', [linear('sub', [t('a')], { retry: times(2) }), t('sub.retry')])),
      'STOKER_FLOW_DUPLICATE_NAME',
    );
    expect(error.message).toContain("the retry controller of flow 'sub'");
  });

  it('rejects two atoms providing one value, naming both', () => {
    const error = expectError(
      () => compileFlow(unordered('root', [t('a', { provides: 'x' }), linear('sub', [t('b', { provides: ['y', 'x'] })])])),
      'STOKER_FLOW_DUPLICATE_PROVIDER',
    );
    expect(error.message).toBe("The value 'x' is provided by both 'a' and 'b' in flow 'root'.");
    expect(error.details.providers).toEqual(['a', 'b']);
  });

  it('rejects a controller value that a task also provides', () => {
    const error = expectError(
      () =>
        compileFlow(linear('root', [t('a', { provides: 'zone' }), linear('sub', [t('b')], { retry: forEach([1], { provides: 'zone' }) })])),
      'STOKER_FLOW_DUPLICATE_PROVIDER',
    );
    expect(error.message).toContain("task 'a' and the retry controller of flow 'sub'");
  });

  it('rejects a controller value that shadows an enclosing controller value', () => {
    const error = expectError(
      () =>
        compileFlow(
          linear('root', [linear('inner', [t('a')], { retry: times(2, { provides: 'n' }) })], {
            retry: times(2, { provides: 'n' }),
          }),
        ),
      'STOKER_FLOW_DUPLICATE_PROVIDER',
    );
    expect(error.message).toContain("enclosing flow 'root'");
  });

  it('rejects a link to an unknown child of a hand-made graph flow', () => {
    const g = graph('g', [t('a'), t('b')]);
    const broken: FlowDefinition = { ...g, links: [{ from: 'a', to: 'nope' }] };
    const error = expectError(() => compileFlow(broken), 'STOKER_FLOW_INVALID');
    expect(error.message).toBe("Link 0 of graph flow 'g' names unknown child 'nope'; children are: a, b.");
  });

  it('rejects something that is not a flow', () => {
    const error = expectError(() => compileFlow(t('a') as unknown as FlowDefinition), 'STOKER_FLOW_INVALID');
    expect(error.message).toContain('wrap it in linear()');
    const broken: FlowDefinition = { ...linear('f', [t('a')]), children: [{ type: 'task', name: 'x' } as never] };
    expect(expectError(() => compileFlow(broken), 'STOKER_FLOW_INVALID').message).toContain("Child 0 of flow 'f'");
  });
});

describe('compileFlow: requirements', () => {
  it('treats values no atom provides as run arguments', () => {
    const g = compileFlow(linear('f', [t('a', { requires: ['b', 'a1'] })])).graph;
    expect(g.arguments).toEqual(['a1', 'b']);
  });

  it('rejects a value provided only by a later step of a linear flow', () => {
    const error = expectError(
      () => compileFlow(linear('f', [t('use', { requires: ['x'] }), linear('later', [t('make', { provides: 'x' })])])),
      'STOKER_FLOW_MISSING_REQUIREMENT',
    );
    expect(error.message).toBe("Task 'use' requires 'x', but its only provider 'make' runs later in linear flow 'f'.");
    expect(error.details).toEqual({ flow: 'f', atom: 'use', value: 'x', provider: 'make' });
  });

  it('rejects a rebound value provided only by a later step', () => {
    const error = expectError(
      () => compileFlow(linear('f', [t('use', { requires: ['input'], rebind: { input: 'x' } }), t('make', { provides: 'x' })])),
      'STOKER_FLOW_MISSING_REQUIREMENT',
    );
    expect(error.details.value).toBe('x');
  });

  it('rejects a dependency between children of an unordered flow', () => {
    const error = expectError(
      () => compileFlow(unordered('u', [t('make', { provides: 'x' }), linear('deep', [t('use', { requires: ['x'] })])])),
      'STOKER_FLOW_MISSING_REQUIREMENT',
    );
    expect(error.message).toContain("its only provider 'make' is its sibling in unordered flow 'u'");
  });

  it('allows a dependency inside one child of an unordered flow', () => {
    const g = compileFlow(unordered('u', [graph('g', [t('use', { requires: ['x'] }), t('make', { provides: 'x' })]), t('other')])).graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['make', 'use', 'other']);
  });

  it('allows a graph flow to infer a link from a provider defined later', () => {
    const g = compileFlow(graph('g', [t('use', { requires: ['x'] }), t('make', { provides: 'x' })])).graph;
    expect(g.atoms.map((a) => a.name)).toEqual(['make', 'use']);
  });

  it('rejects a parameterizedForEach reading values from inside the scope it retries', () => {
    const error = expectError(
      () => compileFlow(linear('root', [linear('sub', [t('list', { provides: 'zones' })], { retry: parameterizedForEach('zones') })])),
      'STOKER_FLOW_MISSING_REQUIREMENT',
    );
    expect(error.message).toBe(
      "The retry controller 'sub.retry' requires 'zones', but its only provider 'list' runs inside the flow 'sub' that the controller retries.",
    );
  });
});

describe('compileFlow: limits', () => {
  it(`compiles ${FLOW_LIMITS.maxAtoms} atoms and rejects one more`, () => {
    const tasks = Array.from({ length: FLOW_LIMITS.maxAtoms }, (_, i) => t(`task${i}`));
    const g = compileFlow(linear('big', tasks)).graph;
    expect(g.atoms).toHaveLength(10_000);
    expect(g.atoms[9_999]?.predecessors).toEqual([9_998]);

    const error = expectError(() => compileFlow(linear('bigger', [...tasks, t('one-more')])), 'STOKER_FLOW_TOO_LARGE');
    expect(error.message).toBe("The flow 'bigger' has more than 10000 atoms (tasks plus retry controllers).");
  });

  it('counts retry controllers as atoms', () => {
    const tasks = Array.from({ length: FLOW_LIMITS.maxAtoms }, (_, i) => t(`task${i}`));
    expectError(() => compileFlow(linear('big', tasks, { retry: times(2) })), 'STOKER_FLOW_TOO_LARGE');
  });

  it('compiles 64 levels of nesting and rejects 65', () => {
    let flow = linear('level64', [t('leaf')]);
    for (let level = 63; level >= 1; level--) flow = linear(`level${level}`, [flow]);
    expect(compileFlow(flow).graph.scopes).toHaveLength(64);
    const error = expectError(() => compileFlow(linear('level0', [flow])), 'STOKER_FLOW_TOO_LARGE');
    expect(error.message).toBe("The flow 'level0' nests flows more than 64 levels deep (flow 'level64' is at level 65).");
  });

  it('rejects 100,000 levels of nesting cleanly, without overflowing the stack', () => {
    let flow = linear('n0', [t('leaf')]);
    for (let i = 1; i <= 100_000; i++) flow = unordered(`n${i}`, [flow], i % 7 === 0 ? { retry: times(2) } : {});
    const error = expectError(() => compileFlow(flow), 'STOKER_FLOW_TOO_LARGE');
    expect(error.details).toMatchObject({ flow: 'n100000', limit: 64 });
  });

  it('rejects a hand-made flow that contains itself', () => {
    const looped = { ...linear('loop', [t('a')]) } as { children: unknown[] } & FlowDefinition;
    looped.children = [looped];
    const error = expectError(() => compileFlow(looped), 'STOKER_FLOW_DUPLICATE_NAME');
    expect(error.message).toContain("'loop'");
  });

  it('rejects more edges than the limit', () => {
    const wide = (prefix: string, n: number) =>
      unordered(
        prefix,
        Array.from({ length: n }, (_, i) => t(`${prefix}${i}`)),
      );
    // Every atom of the first layer precedes every atom of the second: 1001 × 1000 edges.
    const error = expectError(() => compileFlow(linear('mesh', [wide('a', 1001), wide('b', 1000)])), 'STOKER_FLOW_TOO_LARGE');
    expect(error.message).toContain('more than 1000000 dependency edges');
  });
});

describe('compileFlow: hand-made definitions', () => {
  const execute = () => null;
  const plainTask = (extra: Record<string, unknown> = {}) =>
    ({
      type: 'task',
      name: 'plain',
      execute,
      revert: undefined,
      requires: ['x'],
      provides: ['y'],
      rebind: {},
      inject: {},
      retry: undefined,
      timeoutMs: undefined,
      ...extra,
    }) as never;

  it('checks a task built without task() and compiles its normalised copy', () => {
    const compiled = compileFlow(linear('f', [plainTask({ retry: { attempts: 2 } })]));
    expect(compiled.graph.atoms[0]?.retry).toEqual({
      attempts: 2,
      backoffMs: 100,
      factor: 2,
      maxBackoffMs: 30000,
      jitter: 0.2,
    });
    expect(compiled.tasks.get('plain')?.execute).toBe(execute);
  });

  it('rejects a task built without task() that task() would reject', () => {
    expect(expectError(() => compileFlow(linear('f', [plainTask({ timeoutMs: -1 })])), 'STOKER_FLOW_INVALID').message).toContain(
      "Invalid timeoutMs of task 'plain'",
    );
    expectError(() => compileFlow(linear('f', [plainTask({ rebind: { x: 'bad name' } })])), 'STOKER_FLOW_INVALID');
  });

  it('rejects a malformed retry controller and a non-function decider', () => {
    const bad = { type: 'retry', spec: { kind: 'times', attempts: 0 }, provides: undefined } as never;
    const flow: FlowDefinition = { ...linear('f', [t('a')]), retry: bad };
    expect(expectError(() => compileFlow(flow), 'STOKER_FLOW_INVALID').message).toContain('times() needs');
    const odd = { type: 'retry', spec: { kind: 'sometimes' }, provides: undefined } as never;
    expect(expectError(() => compileFlow({ ...flow, retry: odd }), 'STOKER_FLOW_INVALID').message).toBe(
      "The retry controller of flow 'f' is malformed.",
    );
    const g = graph('g', [t('a'), t('b')]);
    expectError(() => compileFlow({ ...g, links: [{ from: 'a', to: 'b', decider: 1 as never }] }), 'STOKER_FLOW_INVALID');
  });

  it('rejects links on a linear flow and an invalid root version', () => {
    const l = linear('l', [t('a'), t('b')]);
    expect(expectError(() => compileFlow({ ...l, links: [{ from: 'a', to: 'b' }] }), 'STOKER_FLOW_INVALID').message).toBe(
      "The linear flow 'l' has links; only graph flows may have links.",
    );
    expectError(() => compileFlow({ ...l, version: 'v 1' }), 'STOKER_FLOW_INVALID');
  });
});
