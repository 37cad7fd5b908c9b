/**
 * Property validation with Heat's conversions, constraints, paths and messages
 * (heat/engine/properties.py, constraints.py, exception.StackValidationFailed's formatting).
 */
import { describe, expect, it } from 'vitest';
import type { JsonObject, JsonValue } from '../../../../src/core/json.js';
import { isStokerError } from '../../../../src/errors.js';
import {
  checkConstraints,
  convertProperty,
  heatPath,
  supported,
  validateProperties,
  type PropertiesSchema,
  type PropertySchema,
  type PropertyType,
  type ResourceType,
} from '../../../../src/orchestration/resources/index.js';
import { harness } from './helpers.js';

/** A type whose schema is `properties` (operations unused). */
function typeWith(properties: PropertiesSchema, extra: Partial<ResourceType> = {}): ResourceType {
  return {
    type: 'Test::Schema',
    description: 'schema under test',
    supportStatus: supported(),
    properties,
    attributes: {},
    create: async () => ({ physicalId: null, data: {} }),
    update: async () => ({ physicalId: null, data: {} }),
    delete: async () => {},
    attribute: async () => null,
    ...extra,
  };
}

/** The message `validateProperties` throws, or 'ok'. */
function problem(type: ResourceType, raw: JsonObject, path = 'resources.r'): string {
  try {
    validateProperties(type, raw, path);
    return 'ok';
  } catch (e) {
    expect(isStokerError(e) && e.code).toBe('STOKER_RESOURCE_PROPERTIES_INVALID');
    return (e as Error).message;
  }
}

describe('conversion to the property type (Heat: Property.get_value)', () => {
  it.each([
    ['integer', '12', 12],
    ['integer', ' -3 ', -3],
    ['integer', '1_000', 1000],
    ['integer', 7.9, 7],
    ['integer', true, 1],
    ['number', '2.5', 2.5],
    ['number', '1e3', 1000],
    ['number', 4, 4],
    ['string', 5, '5'],
    ['string', true, 'True'],
    ['boolean', 'TRUE', true],
    ['boolean', 'false', false],
    ['list', ['a'], ['a']],
    ['map', { a: 1 }, { a: 1 }],
    ['json', '{"a": [1]}', { a: [1] }],
    ['any', { x: null }, { x: null }],
  ] as [PropertyType, JsonValue, JsonValue][])('%s accepts %j', (type, value, expected) => {
    expect(convertProperty({ type } as PropertySchema, value)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['integer', 'BAD', "Value 'BAD' is not an integer"],
    ['integer', '1.5', "Value '1.5' is not an integer"],
    ['integer', [1], "int() argument must be a string, a bytes-like object or a real number, not 'list'"],
    ['number', 'abc', "could not convert string to float: 'abc'"],
    ['number', { a: 1 }, "int() argument must be a string, a bytes-like object or a real number, not 'dict'"],
    ['string', 1.5, 'Value must be a string; got 1.5'],
    ['string', ['a'], "Value must be a string; got ['a']"],
    ['boolean', 'Yes', '"yes" is not a valid boolean'],
    ['boolean', 1, '"1" is not a valid boolean'],
    ['list', 'a,b', `"'a,b'" is not a list`],
    ['list', { a: 1 }, `"{'a': 1}" is not a list`],
    ['map', ['x'], `"['x']" is not a map`],
    ['map', 'text', '"text" is not a map'],
    ['json', '{bad', 'Value must be valid JSON'],
  ] as [PropertyType, JsonValue, string][])('%s refuses %j', (type, value, message) => {
    expect(convertProperty({ type } as PropertySchema, value)).toEqual({ ok: false, message });
  });
});

describe('constraints (Heat: constraints.py) and their messages', () => {
  it('range, with min only, max only and both', () => {
    expect(checkConstraints({ type: 'integer', constraints: [{ range: { min: 1, max: 512 } }] }, 600)).toBe(
      '600 is out of range (min: 1, max: 512)',
    );
    expect(checkConstraints({ type: 'number', constraints: [{ range: { min: 0 } }] }, -0.5)).toBe(
      '-0.5 is out of range (min: 0, max: None)',
    );
    expect(checkConstraints({ type: 'number', constraints: [{ range: { max: 3 } }] }, 4)).toBe('4 is out of range (min: None, max: 3)');
    expect(checkConstraints({ type: 'integer', constraints: [{ range: { min: 1, max: 512 } }] }, 512)).toBeUndefined();
  });

  it('length, of strings (code points), lists and maps', () => {
    const c = { constraints: [{ length: { min: 2, max: 3 } }] };
    expect(checkConstraints({ type: 'string', ...c }, 'abcd')).toBe('length (4) is out of range (min: 2, max: 3)');
    expect(checkConstraints({ type: 'string', ...c }, '😀😀')).toBeUndefined();
    expect(checkConstraints({ type: 'list', ...c }, [1])).toBe('length (1) is out of range (min: 2, max: 3)');
    expect(checkConstraints({ type: 'map', ...c }, { a: 1, b: 2 })).toBeUndefined();
  });

  it('allowed_values, compared in the property type; a list must have every item allowed', () => {
    const s = { type: 'string' as const, constraints: [{ allowed_values: ['create', 'delete'] }] };
    expect(checkConstraints(s, 'update')).toBe('"update" is not an allowed value [create, delete]');
    expect(checkConstraints({ type: 'integer', constraints: [{ allowed_values: ['1', '2'] }] }, 2)).toBeUndefined();
    const l = { type: 'list' as const, constraints: [{ allowed_values: ['CREATE', 'DELETE'] }] };
    expect(checkConstraints(l, ['CREATE'])).toBeUndefined();
    expect(checkConstraints(l, ['CREATE', 'UPDATE'])).toBe(`"['CREATE', 'UPDATE']" is not an allowed value [CREATE, DELETE]`);
  });

  it('allowed_pattern: the preferred match from the start must end at the end (linear time)', () => {
    const s = { type: 'string' as const, constraints: [{ allowed_pattern: '[a-z]+' }] };
    expect(checkConstraints(s, 'abc')).toBeUndefined();
    expect(checkConstraints(s, 'abc1')).toBe('"abc1" does not match pattern "[a-z]+"');
    // Python's preferred match of a|ab on "ab" ends at 1
    expect(checkConstraints({ type: 'string', constraints: [{ allowed_pattern: 'a|ab' }] }, 'ab')).toBe(
      '"ab" does not match pattern "a|ab"',
    );
    const evil = { type: 'string' as const, constraints: [{ allowed_pattern: '(a+)+$' }] };
    expect(checkConstraints(evil, `${'a'.repeat(5000)}b`)).toBe(`"${'a'.repeat(5000)}b" does not match pattern "(a+)+$"`);
  });

  it('custom_constraint: built-in test_constr, a caller-supplied check, and an unknown name', () => {
    expect(checkConstraints({ type: 'number', constraints: [{ custom_constraint: 'test_constr' }] }, 3)).toBeUndefined();
    const even = { 'even.number': (v: unknown) => (Number(v) % 2 === 0 ? undefined : `"${String(v)}" does not validate even.number`) };
    expect(checkConstraints({ type: 'integer', constraints: [{ custom_constraint: 'even.number' }] }, 3, even)).toBe(
      '"3" does not validate even.number',
    );
    expect(checkConstraints({ type: 'string', constraints: [{ custom_constraint: 'nova.flavor' }] }, 'm1.tiny')).toBe(
      '"m1.tiny" does not validate nova.flavor (constraint not found)',
    );
  });

  it("a constraint's description is the whole message", () => {
    const s = { type: 'integer' as const, constraints: [{ range: { min: 10 }, description: 'Too small, sorry' }] };
    expect(checkConstraints(s, 1)).toBe('Too small, sorry');
  });
});

describe('validateProperties', () => {
  const type = typeWith({
    name: { type: 'string', required: true },
    size: { type: 'integer', default: 1, constraints: [{ range: { min: 1, max: 10 } }] },
    tags: { type: 'list', schema: { type: 'string', constraints: [{ length: { max: 3 } }] } },
    spec: {
      type: 'map',
      schema: { kind: { type: 'string', default: 'a', constraints: [{ allowed_values: ['a', 'b'] }] }, n: { type: 'integer' } },
    },
    items: {
      type: 'list',
      default: [{ id: 'x' }],
      schema: { type: 'map', schema: { id: { type: 'string', required: true }, weight: { type: 'number', default: 1.5 } } },
    },
  });

  it('returns every property, defaults applied (nested ones too), null for absent optional ones', () => {
    expect(validateProperties(type, { name: 'n', spec: {} }, 'resources.r')).toEqual({
      name: 'n',
      size: 1,
      tags: null,
      spec: { kind: 'a', n: null },
      items: [{ id: 'x', weight: 1.5 }],
    });
  });

  it('a null value stands for the default, or the empty value of the type', () => {
    expect(validateProperties(type, { name: null, size: null, tags: null }, 'resources.r')).toMatchObject({ name: '', size: 1, tags: [] });
  });

  it('words problems as Heat does, with the path of the offending value', () => {
    expect(problem(type, { name: 'n', x: 1 })).toBe('Property error: resources.r.properties: Unknown Property x');
    expect(problem(type, {})).toBe('Property error: resources.r.properties: Property name not assigned');
    expect(problem(type, { name: 'n', size: 'BAD' })).toBe("Property error: resources.r.properties.size: Value 'BAD' is not an integer");
    expect(problem(type, { name: 'n', size: 11 })).toBe(
      'Property error: resources.r.properties.size: 11 is out of range (min: 1, max: 10)',
    );
    expect(problem(type, { name: 'n', tags: ['ok', 'long'] })).toBe(
      'Property error: resources.r.properties.tags[1]: length (4) is out of range (min: None, max: 3)',
    );
    expect(problem(type, { name: 'n', spec: { kind: 'c' } })).toBe(
      'Property error: resources.r.properties.spec.kind: "c" is not an allowed value [a, b]',
    );
    expect(problem(type, { name: 'n', spec: { other: 1 } })).toBe('Property error: resources.r.properties.spec: Unknown Property other');
    expect(problem(type, { name: 'n', items: [{ id: 'a' }, {}] })).toBe(
      'Property error: resources.r.properties.items[1]: Property id not assigned',
    );
    expect(problem(type, { name: 'n', items: [{ id: 'a', weight: 'heavy' }] })).toBe(
      "Property error: resources.r.properties.items[0].weight: could not convert string to float: 'heavy'",
    );
  });

  it('uses the path it is given (a nested stack has a longer one)', () => {
    const path = 'resources.random_group<nested_stack>.resources.0<provider.yaml>.resources.random';
    expect(problem(type, { name: 'n', size: 'BAD' }, path)).toBe(`Property error: ${path}.properties.size: Value 'BAD' is not an integer`);
    expect(heatPath('resources.r.properties', ['m', '0', 'x'])).toBe('resources.r.properties.m[0].x');
  });

  it("the type's own check runs last, with Heat's bare message", () => {
    const checked = typeWith(
      { a: { type: 'integer', default: 1 } },
      { validate: (p) => (Number(p['a']) > 5 ? 'a is too big' : undefined) },
    );
    expect(problem(checked, { a: 6 })).toBe('a is too big');
    expect(problem(checked, { a: 'x' })).toBe("Property error: resources.r.properties.a: Value 'x' is not an integer");
  });

  it('puts the path and the property in the details', () => {
    try {
      validateProperties(type, { name: 'n', size: 0 }, 'resources.r');
    } catch (e) {
      expect(isStokerError(e) && e.details).toEqual({
        path: 'resources.r.properties.size',
        resourceType: 'Test::Schema',
        property: 'size',
      });
    }
  });

  it('converts but does not check in depth the properties that read resources not created yet (Heat: _find_deps_any_in_init)', () => {
    const unresolved = new Set(['size', 'spec']);
    expect(validateProperties(type, { name: 'n', size: 99, spec: { other: 1 } }, 'resources.r', { unresolved })).toMatchObject({
      size: 99,
      spec: { kind: 'a', n: null },
    });
    expect(() => validateProperties(type, { name: 'n', size: 'BAD' }, 'resources.r', { unresolved })).toThrow(
      "Value 'BAD' is not an integer",
    );
    expect(() => validateProperties(type, { name: 'n', tags: ['long'] }, 'resources.r', { unresolved })).toThrow('tags[0]');
  });

  it('OS::Heat::None accepts anything and gives the resource no properties', () => {
    const h = harness();
    expect(validateProperties(h.type('OS::Heat::None'), { anything: ['goes', 'here'] }, 'resources.nothing')).toEqual({});
  });
});
