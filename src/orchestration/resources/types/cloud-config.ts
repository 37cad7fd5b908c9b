/**
 * OS::Heat::CloudConfig: a cloud-init cloud-config stored as a software config. As Heat's: the
 * `cloud_config` map is written as YAML the way PyYAML dumps it (keys sorted, block style),
 * after a `#cloud-config` line, in the group `Heat::Ungrouped`; the attribute `config` gives it
 * back; any change replaces the resource.
 */
import { supported } from '../property-schema.js';
import type { ResourceType } from '../resource-type.js';
import type { SoftwareConfigStore } from './config-store.js';
import { configResourceType } from './software-config.js';
import { pyYamlDump } from './yaml-dump.js';

/**
 * Builds the OS::Heat::CloudConfig type over `store`.
 *
 * @example
 * ```ts
 * const type = cloudConfigType(configs);
 * // with cloud_config { foo: 'bar' } the attribute config is '#cloud-config\nfoo: bar\n'
 * ```
 */
export function cloudConfigType(store: SoftwareConfigStore): ResourceType {
  return configResourceType(
    {
      type: 'OS::Heat::CloudConfig',
      description: 'Stores a cloud-init cloud-config, written as YAML from a map, for servers to boot with.',
      supportStatus: supported('2014.1'),
      properties: {
        cloud_config: { type: 'map', description: 'The cloud-config data, written out as YAML.' },
      },
      async render(ctx) {
        const config = `#cloud-config\n${pyYamlDump(ctx.properties['cloud_config'] ?? null)}`;
        return { group: 'Heat::Ungrouped', config, inputs: [], outputs: [], options: null };
      },
    },
    store,
  );
}
