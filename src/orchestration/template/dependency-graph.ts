/**
 * The dependency graph of a template's resources: an edge for each `depends_on` entry and each
 * resource that a resource's properties, metadata, update policy or external id reference via
 * `get_resource`, `get_attr` or `Ref`; with a topological order and, when there is none, one
 * concrete cycle named in the error (Kahn's algorithm, iterative, docs/security.md S4).
 */
import type { JsonValue } from '../../core/json.js';
import { Evaluator } from './evaluate.js';
import type { Expr } from './expression.js';
import { resolveTemplateLimits, type TemplateLimits } from './limits.js';
import { collectReferences } from './references.js';
import type { ResourceDefinition, Template } from './template-model.js';
import { quoteText, templateError } from './template-error.js';

/**
 * Resources and who needs whom. `requires[a]` lists what must exist before `a`.
 *
 * @example
 * ```ts
 * graph.requires['web']; // ['db', 'net']
 * graph.requiredBy['db']; // ['web']
 * ```
 */
export interface DependencyGraph {
  /** the resources in template order */
  nodes: readonly string[];
  requires: Readonly<Record<string, readonly string[]>>;
  requiredBy: Readonly<Record<string, readonly string[]>>;
}

/**
 * What the graph may know.
 *
 * @example
 * ```ts
 * buildDependencyGraph(template, { conditions: { prod: true }, parameters: resolved.values });
 * ```
 */
export interface DependencyOptions {
  /** evaluated conditions: resources whose condition is false are left out, `if` follows its taken branch */
  conditions?: Readonly<Record<string, boolean>>;
  /** parameter values, to evaluate computed resource names and `if` conditions */
  parameters?: Readonly<Record<string, JsonValue>>;
  /** only edges that hold whatever the parameters (no `if` branches, no conditional resources) */
  certainOnly?: boolean;
  limits?: Partial<TemplateLimits>;
}

/**
 * Builds the graph. A reference to a resource the template does not have is an error; one to
 * a resource left out by its condition is an error too, except in `depends_on`, where Heat
 * ignores it.
 *
 * @example
 * ```ts
 * const graph = buildDependencyGraph(template);
 * topologicalOrder(graph); // ['net', 'db', 'web']
 * ```
 */
export function buildDependencyGraph(template: Template, options: DependencyOptions = {}): DependencyGraph {
  const limits = resolveTemplateLimits(options.limits);
  const all = Object.values(template.resources);
  if (all.length > limits.maxResources) {
    throw templateError(
      'STOKER_TEMPLATE_TOO_LARGE',
      'resources',
      `The template has ${all.length} resources, over the limit of ${limits.maxResources}`,
    );
  }
  const conditions = options.conditions;
  const resourceNames = new Set(Object.keys(template.resources));
  const evaluator = (): Evaluator =>
    new Evaluator({
      parameters: options.parameters ?? {},
      isConditionEnabled: (name) => {
        if (!conditions || !Object.hasOwn(conditions, name)) {
          throw templateError('STOKER_TEMPLATE_INVALID', 'conditions', `Invalid condition ${quoteText(name)}`);
        }
        return conditions[name]!;
      },
      limits,
    });
  const tryEvaluate = (e: Expr): JsonValue | undefined => {
    if (e.kind === 'literal') return e.value;
    if (!options.parameters) return undefined;
    try {
      return evaluator().run(e);
    } catch {
      return undefined;
    }
  };
  const conditionOf = (e: Expr): boolean | undefined => {
    if (!conditions) return undefined;
    const v = tryEvaluate(e);
    return typeof v === 'boolean' ? v : typeof v === 'string' && Object.hasOwn(conditions, v) ? conditions[v] : undefined;
  };
  const isIncluded = (r: ResourceDefinition): boolean => {
    if (r.condition === null) return true;
    if (options.certainOnly) return false;
    return conditionOf(r.condition) !== false;
  };
  const enabled = all.filter(isIncluded).map((r) => r.name);
  const enabledSet = new Set(enabled);
  const position = new Map(all.map((r, i) => [r.name, i]));

  const requires: Record<string, string[]> = {};
  const requiredBy: Record<string, string[]> = Object.fromEntries(enabled.map((n) => [n, [] as string[]]));
  for (const name of enabled) {
    const r = template.resources[name]!;
    const deps = new Set<string>();
    for (const dep of r.dependsOn) if (enabledSet.has(dep)) deps.add(dep);
    for (const [field, expr] of [
      ['properties', r.properties],
      ['metadata', r.metadata],
      ['update_policy', r.updatePolicy],
      ['external_id', r.externalId],
    ] as const) {
      const refs = collectReferences(expr, {
        resourceNames,
        conditionOf,
        nameOf: tryEvaluate,
        skipIfBranches: options.certainOnly === true,
      });
      for (const ref of refs.resources) {
        if (!resourceNames.has(ref)) {
          throw templateError(
            'STOKER_TEMPLATE_INVALID',
            `resources.${name}.${field}`,
            `The specified reference ${quoteText(ref)} is not a resource of this template`,
          );
        }
        if (!enabledSet.has(ref)) {
          if (options.certainOnly) continue;
          throw templateError(
            'STOKER_TEMPLATE_INVALID',
            `resources.${name}.${field}`,
            `${quoteText(ref)} is referenced but its condition is false, so it is not part of the stack`,
          );
        }
        deps.add(ref);
      }
    }
    // template order, so that the graph (and messages built from it) do not depend on walk order
    requires[name] = [...deps].sort((x, y) => position.get(x)! - position.get(y)!);
    for (const dep of requires[name]) requiredBy[dep]!.push(name);
  }
  return { nodes: enabled, requires, requiredBy };
}

/**
 * A creation order: every resource after all it requires; ties keep template order. Throws
 * STOKER_TEMPLATE_CYCLE naming one cycle (`a → b → a`, read "a depends on b …").
 *
 * @example
 * ```ts
 * topologicalOrder(graph); // ['net', 'db', 'web']
 * ```
 */
export function topologicalOrder(graph: DependencyGraph): string[] {
  const pending = new Map<string, number>(graph.nodes.map((n) => [n, graph.requires[n]?.length ?? 0]));
  const position = new Map(graph.nodes.map((n, i) => [n, i]));
  let ready = graph.nodes.filter((n) => pending.get(n) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    const next: string[] = [];
    for (const n of ready) {
      order.push(n);
      pending.delete(n);
      for (const dependent of graph.requiredBy[n] ?? []) {
        const left = pending.get(dependent)! - 1;
        pending.set(dependent, left);
        if (left === 0) next.push(dependent);
      }
    }
    ready = next.sort((a, b) => position.get(a)! - position.get(b)!);
  }
  if (pending.size > 0) {
    const cycle = findCycle(graph, new Set(pending.keys()));
    throw templateError('STOKER_TEMPLATE_CYCLE', 'resources', `Circular dependency between resources: ${cycle.join(' → ')}`, { cycle });
  }
  return order;
}

/** Follows unmet dependencies from a remaining node until one repeats: that loop is a cycle. */
function findCycle(graph: DependencyGraph, remaining: ReadonlySet<string>): string[] {
  const start = graph.nodes.find((n) => remaining.has(n))!;
  const seen = new Map<string, number>();
  const path: string[] = [];
  let current = start;
  while (!seen.has(current)) {
    seen.set(current, path.length);
    path.push(current);
    current = graph.requires[current]!.find((d) => remaining.has(d))!;
  }
  const cycle = path.slice(seen.get(current));
  return [...cycle, current];
}
