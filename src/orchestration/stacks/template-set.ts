/**
 * A template set: what one stack action converges to (the template text, the environment
 * merged from the request's environments, the files map, the user's parameters and, for a
 * template resource's nested stack, the facade it sees). Stored once per action
 * (`stack_templates`), so the steps of an older traversal still find what they were started
 * with; bound to a stack with {@link instantiateSet}, cached per process.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import {
  emptyEnvironment,
  instantiateTemplate,
  parseTemplate,
  type Environment,
  type ResourceFacadeData,
  type Template,
  type TemplateInstance,
  type TemplateLimits,
} from '../template/index.js';

export interface TemplateSetBody {
  /** the template as sent (YAML or JSON text) */
  template: string;
  files: Record<string, string>;
  /** the environments merged in order */
  environment: Environment;
  /** the request's `parameters` (merged over the environment's) */
  parameters: Record<string, JsonValue>;
  /** the environment files as sent, for `stack environment show` */
  environmentTexts?: string[];
  /** a template resource's nested stack: its facade (`resource_facade`) */
  facade?: ResourceFacadeData;
  /** how the template is named in messages (`provider.yaml`) */
  label?: string;
  /**
   * made by the stack layer (a ResourceGroup's or ResourceChain's members), not sent by a user:
   * its size is bounded by the resources-per-stack limit, not by the template size limits
   */
  generated?: boolean;
}

/** Limits for a generated template: as large as its resources allow. */
const GENERATED_LIMITS: Partial<TemplateLimits> = { maxTemplateBytes: Number.MAX_SAFE_INTEGER, maxNodes: Number.MAX_SAFE_INTEGER };

/** The stack fields a template is bound to (pseudo parameters). */
export interface SetBinding {
  id: string;
  name: string;
  project: string;
}

const CACHE_SIZE = 256;
const instances = new Map<string, TemplateInstance>();

/** The set bound to a stack (cached by set id: a set never changes once stored). */
export function instantiateSet(
  setId: string | null,
  body: TemplateSetBody,
  stack: SetBinding,
  limits?: Partial<TemplateLimits>,
  parsed?: Template,
): TemplateInstance {
  const key = setId === null ? null : `${setId}\u0000${stack.id}`;
  const cached = key === null ? undefined : instances.get(key);
  if (cached) return cached;
  if (body.generated) limits = { ...limits, ...GENERATED_LIMITS };
  // a generated set is JSON the layer wrote itself: no YAML parse (a group of 10,000 members is one)
  const template =
    parsed ??
    parseTemplate(body.generated ? (JSON.parse(body.template) as JsonObject) : body.template, {
      files: body.files,
      ...(body.label ? { label: body.label } : {}),
      ...(limits ? { limits } : {}),
    });
  const instance = instantiateTemplate(template, {
    parameters: body.parameters,
    environment: body.environment,
    files: body.files,
    pseudo: { stackName: stack.name, stackId: stack.id, projectId: stack.project },
    ...(limits ? { limits } : {}),
  });
  if (setId !== null) rememberSet(setId, stack.id, instance);
  return instance;
}

/** Keeps the instance a request was validated with for the set stored from it: the action binds it no second time. */
export function rememberSet(setId: string, stackId: string, instance: TemplateInstance): void {
  if (instances.size >= CACHE_SIZE) instances.delete(instances.keys().next().value!);
  instances.set(`${setId}\u0000${stackId}`, instance);
}

/** The empty template a create's rollback converges to. */
export function emptySet(version: string): TemplateSetBody {
  return { template: JSON.stringify({ heat_template_version: version }), files: {}, environment: emptyEnvironment(), parameters: {} };
}

export function setBodyJson(body: TemplateSetBody): JsonObject {
  return body as unknown as JsonObject;
}
