/**
 * What an evaluation may read: the caller's side of the interpreter. The template layer never
 * does I/O; resources, attributes, files and the facade of a template resource all come from
 * here.
 */
import type { JsonValue } from '../../core/json.js';
import type { TemplateLimits } from './limits.js';

/**
 * The data of the parent resource, for `resource_facade` inside a template resource.
 *
 * @example
 * ```ts
 * const facade: ResourceFacadeData = { metadata: { foo: 'bar' }, deletion_policy: 'Delete', update_policy: {} };
 * ```
 */
export interface ResourceFacadeData {
  metadata: JsonValue;
  deletion_policy: JsonValue;
  update_policy: JsonValue;
}

/**
 * The values an evaluation reads. Only `parameters` and `isConditionEnabled` are required;
 * evaluating a function whose source is missing fails with STOKER_TEMPLATE_EVALUATION_FAILED.
 *
 * @example
 * ```ts
 * const ctx: EvaluationContext = {
 *   parameters: { flavor: 'm1.small' },
 *   isConditionEnabled: () => true,
 *   getResource: (name) => physicalIds[name] ?? null,
 *   getAttr: (name, attr, path) => selectFromAttribute(attributes[name]?.[attr ?? ''] ?? null, path),
 * };
 * ```
 */
export interface EvaluationContext {
  /** typed parameter values, pseudo parameters (`OS::stack_name` …) included */
  parameters: Readonly<Record<string, JsonValue>>;
  /** the value of a named condition; throws for an unknown name */
  isConditionEnabled(name: string): boolean;
  /** true when `name` is a resource of the stack (for CFN `Ref`, which means a parameter otherwise) */
  isResource?(name: string): boolean;
  /** a resource's reference id (its physical id for most types), null before it exists */
  getResource?(name: string): JsonValue;
  /**
   * An attribute: `attribute` null means all attributes (`get_attr: [r]`); `path` selects into
   * the value. In heat_template_version 2013-05-23 the path is applied by the template layer and
   * `path` is always empty.
   */
  getAttr?(name: string, attribute: string | null, path: JsonValue[]): JsonValue;
  resourceFacade?: ResourceFacadeData;
  /** the `files` map of the request: the only source of `get_file` (docs/security.md S7) */
  files?: Readonly<Record<string, string>>;
  /** for CFN `Fn::GetAZs`; defaults to `['nova']` as in Heat without a cloud */
  availabilityZones?: readonly string[];
  limits?: Partial<TemplateLimits>;
}
