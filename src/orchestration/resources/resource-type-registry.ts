/**
 * The resource types a stack engine knows, by name, with what `openstack orchestration
 * resource type list` and `… resource type show` print. Registering checks a type's schema the
 * way Heat checks its classes (constraints that fit their property's type, defaults that pass
 * their own constraints, `updateAllowed` and `immutable` not both set).
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.js';
import { checkConstraints, misplacedConstraint } from './property-constraints.js';
import { convertProperty, shownValue } from './property-conversion.js';
import type { AttributeSchema, PropertiesSchema, PropertySchema, SupportStatus } from './property-schema.js';
import { SHOW_ATTRIBUTE } from './resource-attributes.js';
import type { ResourceType } from './resource-type.js';

/**
 * What `resource type show` gives.
 *
 * @example
 * ```ts
 * registry.show('OS::Heat::Value').attributes['value']; // { description: '…' }
 * ```
 */
export interface ResourceTypeSchema {
  resource_type: string;
  properties: JsonObject;
  attributes: JsonObject;
  support_status: JsonObject;
  description: string;
}

/** Heat's description of the attribute every type has. */
const SHOW: AttributeSchema = { description: 'Detailed information about resource.', type: 'map' };

const hidden = (s: { supportStatus?: SupportStatus }): boolean => s.supportStatus?.status === 'HIDDEN';

/** A support status as JSON (Heat's `SupportStatus.to_dict`). */
function supportJson(s: SupportStatus): JsonObject {
  return {
    status: s.status,
    message: s.message,
    version: s.version,
    previous_status: s.previous_status ? supportJson(s.previous_status) : null,
  };
}

/** One property schema as Heat serialises it (key order included). */
function schemaJson(p: PropertySchema): JsonObject {
  const out: JsonObject = { type: p.type };
  if (p.description !== undefined) out['description'] = p.description;
  if (p.default !== undefined && p.default !== null) out['default'] = p.default;
  if (p.type === 'list' && p.schema) out['schema'] = { '*': schemaJson(p.schema) };
  if (p.type === 'map' && p.schema) out['schema'] = propertiesJson(p.schema, false);
  out['required'] = p.required === true;
  if (p.constraints && p.constraints.length > 0) out['constraints'] = p.constraints.map((c) => ({ ...c }) as JsonObject);
  out['update_allowed'] = p.updateAllowed === true;
  out['immutable'] = p.immutable === true;
  return out;
}

function propertiesJson(schema: PropertiesSchema, dropHidden: boolean): JsonObject {
  const out: JsonObject = {};
  for (const [name, p] of Object.entries(schema)) if (!(dropHidden && hidden(p))) out[name] = schemaJson(p);
  return out;
}

/** The first problem of one property schema (and its members), as `<path>: <problem>`. */
function schemaProblem(p: PropertySchema, path: string): string | undefined {
  if (p.updateAllowed && p.immutable) return `${path}: Options update_allowed and immutable cannot both be True`;
  for (const c of p.constraints ?? []) {
    const problem = misplacedConstraint(p, c);
    if (problem !== undefined) return `${path}: ${problem}`;
  }
  if (p.default !== undefined && p.default !== null) {
    const converted = convertProperty(p, p.default);
    const problem = converted.ok ? checkConstraints(p, converted.value) : converted.message;
    if (problem !== undefined) return `${path}: Invalid default ${shownValue(p.default as JsonValue)} (${problem})`;
  }
  if (p.type === 'list' && p.schema) return schemaProblem(p.schema, `${path}.*`);
  if (p.type === 'map' && p.schema) {
    for (const [name, member] of Object.entries(p.schema)) {
      const problem = schemaProblem(member, `${path}.${name}`);
      if (problem !== undefined) return problem;
    }
  }
  return undefined;
}

/**
 * Checks a type's schema; throws what is wrong with it.
 *
 * @throws ValidationError STOKER_RESOURCE_TYPE_INVALID
 * @example
 * ```ts
 * checkResourceType({ ...myType, properties: { n: { type: 'string', constraints: [{ range: { min: 1 } }] } } });
 * // throws 'My::Type: properties.n: Range constraint invalid for String'
 * ```
 */
export function checkResourceType(type: ResourceType): void {
  const fail = (message: string): never => {
    throw new ValidationError('STOKER_RESOURCE_TYPE_INVALID', `${type.type}: ${message}`, { details: { resourceType: type.type } });
  };
  if (typeof type.type !== 'string' || !/^[^\s:]+(?:::[^\s:]+)+$/.test(type.type)) fail('a type name has the form Namespace::Name');
  for (const [name, p] of Object.entries(type.properties)) {
    const problem = schemaProblem(p, `properties.${name}`);
    if (problem !== undefined) fail(problem);
  }
  if (Object.hasOwn(type.attributes, SHOW_ATTRIBUTE)) fail(`attributes.${SHOW_ATTRIBUTE}: every type has it; define show() instead`);
}

/**
 * Resource types by name. Not a singleton: each stack engine owns one.
 *
 * @example
 * ```ts
 * const registry = new ResourceTypeRegistry();
 * for (const type of builtinResourceTypes({ secret, configs })) registry.register(type);
 * registry.get('OS::Heat::RandomString');
 * ```
 */
export class ResourceTypeRegistry {
  private readonly byName = new Map<string, ResourceType>();

  /** Registers `type` after checking its schema; the same object again is a no-op, another under a taken name a conflict. */
  register(type: ResourceType): this {
    checkResourceType(type);
    const known = this.byName.get(type.type);
    if (known && known !== type) {
      throw new ConflictError('STOKER_RESOURCE_TYPE_CONFLICT', `Another resource type is already registered as ${type.type}.`, {
        details: { resourceType: type.type },
      });
    }
    this.byName.set(type.type, type);
    return this;
  }

  /** the type, or undefined */
  find(name: string): ResourceType | undefined {
    return this.byName.get(name);
  }

  /**
   * The type; throws Heat's "The Resource Type (X) could not be found." when there is none.
   *
   * @throws NotFoundError STOKER_RESOURCE_TYPE_NOT_FOUND
   */
  get(name: string): ResourceType {
    const type = this.byName.get(name);
    if (!type) {
      throw new NotFoundError('STOKER_RESOURCE_TYPE_NOT_FOUND', `The Resource Type (${name}) could not be found.`, {
        details: { resourceType: name },
      });
    }
    return type;
  }

  /** the types' names and descriptions, sorted by name (hidden types left out) */
  list(): { resource_type: string; description: string }[] {
    return [...this.byName.values()]
      .filter((t) => !hidden(t))
      .map((t) => ({ resource_type: t.type, description: t.description }))
      .sort((a, b) => (a.resource_type < b.resource_type ? -1 : a.resource_type > b.resource_type ? 1 : 0));
  }

  /** the schema of a type, as `resource type show` prints it (hidden properties and attributes left out) */
  show(name: string): ResourceTypeSchema {
    const type = this.get(name);
    const attributes: JsonObject = {};
    for (const [n, a] of [...Object.entries(type.attributes), [SHOW_ATTRIBUTE, SHOW] as const]) {
      if (hidden(a)) continue;
      attributes[n] = a.type === undefined ? { description: a.description } : { description: a.description, type: a.type };
    }
    return {
      resource_type: type.type,
      properties: propertiesJson(type.properties, true),
      attributes,
      support_status: supportJson(type.supportStatus),
      description: type.description,
    };
  }
}
