/**
 * The built-in resource types that need no nested stack and no cloud: OS::Heat::TestResource,
 * RandomString, Value, None, Delay, SoftwareConfig, CloudConfig and MultipartMime, and Stoker's
 * own Stoker::HTTP::Resource (an item of any REST API) and Stoker::Local::Command (programs
 * run on the engine's machine, only when the host allows it).
 */
import { ResourceTypeRegistry } from './resource-type-registry.js';
import type { ResourceType } from './resource-type.js';
import { cloudConfigType } from './types/cloud-config.js';
import type { SoftwareConfigStore } from './types/config-store.js';
import { delayType } from './types/delay.js';
import { httpResource } from './types/http-resource.js';
import { localCommandType } from './types/local-command.js';
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
 * const options: BuiltinTypeOptions = { secret: serverSecret, configs: new MemoryConfigStore(), allowLocalCommands: false };
 * ```
 */
export interface BuiltinTypeOptions {
  /** server-side key material (32 bytes or more) under which RandomString derives its strings */
  secret: string | Uint8Array;
  /** where the config types store their configs */
  configs: SoftwareConfigStore;
  /**
   * Let Stoker::Local::Command run programs (the CLI's `--allow-local-commands`). Default
   * false: the type is registered (templates validate) but refuses to run anything, since a
   * template that may run commands may do whatever the engine's user may.
   */
  allowLocalCommands?: boolean;
  /**
   * The environment Stoker::Local::Command's programs start from, before their own `env`
   * (the CLI may pass its `process.env`). Default: none, so that the engine's secrets stay
   * its own; programs named without a path are then looked up in the system's default PATH.
   */
  localCommandEnv?: Readonly<Record<string, string | undefined>>;
}

/**
 * The built-in types, in name order.
 *
 * @example
 * ```ts
 * builtinResourceTypes({ secret, configs }).map((t) => t.type); // ['OS::Heat::CloudConfig', …, 'Stoker::Local::Command']
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
    httpResource,
    localCommandType({ allow: options.allowLocalCommands === true, env: options.localCommandEnv }),
  ];
}

/**
 * A registry holding the built-in types.
 *
 * @example
 * ```ts
 * const registry = createBuiltinRegistry({ secret, configs });
 * registry.show('OS::Heat::RandomString').properties['length']; // { type: 'integer', default: 32, … }
 * createBuiltinRegistry({ secret, configs, allowLocalCommands: true }); // Stoker::Local::Command runs its commands
 * ```
 */
export function createBuiltinRegistry(options: BuiltinTypeOptions): ResourceTypeRegistry {
  const registry = new ResourceTypeRegistry();
  for (const type of builtinResourceTypes(options)) registry.register(type);
  return registry;
}
