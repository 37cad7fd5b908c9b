import { describe, expect, it } from 'vitest';
import { isStokerError } from '../../../../src/errors.js';
import {
  childRegistry,
  mergeEnvironments,
  parseEnvironment,
  resolveResourceType,
  resourceHooks,
  restrictedActions,
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
const env = (text: string) => parseEnvironment(text).environment;

describe('parseEnvironment', () => {
  it('reads every section', () => {
    const { environment, warnings } = parseEnvironment(`
parameters: {a: 1}
parameter_defaults: {b: two}
resource_registry:
  "My::Type": my.yaml
  "OS::Alias": OS::Heat::None
  resources:
    web: {hooks: [pre-create, pre-update], restricted_actions: replace, "OS::Alias": other.yaml}
encrypted_param_names: [a]
parameter_merge_strategies: {default: merge, b: overwrite}
`);
    expect(environment.parameters).toEqual({ a: 1 });
    expect(environment.parameterDefaults).toEqual({ b: 'two' });
    expect(environment.resourceRegistry.types).toEqual({ 'My::Type': 'my.yaml', 'OS::Alias': 'OS::Heat::None' });
    expect(environment.resourceRegistry.resources['web']).toEqual({
      types: { 'OS::Alias': 'other.yaml' },
      hooks: ['pre-create', 'pre-update'],
      restrictedActions: ['replace'],
      nested: {},
    });
    expect(environment.encryptedParamNames).toEqual(['a']);
    expect(environment.parameterMergeStrategies).toEqual({ default: 'merge', b: 'overwrite' });
    expect(warnings).toEqual([]);
  });

  it('returns a warning for event_sinks, which are ignored', () => {
    expect(parseEnvironment('event_sinks: [{type: zaqar-queue, target: q}]').warnings).toEqual([
      'environment: event_sinks are ignored (Stoker does not send stack events to sinks)',
    ]);
  });

  it("rejects unknown and empty sections, bad registry entries and bad hooks, with Heat's messages", () => {
    expect(errorOf(() => env('paramters: {}'))).toEqual({
      code: 'STOKER_ENVIRONMENT_INVALID',
      message: 'paramters: environment has wrong section "paramters"',
    });
    expect(errorOf(() => env('parameters:\n')).message).toBe('parameters: environment has empty section "parameters"');
    expect(errorOf(() => env('- a')).message).toBe('The environment is not a valid YAML mapping data type.');
    expect(errorOf(() => env('resource_registry: {"OS::X": 5}')).message).toContain(
      'resource_registry.OS::X: A registry entry maps a type',
    );
    expect(errorOf(() => env('resource_registry: {resources: {r: {hooks: pre-lunch}}}')).message).toContain(
      'Invalid hook type "pre-lunch" for resource breakpoint',
    );
    expect(errorOf(() => env('resource_registry: {resources: {r: {restricted_actions: [delete]}}}')).message).toContain(
      'Invalid restricted_action type',
    );
    expect(errorOf(() => env('parameter_merge_strategies: {a: concat}')).message).toContain('"concat" is not a merge strategy');
    expect(errorOf(() => env('parameters: {a: [1\n')).message).toMatch(/^environment line \d+, column \d+: /);
  });
});

describe('mergeEnvironments', () => {
  it('merges in order, later wins, null removes a registry entry (globs too)', () => {
    const merged = mergeEnvironments([
      env(
        'parameters: {p1: CORRECT, p2: INCORRECT}\nresource_registry: {"test::R1": OS::Heat::RandomString, "test::R2": BROKEN, "a::x": b, "a::y": c}',
      ),
      env(
        'parameters: {p2: CORRECT}\nresource_registry: {"test::R2": OS::Heat::RandomString, "a::*": null, resources: {r3b: {"test::R3": OS::Heat::RandomString}}}',
      ),
    ]);
    expect(merged.parameters).toEqual({ p1: 'CORRECT', p2: 'CORRECT' });
    expect(merged.resourceRegistry.types).toEqual({ 'test::R1': 'OS::Heat::RandomString', 'test::R2': 'OS::Heat::RandomString' });
    expect(merged.resourceRegistry.resources['r3b']?.types).toEqual({ 'test::R3': 'OS::Heat::RandomString' });
  });

  it('applies merge strategies when the parameter types are known', () => {
    const e1 = env('parameters: {s: ab, l: "a,b", n: 1, j: {a: {x: 1}, l: [1]}}');
    const e2 = env(
      'parameters: {s: cd, l: "c", n: 2, j: {a: {y: 2}, l: [2]}}\nparameter_merge_strategies: {default: merge, j: deep_merge}',
    );
    const types = { s: 'string', l: 'comma_delimited_list', n: 'number', j: 'json' } as const;
    expect(mergeEnvironments([e1, e2], { parameterTypes: types }).parameters).toEqual({
      s: 'abcd',
      l: 'a,b,c',
      n: 3,
      j: { a: { x: 1, y: 2 }, l: [1, 2] },
    });
    // without the template's types a strategy cannot apply: later wins
    expect(mergeEnvironments([e1, e2]).parameters).toMatchObject({ s: 'cd', n: 2 });
    const e3 = env('parameters: {s: ef}\nparameter_merge_strategies: {s: overwrite}');
    expect(errorOf(() => mergeEnvironments([e1, e2, e3], { parameterTypes: types })).message).toContain(
      'Conflicting merge strategy "overwrite" for parameter "s"',
    );
  });
});

describe('resource registry', () => {
  const files = { 'provider.yaml': 'heat_template_version: 2016-10-14\n', 'concrete.yaml': 'heat_template_version: 2016-10-14\n' };
  const registry = env(`resource_registry:
  "My::A": "My::B"
  "My::B": OS::Heat::RandomString
  "My::T": provider.yaml
  "OS::Net::*": "OS::Neutron::*"
  "Loop::A": "Loop::B"
  "Loop::B": "Loop::A"
  "OS::Thingy": provider.yaml
  resources:
    thisone: {"OS::Thingy": concrete.yaml}
    "foo_*": {hooks: pre-create}
    "*ar": {restricted_actions: [update, replace]}
    parent: {child: {hooks: pre-delete}}
`).resourceRegistry;

  it('follows aliases and globs to a plugin type', () => {
    expect(resolveResourceType(registry, 'My::A')).toEqual({
      kind: 'plugin',
      type: 'OS::Heat::RandomString',
      chain: ['My::A', 'My::B', 'OS::Heat::RandomString'],
    });
    expect(resolveResourceType(registry, 'OS::Net::Port')).toMatchObject({ kind: 'plugin', type: 'OS::Neutron::Port' });
    expect(resolveResourceType(registry, 'OS::Heat::None')).toEqual({ kind: 'plugin', type: 'OS::Heat::None', chain: ['OS::Heat::None'] });
  });

  it('resolves template resources through the files map only, with per-resource overrides', () => {
    expect(resolveResourceType(registry, 'My::T', { files })).toMatchObject({
      kind: 'template',
      file: 'provider.yaml',
      content: files['provider.yaml'],
    });
    expect(resolveResourceType(registry, 'OS::Thingy', { files, resourceName: 'thisone' })).toMatchObject({ file: 'concrete.yaml' });
    expect(resolveResourceType(registry, 'OS::Thingy', { files, resourceName: 'another' })).toMatchObject({ file: 'provider.yaml' });
    expect(resolveResourceType(registry, 'direct.yaml', { files: { 'direct.yaml': 'x' } })).toMatchObject({
      kind: 'template',
      file: 'direct.yaml',
    });
    expect(errorOf(() => resolveResourceType(registry, 'My::T', { resourceName: 'r' })).message).toBe(
      'resources.r.type: Could not fetch the template "provider.yaml" for type "My::T": it is not in the files map (Stoker never fetches templates by URL or from disk)',
    );
    expect(errorOf(() => resolveResourceType(registry, 'file:///etc/passwd.yaml')).message).toContain('"file:///etc/passwd.yaml"');
  });

  it('reports a loop of aliases', () => {
    expect(errorOf(() => resolveResourceType(registry, 'Loop::A')).message).toBe(
      'resource_registry: The resource_registry maps "Loop::A" to itself: Loop::A → Loop::B → Loop::A',
    );
  });

  it('matches hooks and restricted actions with fnmatch patterns', () => {
    expect(resourceHooks(registry, 'foo_step2')).toEqual(['pre-create']);
    expect(resourceHooks(registry, 'bar')).toEqual([]);
    expect(restrictedActions(registry, 'bar')).toEqual(['update', 'replace']);
    expect(restrictedActions(registry, 'baz')).toEqual([]);
  });

  it('gives a nested stack the registry Heat gives it', () => {
    const child = childRegistry(registry, { resourceName: 'parent', removeType: 'My::T' });
    expect(child.types['My::T']).toBeUndefined();
    expect(child.types['My::A']).toBe('My::B');
    expect(resourceHooks(child, 'child')).toEqual(['pre-delete']);
  });
});
