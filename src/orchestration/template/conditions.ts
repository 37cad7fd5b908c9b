/**
 * The `conditions` section, evaluated once per stack from the parameters, as Heat's
 * `Conditions` does: each definition must yield a boolean; a condition may name others
 * (`not: prod`, `and: [a, b]`), and a definition that reaches itself is an error.
 *
 * Conditions are evaluated in dependency order (an iterative topological sort over the names
 * they mention literally), so long chains need no deep recursion; a name computed at runtime
 * (`not: {get_param: which}`) is evaluated on demand with a cycle guard, and counts as nested
 * function calls of the evaluation that asked for it, so a long chain of computed names ends in
 * STOKER_TEMPLATE_EVALUATION_FAILED ("nest too deeply"), not in a stack overflow.
 */
import type { JsonValue } from '../../core/json.js';
import { Evaluator } from './evaluate.js';
import { forEachCall } from './expression.js';
import { listItems } from './expr-shape.js';
import type { TemplateLimits } from './limits.js';
import type { Template } from './template-model.js';
import { quoteText, templateError } from './template-error.js';
import { Fn } from './versions.js';

/**
 * Evaluates every condition of the template.
 *
 * @example
 * ```ts
 * evaluateConditions(template, resolved.values); // { prod: false, test: true }
 * ```
 */
export function evaluateConditions(
  template: Pick<Template, 'conditions'>,
  parameters: Readonly<Record<string, JsonValue>>,
  limits?: Partial<TemplateLimits>,
): Record<string, boolean> {
  const names = Object.keys(template.conditions);
  const mentions = new Map(names.map((n) => [n, literalMentions(template, n)]));
  const done = new Map<string, boolean>();
  const inProgress = new Set<string>();
  const active: Evaluator[] = [];

  const evaluate = (name: string): boolean => {
    const known = done.get(name);
    if (known !== undefined) return known;
    if (!Object.hasOwn(template.conditions, name))
      throw templateError('STOKER_TEMPLATE_INVALID', 'conditions', `Invalid condition ${quoteText(name)}`);
    if (inProgress.has(name) || inProgress.size > names.length) {
      throw templateError('STOKER_TEMPLATE_CYCLE', `conditions.${name}`, `Circular definition for condition ${quoteText(name)}`);
    }
    inProgress.add(name);
    const outer = active[active.length - 1];
    const evaluator = new Evaluator(
      { parameters, isConditionEnabled: evaluate, ...(limits ? { limits } : {}) },
      { depth: outer ? outer.callDepth : 0 },
    );
    active.push(evaluator);
    try {
      const value = evaluator.run(template.conditions[name]!);
      if (typeof value !== 'boolean') {
        throw templateError(
          'STOKER_TEMPLATE_INVALID',
          `conditions.${name}`,
          `The definition of condition "${name}" is invalid: it gives a ${value === null ? 'null' : typeof value}, not a boolean`,
        );
      }
      done.set(name, value);
      return value;
    } finally {
      inProgress.delete(name);
      active.pop();
    }
  };

  for (const name of orderByMentions(names, mentions)) evaluate(name);
  return Object.fromEntries(names.map((n) => [n, done.get(n)!]));
}

/** Condition names a definition mentions as literal arguments of not/and/or/if. */
function literalMentions(template: Pick<Template, 'conditions'>, name: string): string[] {
  const out: string[] = [];
  forEachCall(template.conditions[name]!, (call) => {
    const args = call.fn === Fn.Not ? [call.arg] : call.fn === Fn.And || call.fn === Fn.Or ? (listItems(call.arg) ?? []) : [];
    for (const a of args)
      if (a.kind === 'literal' && typeof a.value === 'string' && Object.hasOwn(template.conditions, a.value)) out.push(a.value);
  });
  return out;
}

/** Kahn's order over the literal mentions; a cycle among them is reported with its path. */
function orderByMentions(names: string[], mentions: Map<string, string[]>): string[] {
  const pending = new Map(names.map((n) => [n, new Set(mentions.get(n))]));
  const order: string[] = [];
  let progress = true;
  while (pending.size > 0 && progress) {
    progress = false;
    for (const [n, deps] of pending) {
      if ([...deps].every((d) => !pending.has(d))) {
        order.push(n);
        pending.delete(n);
        progress = true;
      }
    }
  }
  if (pending.size > 0) {
    let current = pending.keys().next().value as string;
    const path: string[] = [];
    while (!path.includes(current)) {
      path.push(current);
      current = [...pending.get(current)!].find((d) => pending.has(d))!;
    }
    const cycle = [...path.slice(path.indexOf(current)), current];
    throw templateError(
      'STOKER_TEMPLATE_CYCLE',
      `conditions.${cycle[0]!}`,
      `Circular definition for condition "${cycle[0]!}": ${cycle.join(' → ')}`,
      { cycle },
    );
  }
  return order;
}
