/**
 * Template resources reached through the files map (docs/security.md S3, S4): checkNestedTemplates
 * walks them with the registry each nested stack would see, and refuses templates that include
 * each other, nesting deeper than Heat's max_nested_stack_depth (5) and more resources in the
 * whole tree than a stack may have.
 */
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../../../src/core/json.js';
import { isStokerError } from '../../../../src/errors.js';
import {
  checkNestedTemplates,
  emptyRegistry,
  parseEnvironment,
  parseTemplate,
  type ResourceRegistry,
} from '../../../../src/orchestration/template/index.js';

function errorOf(f: () => unknown): { code: string; message: string; details: Record<string, JsonValue> } {
  try {
    f();
  } catch (e) {
    if (isStokerError(e)) return { code: e.code, message: e.message, details: e.details };
    throw e;
  }
  throw new Error('expected an error');
}

/** A template whose resources have the given types. */
const uses = (...types: string[]) =>
  `heat_template_version: 2016-10-14\nresources:\n${types.map((t, i) => `  r${i}: {type: "${t}"}\n`).join('')}${types.length === 0 ? '  none: {type: OS::Heat::None}\n' : ''}`;
const registryOf = (text: string): ResourceRegistry => parseEnvironment(text).environment.resourceRegistry;

describe('checkNestedTemplates', () => {
  it('parses every template resource once and reports the depth and the resources of the whole tree', () => {
    const files = { 'a.yaml': uses('My::B', 'My::B'), 'b.yaml': uses('OS::Heat::None') };
    const registry = registryOf('resource_registry:\n  "My::A": a.yaml\n  "My::B": b.yaml\n');
    const result = checkNestedTemplates(parseTemplate(uses('My::A', 'OS::Heat::None')), { files, registry });
    expect([...result.templates.keys()].sort()).toEqual(['a.yaml', 'b.yaml']);
    expect(result.depth).toBe(2);
    expect(result.resources).toBe(2 + 2 + 1 + 1);
  });

  it('refuses templates that include each other (A → B → A), naming the cycle', () => {
    // b.yaml names a.yaml directly: the registry cannot stop that loop
    const files = { 'a.yaml': uses('My::B'), 'b.yaml': uses('a.yaml') };
    const registry = registryOf('resource_registry:\n  "My::A": a.yaml\n  "My::B": b.yaml\n');
    const e = errorOf(() => checkNestedTemplates(parseTemplate(uses('My::A')), { files, registry }));
    expect(e.code).toBe('STOKER_TEMPLATE_CYCLE');
    expect(e.message).toContain('a.yaml → b.yaml → a.yaml');
    expect(e.details['cycle']).toEqual(['a.yaml', 'b.yaml', 'a.yaml']);
  });

  it('refuses a cycle through a second registry entry that maps back to the first file', () => {
    const files = { 'a.yaml': uses('My::B'), 'b.yaml': uses('My::Again') };
    const registry = registryOf('resource_registry:\n  "My::A": a.yaml\n  "My::Again": a.yaml\n  "My::B": b.yaml\n');
    const e = errorOf(() => checkNestedTemplates(parseTemplate(uses('My::A')), { files, registry }));
    expect(e.code).toBe('STOKER_TEMPLATE_CYCLE');
    expect(e.message).toContain('a.yaml → b.yaml → a.yaml');
  });

  it('refuses a template that includes itself, and a cycle back to the root when the root has a name', () => {
    expect(
      errorOf(() => checkNestedTemplates(parseTemplate(uses('self.yaml')), { files: { 'self.yaml': uses('self.yaml') } })).message,
    ).toContain('self.yaml → self.yaml');
    const files = { 'main.yaml': uses('b.yaml'), 'b.yaml': uses('main.yaml') };
    expect(errorOf(() => checkNestedTemplates(parseTemplate(files['main.yaml']), { files, label: 'main.yaml' })).message).toContain(
      'main.yaml → b.yaml → main.yaml',
    );
  });

  it('gives each nested stack the registry Heat gives it: the mapping that made it is gone inside it', () => {
    // the classic: a template that implements a type by wrapping the real one
    const files = { 'random.yaml': uses('OS::Heat::RandomString') };
    const registry = registryOf('resource_registry:\n  "OS::Heat::RandomString": random.yaml\n');
    expect(checkNestedTemplates(parseTemplate(uses('OS::Heat::RandomString')), { files, registry }).depth).toBe(1);
    // so a registry key cannot bring a stack back to the template it made (b.yaml's My::A is a plugin type there)
    const loop = { 'a.yaml': uses('My::B'), 'b.yaml': uses('My::A') };
    const both = registryOf('resource_registry:\n  "My::A": a.yaml\n  "My::B": b.yaml\n');
    expect(checkNestedTemplates(parseTemplate(uses('My::A')), { files: loop, registry: both }).depth).toBe(2);
  });

  it("limits nesting to Heat's max_nested_stack_depth (5), configurable", () => {
    const chain = (n: number): Record<string, string> =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i + 1}.yaml`, i + 1 < n ? uses(`l${i + 2}.yaml`) : uses()]));
    const root = parseTemplate(uses('l1.yaml'));
    expect(checkNestedTemplates(root, { files: chain(5) }).depth).toBe(5);
    const e = errorOf(() => checkNestedTemplates(root, { files: chain(6) }));
    expect(e.code).toBe('STOKER_TEMPLATE_TOO_LARGE');
    expect(e.message).toContain('Recursion depth exceeds 5');
    expect(e.message).toContain('template → l1.yaml → l2.yaml → l3.yaml → l4.yaml → l5.yaml → l6.yaml');
    expect(errorOf(() => checkNestedTemplates(root, { files: chain(3), limits: { maxNestedDepth: 2 } })).code).toBe(
      'STOKER_TEMPLATE_TOO_LARGE',
    );
  });

  it('walks iteratively: 3000 levels with the limit raised, no stack overflow', () => {
    const n = 3000;
    const files = Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i + 1}.yaml`, i + 1 < n ? uses(`l${i + 2}.yaml`) : uses()]));
    expect(checkNestedTemplates(parseTemplate(uses('l1.yaml')), { files, limits: { maxNestedDepth: n, maxResources: 10 * n } }).depth).toBe(
      n,
    );
  });

  it('counts the resources of the whole tree against maxResources, so a fan-out cannot explode the walk', () => {
    // 20 × 20 × 20 × 20 template resources would be 160 000 nested stacks
    const fan = (t: string) => uses(...Array.from({ length: 20 }, () => t));
    const files = { 'a.yaml': fan('b.yaml'), 'b.yaml': fan('c.yaml'), 'c.yaml': fan('d.yaml'), 'd.yaml': uses() };
    const e = errorOf(() => checkNestedTemplates(parseTemplate(fan('a.yaml')), { files }));
    expect(e.code).toBe('STOKER_TEMPLATE_TOO_LARGE');
    expect(e.message).toContain('more than 1000 resources');
  });

  it('names the file and how it was reached when a nested template is missing or invalid', () => {
    const registry = registryOf('resource_registry:\n  "My::A": a.yaml\n');
    const missing = errorOf(() => checkNestedTemplates(parseTemplate(uses('My::A')), { files: {}, registry }));
    expect(missing.code).toBe('STOKER_TEMPLATE_INVALID');
    expect(missing.message).toContain('"a.yaml"');
    const invalid = errorOf(() =>
      checkNestedTemplates(parseTemplate(uses('My::A')), {
        files: { 'a.yaml': 'heat_template_version: 2016-10-14\nbogus: 1\n' },
        registry,
      }),
    );
    expect(invalid.code).toBe('STOKER_TEMPLATE_INVALID');
    expect(invalid.message).toContain('template → a.yaml: ');
    expect(invalid.message).toContain('The template section is invalid: bogus');
    expect(invalid.details['files']).toEqual(['template', 'a.yaml']);
  });

  it('needs no registry or files for a template without template resources', () => {
    expect(checkNestedTemplates(parseTemplate(uses('OS::Heat::None')), { registry: emptyRegistry() })).toMatchObject({
      depth: 0,
      resources: 1,
    });
  });
});
