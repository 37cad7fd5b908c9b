/**
 * Heat's stack validation, done in full before anything is stored: every resource's type
 * resolves (plugins, the stack layer's types, template resources), its properties fit the
 * type's schema (a property that reads a resource not created yet is only converted, as
 * Heat does), its deletion policy is allowed, and nested templates (template resources,
 * group members) are validated the same way with their own paths. Throws the first error.
 */
import type { JsonObject } from '../../core/json.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { checkDeletionPolicy, validateProperties, type ResourceTypeRegistry } from '../resources/index.js';
import {
  childRegistry,
  collectReferences,
  instantiateTemplate,
  parseTemplate,
  resolveResourceType,
  type Environment,
  type ResourceFacadeData,
  type RuntimeContext,
  type TemplateInstance,
} from '../template/index.js';
import type { StackLimits } from './layer.js';
import { groupMemberTemplate } from './stack-types.js';

export interface ValidationScope {
  registry: ResourceTypeRegistry;
  limits: StackLimits;
  files: Readonly<Record<string, string>>;
  /** resources that exist already (an update): their properties are checked in full */
  existing?: ReadonlySet<string>;
  runtime?: RuntimeContext;
}

export function validateStack(instance: TemplateInstance, environment: Environment, scope: ValidationScope, prefix = '', depth = 0): void {
  if (instance.resourceNames.length > scope.limits.maxResourcesPerStack) {
    throw new ValidationError(
      'STOKER_STACK_LIMIT',
      `${prefix}resources: the template has ${instance.resourceNames.length} resources, more than the limit of ${scope.limits.maxResourcesPerStack} per stack`,
      { details: { limit: scope.limits.maxResourcesPerStack } },
    );
  }
  if (depth > scope.limits.maxNestedDepth) {
    throw new ValidationError('STOKER_STACK_LIMIT', `${prefix}: Recursion depth exceeds ${scope.limits.maxNestedDepth}.`);
  }
  const names = new Set(instance.resourceNames);
  for (const name of instance.order) {
    const path = `${prefix}resources.${name}`;
    const definition = instance.resource(name);
    const resolved = resolveResourceType(environment.resourceRegistry, definition.type, { resourceName: name, files: scope.files });
    const evaluated = instance.evaluateResource(name, scope.runtime ?? { getResource: (n) => n, getAttr: () => null });
    if (resolved.kind === 'template') {
      checkFacade(environment, definition.type, name, resolved.content, resolved.file, scope, path);
      validateNested(
        resolved.content,
        resolved.file,
        evaluated.properties,
        environment,
        name,
        definition.type,
        scope,
        `${path}<${resolved.file}>.`,
        depth + 1,
        { metadata: evaluated.metadata, deletion_policy: definition.deletionPolicy, update_policy: evaluated.updatePolicy },
      );
      continue;
    }
    const type = scope.registry.find(resolved.type);
    if (!type) {
      throw new NotFoundError('STOKER_RESOURCE_TYPE_NOT_FOUND', `${path}: The Resource Type (${resolved.type}) could not be found.`, {
        details: { type: resolved.type, path },
      });
    }
    const unresolved = new Set<string>();
    const expr = instance.template.resources[name]?.properties;
    if (expr?.kind === 'map') {
      for (const [key, value] of expr.entries) {
        const refs = collectReferences(value, { resourceNames: names }).resources;
        if ([...refs].some((r) => !scope.existing?.has(r))) unresolved.add(key);
      }
    }
    const properties = validateProperties(type, evaluated.properties, path, { unresolved });
    checkDeletionPolicy(type, definition.deletionPolicy, path);
    if (resolved.type === 'OS::Heat::ResourceGroup' && Number(properties['count'] ?? 1) > 0) {
      const generated = groupMemberTemplate({ ...properties, count: 1 }, '2015-04-30');
      const member = Object.entries(generated['resources'] as JsonObject)[0];
      if (member) {
        const [memberName, memberDef] = member as [string, JsonObject];
        const memberType = resolveResourceType(environment.resourceRegistry, String(memberDef['type']), {
          resourceName: memberName,
          files: scope.files,
        });
        const memberPath = `${path}<nested_stack>.resources.${memberName}`;
        if (memberType.kind === 'template') {
          validateNested(
            memberType.content,
            memberType.file,
            (memberDef['properties'] ?? {}) as JsonObject,
            environment,
            memberName,
            String(memberDef['type']),
            scope,
            `${memberPath}<${memberType.file}>.`,
            depth + 2,
          );
        } else {
          const plugin = scope.registry.find(memberType.type);
          if (!plugin)
            throw new NotFoundError(
              'STOKER_RESOURCE_TYPE_NOT_FOUND',
              `${memberPath}: The Resource Type (${memberType.type}) could not be found.`,
            );
          validateProperties(plugin, (memberDef['properties'] ?? {}) as JsonObject, memberPath);
        }
      }
    }
  }
}

/**
 * A type mapped to a template for the whole environment (the facade) and, for one resource, to
 * another template (the provider): Heat requires the provider to take every parameter the
 * facade requires and to give every output the facade gives.
 */
function checkFacade(
  environment: Environment,
  type: string,
  resourceName: string,
  content: string,
  file: string,
  scope: ValidationScope,
  path: string,
): void {
  const global = resolveResourceType(environment.resourceRegistry, type, { files: scope.files });
  if (global.kind !== 'template' || global.file === file) return;
  const facade = parseTemplate(global.content, { files: scope.files, label: global.file });
  const provider = parseTemplate(content, { files: scope.files, label: file });
  for (const [param, schema] of Object.entries(facade.parameters)) {
    if (schema.default === undefined && !(param in provider.parameters)) {
      throw new ValidationError('STOKER_TEMPLATE_INVALID', `${path}: Required property ${param} for facade ${type} missing in provider`, {
        details: { path, resource: resourceName },
      });
    }
  }
  for (const output of Object.keys(facade.outputs)) {
    if (!(output in provider.outputs)) {
      throw new ValidationError('STOKER_TEMPLATE_INVALID', `${path}: Attribute ${output} for facade ${type} missing in provider`, {
        details: { path, resource: resourceName },
      });
    }
  }
}

function validateNested(
  content: string,
  file: string,
  properties: JsonObject,
  environment: Environment,
  name: string,
  typeName: string,
  scope: ValidationScope,
  prefix: string,
  depth: number,
  facade?: ResourceFacadeData,
): void {
  const template = parseTemplate(content, {
    files: scope.files,
    label: file,
    ...(scope.limits.template ? { limits: scope.limits.template } : {}),
  });
  const childEnv: Environment = {
    ...environment,
    parameters: {},
    resourceRegistry: childRegistry(environment.resourceRegistry, { resourceName: name, removeType: typeName }),
  };
  const parameters = Object.fromEntries(Object.entries(properties).filter(([k]) => k in template.parameters));
  const unknown = Object.keys(properties).filter((k) => !(k in template.parameters));
  if (unknown.length > 0) {
    throw new ValidationError(
      'STOKER_RESOURCE_PROPERTIES_INVALID',
      `${prefix.replace(/<[^<]*>\.$/, '')}: Property error: Unknown Property ${unknown[0]}`,
    );
  }
  const instance = instantiateTemplate(template, {
    parameters: parameters as JsonObject,
    environment: childEnv,
    files: scope.files,
    pseudo: { stackName: `nested-${name}` },
  });
  // the nested template sees its resource's facade (resource_facade), nothing created yet
  const runtime: RuntimeContext = { getResource: (n) => n, getAttr: () => null, ...(facade ? { resourceFacade: facade } : {}) };
  validateStack(instance, childEnv, { ...scope, existing: new Set(), runtime }, prefix, depth);
}
