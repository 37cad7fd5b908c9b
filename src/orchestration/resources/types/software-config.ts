/**
 * OS::Heat::SoftwareConfig, and what the other config types share with it: a config stored in
 * the config store under a UUID (the physical id), named after the resource's physical name,
 * exposed as the attribute `config`; no property updates in place, so any change replaces the
 * resource (a new config; the old one is deleted after). As Heat's: inputs and outputs are
 * stored without their null fields, an input's `replace_on_change` only when true.
 *
 * Differs from Heat: the UUID is derived from the operation's idempotency key (an execution of
 * the same create again stores the same config under the same id); an input's `default` is
 * stored as given, not converted to the input's type.
 */
import type { JsonObject } from '../../../core/json.js';
import { isMapping } from '../../template/python-values.js';
import { deterministicUuid, physicalResourceName } from '../physical-ids.js';
import { supported, type PropertiesSchema, type PropertySchema, type SupportStatus } from '../property-schema.js';
import { REPLACE, type OperationContext, type ResourceType } from '../resource-type.js';
import type { SoftwareConfigRecord, SoftwareConfigStore } from './config-store.js';

/**
 * What a config type stores besides the id, the name and the project.
 *
 * @example
 * ```ts
 * const content: ConfigContent = { group: 'Heat::Ungrouped', config: 'xxxx', inputs: [], outputs: [], options: null };
 * ```
 */
export type ConfigContent = Pick<SoftwareConfigRecord, 'group' | 'config' | 'inputs' | 'outputs' | 'options'>;

/**
 * The parts of a config type that differ from one type to another.
 *
 * @example
 * ```ts
 * const spec: ConfigTypeSpec = { type: 'Example::Config', description: '…', supportStatus: supported(), properties: {}, render: async () => content };
 * ```
 */
export interface ConfigTypeSpec {
  type: string;
  description: string;
  supportStatus: SupportStatus;
  properties: PropertiesSchema;
  /** the config to store, from the validated properties */
  render(ctx: OperationContext, store: SoftwareConfigStore): Promise<ConfigContent>;
}

/**
 * A config type over `store`: create stores the rendered config, delete removes it, the
 * attribute `config` reads it back, any property change replaces the resource.
 *
 * @example
 * ```ts
 * const type = configResourceType(spec, new MemoryConfigStore());
 * ```
 */
export function configResourceType(spec: ConfigTypeSpec, store: SoftwareConfigStore): ResourceType {
  return {
    type: spec.type,
    description: spec.description,
    supportStatus: spec.supportStatus,
    properties: spec.properties,
    attributes: { config: { description: 'The config as stored.', type: 'string' } },
    async create(ctx) {
      const id = deterministicUuid(ctx.idempotencyKey, 'software-config');
      const content = await spec.render(ctx, store);
      const name = physicalResourceName(ctx.stack.name, ctx.resourceName, ctx.idempotencyKey);
      await store.put({ id, name, project: ctx.stack.project, ...content });
      return { physicalId: id, data: {} };
    },
    async update(ctx) {
      // configs are immutable: only a change outside the properties is applied without a replacement
      return ctx.changed.length === 0 ? { physicalId: ctx.physicalId, data: ctx.data } : REPLACE;
    },
    async delete(ctx) {
      if (ctx.physicalId !== null) await store.delete(ctx.physicalId);
    },
    async attribute(name, ctx) {
      if (name !== 'config' || ctx.physicalId === null) return null;
      return (await store.get(ctx.physicalId))?.config ?? null;
    },
  };
}

const IO_TYPES = ['String', 'Number', 'CommaDelimitedList', 'Json', 'Boolean'];
const ioType = (description: string): PropertySchema => ({
  type: 'string',
  description,
  default: 'String',
  constraints: [{ allowed_values: IO_TYPES }],
});

/** Heat's `IOConfig.as_dict`: the fields that are not null (and `replace_on_change` only when set). */
function ioList(value: unknown, input: boolean): JsonObject[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter(isMapping)
    .map((io) =>
      Object.fromEntries(Object.entries(io).filter(([k, v]) => v !== null && !(input && k === 'replace_on_change' && v === false))),
    );
}

/**
 * Builds the OS::Heat::SoftwareConfig type over `store`.
 *
 * @example
 * ```ts
 * const type = softwareConfigType(configs);
 * await type.attribute('config', ctx); // 'xxxx'
 * ```
 */
export function softwareConfigType(store: SoftwareConfigStore): ResourceType {
  return configResourceType(
    {
      type: 'OS::Heat::SoftwareConfig',
      description: 'Stores a software configuration (a script or manifest, with the inputs and outputs it expects) for servers to use.',
      supportStatus: supported('2014.1'),
      properties: {
        group: {
          type: 'string',
          description: 'The namespace of the config, which tells the server which tool applies it.',
          default: 'Heat::Ungrouped',
        },
        config: { type: 'string', description: 'The configuration script or manifest.' },
        options: { type: 'map', description: 'Options for the configuration tool.' },
        inputs: {
          type: 'list',
          description: 'The inputs the config expects.',
          schema: {
            type: 'map',
            schema: {
              name: { type: 'string', description: 'The name of the input.', required: true },
              description: { type: 'string', description: 'What the input is.' },
              type: ioType('The type of the input value.'),
              default: { type: 'any', description: 'The value when none is given.' },
              replace_on_change: {
                type: 'boolean',
                description: 'Replace the deployment instead of updating it when the value changes.',
                default: false,
              },
            },
          },
        },
        outputs: {
          type: 'list',
          description: 'The outputs the config produces.',
          schema: {
            type: 'map',
            schema: {
              name: { type: 'string', description: 'The name of the output.', required: true },
              description: { type: 'string', description: 'What the output is.' },
              type: ioType('The type of the output value.'),
              error_output: { type: 'boolean', description: 'A value in this output means the deployment failed.', default: false },
            },
          },
        },
      },
      async render(ctx) {
        const p = ctx.properties;
        return {
          group: typeof p['group'] === 'string' ? p['group'] : 'Heat::Ungrouped',
          config: typeof p['config'] === 'string' ? p['config'] : null,
          inputs: ioList(p['inputs'], true),
          outputs: ioList(p['outputs'], false),
          options: isMapping(p['options']) ? p['options'] : null,
        };
      },
    },
    store,
  );
}
