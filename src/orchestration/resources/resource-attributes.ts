/**
 * Attributes and references of a resource, with Heat's rules around the type's own
 * resolvers: `show` belongs to every type (the underlying object, null for the cloud-free
 * types, which have none); `get_attr: [r]` gives every attribute but `show`; resource show
 * lists `show` when it is a map, else every attribute (`show` included, as null); an unknown
 * name is Heat's "The Referenced Attribute (r x) is incorrect."; OS::Heat::None answers null to
 * any name; `get_resource` gives the physical id, or the resource name before there is one.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { ValidationError } from '../../errors.js';
import { isMapping } from '../template/python-values.js';
import type { AttributeContext, ReferenceContext, ResourceType } from './resource-type.js';

/**
 * The attribute every resource type has.
 *
 * @example
 * ```ts
 * await resolveAttribute(type, SHOW_ATTRIBUTE, ctx); // null for the cloud-free types
 * ```
 */
export const SHOW_ATTRIBUTE = 'show';

/**
 * The attribute names of a type, `show` included, in schema order.
 *
 * @example
 * ```ts
 * attributeNames(testResource); // ['output', 'show']
 * ```
 */
export function attributeNames(type: ResourceType): string[] {
  return [...Object.keys(type.attributes).filter((n) => n !== SHOW_ATTRIBUTE), SHOW_ATTRIBUTE];
}

/**
 * Resolves one attribute (`get_attr: [r, name]`, before any path is applied).
 *
 * @throws ValidationError STOKER_RESOURCE_ATTRIBUTE_INVALID for a name the type does not have
 * @example
 * ```ts
 * await resolveAttribute(testResource, 'output', ctx); // 'test_string'
 * await resolveAttribute(testResource, 'nope', ctx); // throws 'The Referenced Attribute (test1 nope) is incorrect.'
 * ```
 */
export async function resolveAttribute(type: ResourceType, name: string, ctx: AttributeContext): Promise<JsonValue> {
  if (type.stub) return null;
  if (name === SHOW_ATTRIBUTE) return type.show ? await type.show(ctx) : null;
  if (!Object.hasOwn(type.attributes, name)) {
    throw new ValidationError('STOKER_RESOURCE_ATTRIBUTE_INVALID', `The Referenced Attribute (${ctx.resourceName} ${name}) is incorrect.`, {
      details: { resource: ctx.resourceName, attribute: name, resourceType: type.type },
    });
  }
  return type.attribute(name, ctx);
}

/**
 * Every attribute but `show`, as `get_attr: [r]` gives them (Heat's `FnGetAtts`).
 *
 * @example
 * ```ts
 * await resolveAllAttributes(randomString, ctx); // { value: 'q2Zx…' }
 * ```
 */
export async function resolveAllAttributes(type: ResourceType, ctx: AttributeContext): Promise<JsonObject> {
  const out: JsonObject = {};
  for (const name of Object.keys(type.attributes)) if (name !== SHOW_ATTRIBUTE) out[name] = await resolveAttribute(type, name, ctx);
  return out;
}

/**
 * The `attributes` of resource show: `show` when it resolves to a map, else every attribute
 * (`show` included) with null for those that fail to resolve, as Heat's API formats them.
 *
 * @example
 * ```ts
 * await showAttributes(testResource, ctx); // { output: 'test_string', show: null }
 * ```
 */
export async function showAttributes(type: ResourceType, ctx: AttributeContext): Promise<JsonObject> {
  const tolerant = async (name: string): Promise<JsonValue> => {
    try {
      return await resolveAttribute(type, name, ctx);
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      return null;
    }
  };
  const show = await tolerant(SHOW_ATTRIBUTE);
  if (isMapping(show)) return show;
  const out: JsonObject = {};
  for (const name of attributeNames(type)) out[name] = name === SHOW_ATTRIBUTE ? show : await tolerant(name);
  return out;
}

/**
 * What `get_resource` gives for the resource.
 *
 * @example
 * ```ts
 * referenceId(testResource, { resourceName: 'test1', physicalId: null, data: {}, properties: {} }); // 'test1'
 * ```
 */
export function referenceId(type: ResourceType, ctx: ReferenceContext): JsonValue {
  if (type.referenceId) return type.referenceId(ctx);
  return ctx.physicalId ?? ctx.resourceName;
}
