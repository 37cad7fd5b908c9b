/**
 * The built-in resource types that need no nested stack and no cloud: OS::Heat::TestResource,
 * RandomString, Value, None, Delay, SoftwareConfig, CloudConfig and MultipartMime.
 */
import { ResourceTypeRegistry } from './resource-type-registry.js';
import type { ResourceType } from './resource-type.js';
import { cloudConfigType } from './types/cloud-config.js';
import type { SoftwareConfigStore } from './types/config-store.js';
import { delayType } from './types/delay.js';
import { multipartMimeType } from './types/multipart-mime.js';
import { noneResource } from './types/none-resource.js';
import { randomStringType } from './types/random-string.js';
import { softwareConfigType } from './types/software-config.js';
import { testResource } from './types/test-resource.js';
import { valueType } from './types/value.js';

/**
 * What the built-in types need from their host.
 *
 * @example
 * ```ts
 * const options: BuiltinTypeOptions = { secret: serverSecret, configs: new MemoryConfigStore() };
 * ```
 */
export interface BuiltinTypeOptions {
  /** server-side key material (32 bytes or more) under which RandomString derives its strings */
  secret: string | Uint8Array;
  /** where the config types store their configs */
  configs: SoftwareConfigStore;
}

/**
 * The built-in types, in name order.
 *
 * @example
 * ```ts
 * builtinResourceTypes({ secret, configs }).map((t) => t.type); // ['OS::Heat::CloudConfig', …]
 * ```
 */
export function builtinResourceTypes(options: BuiltinTypeOptions): ResourceType[] {
  return [
    cloudConfigType(options.configs),
    delayType,
    multipartMimeType(options.configs),
    noneResource,
    randomStringType({ secret: options.secret }),
    softwareConfigType(options.configs),
    testResource,
    valueType,
  ];
}

/**
 * A registry holding the built-in types.
 *
 * @example
 * ```ts
 * const registry = createBuiltinRegistry({ secret, configs });
 * registry.show('OS::Heat::RandomString').properties['length']; // { type: 'integer', default: 32, … }
 * ```
 */
export function createBuiltinRegistry(options: BuiltinTypeOptions): ResourceTypeRegistry {
  const registry = new ResourceTypeRegistry();
  for (const type of builtinResourceTypes(options)) registry.register(type);
  return registry;
}
