/**
 * The registry: registering (with Heat's schema checks), lookups, and what `resource type
 * list` / `resource type show` print for the built-in types.
 */
import { describe, expect, it } from 'vitest';
import { isStokerError } from '../../../../src/errors.js';
import {
  ResourceTypeRegistry,
  checkDeletionPolicy,
  supported,
  testResource,
  type PropertySchema,
  type ResourceType,
} from '../../../../src/orchestration/resources/index.js';
import { harness } from './helpers.js';

const withProperty = (p: PropertySchema, name = 'Test::Bad'): ResourceType => ({ ...testResource, type: name, properties: { p } });

function codeOf(f: () => unknown): string | false {
  try {
    f();
    return false;
  } catch (e) {
    return isStokerError(e) && e.code;
  }
}

describe('ResourceTypeRegistry', () => {
  it('registers, finds and lists the built-in types', () => {
    const { registry } = harness();
    expect(registry.list().map((t) => t.resource_type)).toEqual([
      'OS::Heat::CloudConfig',
      'OS::Heat::Delay',
      'OS::Heat::MultipartMime',
      'OS::Heat::None',
      'OS::Heat::RandomString',
      'OS::Heat::SoftwareConfig',
      'OS::Heat::TestResource',
      'OS::Heat::Value',
      'Stoker::HTTP::Resource',
      'Stoker::Local::Command',
    ]);
    expect(registry.list().every((t) => t.description.length > 0)).toBe(true);
    expect(registry.find('OS::Nova::Server')).toBeUndefined();
  });

  it("refuses an unknown name with Heat's message, and a second type under a taken name", () => {
    const { registry } = harness();
    expect(() => registry.get('OS::Nova::Server')).toThrow('The Resource Type (OS::Nova::Server) could not be found.');
    expect(codeOf(() => registry.get('OS::Nova::Server'))).toBe('STOKER_RESOURCE_TYPE_NOT_FOUND');
    expect(registry.register(testResource)).toBe(registry); // the same object again
    expect(codeOf(() => registry.register({ ...testResource }))).toBe('STOKER_RESOURCE_TYPE_CONFLICT');
  });

  it('checks a schema as Heat checks its classes', () => {
    const r = new ResourceTypeRegistry();
    const bad = (p: PropertySchema) => () => r.register(withProperty(p));
    expect(bad({ type: 'string', constraints: [{ range: { min: 1 } }] })).toThrow(
      'Test::Bad: properties.p: Range constraint invalid for String',
    );
    expect(bad({ type: 'integer', constraints: [{ allowed_pattern: 'x' }] })).toThrow('AllowedPattern constraint invalid for Integer');
    expect(bad({ type: 'string', updateAllowed: true, immutable: true })).toThrow(
      'Options update_allowed and immutable cannot both be True',
    );
    expect(bad({ type: 'integer', default: 0, constraints: [{ range: { min: 1 } }] })).toThrow(
      'properties.p: Invalid default 0 (0 is out of range (min: 1, max: None))',
    );
    expect(bad({ type: 'string', constraints: [{ allowed_pattern: '(?=x)' }] })).toThrow('Invalid allowed_pattern "(?=x)"');
    expect(bad({ type: 'list', schema: { type: 'map', schema: { q: { type: 'boolean', default: 'maybe' } } } })).toThrow(
      'properties.p.*.q: Invalid default maybe ("maybe" is not a valid boolean)',
    );
    expect(codeOf(bad({ type: 'string', constraints: [{ length: { min: 1.5 } }] }))).toBe('STOKER_RESOURCE_TYPE_INVALID');
    expect(codeOf(() => r.register({ ...testResource, type: 'NoNamespace' }))).toBe('STOKER_RESOURCE_TYPE_INVALID');
    expect(codeOf(() => r.register({ ...testResource, type: 'Test::Show', attributes: { show: { description: 'x' } } }))).toBe(
      'STOKER_RESOURCE_TYPE_INVALID',
    );
  });

  it('shows a type as `resource type show` prints it', () => {
    const { registry } = harness();
    const shown = registry.show('OS::Heat::RandomString');
    expect(shown.resource_type).toBe('OS::Heat::RandomString');
    expect(shown.support_status).toEqual({ status: 'SUPPORTED', message: null, version: '2014.1', previous_status: null });
    // the hidden deprecated property is not shown
    expect(Object.keys(shown.properties)).toEqual(['length', 'character_classes', 'character_sequences', 'salt']);
    expect(shown.properties['length']).toEqual({
      type: 'integer',
      description: 'How many characters to generate.',
      default: 32,
      required: false,
      constraints: [{ range: { min: 1, max: 512 } }],
      update_allowed: false,
      immutable: false,
    });
    expect(shown.properties['character_sequences']).toMatchObject({
      type: 'list',
      schema: { '*': { type: 'map', schema: { sequence: { type: 'string', required: true }, min: { type: 'integer', default: 1 } } } },
    });
    expect(shown.attributes).toEqual({
      value: { description: 'The generated string; get_resource gives it too.', type: 'string' },
      show: { description: 'Detailed information about resource.', type: 'map' },
    });
  });

  it("shows every built-in type, with Heat's property names and attributes", () => {
    const { registry } = harness();
    const names = (t: string) => [Object.keys(registry.show(t).properties), Object.keys(registry.show(t).attributes)];
    expect(names('OS::Heat::TestResource')).toEqual([
      [
        'constraint_prop_secs',
        'attr_wait_secs',
        'value',
        'update_replace_value',
        'fail',
        'update_replace',
        'wait_secs',
        'action_wait_secs',
        'client_name',
        'entity_name',
      ],
      ['output', 'show'],
    ]);
    expect(names('OS::Heat::Value')).toEqual([
      ['value', 'type'],
      ['value', 'show'],
    ]);
    expect(names('OS::Heat::None')).toEqual([[], ['show']]);
    expect(names('OS::Heat::Delay')).toEqual([['min_wait', 'max_jitter', 'jitter_multiplier', 'actions'], ['show']]);
    expect(names('OS::Heat::SoftwareConfig')).toEqual([
      ['group', 'config', 'options', 'inputs', 'outputs'],
      ['config', 'show'],
    ]);
    expect(names('OS::Heat::CloudConfig')).toEqual([['cloud_config'], ['config', 'show']]);
    expect(names('OS::Heat::MultipartMime')).toEqual([
      ['group', 'parts'],
      ['config', 'show'],
    ]);
    expect(names('Stoker::HTTP::Resource')).toEqual([
      ['url', 'body', 'headers', 'id_path', 'resource_url', 'update_method', 'timeout', 'expected_status'],
      ['body', 'status', 'url', 'show'],
    ]);
    expect(names('Stoker::Local::Command')).toEqual([
      ['create', 'update', 'delete', 'env', 'cwd', 'timeout'],
      ['stdout', 'show'],
    ]);
    expect(registry.show('OS::Heat::TestResource').properties['constraint_prop_secs']).toMatchObject({
      constraints: [{ custom_constraint: 'test_constr' }],
      update_allowed: true,
    });
  });
});

describe('checkDeletionPolicy', () => {
  it('refuses Snapshot on a type that cannot snapshot, except OS::Heat::None', () => {
    const { registry } = harness();
    expect(() => checkDeletionPolicy(registry.get('OS::Heat::TestResource'), 'Snapshot', 'resources.t')).toThrow(
      'resources.t.deletion_policy: "Snapshot" deletion policy not supported',
    );
    expect(() => checkDeletionPolicy(registry.get('OS::Heat::None'), 'Snapshot', 'resources.snap')).not.toThrow();
    expect(() => checkDeletionPolicy(registry.get('OS::Heat::TestResource'), 'Retain', 'resources.t')).not.toThrow();
    const snapshotting: ResourceType = { ...testResource, type: 'Test::Snap', snapshotDelete: async () => {}, supportStatus: supported() };
    expect(() => checkDeletionPolicy(snapshotting, 'Snapshot', 'resources.s')).not.toThrow();
  });
});
