/**
 * Property constraints with Heat's definitions and messages (`heat/engine/constraints.py`):
 * `range`, `length`, `allowed_values` (every item of a list must be allowed), `allowed_pattern`
 * (the preferred match from the start must end at the end, run on the template layer's
 * linear-time engine) and `custom_constraint` (a named check supplied by the caller). A
 * constraint's `description`, when given, is the whole message, as in Heat.
 */
import type { JsonValue } from '../../core/json.js';
import { compilePattern, type CompiledPattern } from '../template/linear-regex.js';
import { boolFromString, strToNum } from '../template/parameter-conversion.js';
import { isMapping, pyEquals, pyNumber, pyStr } from '../template/python-values.js';
import { shownValue } from './property-conversion.js';
import { constraintKind, type PropertyConstraint, type PropertySchema } from './property-schema.js';

/**
 * Named checks for `custom_constraint`: a message when the value is refused, else undefined.
 * Heat's need a cloud (`nova.flavor` …); the built-in types use only `test_constr`.
 *
 * @example
 * ```ts
 * const custom: CustomConstraints = { 'port.even': (v) => (Number(v) % 2 === 0 ? undefined : `"${v}" is odd`) };
 * ```
 */
export type CustomConstraints = Readonly<Record<string, (value: JsonValue) => string | undefined>>;

/**
 * The custom constraints Stoker knows without a cloud: Heat's `test_constr` (which only
 * sleeps in Heat, during validation) accepts every value.
 *
 * @example
 * ```ts
 * BUILTIN_CUSTOM_CONSTRAINTS['test_constr']!(3); // undefined
 * ```
 */
export const BUILTIN_CUSTOM_CONSTRAINTS: CustomConstraints = { test_constr: () => undefined };

const patterns = new Map<string, CompiledPattern>();

/**
 * The compiled form of an `allowed_pattern`, cached (patterns come from type plugins, a
 * small fixed set).
 *
 * @example
 * ```ts
 * compiledPattern('[a-z]+').matchesWhole('abc'); // true
 * ```
 */
export function compiledPattern(pattern: string): CompiledPattern {
  let compiled = patterns.get(pattern);
  if (!compiled) {
    compiled = compilePattern(pattern);
    if (patterns.size < 1000) patterns.set(pattern, compiled);
  }
  return compiled;
}

const show = (n: number | undefined): string => (n === undefined ? 'None' : pyNumber(n));

/**
 * The first constraint of `schema` that `value` (already converted) breaks: its message, or
 * undefined when all hold.
 *
 * @example
 * ```ts
 * checkConstraints({ type: 'integer', constraints: [{ range: { min: 1, max: 512 } }] }, 600);
 * // '600 is out of range (min: 1, max: 512)'
 * ```
 */
export function checkConstraints(schema: PropertySchema, value: JsonValue, custom: CustomConstraints = {}): string | undefined {
  for (const c of schema.constraints ?? []) {
    const problem = violation(schema, c, value, custom);
    if (problem !== undefined) return c.description ?? problem;
  }
  return undefined;
}

function violation(schema: PropertySchema, c: PropertyConstraint, value: JsonValue, custom: CustomConstraints): string | undefined {
  if ('range' in c) {
    const n = typeof value === 'number' ? value : strToNum(value);
    if (n === undefined) return `${shownValue(value)} is not a number`;
    const { min, max } = c.range;
    if ((min !== undefined && n < min) || (max !== undefined && n > max))
      return `${shownValue(value)} is out of range (min: ${show(min)}, max: ${show(max)})`;
    return undefined;
  }
  if ('length' in c) {
    const len =
      typeof value === 'string'
        ? [...value].length
        : Array.isArray(value)
          ? value.length
          : isMapping(value)
            ? Object.keys(value).length
            : -1;
    if (len < 0) return `object of type '${typeof value}' has no len()`;
    const { min, max } = c.length;
    if ((min !== undefined && len < min) || (max !== undefined && len > max))
      return `length (${len}) is out of range (min: ${show(min)}, max: ${show(max)})`;
    return undefined;
  }
  if ('allowed_values' in c) {
    const allowed = c.allowed_values;
    const message = `"${shownValue(value)}" is not an allowed value [${allowed.map((a) => shownValue(a)).join(', ')}]`;
    // a list passes when every item is allowed (compared as they are)
    if (Array.isArray(value)) return value.every((v) => allowed.some((a) => pyEquals(v, a))) ? undefined : message;
    const typed = allowed.map((a) => asSchemaType(schema, a));
    return typed.some((a) => a !== undefined && pyEquals(a, asSchemaType(schema, value))) ? undefined : message;
  }
  if ('allowed_pattern' in c) {
    if (typeof value !== 'string') return `"${shownValue(value)}" does not match pattern "${c.allowed_pattern}"`;
    let matches: boolean;
    try {
      matches = compiledPattern(c.allowed_pattern).matchesWhole(value);
    } catch {
      // the matcher's step budget ran out (docs/security.md S6): refuse without quoting the value
      return `the value is too expensive to check against pattern "${c.allowed_pattern}"`;
    }
    return matches ? undefined : `"${value}" does not match pattern "${c.allowed_pattern}"`;
  }
  const name = c.custom_constraint;
  const check = custom[name] ?? BUILTIN_CUSTOM_CONSTRAINTS[name];
  if (!check) return `"${shownValue(value)}" does not validate ${name} (constraint not found)`;
  return check(value);
}

/** Heat's `Schema.to_schema_type`, used to compare allowed values with the property's type. */
function asSchemaType(schema: PropertySchema, v: JsonValue): JsonValue | undefined {
  switch (schema.type) {
    case 'string':
      return pyStr(v);
    case 'integer':
    case 'number':
      return strToNum(v);
    case 'boolean':
      return boolFromString(v);
    default:
      return v;
  }
}

/** Which constraints fit which property type (Heat's `valid_types`). */
const VALID_FOR: Record<ReturnType<typeof constraintKind>, readonly PropertySchema['type'][]> = {
  range: ['integer', 'number'],
  length: ['string', 'list', 'map', 'json'],
  allowed_values: ['string', 'integer', 'number', 'boolean', 'list', 'json'],
  allowed_pattern: ['string'],
  custom_constraint: ['integer', 'number', 'string', 'boolean', 'list'],
};
const CLASS_NAMES: Record<ReturnType<typeof constraintKind>, string> = {
  range: 'Range',
  length: 'Length',
  allowed_values: 'AllowedValues',
  allowed_pattern: 'AllowedPattern',
  custom_constraint: 'CustomConstraint',
};

/**
 * The reason a constraint cannot belong to a property of this type (Heat's
 * InvalidSchemaError at class definition), or undefined when it can.
 *
 * @example
 * ```ts
 * misplacedConstraint({ type: 'string' }, { range: { min: 1 } }); // 'Range constraint invalid for String'
 * ```
 */
export function misplacedConstraint(schema: PropertySchema, c: PropertyConstraint): string | undefined {
  const kind = constraintKind(c);
  if (!VALID_FOR[kind].includes(schema.type)) {
    return `${CLASS_NAMES[kind]} constraint invalid for ${schema.type[0]!.toUpperCase()}${schema.type.slice(1)}`;
  }
  if ('range' in c || 'length' in c) {
    const { min, max } = 'range' in c ? c.range : c.length;
    if (min === undefined && max === undefined) return `${kind} must have min and/or max`;
    if ('length' in c && [min, max].some((v) => v !== undefined && !Number.isInteger(v))) return 'min/max length must be integral';
  }
  if ('allowed_pattern' in c) {
    try {
      compiledPattern(c.allowed_pattern);
    } catch (e) {
      return `Invalid allowed_pattern "${c.allowed_pattern}": ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  return undefined;
}
