/**
 * The interpreter: evaluates an expression tree against an {@link EvaluationContext}. Each
 * function is a small handler over already-parsed arguments (no string tricks), with Heat's
 * runtime semantics; the static shape checks already happened at parse time. Every evaluation
 * has a step budget and an output-size budget (docs/security.md S6), and messages never quote
 * argument values, so hidden parameters cannot leak through an error.
 */
import type { JsonValue } from '../../core/json.js';
import { isStokerError } from '../../errors.js';
import { COLLECTION_FUNCTIONS } from './eval-collections.js';
import { STRING_FUNCTIONS } from './eval-strings.js';
import type { EvaluationContext } from './evaluation-context.js';
import type { CallExpr, Expr } from './expression.js';
import { listItems, mapEntries } from './expr-shape.js';
import { resolveTemplateLimits, type TemplateLimits } from './limits.js';
import { isMapping, pyContains, pyEquals } from './python-values.js';
import { selectFromAttribute } from './select-path.js';
import { quoteText, showText, showValue, templateError } from './template-error.js';
import { Fn } from './versions.js';
import { YaqlError, parseYaql } from './yaql.js';

/**
 * Marks a value elided by a two-argument `if` (2021-04-16): dropped from its list or map.
 *
 * @example
 * ```ts
 * if (value === OMITTED) return; // leave the key out
 * ```
 */
export const OMITTED: unique symbol = Symbol('omitted');
export type EvalValue = JsonValue | typeof OMITTED;

/**
 * What a function handler gets: its call, the evaluator and the context.
 *
 * @example
 * ```ts
 * const handler: FunctionHandler = (call, ev) => ev.value(call.arg);
 * ```
 */
export type FunctionHandler = (call: CallExpr, ev: Evaluator) => EvalValue;

/**
 * One evaluation: budgets, context and helpers for function handlers.
 *
 * @example
 * ```ts
 * new Evaluator(ctx).run(expr);
 * ```
 */
export class Evaluator {
  readonly limits: TemplateLimits;
  private steps = 0;
  private bytes = 0;
  private depth: number;

  /**
   * `options.depth` starts the count of nested calls where an enclosing evaluation is (a
   * condition evaluated on demand from inside another), so that together they stay within the
   * limit and the stack.
   */
  constructor(
    readonly ctx: EvaluationContext,
    options: { depth?: number } = {},
  ) {
    this.limits = resolveTemplateLimits(ctx.limits);
    this.depth = options.depth ?? 0;
  }

  /** Function calls now open in this evaluation (and in those it was started from). */
  get callDepth(): number {
    return this.depth;
  }

  /** Evaluates `expr`; an elided top-level value comes back as undefined. */
  run(expr: Expr): JsonValue | undefined {
    const v = this.eval(expr);
    return v === OMITTED ? undefined : v;
  }

  /** Evaluates an argument; an elided value counts as null. */
  value(expr: Expr): JsonValue {
    const v = this.eval(expr);
    return v === OMITTED ? null : v;
  }

  eval(expr: Expr): EvalValue {
    this.step();
    switch (expr.kind) {
      case 'literal':
        return expr.value;
      case 'list': {
        const out: JsonValue[] = [];
        for (const item of expr.items) {
          const v = this.eval(item);
          if (v !== OMITTED) out.push(v);
        }
        return out;
      }
      case 'map': {
        const out: Record<string, JsonValue> = {};
        for (const [k, e] of expr.entries) {
          const v = this.eval(e);
          if (v !== OMITTED) out[k] = v;
        }
        return out;
      }
      case 'call': {
        if (++this.depth > this.limits.maxDepth * 4) throw this.fail(expr, 'function calls nest too deeply');
        try {
          return HANDLERS[expr.fn](expr, this);
        } finally {
          this.depth--;
        }
      }
    }
  }

  step(n = 1): void {
    this.steps += n;
    if (this.steps > this.limits.maxEvaluationSteps) {
      throw templateError('STOKER_TEMPLATE_TOO_LARGE', '', `The evaluation took more than ${this.limits.maxEvaluationSteps} steps`);
    }
  }

  /** Counts produced output (string lengths, list and map sizes) against the budget. */
  charge(call: CallExpr, size: number): void {
    this.bytes += size;
    this.step();
    if (this.bytes > this.limits.maxEvaluationOutputBytes) {
      throw templateError(
        'STOKER_TEMPLATE_TOO_LARGE',
        call.path,
        `"${call.name}" produced more than ${this.limits.maxEvaluationOutputBytes} bytes of output in one evaluation`,
      );
    }
  }

  fail(call: CallExpr, message: string): Error {
    return templateError('STOKER_TEMPLATE_EVALUATION_FAILED', call.path, message, { function: call.name });
  }

  /** A condition argument: a boolean, a condition name, or a function returning either. */
  condition(call: CallExpr, v: JsonValue): boolean {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string') return this.ctx.isConditionEnabled(v);
    throw this.fail(call, `Invalid condition: "${call.name}" needs a boolean or a condition name`);
  }
}

/**
 * Evaluates `expr` against `ctx`. Returns undefined only when a two-argument `if` elided the
 * whole value (the caller then treats it as not given). The result is the caller's to change.
 *
 * @example
 * ```ts
 * evaluateExpression(template.outputs.url!.value, ctx);
 * ```
 */
export function evaluateExpression(expr: Expr, ctx: EvaluationContext): JsonValue | undefined {
  const value = new Evaluator(ctx).run(expr);
  // literal parts of a template are frozen and shared: hand out a copy the caller may change
  return value === undefined ? undefined : structuredClone(value);
}

const items = (call: CallExpr): Expr[] => listItems(call.arg) ?? [];

const REFERENCES: Partial<Record<Fn, FunctionHandler>> = {
  [Fn.GetParam]: (call, ev) => {
    const args = ev.value(call.arg);
    const [name, path] = Array.isArray(args) ? [args[0], args.slice(1)] : [args, []];
    if (typeof name !== 'string' || name === '') throw ev.fail(call, `Parameter name in "${call.name}" must be a non-empty string`);
    if (!Object.hasOwn(ev.ctx.parameters, name)) throw ev.fail(call, `Unknown parameter ${quoteText(name)}`);
    return paramPath(ev.ctx.parameters[name]!, path);
  },
  [Fn.GetResource]: (call, ev) => getResource(call, ev, ev.value(call.arg)),
  [Fn.GetAttrThenSelect]: (call, ev) => getAttr(call, ev, true),
  [Fn.GetAttr]: (call, ev) => getAttr(call, ev, false),
  [Fn.GetAttrAll]: (call, ev) => getAttr(call, ev, false),
  [Fn.GetFile]: (call, ev) => {
    const key = ev.value(call.arg);
    if (typeof key !== 'string') throw ev.fail(call, `Argument to "${call.name}" must be a string`);
    const files = ev.ctx.files ?? {};
    if (!Object.hasOwn(files, key)) throw ev.fail(call, `No content found in the "files" section for ${call.name} path: ${showText(key)}`);
    return files[key]!;
  },
  [Fn.ResourceFacade]: (call, ev) => facade(call, ev),
  [Fn.CfnResourceFacade]: (call, ev) => facade(call, ev),
  [Fn.CfnRef]: (call, ev) => {
    const name = ev.value(call.arg);
    if (typeof name === 'string' && ev.ctx.isResource?.(name)) return getResource(call, ev, name);
    if (typeof name !== 'string' || !Object.hasOwn(ev.ctx.parameters, name))
      throw ev.fail(call, `"Ref" cannot resolve "${showValue(name)}"`);
    return ev.ctx.parameters[name]!;
  },
  [Fn.CfnGetAZs]: (_call, ev) => [...(ev.ctx.availabilityZones ?? ['nova'])],
  [Fn.Removed]: (call, ev) => {
    throw ev.fail(call, `The function "${call.name}" is not supported in this template version`);
  },
};

const CONDITIONS: Partial<Record<Fn, FunctionHandler>> = {
  [Fn.If]: (call, ev) => ifThenElse(call, ev),
  [Fn.IfNullable]: (call, ev) => ifThenElse(call, ev),
  [Fn.Equals]: (call, ev) => {
    const [a, b] = items(call);
    return pyEquals(ev.value(a!), ev.value(b!));
  },
  [Fn.Not]: (call, ev) => !ev.condition(call, ev.value(call.arg)),
  [Fn.And]: (call, ev) => items(call).every((e) => ev.condition(call, ev.value(e))),
  [Fn.Or]: (call, ev) => items(call).some((e) => ev.condition(call, ev.value(e))),
  [Fn.Contains]: (call, ev) => {
    const [a, b] = items(call);
    const value = ev.value(a!);
    const sequence = ev.value(b!);
    const r = pyContains(value, sequence);
    if (r === undefined) {
      throw ev.fail(
        call,
        typeof sequence === 'string'
          ? `"${call.name}" needs a string to look for in a string`
          : `Second argument to "${call.name}" should be a sequence.`,
      );
    }
    return r;
  },
  [Fn.Yaql]: (call, ev) => {
    const args = mapEntries(call.arg)!;
    const expression = ev.value(args.get('expression')!);
    if (typeof expression !== 'string') throw ev.fail(call, `The "expression" argument to ${call.name} must contain a string.`);
    const dataExpr = args.get('data');
    const data = dataExpr ? ev.value(dataExpr) : {};
    try {
      return parseYaql(expression).evaluate(data, { step: (n) => ev.step(n), charge: (n) => ev.charge(call, n) });
    } catch (e) {
      if (e instanceof YaqlError) throw ev.fail(call, `Bad expression ${e.message}.`);
      throw e;
    }
  },
};

const HANDLERS = { ...REFERENCES, ...CONDITIONS, ...STRING_FUNCTIONS, ...COLLECTION_FUNCTIONS } as Record<Fn, FunctionHandler>;

function ifThenElse(call: CallExpr, ev: Evaluator): EvalValue {
  const [cond, whenTrue, whenFalse] = items(call);
  const enabled = ev.condition(call, ev.value(cond!));
  if (enabled) return ev.eval(whenTrue!);
  return whenFalse === undefined ? OMITTED : ev.eval(whenFalse);
}

function getResource(call: CallExpr, ev: Evaluator, name: JsonValue): JsonValue {
  if (typeof name !== 'string') throw ev.fail(call, `"${call.name}" needs a resource name`);
  if (!ev.ctx.getResource) throw ev.fail(call, `"${call.name}" cannot be evaluated here: no resources are available`);
  const read = ev.ctx.getResource;
  return atCall(call, () => read(name));
}

function getAttr(call: CallExpr, ev: Evaluator, selectHere: boolean): JsonValue {
  const args = items(call).map((e) => ev.value(e));
  const [name, attribute = null, ...path] = args;
  if (typeof name !== 'string') throw ev.fail(call, `The resource name in "${call.name}" must be a string`);
  if (attribute !== null && typeof attribute !== 'string') throw ev.fail(call, `The attribute name in "${call.name}" must be a string`);
  if (attribute === null && call.fn !== Fn.GetAttrAll) throw ev.fail(call, `"${call.name}" needs an attribute name`);
  if (!ev.ctx.getAttr) throw ev.fail(call, `"${call.name}" cannot be evaluated here: no resources are available`);
  const read = ev.ctx.getAttr;
  if (!selectHere) return atCall(call, () => read(name, attribute, path));
  return selectFromAttribute(
    atCall(call, () => read(name, attribute, [])),
    path,
  );
}

/** Errors the caller's callbacks raise without a path get the path of the call. */
function atCall(call: CallExpr, f: () => JsonValue): JsonValue {
  try {
    return f();
  } catch (e) {
    if (isStokerError(e) && e.details['path'] === '') throw templateError(e.code, call.path, e.message, { ...e.details, path: call.path });
    throw e;
  }
}

function facade(call: CallExpr, ev: Evaluator): JsonValue {
  const facadeData = ev.ctx.resourceFacade;
  if (!facadeData) throw ev.fail(call, `"${call.name}" is only available in a template used as a template resource`);
  const attr = ev.value(call.arg);
  const key =
    attr === 'Metadata' ? 'metadata' : attr === 'DeletionPolicy' ? 'deletion_policy' : attr === 'UpdatePolicy' ? 'update_policy' : attr;
  if (key !== 'metadata' && key !== 'deletion_policy' && key !== 'update_policy') throw ev.fail(call, `Unknown facade attribute`);
  return facadeData[key];
}

/** get_param's path: list indexes may be numeric strings; any miss gives '' (as in Heat). */
function paramPath(value: JsonValue, path: JsonValue[]): JsonValue {
  let current: JsonValue = value;
  for (const key of path) {
    if (typeof key !== 'string' && !(typeof key === 'number' && Number.isInteger(key))) return '';
    if (isMapping(current)) {
      if (typeof key !== 'string' || !Object.hasOwn(current, key)) return '';
      current = current[key]!;
    } else if (Array.isArray(current) || typeof current === 'string') {
      const index = typeof key === 'number' ? key : /^\s*[+-]?\d+\s*$/.test(key) ? Number(key) : NaN;
      if (!Number.isInteger(index)) return '';
      const seq: JsonValue[] = typeof current === 'string' ? [...current] : current;
      const item = seq[index < 0 ? seq.length + index : index];
      if (item === undefined) return '';
      current = item;
    } else return '';
  }
  return current;
}
