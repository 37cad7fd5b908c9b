/**
 * Validating a resource's properties against its type, the way Heat's `Properties.validate`
 * and `Resource.validate` do: unknown properties first, then every property of the schema in
 * order (conversion, nested members, constraints), then the type's own check. Errors carry
 * Heat's wording and path: `Property error: resources.r.properties.length: Value 'BAD' is not
 * an integer`, `Property error: resources.r.properties: Unknown Property x`.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { ValidationError } from '../../errors.js';
import { isMapping } from '../template/python-values.js';
import { BUILTIN_CUSTOM_CONSTRAINTS, checkConstraints, type CustomConstraints } from './property-constraints.js';
import { convertProperty, emptyValue } from './property-conversion.js';
import type { PropertiesSchema, PropertySchema } from './property-schema.js';
import type { ResourceType } from './resource-type.js';

/**
 * Options of {@link validateProperties}.
 *
 * @example
 * ```ts
 * const options: PropertyValidationOptions = { stackTimeoutSecs: 600, strict: true };
 * ```
 */
export interface PropertyValidationOptions {
  /** the stack's timeout, for checks such as OS::Heat::Delay's (default 3600, Heat's `stack_action_timeout`) */
  stackTimeoutSecs?: number;
  /** Heat's `strict_validate` (default true) */
  strict?: boolean;
  /** checks for `custom_constraint` names besides the built-in ones */
  customConstraints?: CustomConstraints;
  /**
   * Top-level properties whose values depend on resources not created yet (placeholders at
   * stack validation): they are converted, but neither their constraints nor the keys of their
   * nested maps are checked, as Heat skips them (`_find_deps_any_in_init`).
   */
  unresolved?: ReadonlySet<string>;
}

type Segment = string | number;

/** A problem found below the top: its path inside `properties` and Heat's message. */
class PropertyProblem {
  constructor(
    readonly path: readonly Segment[],
    readonly message: string,
  ) {}
}

/**
 * Heat's rendering of a path: dotted names, list indexes (and digit-only keys) in brackets.
 *
 * @example
 * ```ts
 * heatPath('resources.r.properties', ['character_classes', 0, 'class']); // 'resources.r.properties.character_classes[0].class'
 * ```
 */
export function heatPath(base: string, segments: readonly Segment[]): string {
  let out = base;
  for (const s of segments) {
    if (typeof s === 'number' || /^\d+$/.test(s)) out += `[${s}]`;
    else out = out === '' ? s : `${out}.${s}`;
  }
  return out;
}

/**
 * Validates `raw` (the evaluated `properties` of a resource definition) against `type` and
 * returns the typed properties: every property of the schema, defaults applied, null for an
 * absent optional one. `path` is the resource's path as Heat prints it (`resources.server`, or
 * a nested stack's longer one). OS::Heat::None (a stub type) accepts anything and returns {}.
 *
 * @throws ValidationError STOKER_RESOURCE_PROPERTIES_INVALID with Heat's message
 * @example
 * ```ts
 * validateProperties(registry.get('OS::Heat::RandomString'), { length: 8 }, 'resources.secret');
 * // { length: 8, sequence: null, character_classes: [{ class: 'lettersdigits', min: 1 }], character_sequences: null, salt: null }
 * validateProperties(randomString, { length: 'BAD' }, 'resources.secret');
 * // throws "Property error: resources.secret.properties.length: Value 'BAD' is not an integer"
 * ```
 */
export function validateProperties(
  type: ResourceType,
  raw: JsonObject | null | undefined,
  path: string,
  options: PropertyValidationOptions = {},
): JsonObject {
  if (type.stub) return {};
  const base = path === '' ? 'properties' : `${path}.properties`;
  const custom = { ...BUILTIN_CUSTOM_CONSTRAINTS, ...options.customConstraints };
  let data: JsonObject = raw ?? {};
  let properties: JsonObject;
  try {
    if (type.translate) data = type.translate(structuredClone(data));
    const schema = type.propertiesSchema?.(data) ?? type.properties;
    properties = members(schema, data, [], custom, options.unresolved ?? new Set());
  } catch (e) {
    if (!(e instanceof PropertyProblem)) throw e;
    const where = heatPath(base, e.path);
    throw new ValidationError('STOKER_RESOURCE_PROPERTIES_INVALID', `Property error: ${where}: ${e.message}`, {
      details: { path: where, resourceType: type.type, ...(typeof e.path[0] === 'string' ? { property: e.path[0] } : {}) },
    });
  }
  const resourceName = path.split('.').at(-1) ?? path;
  const problem = type.validate?.(properties, {
    path,
    resourceName,
    stackTimeoutSecs: options.stackTimeoutSecs ?? 3600,
    strict: options.strict ?? true,
  });
  // Heat raises these without a path (the message is the whole text the API returns)
  if (problem !== undefined)
    throw new ValidationError('STOKER_RESOURCE_PROPERTIES_INVALID', problem, { details: { path, resourceType: type.type } });
  return properties;
}

/** The members of a map (or the top-level properties) against their schemas; `skip` names those not to check in depth. */
function members(
  schema: PropertiesSchema,
  data: JsonObject,
  at: readonly Segment[],
  custom: CustomConstraints,
  skip: ReadonlySet<string> | true,
): JsonObject {
  if (skip !== true) {
    for (const key of Object.keys(data)) {
      if (!Object.hasOwn(schema, key)) throw new PropertyProblem(at, `Unknown Property ${key}`);
    }
  }
  const out: JsonObject = {};
  for (const [key, prop] of Object.entries(schema)) {
    const check = skip !== true && !skip.has(key);
    if (Object.hasOwn(data, key)) out[key] = member(prop, data[key]!, [...at, key], custom, check);
    else if (prop.default !== undefined && prop.default !== null) out[key] = member(prop, null, [...at, key], custom, check);
    else if (prop.required) throw new PropertyProblem(at, `Property ${key} not assigned`);
    else out[key] = null;
  }
  return out;
}

/** One value: converted, its members validated, then (when `check`) its constraints checked. */
function member(prop: PropertySchema, given: JsonValue, at: readonly Segment[], custom: CustomConstraints, check: boolean): JsonValue {
  const conversion = convertProperty(prop, given === null ? emptyValue(prop) : given);
  if (!conversion.ok) throw new PropertyProblem(at, conversion.message);
  let value = conversion.value;
  if (prop.type === 'list' && prop.schema && Array.isArray(value)) {
    const item = prop.schema;
    value = value.map((v, i) => member(item, v, [...at, i], custom, check));
  } else if (prop.type === 'map' && prop.schema && isMapping(value)) {
    value = members(prop.schema, value, at, custom, check ? new Set() : true);
  }
  const problem = check ? checkConstraints(prop, value, custom) : undefined;
  if (problem !== undefined) throw new PropertyProblem(at, problem);
  return value;
}
