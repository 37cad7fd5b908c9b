/**
 * The resource types the stack layer itself executes, declared as plugins so that templates
 * validate against their property schemas and `resource type list|show` shows them:
 * OS::Heat::Stack, OS::Heat::ResourceGroup and OS::Heat::ResourceChain run a nested stack
 * (a child traversal the resource step waits for: nested.ts); WaitConditionHandle collects
 * signals; WaitCondition waits for them (wait-condition.ts). Their operations are never
 * called through the plugin API: the step dispatches on {@link stackLayerKind}.
 */
import type { JsonObject } from '../../core/json.js';
import { StokerError } from '../../errors.js';
import { supported, type ResourceType } from '../resources/index.js';

export type StackLayerKind = 'stack' | 'group' | 'chain' | 'wait-handle' | 'wait-condition';

const notThroughPlugin = async (): Promise<never> => {
  throw new StokerError('STOKER_INTERNAL_INVARIANT', 'this type is executed by the stack layer, not through the plugin API');
};

function layerType(
  type: string,
  description: string,
  version: string,
  props: ResourceType['properties'],
  attributes: ResourceType['attributes'],
): ResourceType {
  return {
    type,
    description,
    supportStatus: supported(version),
    properties: props,
    attributes,
    create: notThroughPlugin,
    update: notThroughPlugin,
    delete: notThroughPlugin,
    async attribute() {
      return null;
    },
  };
}

export const stackLayerTypes: Readonly<Record<string, { kind: StackLayerKind; type: ResourceType }>> = {
  'OS::Heat::Stack': {
    kind: 'stack',
    type: layerType(
      'OS::Heat::Stack',
      "A nested stack from a template given inline: its outputs are this resource's attributes.",
      '2014.1',
      {
        template: { type: 'string', required: true, updateAllowed: true, description: 'The nested template (YAML or JSON text).' },
        parameters: { type: 'map', default: {}, updateAllowed: true, description: 'Parameter values of the nested stack.' },
        timeout: { type: 'integer', updateAllowed: true, description: 'The nested stack timeout in minutes.' },
        context: { type: 'map', description: 'Ignored: there is one region.' },
      },
      {
        outputs: { description: "A map of the nested stack's outputs.", type: 'map' },
        stack_name: { description: 'The nested stack name.' },
      },
    ),
  },
  'OS::Heat::ResourceGroup': {
    kind: 'group',
    type: layerType(
      'OS::Heat::ResourceGroup',
      'Creates one or more identically configured nested resources.',
      '2014.1',
      {
        count: {
          type: 'integer',
          default: 1,
          updateAllowed: true,
          constraints: [{ range: { min: 0 } }],
          description: 'The number of resources to create.',
        },
        index_var: { type: 'string', default: '%index%', updateAllowed: true, description: 'A variable replaced with the current index.' },
        resource_def: {
          type: 'map',
          required: true,
          updateAllowed: true,
          description: 'Resource definition for the resources in the group.',
          schema: {
            type: { type: 'string', required: true, description: 'The type of the resources in the group.' },
            properties: { type: 'map', description: 'Property values for the resources in the group.' },
            metadata: { type: 'map', description: 'Supplied metadata for each resource in the group.' },
          },
        },
        removal_policies: {
          type: 'list',
          default: [],
          updateAllowed: true,
          description: 'Policies for removal of resources on update.',
          schema: { type: 'map', schema: { resource_list: { type: 'list', default: [] } } },
        },
        removal_policies_mode: {
          type: 'string',
          default: 'append',
          updateAllowed: true,
          constraints: [{ allowed_values: ['append', 'update'] }],
        },
      },
      {
        refs: { description: 'A list of resource IDs for the resources in the group.', type: 'list' },
        refs_map: { description: 'A map of resource names to IDs for the resources in the group.', type: 'map' },
        attributes: { description: 'A map of resource names to the specified attribute of each individual resource.', type: 'map' },
        removed_rsrc_list: { description: 'A list of removed resource names.', type: 'list' },
      },
    ),
  },
  'OS::Heat::ResourceChain': {
    kind: 'chain',
    type: layerType(
      'OS::Heat::ResourceChain',
      'Creates a chain of resources of the types listed, each depending on the one before unless concurrent.',
      '6.0.0',
      {
        resources: { type: 'list', required: true, updateAllowed: true, schema: { type: 'string' }, description: 'The resource types.' },
        concurrent: { type: 'boolean', default: false, updateAllowed: true, description: 'Create them all at once.' },
        resource_properties: { type: 'map', default: {}, updateAllowed: true, description: 'Properties given to every resource.' },
      },
      {
        refs: { description: 'A list of resource IDs for the resources in the chain.', type: 'list' },
        attributes: { description: 'A map of resource names to the specified attribute of each individual resource.', type: 'map' },
      },
    ),
  },
  'OS::Heat::WaitConditionHandle': {
    kind: 'wait-handle',
    type: layerType(
      'OS::Heat::WaitConditionHandle',
      'Receives signals (`stack resource signal`) that a WaitCondition waits for.',
      '2014.2',
      {},
      {
        token: { description: 'Unused: signals go through `stack resource signal`.' },
        endpoint: { description: 'Unused: signals go through `stack resource signal`.' },
        curl_cli: { description: 'Unused: signals go through `stack resource signal`.' },
        signal: { description: 'Unused: signals go through `stack resource signal`.' },
      },
    ),
  },
  'OS::Heat::WaitCondition': {
    kind: 'wait-condition',
    type: layerType(
      'OS::Heat::WaitCondition',
      'Waits for `count` success signals on its handle, failing at the first failure signal or at the timeout.',
      '2014.2',
      {
        handle: { type: 'string', required: true, description: 'The WaitConditionHandle (get_resource).' },
        timeout: { type: 'number', required: true, constraints: [{ range: { min: 1, max: 43200 } }], description: 'Seconds to wait.' },
        count: {
          type: 'integer',
          default: 1,
          updateAllowed: true,
          constraints: [{ range: { min: 1 } }],
          description: 'Success signals needed.',
        },
      },
      { data: { description: "The signals' data by id, as JSON text.", type: 'string' } },
    ),
  },
};

/** The stack layer's kind of a type name, if it is one of them. */
export function stackLayerKind(type: string): StackLayerKind | undefined {
  return stackLayerTypes[type]?.kind;
}

/** A ResourceGroup's members: `count` copies of `resource_def` with the index variable replaced, named "0", "1", … */
export function groupMemberTemplate(properties: JsonObject, version: string, blacklist: readonly string[] = []): JsonObject {
  const count = Number(properties['count'] ?? 1);
  const indexVar = String(properties['index_var'] ?? '%index%');
  const def = (properties['resource_def'] ?? {}) as JsonObject;
  const replace = (v: unknown, i: string): unknown =>
    typeof v === 'string'
      ? indexVar === ''
        ? v
        : v.split(indexVar).join(i)
      : Array.isArray(v)
        ? v.map((x) => replace(x, i))
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replace(x, i)]))
          : v;
  const resources: JsonObject = {};
  let made = 0;
  for (let i = 0; made < count; i++) {
    const name = String(i);
    if (blacklist.includes(name)) continue;
    const member: JsonObject = { type: String(def['type']) };
    if (def['properties'] !== undefined && def['properties'] !== null)
      member['properties'] = replace(def['properties'], name) as JsonObject;
    if (def['metadata'] !== undefined && def['metadata'] !== null) member['metadata'] = replace(def['metadata'], name) as JsonObject;
    resources[name] = member;
    made++;
  }
  return { heat_template_version: version, resources };
}

/** A ResourceChain's members: one per type, each depending on the one before unless concurrent. */
export function chainTemplate(properties: JsonObject, version: string): JsonObject {
  const types = (properties['resources'] ?? []) as string[];
  const props = (properties['resource_properties'] ?? {}) as JsonObject;
  const resources: JsonObject = {};
  types.forEach((type, i) => {
    const member: JsonObject = { type };
    if (Object.keys(props).length > 0) member['properties'] = props;
    if (i > 0 && properties['concurrent'] !== true) member['depends_on'] = [String(i - 1)];
    resources[String(i)] = member;
  });
  return { heat_template_version: version, resources };
}
