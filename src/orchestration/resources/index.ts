/**
 * The resource layer of Stoker's Heat-compatible orchestration: the plugin API a resource type
 * implements, property validation and replacement decisions with Heat's rules and messages,
 * attribute resolution, and the built-in types that need neither a nested stack nor a cloud.
 * The stack engine calls this once per resource step; nothing here touches the stack's state.
 *
 * @example
 * ```ts
 * import { createBuiltinRegistry, validateProperties, needsReplacement, MemoryConfigStore } from './orchestration/resources/index.js';
 *
 * const registry = createBuiltinRegistry({ secret, configs: new MemoryConfigStore() });
 * const type = registry.get('OS::Heat::TestResource');
 * const properties = validateProperties(type, evaluated.properties, 'resources.test1');
 * const result = await type.create({ stack, resourceName: 'test1', properties, physicalId: null, data: {}, idempotencyKey, signal, sleep });
 * ```
 */
export { abortReason, abortableSleep } from './abortable-sleep.js';
export { builtinResourceTypes, createBuiltinRegistry, type BuiltinTypeOptions } from './builtin-types.js';
export { checkDeletionPolicy } from './deletion-policy.js';
export { KeyedRandom } from './keyed-random.js';
export { needsReplacement, type ReplacementOptions, type UpdateDecision } from './needs-replacement.js';
export { PHYSICAL_NAME_LIMIT, deterministicUuid, physicalResourceName, shortId } from './physical-ids.js';
export { BUILTIN_CUSTOM_CONSTRAINTS, checkConstraints, type CustomConstraints } from './property-constraints.js';
export { convertProperty, type Conversion } from './property-conversion.js';
export {
  supported,
  type AttributeSchema,
  type PropertiesSchema,
  type PropertyConstraint,
  type PropertySchema,
  type PropertyType,
  type SupportStatus,
} from './property-schema.js';
export {
  SHOW_ATTRIBUTE,
  attributeNames,
  referenceId,
  resolveAllAttributes,
  resolveAttribute,
  showAttributes,
} from './resource-attributes.js';
export { ResourceFailure, nestedFailureReason, resourceStatusReason } from './resource-failure.js';
export { ResourceTypeRegistry, checkResourceType, type ResourceTypeSchema } from './resource-type-registry.js';
export {
  REPLACE,
  isReplace,
  type AttributeContext,
  type OperationContext,
  type ReferenceContext,
  type ReplaceRequest,
  type ResourceResult,
  type ResourceType,
  type StackIdentity,
  type UpdateContext,
  type ValidationContext,
} from './resource-type.js';
export { heatPath, validateProperties, type PropertyValidationOptions } from './validate-properties.js';
export { cloudConfigType } from './types/cloud-config.js';
export { MemoryConfigStore, type SoftwareConfigRecord, type SoftwareConfigStore } from './types/config-store.js';
export { delayType } from './types/delay.js';
export { httpResource } from './types/http-resource.js';
export { localCommandType, type LocalCommandOptions } from './types/local-command.js';
export { multipartMimeType } from './types/multipart-mime.js';
export { noneResource } from './types/none-resource.js';
export { CHARACTER_CLASSES, randomStringType, type RandomStringOptions } from './types/random-string.js';
export { configResourceType, softwareConfigType, type ConfigContent, type ConfigTypeSpec } from './types/software-config.js';
export { testResource } from './types/test-resource.js';
export { valueType } from './types/value.js';
export { pyYamlDump } from './types/yaml-dump.js';
