/**
 * OS::Heat::Value: exposes its `value` property as the attribute `value`. As Heat's: `value` is
 * required and may be anything, unless `type` (a HOT parameter type) says what it must be
 * (`comma_delimited_list` a list, `json` a map); both update in place; the physical id is the
 * physical name.
 */
import { physicalResourceName } from '../physical-ids.js';
import { supported, type PropertiesSchema, type PropertySchema } from '../property-schema.js';
import type { ResourceType } from '../resource-type.js';

/** HOT parameter type → the property type `value` must then have (Heat's mapping). */
const VALUE_TYPES: Readonly<Record<string, PropertySchema['type']>> = {
  string: 'string',
  number: 'number',
  comma_delimited_list: 'list',
  json: 'map',
  boolean: 'boolean',
};

const valueProperty = (type: PropertySchema['type']): PropertySchema =>
  ({ type, description: 'The value to expose as the value attribute.', required: true, updateAllowed: true }) as PropertySchema;

const PROPERTIES: PropertiesSchema = {
  value: valueProperty('any'),
  type: {
    type: 'string',
    description: 'The type of the value property, as a HOT parameter type.',
    constraints: [{ allowed_values: Object.keys(VALUE_TYPES) }],
    updateAllowed: true,
  },
};

/**
 * The OS::Heat::Value type.
 *
 * @example
 * ```ts
 * await valueType.attribute('value', ctx); // ctx.properties.value
 * ```
 */
export const valueType: ResourceType = {
  type: 'OS::Heat::Value',
  description: 'Exposes the value of its value property as an attribute, typed by its type property when given.',
  supportStatus: supported('7.0.0'),
  properties: PROPERTIES,
  attributes: {
    value: { description: 'The value property, of the type the type property names.' },
  },
  propertiesSchema(raw) {
    const declared = raw['type'];
    const type = typeof declared === 'string' && Object.hasOwn(VALUE_TYPES, declared) ? VALUE_TYPES[declared]! : undefined;
    return type === undefined ? PROPERTIES : { ...PROPERTIES, value: valueProperty(type) };
  },
  async create(ctx) {
    return { physicalId: physicalResourceName(ctx.stack.name, ctx.resourceName, ctx.idempotencyKey), data: {} };
  },
  async update(ctx) {
    return { physicalId: ctx.physicalId, data: ctx.data };
  },
  async delete() {},
  async attribute(name, ctx) {
    return name === 'value' ? (ctx.properties['value'] ?? null) : null;
  },
};
