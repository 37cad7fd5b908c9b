/**
 * The template layer of Stoker's Heat-compatible orchestration: HOT templates and
 * environments parsed safely, validated per `heat_template_version`, parameters resolved,
 * conditions evaluated, dependencies ordered and intrinsic functions interpreted. Pure: no
 * I/O, no timers, no database; everything the functions read comes from the caller.
 *
 * @example
 * ```ts
 * import { parseTemplate, parseEnvironment, instantiateTemplate } from './orchestration/template/index.js';
 *
 * const template = parseTemplate(templateText, { files });
 * const { environment } = parseEnvironment(environmentText);
 * checkNestedTemplates(template, { files, registry: environment.resourceRegistry });
 * const stack = instantiateTemplate(template, { parameters: { flavor: 'm1.small' }, environment, files, pseudo: { stackName: 'web' } });
 * for (const name of stack.order) {
 *   const { properties } = stack.evaluateResource(name, { getResource, getAttr });
 * }
 * ```
 */
export { DEFAULT_TEMPLATE_LIMITS, resolveTemplateLimits, type TemplateLimits } from './limits.js';
export { parseTemplate, type ParseTemplateOptions } from './parse-template.js';
export type { OutputDefinition, ParameterGroup, ResourceDefinition, Template } from './template-model.js';
export { SUPPORTED_TEMPLATE_VERSIONS, templateVersion, Fn, type TemplateVersion } from './versions.js';
export { parseExpression, forEachCall, type CallExpr, type Expr, type ParseMode, type ParseScope } from './expression.js';
export { evaluateExpression } from './evaluate.js';
export type { EvaluationContext, ResourceFacadeData } from './evaluation-context.js';
export { selectFromAttribute } from './select-path.js';
export { ParameterTypes, type ParameterSchema, type ParameterType } from './parameter-schema.js';
export type { ParameterConstraint } from './constraints.js';
export {
  PSEUDO_PARAMETER_NAMES,
  checkImmutableParameters,
  resolveParameters,
  type ParameterInput,
  type ParameterSource,
  type PseudoParameters,
  type ResolvedParameters,
} from './parameter-values.js';
export { HIDDEN_VALUE, displayParameters, maskHiddenValues } from './mask-parameters.js';
export { evaluateConditions } from './conditions.js';
export { collectReferences, type ReferenceOptions, type References } from './references.js';
export { buildDependencyGraph, topologicalOrder, type DependencyGraph, type DependencyOptions } from './dependency-graph.js';
export {
  instantiateTemplate,
  type EvaluatedOutput,
  type EvaluatedResource,
  type RuntimeContext,
  type StackResource,
  type TemplateInstance,
} from './instantiate-template.js';
export {
  MergeStrategies,
  emptyEnvironment,
  mergeEnvironments,
  parseEnvironment,
  type Environment,
  type MergeStrategy,
  type ParsedEnvironment,
} from './environment.js';
export {
  HookTypes,
  RestrictedActions,
  childRegistry,
  emptyRegistry,
  mergeRegistries,
  resolveResourceType,
  resourceHooks,
  restrictedActions,
  type HookType,
  type ResolvedType,
  type ResourceOverrides,
  type ResourceRegistry,
  type RestrictedAction,
} from './resource-registry.js';
export { checkNestedTemplates, type NestedTemplateOptions, type NestedTemplates } from './nested-templates.js';
export { parseYamlMapping, type ParsedYaml, type YamlParseOptions } from './parse-yaml.js';
export {
  PatternBudgetError,
  PatternError,
  compilePattern,
  patternBudget,
  type CompiledPattern,
  type PatternBudget,
} from './linear-regex.js';
export { parseYaql, YaqlError, YAQL_MAX_ITEMS, type YaqlBudget, type YaqlExpression } from './yaql.js';
export { DigestAlgorithms, type DigestAlgorithm } from './digest.js';
