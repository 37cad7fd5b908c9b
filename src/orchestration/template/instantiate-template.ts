/**
 * A template bound to one stack's parameters: resolved parameters, evaluated conditions, the
 * enabled resources, their dependency graph and creation order, and evaluation of resource
 * definitions and outputs against the caller's resources. This is what the stack layer runs;
 * it does no I/O itself.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { ValidationError, isStokerError, type ErrorCode } from '../../errors.js';
import { evaluateConditions } from './conditions.js';
import { buildDependencyGraph, topologicalOrder, type DependencyGraph } from './dependency-graph.js';
import { Evaluator } from './evaluate.js';
import type { EvaluationContext, ResourceFacadeData } from './evaluation-context.js';
import type { Expr } from './expression.js';
import { maskHiddenValues } from './mask-parameters.js';
import { resolveParameters, type ParameterInput, type ResolvedParameters } from './parameter-values.js';
import { isMapping } from './python-values.js';
import { collectReferences } from './references.js';
import type { Template } from './template-model.js';
import { quoteText, showText, showValue, templateError } from './template-error.js';

/**
 * What the caller supplies at evaluation time: resources' reference ids and attributes, and
 * for a template resource the facade of its parent.
 *
 * @example
 * ```ts
 * const runtime: RuntimeContext = { getResource: (n) => ids[n] ?? null, getAttr: (n, a, p) => attrs(n, a, p) };
 * ```
 */
export interface RuntimeContext {
  getResource?(name: string): JsonValue;
  getAttr?(name: string, attribute: string | null, path: JsonValue[]): JsonValue;
  resourceFacade?: ResourceFacadeData;
  availabilityZones?: readonly string[];
}

/**
 * A resource of the stack as the engine needs it before evaluating its properties.
 *
 * @example
 * ```ts
 * instance.resource('web').deletionPolicy; // 'Retain'
 * ```
 */
export interface StackResource {
  name: string;
  type: string;
  description: string | null;
  deletionPolicy: 'Delete' | 'Retain' | 'Snapshot';
  /** every resource this one waits for (depends_on and references) */
  requires: readonly string[];
  requiredBy: readonly string[];
}

/**
 * A resource definition with its functions evaluated.
 *
 * @example
 * ```ts
 * instance.evaluateResource('web', runtime).properties; // { image: 'cirros', … }
 * ```
 */
export interface EvaluatedResource {
  properties: JsonObject;
  metadata: JsonObject;
  updatePolicy: JsonObject;
  externalId: string | null;
}

/**
 * One output: its value, or the error that evaluating it gave (Heat's `output_error`).
 *
 * @example
 * ```ts
 * const o = instance.evaluateOutput('url', runtime);
 * if ('error' in o) console.log(o.error);
 * ```
 */
export type EvaluatedOutput =
  | { name: string; description: string | null; value: JsonValue }
  | { name: string; description: string | null; error: string; code: ErrorCode | null };

/**
 * The template bound to a stack's parameters.
 *
 * @example
 * ```ts
 * const instance = instantiateTemplate(template, { parameters, environment, pseudo: { stackName: 'web' } });
 * for (const name of instance.order) create(instance.resource(name), instance.evaluateResource(name, runtime));
 * ```
 */
export interface TemplateInstance {
  template: Template;
  parameters: ResolvedParameters;
  conditions: Readonly<Record<string, boolean>>;
  /** enabled resources in template order */
  resourceNames: readonly string[];
  /** whether `name` is one of {@link resourceNames} (in constant time) */
  hasResource(name: string): boolean;
  graph: DependencyGraph;
  /** a creation order (delete in reverse) */
  order: readonly string[];
  resource(name: string): StackResource;
  evaluateResource(name: string, runtime?: RuntimeContext): EvaluatedResource;
  /** outputs in template order; those whose condition is false have a null value */
  outputNames: readonly string[];
  evaluateOutput(name: string, runtime?: RuntimeContext): EvaluatedOutput;
  /** the resources an output reads */
  outputDependencies(name: string): string[];
  /** evaluates any expression of this template */
  evaluate(expr: Expr, runtime?: RuntimeContext): JsonValue | undefined;
}

/**
 * Binds a template to parameters (and an environment): resolves parameters, evaluates
 * conditions, builds and orders the dependency graph, checking every reference.
 *
 * @example
 * ```ts
 * const instance = instantiateTemplate(parseTemplate(text), { parameters: { flavor: 'm1.small' } });
 * instance.order; // ['net', 'server']
 * ```
 */
export function instantiateTemplate(
  template: Template,
  input: ParameterInput & { files?: Readonly<Record<string, string>> } = {},
): TemplateInstance {
  const parameters = resolveParameters(template, input);
  // an error raised while evaluating may quote a value that came from a hidden parameter
  const masked = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (!isStokerError(e)) throw e;
      const message = maskHiddenValues(e.message, parameters);
      if (message === e.message) throw e;
      throw new ValidationError(e.code, message, { details: e.details, cause: e.cause });
    }
  };
  const conditions = masked(() => evaluateConditions(template, parameters.values, input.limits));
  const graph = masked(() =>
    buildDependencyGraph(template, { conditions, parameters: parameters.values, ...(input.limits ? { limits: input.limits } : {}) }),
  );
  const order = topologicalOrder(graph);
  const enabled = new Set(graph.nodes);
  const resourceNames = new Set(Object.keys(template.resources));

  const isConditionEnabled = (name: string): boolean => {
    if (!Object.hasOwn(conditions, name))
      throw templateError('STOKER_TEMPLATE_INVALID', 'conditions', `Invalid condition ${quoteText(name)}`);
    return conditions[name]!;
  };
  const context = (runtime: RuntimeContext = {}): EvaluationContext => {
    const check = (name: string): void => {
      if (enabled.has(name)) return;
      const why = resourceNames.has(name) ? 'its condition is false, so it is not part of the stack' : 'there is no such resource';
      throw templateError('STOKER_TEMPLATE_EVALUATION_FAILED', '', `The resource ${quoteText(name)} cannot be referenced: ${why}`);
    };
    const ctx: EvaluationContext = {
      parameters: parameters.values,
      isConditionEnabled,
      isResource: (name) => resourceNames.has(name),
      ...(input.files ? { files: input.files } : {}),
      ...(input.limits ? { limits: input.limits } : {}),
      ...(runtime.resourceFacade ? { resourceFacade: runtime.resourceFacade } : {}),
      ...(runtime.availabilityZones ? { availabilityZones: runtime.availabilityZones } : {}),
    };
    const { getResource, getAttr } = runtime;
    if (getResource) ctx.getResource = (name) => (check(name), getResource(name));
    if (getAttr) ctx.getAttr = (name, attribute, path) => (check(name), getAttr(name, attribute, path));
    return ctx;
  };
  const evaluate = (expr: Expr, runtime?: RuntimeContext): JsonValue | undefined => masked(() => new Evaluator(context(runtime)).run(expr));
  const conditionHolds = (expr: Expr | null): boolean => {
    if (expr === null) return true;
    const v = evaluate(expr);
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string') return isConditionEnabled(v);
    throw templateError('STOKER_TEMPLATE_INVALID', 'conditions', `Invalid condition ${showValue(v ?? null)}`);
  };
  const referencesOf = (expr: Expr | null): string[] => [
    ...collectReferences(expr, {
      resourceNames,
      conditionOf: (e) => conditionHolds(e),
      nameOf: (e) => {
        try {
          return evaluate(e);
        } catch {
          return undefined;
        }
      },
    }).resources,
  ];

  const outputNames = Object.keys(template.outputs);
  for (const name of outputNames) {
    const output = template.outputs[name]!;
    if (!conditionHolds(output.condition)) continue;
    for (const ref of referencesOf(output.value)) {
      if (!enabled.has(ref)) {
        const why = resourceNames.has(ref) ? 'its condition is false' : 'there is no such resource';
        throw templateError(
          'STOKER_TEMPLATE_INVALID',
          `outputs.${name}.value`,
          `The output refers to the resource ${quoteText(ref)}, but ${why}`,
        );
      }
    }
  }

  const definition = (name: string) => {
    if (!enabled.has(name)) {
      throw templateError(
        'STOKER_TEMPLATE_INVALID',
        `resources.${name}`,
        resourceNames.has(name)
          ? `The resource ${quoteText(name)} is disabled by its condition`
          : `No resource ${quoteText(name)} in the template`,
      );
    }
    return template.resources[name]!;
  };
  const asObject = (name: string, field: string, expr: Expr | null, runtime?: RuntimeContext): JsonObject => {
    if (expr === null) return {};
    const v = evaluate(expr, runtime);
    if (v === undefined || v === null) return {};
    if (!isMapping(v)) {
      throw templateError(
        'STOKER_TEMPLATE_EVALUATION_FAILED',
        `resources.${name}.${field}`,
        `The ${field} of resource ${showText(name)} must be a map`,
      );
    }
    // literal parts of the template are frozen and shared: hand out a copy
    return structuredClone(v);
  };

  const enabledSet = new Set(graph.nodes);
  return {
    template,
    parameters,
    conditions,
    resourceNames: graph.nodes,
    hasResource: (name) => enabledSet.has(name),
    graph,
    order,
    outputNames,
    resource(name) {
      const r = definition(name);
      let deletionPolicy: StackResource['deletionPolicy'] = 'Delete';
      if (r.deletionPolicy !== null) {
        const v = evaluate(r.deletionPolicy);
        const policy =
          typeof v === 'string' && Object.hasOwn(template.version.deletionPolicies, v) ? template.version.deletionPolicies[v] : undefined;
        if (policy === undefined)
          throw templateError('STOKER_TEMPLATE_INVALID', `resources.${name}.deletion_policy`, `Invalid deletion policy "${showValue(v)}"`);
        deletionPolicy = policy;
      }
      return {
        name,
        type: r.type,
        description: r.description,
        deletionPolicy,
        requires: graph.requires[name]!,
        requiredBy: graph.requiredBy[name]!,
      };
    },
    evaluateResource(name, runtime) {
      const r = definition(name);
      let externalId: string | null = null;
      if (r.externalId !== null) {
        const v = evaluate(r.externalId, runtime);
        if (v !== undefined && v !== null && typeof v !== 'string')
          throw templateError('STOKER_TEMPLATE_EVALUATION_FAILED', `resources.${name}.external_id`, 'external_id must be a string');
        externalId = v ?? null;
      }
      return {
        properties: asObject(name, 'properties', r.properties, runtime),
        metadata: asObject(name, 'metadata', r.metadata, runtime),
        updatePolicy: asObject(name, 'update_policy', r.updatePolicy, runtime),
        externalId,
      };
    },
    evaluateOutput(name, runtime) {
      const output = Object.hasOwn(template.outputs, name) ? template.outputs[name] : undefined;
      if (!output) throw templateError('STOKER_TEMPLATE_INVALID', 'outputs', `No output ${quoteText(name)} in the template`);
      const base = { name, description: output.description };
      if (!conditionHolds(output.condition)) return { ...base, value: null };
      try {
        return { ...base, value: structuredClone(evaluate(output.value, runtime) ?? null) };
      } catch (e) {
        return { ...base, error: e instanceof Error ? e.message : String(e), code: isStokerError(e) ? e.code : null };
      }
    },
    outputDependencies(name) {
      const output = Object.hasOwn(template.outputs, name) ? template.outputs[name] : undefined;
      if (!output || !conditionHolds(output.condition)) return [];
      return referencesOf(output.value);
    },
    evaluate: (expr, runtime) => {
      const v = evaluate(expr, runtime);
      return v === undefined ? undefined : structuredClone(v);
    },
  };
}
