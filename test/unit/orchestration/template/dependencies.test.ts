import { describe, expect, it } from 'vitest';
import { isStokerError } from '../../../../src/errors.js';
import {
  buildDependencyGraph,
  collectReferences,
  evaluateConditions,
  instantiateTemplate,
  parseTemplate,
  topologicalOrder,
} from '../../../../src/orchestration/template/index.js';

function errorOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isStokerError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an error');
}
const tpl = (body: string, version = '2017-09-01') => parseTemplate(`heat_template_version: ${version}\n${body}`);

describe('dependency graph', () => {
  const t = tpl(`parameters:
  which: {type: string, default: b}
resources:
  a: {type: x, properties: {p: {get_resource: b}, q: {get_attr: [c, ip, 0]}}}
  b: {type: x, depends_on: c}
  c: {type: x}
  d: {type: x, metadata: {m: {get_attr: [{get_param: which}, name]}}}
  e: {type: x, properties: {v: {get_attr: [a, x, {get_attr: [d, key]}]}}}
`);

  it('collects depends_on, get_resource, get_attr (names computed from parameters too) and orders them', () => {
    const graph = buildDependencyGraph(t, { parameters: { which: 'b' } });
    expect(graph.requires).toEqual({ a: ['b', 'c'], b: ['c'], c: [], d: ['b'], e: ['a', 'd'] });
    expect(graph.requiredBy['c']).toEqual(['a', 'b']);
    expect(topologicalOrder(graph)).toEqual(['c', 'b', 'a', 'd', 'e']);
    const refs = collectReferences(t.resources['a']!.properties, { resourceNames: new Set(Object.keys(t.resources)) });
    expect(refs.attributes).toEqual([{ resource: 'c', attribute: 'ip' }]);
  });

  it('names one concrete cycle, of any length (S4: 1, 2, 1000)', () => {
    expect(errorOf(() => tpl('resources:\n  a: {type: x, depends_on: a}\n'))).toEqual({
      code: 'STOKER_TEMPLATE_CYCLE',
      message: 'resources: Circular dependency between resources: a → a',
    });
    expect(
      errorOf(() =>
        tpl('resources:\n  a: {type: x, properties: {p: {get_attr: [b, x]}}}\n  b: {type: x, properties: {p: {get_resource: a}}}\n'),
      ).message,
    ).toBe('resources: Circular dependency between resources: a → b → a');
    const ring = Array.from({ length: 1000 }, (_, i) => `  r${i}: {type: x, depends_on: r${(i + 1) % 1000}}`).join('\n');
    const e = errorOf(() => tpl(`resources:\n${ring}\n`));
    expect(e.code).toBe('STOKER_TEMPLATE_CYCLE');
    expect(e.message).toMatch(/^resources: Circular dependency between resources: r0 → r1 → r2 → .* → r999 → r0$/);
  });

  it('follows only the taken branch of if once conditions are known', () => {
    const c = tpl(`parameters: {env: {type: string, default: test}}
conditions: {prod: {equals: [{get_param: env}, prod]}}
resources:
  a: {type: x, properties: {p: {if: [prod, {get_resource: b}, {get_resource: c}]}}}
  b: {type: x, properties: {p: {if: [prod, none, {get_resource: a}]}}}
  c: {type: x}
`);
    // statically both branches count, which makes a possible cycle a → b → a ...
    expect(errorOf(() => topologicalOrder(buildDependencyGraph(c))).code).toBe('STOKER_TEMPLATE_CYCLE');
    // ... that no set of parameters can produce
    for (const env of ['test', 'prod']) {
      const i = instantiateTemplate(c, { parameters: { env } });
      expect(i.order).toEqual(env === 'prod' ? ['b', 'c', 'a'] : ['c', 'a', 'b']);
    }
  });

  it('leaves out disabled resources; depends_on on one is ignored, a reference to one is an error', () => {
    const c = tpl(`parameters: {on: {type: boolean, default: false}}
conditions: {enabled: {get_param: on}}
resources:
  opt: {type: x, condition: enabled}
  a: {type: x, depends_on: [opt]}
  b: {type: x, properties: {p: {if: [enabled, {get_resource: opt}, none]}}}
outputs:
  o: {value: {get_attr: [opt, v]}, condition: enabled}
`);
    const off = instantiateTemplate(c);
    expect(off.resourceNames).toEqual(['a', 'b']);
    expect(off.evaluateOutput('o')).toEqual({ name: 'o', description: null, value: null });
    expect(instantiateTemplate(c, { parameters: { on: true } }).graph.requires).toEqual({ opt: [], a: ['opt'], b: ['opt'] });
    const bad = tpl(
      `conditions: {no: false}\nresources:\n  opt: {type: x, condition: no}\n  a: {type: x, properties: {p: {get_resource: opt}}}\n`,
    );
    expect(errorOf(() => instantiateTemplate(bad)).message).toBe(
      'resources.a.properties: "opt" is referenced but its condition is false, so it is not part of the stack',
    );
  });
});

describe('conditions', () => {
  it('evaluates chains of named conditions in order, whatever their order in the template', () => {
    const t = tpl(`parameters: {zone: {type: string, default: xian}}
conditions:
  shannxi: {or: [xian_zone, xianyang_zone]}
  not_shannxi: {not: shannxi}
  xian_zone: {equals: [{get_param: zone}, xian]}
  xianyang_zone: {equals: [{get_param: zone}, xianyang]}
  literal: true
  inline_if: {contains: [{get_param: zone}, [xian, beijing]]}
`);
    expect(evaluateConditions(t, { zone: 'xian' })).toEqual({
      shannxi: true,
      not_shannxi: false,
      xian_zone: true,
      xianyang_zone: false,
      literal: true,
      inline_if: true,
    });
  });

  it('reports a circular definition', () => {
    const t = tpl('conditions:\n  a: {not: b}\n  b: {and: [c, true]}\n  c: {or: [a, false]}\n');
    expect(errorOf(() => evaluateConditions(t, {}))).toEqual({
      code: 'STOKER_TEMPLATE_CYCLE',
      message: 'conditions.a: Circular definition for condition "a": a → b → c → a',
    });
  });

  it('resolves condition names computed from parameters, and rejects non-boolean results', () => {
    const t = tpl('parameters: {which: {type: string}}\nconditions:\n  x: true\n  y: {not: {get_param: which}}\n');
    expect(evaluateConditions(t, { which: 'x' })).toEqual({ x: true, y: false });
    expect(errorOf(() => evaluateConditions(t, { which: 'nope' })).message).toContain('Invalid condition "nope"');
    const notBool = tpl('parameters: {s: {type: string, default: a}}\nconditions:\n  x: {get_param: s}\n');
    expect(errorOf(() => evaluateConditions(notBool, { s: 'a' })).message).toBe(
      'conditions.x: The definition of condition "x" is invalid: it gives a string, not a boolean',
    );
  });
});

describe('a template instance', () => {
  const t = tpl(`parameters:
  flavor: {type: string, default: m1.small}
  policy: {type: string, default: retain}
resources:
  net: {type: OS::Neutron::Net}
  server:
    type: OS::Nova::Server
    deletion_policy: {get_param: policy}
    properties:
      flavor: {get_param: flavor}
      networks: [{network: {get_resource: net}}]
      name: {list_join: ['-', [{get_param: OS::stack_name}, web]]}
    metadata: {role: web}
    update_policy: {pause: 1}
outputs:
  ip: {value: {get_attr: [server, first_address]}, description: the address}
  broken: {value: {get_param: nope}}
`);

  it('evaluates resource definitions and outputs against the caller', () => {
    const i = instantiateTemplate(t, { pseudo: { stackName: 'prod' } });
    expect(i.order).toEqual(['net', 'server']);
    expect(i.resource('server')).toEqual({
      name: 'server',
      type: 'OS::Nova::Server',
      description: null,
      deletionPolicy: 'Retain',
      requires: ['net'],
      requiredBy: [],
    });
    const runtime = { getResource: (n: string) => `${n}-uuid`, getAttr: (n: string, a: string | null) => `${n}.${String(a)}` };
    expect(i.evaluateResource('server', runtime)).toEqual({
      properties: { flavor: 'm1.small', networks: [{ network: 'net-uuid' }], name: 'prod-web' },
      metadata: { role: 'web' },
      updatePolicy: { pause: 1 },
      externalId: null,
    });
    expect(i.evaluateOutput('ip', runtime)).toEqual({ name: 'ip', description: 'the address', value: 'server.first_address' });
    // an output that cannot be evaluated carries its error, as Heat's output_error
    expect(i.evaluateOutput('broken', runtime)).toMatchObject({ name: 'broken', error: 'outputs.broken.value: Unknown parameter "nope"' });
    expect(i.outputDependencies('ip')).toEqual(['server']);
  });

  it('refuses an invalid computed deletion policy', () => {
    const i = instantiateTemplate(t, { parameters: { policy: 'Keep' } });
    expect(errorOf(() => i.resource('server')).message).toBe('resources.server.deletion_policy: Invalid deletion policy "Keep"');
  });
});
