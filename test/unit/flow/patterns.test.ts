import { describe, it, expect } from 'vitest';
import { graph, linear, unordered } from '../../../src/flow/patterns.js';
import { times } from '../../../src/flow/retry.js';
import type { Link } from '../../../src/flow/types.js';
import { expectError, t } from './helpers.js';

describe('linear, unordered, graph', () => {
  it('build frozen definitions with a default version', () => {
    const a = t('a');
    const inner = unordered('inner', [t('b')]);
    const flow = linear('outer', [a, inner], { retry: times(2) });
    expect(flow).toEqual({
      type: 'flow',
      pattern: 'linear',
      name: 'outer',
      version: '1',
      children: [a, inner],
      links: [],
      retry: times(2),
    });
    expect(Object.isFrozen(flow)).toBe(true);
    expect(Object.isFrozen(flow.children)).toBe(true);
    expect(inner.pattern).toBe('unordered');
  });

  it('copies children and links so later edits do not change the flow', () => {
    const children = [t('a'), t('b')];
    const links: Link[] = [{ from: 'a', to: 'b' }];
    const flow = graph('g', children, links, { version: '2024-05-01' });
    children.push(t('c'));
    links.push({ from: 'b', to: 'a' });
    expect(flow.children.map((c) => c.name)).toEqual(['a', 'b']);
    expect(flow.links).toEqual([{ from: 'a', to: 'b' }]);
    expect(flow.version).toBe('2024-05-01');
  });

  it('merges a link written twice with the same decider', () => {
    const d = () => true;
    const flow = graph(
      'g',
      [t('a'), t('b')],
      [
        { from: 'a', to: 'b', decider: d },
        { from: 'a', to: 'b', decider: d },
      ],
    );
    expect(flow.links).toEqual([{ from: 'a', to: 'b', decider: d }]);
  });

  it('rejects invalid names, versions and options', () => {
    expect(expectError(() => linear('1st', [t('a')]), 'STOKER_FLOW_INVALID').message).toContain("Invalid linear flow name '1st'");
    expect(expectError(() => linear('f', [t('a')], { version: '' }), 'STOKER_FLOW_INVALID').message).toContain(
      "Invalid version '' of linear flow 'f'",
    );
    expect(expectError(() => linear('f', [t('a')], { retries: 3 } as never), 'STOKER_FLOW_INVALID').message).toBe(
      "Unknown option 'retries' in options of linear flow 'f' (known: retry, version).",
    );
    expect(expectError(() => linear('f', [t('a')], { retry: 3 } as never), 'STOKER_FLOW_INVALID').message).toContain(
      "The retry option of linear flow 'f' must be a retry controller",
    );
  });

  it('rejects empty, non-array and foreign children', () => {
    expect(expectError(() => unordered('u', []), 'STOKER_FLOW_INVALID').message).toBe("The unordered flow 'u' has no children.");
    expectError(() => unordered('u', 'a' as never), 'STOKER_FLOW_INVALID');
    expect(expectError(() => linear('f', [t('a'), { name: 'b' } as never]), 'STOKER_FLOW_INVALID').message).toBe(
      "Child 1 of linear flow 'f' is neither a task (from task()) nor a flow (from linear, unordered or graph).",
    );
  });

  it('rejects two direct children with one name', () => {
    const error = expectError(() => unordered('u', [t('a'), linear('a', [t('b')])]), 'STOKER_FLOW_DUPLICATE_NAME');
    expect(error.message).toBe("The unordered flow 'u' has two children named 'a' (children 0 and 1).");
  });

  it('rejects links to unknown children, self-links and bad deciders', () => {
    expect(expectError(() => graph('g', [t('a'), t('b')], [{ from: 'a', to: 'c' }]), 'STOKER_FLOW_INVALID').message).toBe(
      "Link 0 of graph flow 'g' names unknown child 'c' as 'to'; children are: a, b.",
    );
    expectError(() => graph('g', [t('a')], [{ from: 'a', to: 'a' }]), 'STOKER_FLOW_CYCLE');
    expect(
      expectError(() => graph('g', [t('a'), t('b')], [{ from: 'a', to: 'b', decider: 'yes' } as never]), 'STOKER_FLOW_INVALID').message,
    ).toBe("The decider of link 0 (a → b) of graph flow 'g' must be a function.");
    expect(
      expectError(
        () =>
          graph(
            'g',
            [t('a'), t('b')],
            [
              { from: 'a', to: 'b', decider: () => true },
              { from: 'a', to: 'b' },
            ],
          ),
        'STOKER_FLOW_INVALID',
      ).message,
    ).toBe("The graph flow 'g' links a → b twice with different deciders.");
    expectError(() => graph('g', [t('a'), t('b')], [{ from: 'a', to: 'b', when: 1 } as never]), 'STOKER_FLOW_INVALID');
  });
});
