/**
 * The expression tree: what a template value becomes once its intrinsic functions are
 * recognised. Parsing follows Heat's rule (`heat/engine/function.py`): a mapping with exactly
 * one key that names a function of the template's version is a call; every other mapping and
 * list is data whose values are parsed in turn. Subtrees without calls collapse into one
 * frozen literal, so evaluating plain data costs nothing and cannot be mutated by accident.
 *
 * Values in a `conditions` section, in a `condition:` field and in the first argument of `if`
 * are parsed in *condition* mode, where only the version's condition functions are allowed.
 */
import type { JsonValue } from '../../core/json.js';
import { checkCall } from './function-checks.js';
import { templateError } from './template-error.js';
import { ALL_FUNCTION_NAMES, Fn, type TemplateVersion } from './versions.js';

/**
 * A parsed template value.
 *
 * @example
 * ```ts
 * const e: Expr = { kind: 'call', name: 'get_param', fn: 'get_param', arg: { kind: 'literal', value: 'x' }, path: 'outputs.o.value' };
 * ```
 */
export type Expr = LiteralExpr | ListExpr | MapExpr | CallExpr;
/** Plain data: no function anywhere inside (frozen). */
export interface LiteralExpr {
  kind: 'literal';
  value: JsonValue;
}
/** A list with at least one call inside. */
export interface ListExpr {
  kind: 'list';
  items: Expr[];
}
/** A mapping with at least one call inside. */
export interface MapExpr {
  kind: 'map';
  entries: [string, Expr][];
}
/** An intrinsic function call. */
export interface CallExpr {
  kind: 'call';
  /** the name as written (`get_attr`, `Fn::Select`) */
  name: string;
  /** the implementation the template's version uses for that name */
  fn: Fn;
  /** the argument; for `if`, a list whose first item was parsed in condition mode */
  arg: Expr;
  /** where the call is, for messages (`resources.a.properties.b`) */
  path: string;
}

/**
 * What a parse may refer to. `parameters` includes the pseudo parameters.
 *
 * @example
 * ```ts
 * const scope: ParseScope = { version, resources: new Set(['a']), parameters: new Set(), conditions: new Set(), strictFunctions: false };
 * ```
 */
export interface ParseScope {
  version: TemplateVersion;
  resources: ReadonlySet<string>;
  parameters: ReadonlySet<string>;
  conditions: ReadonlySet<string>;
  /** when given, literal `get_file` keys are checked against it at parse time */
  files?: Readonly<Record<string, string>>;
  /** treat a function name of another version as an error instead of as data */
  strictFunctions: boolean;
  /**
   * Check that literal `get_param` names exist. Heat resolves resource definitions and
   * conditions when it validates a stack, but outputs only when they are read (a bad one
   * becomes that output's error), so outputs are parsed without this check.
   */
  checkParameters?: boolean;
}

/**
 * `value` parses data with the version's functions; `condition` with its condition functions.
 *
 * @example
 * ```ts
 * parseExpression(raw, 'conditions.prod', scope, 'condition');
 * ```
 */
export type ParseMode = 'value' | 'condition';

/**
 * Parses a template value into an expression tree, checking each call's arguments.
 *
 * @example
 * ```ts
 * parseExpression({ list_join: [',', ['a', 'b']] }, 'outputs.o.value', scope, 'value').kind; // 'call'
 * ```
 */
export function parseExpression(raw: JsonValue, path: string, scope: ParseScope, mode: ParseMode): Expr {
  if (raw === null || typeof raw !== 'object') return { kind: 'literal', value: raw };
  if (Array.isArray(raw)) {
    const items = raw.map((item, i) => parseExpression(item, `${path}[${i}]`, scope, mode));
    return collapse({ kind: 'list', items });
  }
  const keys = Object.keys(raw);
  if (keys.length === 1) {
    const name = keys[0]!;
    const fn = lookup(name, path, scope, mode);
    if (fn !== undefined) {
      const callPath = path;
      const argRaw = raw[name]!;
      let arg: Expr;
      if ((fn === Fn.If || fn === Fn.IfNullable) && Array.isArray(argRaw) && argRaw.length > 0) {
        const [cond, ...branches] = argRaw;
        arg = {
          kind: 'list',
          items: [
            parseExpression(cond!, `${path}.${name}[0]`, scope, 'condition'),
            ...branches.map((b, i) => parseExpression(b, `${path}.${name}[${i + 1}]`, scope, mode)),
          ],
        };
      } else arg = parseExpression(argRaw, `${path}.${name}`, scope, mode);
      const call: CallExpr = { kind: 'call', name, fn, arg, path: callPath };
      checkCall(call, scope);
      return call;
    }
  }
  const entries: [string, Expr][] = keys.map((k) => [k, parseExpression(raw[k]!, path === '' ? k : `${path}.${k}`, scope, mode)]);
  return collapse({ kind: 'map', entries });
}

function lookup(name: string, path: string, scope: ParseScope, mode: ParseMode): Fn | undefined {
  const { version } = scope;
  // own keys only: `toString` and friends are data, not functions
  const table = mode === 'condition' ? version.conditionFunctions : version.functions;
  const fn = Object.hasOwn(table, name) ? table[name] : undefined;
  if (fn !== undefined) {
    if (fn === Fn.Removed) {
      throw templateError(
        'STOKER_TEMPLATE_FUNCTION_UNKNOWN',
        path,
        `The function "${name}" is not supported in heat_template_version ${version.date}${replacementHint(name)}`,
        { function: name, version: version.date },
      );
    }
    return fn;
  }
  if (mode === 'condition' && Object.hasOwn(version.functions, name)) {
    if (version.functions[name] === Fn.Removed) return lookup(name, path, scope, 'value');
    throw templateError('STOKER_TEMPLATE_INVALID', path, `The function "${name}" is not allowed in a condition`, { function: name });
  }
  if (scope.strictFunctions && ALL_FUNCTION_NAMES.has(name)) {
    throw templateError(
      'STOKER_TEMPLATE_FUNCTION_UNKNOWN',
      path,
      `The function "${name}" is not available in heat_template_version ${version.date}`,
      { function: name, version: version.date },
    );
  }
  return undefined;
}

function replacementHint(name: string): string {
  if (name === 'Ref') return ' (use get_resource or get_param)';
  if (name === 'Fn::Select') return ' (use a path in get_attr or get_param)';
  if (name === 'Fn::Join') return ' (use list_join)';
  if (name === 'Fn::Replace') return ' (use str_replace)';
  if (name === 'Fn::Split') return ' (use str_split)';
  if (name === 'Fn::ResourceFacade') return ' (use resource_facade)';
  return '';
}

/** A list or map whose parts are all literals becomes one frozen literal. */
function collapse(expr: ListExpr | MapExpr): Expr {
  if (expr.kind === 'list') {
    if (!expr.items.every((i) => i.kind === 'literal')) return expr;
    return { kind: 'literal', value: Object.freeze(expr.items.map((i) => (i as LiteralExpr).value)) as JsonValue };
  }
  if (!expr.entries.every(([, e]) => e.kind === 'literal')) return expr;
  const out: Record<string, JsonValue> = {};
  for (const [k, e] of expr.entries) out[k] = (e as LiteralExpr).value;
  return { kind: 'literal', value: Object.freeze(out) };
}

/**
 * Calls every function call in `expr` (depth-first, outer calls first).
 *
 * @example
 * ```ts
 * const names: string[] = [];
 * forEachCall(expr, (call) => names.push(call.name));
 * ```
 */
export function forEachCall(expr: Expr, visit: (call: CallExpr) => void): void {
  const stack: Expr[] = [expr];
  while (stack.length > 0) {
    const e = stack.pop()!;
    if (e.kind === 'call') {
      visit(e);
      stack.push(e.arg);
    } else if (e.kind === 'list') for (let i = e.items.length - 1; i >= 0; i--) stack.push(e.items[i]!);
    else if (e.kind === 'map') for (let i = e.entries.length - 1; i >= 0; i--) stack.push(e.entries[i]![1]);
  }
}
