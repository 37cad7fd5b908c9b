/**
 * What the corpus simulator needs for nested stacks: a template resource's nested stack bound
 * to its properties (with the facade it sees), and the members of an OS::Heat::ResourceGroup.
 */
import type { JsonObject, JsonValue } from '../../../../src/core/json.js';
import {
  childRegistry,
  instantiateTemplate,
  parseTemplate,
  type Environment,
  type ResourceFacadeData,
  type TemplateInstance,
} from '../../../../src/orchestration/template/index.js';

/** The facade a template resource's nested stack sees (`resource_facade`). */
export function facadeOf(
  instance: TemplateInstance,
  name: string,
  evaluated: { metadata: JsonObject; updatePolicy: JsonObject },
): ResourceFacadeData {
  return { metadata: evaluated.metadata, deletion_policy: instance.resource(name).deletionPolicy, update_policy: evaluated.updatePolicy };
}

/** A template resource's nested stack: its template bound to the properties it declares as parameters. */
export function nestedStack(
  content: string,
  file: string,
  files: Record<string, string>,
  properties: JsonObject,
  environment: Environment,
  name: string,
  typeName: string,
): { instance: TemplateInstance; environment: Environment } {
  const template = parseTemplate(content, { files, label: file });
  const childEnv: Environment = {
    ...environment,
    parameters: {},
    resourceRegistry: childRegistry(environment.resourceRegistry, { resourceName: name, removeType: typeName }),
  };
  const parameters = Object.fromEntries(Object.entries(properties).filter(([k]) => k in template.parameters));
  const instance = instantiateTemplate(template, {
    parameters: parameters as JsonObject,
    environment: childEnv,
    files,
    pseudo: { stackName: `nested-${name}` },
  });
  return { instance, environment: childEnv };
}

/** The members of a ResourceGroup: `count` copies of `resource_def`, `%index%` replaced, named "0", "1", … */
export function groupMembers(properties: JsonObject): { name: string; type: string; properties: JsonObject }[] {
  const count = Number(properties['count'] ?? 1);
  const def = (properties['resource_def'] ?? {}) as JsonObject;
  const replaceIndex = (v: JsonValue, i: number): JsonValue =>
    typeof v === 'string'
      ? v.replace(/%index%/g, String(i))
      : Array.isArray(v)
        ? v.map((x) => replaceIndex(x, i))
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replaceIndex(x, i)]))
          : v;
  return Array.from({ length: count }, (_, i) => ({
    name: String(i),
    type: String(def['type']),
    properties: replaceIndex((def['properties'] ?? {}) as JsonObject, i) as JsonObject,
  }));
}
