/**
 * The static checks Heat makes when it builds a function object (`__init__`, `parse_args`,
 * `validate` in `heat/engine/hot/functions.py` and `cfn/functions.py`): argument shapes that are
 * wrong whatever the parameters turn out to be, and references to resources, parameters,
 * conditions and files that do not exist. Messages keep Heat's wording where a client might
 * match on it (e.g. `Arguments to "get_attr" must be of the form [resource_name, attribute,
 * (path), ...]`). Checks that depend on runtime values happen during evaluation.
 */
import type { JsonValue } from '../../core/json.js';
import type { CallExpr, Expr, ParseScope } from './expression.js';
import { listItems, mapEntries } from './expr-shape.js';
import { quoteText, showText, showValue, templateError } from './template-error.js';
import { Fn } from './versions.js';
import { YaqlError, parseYaql } from './yaql.js';

const lit = (e: Expr | undefined): JsonValue | undefined => (e?.kind === 'literal' ? e.value : undefined);
const isStringLiteral = (e: Expr | undefined): e is Expr & { kind: 'literal'; value: string } => typeof lit(e) === 'string';

/** Facade attributes (HOT and CFN spelling). */
const FACADE_ATTRIBUTES = ['metadata', 'deletion_policy', 'update_policy'] as const;
const CFN_FACADE_ATTRIBUTES = ['Metadata', 'DeletionPolicy', 'UpdatePolicy'];
/** `make_url` argument keys. */
const MAKE_URL_KEYS = ['scheme', 'username', 'password', 'host', 'port', 'path', 'query', 'fragment'];

/**
 * Throws STOKER_TEMPLATE_INVALID (at `call.path`) when the call's arguments can never work.
 *
 * @example
 * ```ts
 * checkCall(call, scope); // e.g. 'outputs.o.value: Arguments to "get_attr" must be of the form …'
 * ```
 */
export function checkCall(call: CallExpr, scope: ParseScope): void {
  const { name, arg } = call;
  const fail = (message: string): never => {
    throw templateError('STOKER_TEMPLATE_INVALID', call.path, message, { function: name });
  };
  const list = listItems(arg);
  const map = mapEntries(arg);
  const isStringArg = isStringLiteral(arg);
  const needList = (n: number | [number, number], message: string): Expr[] => {
    if (!list || isStringArg) return fail(message);
    const [min, max] = typeof n === 'number' ? [n, n] : n;
    if (list.length < min || list.length > max) fail(message);
    return list;
  };
  const resource = (e: Expr | undefined, fn: string): void => {
    const v = lit(e);
    if (v === undefined) return; // computed: checked when evaluated
    if (typeof v !== 'string' || !scope.resources.has(v)) {
      fail(`"${fn}" references "${showValue(v)}", which is not a resource of this template`);
    }
  };
  const condition = (e: Expr | undefined): void => {
    const v = lit(e);
    if (typeof v === 'string' && !scope.conditions.has(v)) fail(`Invalid condition ${quoteText(v)}`);
    if (v !== undefined && typeof v !== 'string' && typeof v !== 'boolean') fail(`Invalid condition ${showValue(v)}`);
  };

  switch (call.fn) {
    case Fn.GetParam: {
      const v = lit(arg);
      if (v === undefined && !list) return;
      if (v === '' || (list && list.length === 0) || v === null) fail(`Function "${name}" must have arguments`);
      if (!list && typeof v !== 'string') fail(`Argument to "${name}" must be string or list`);
      const param = list ? lit(list[0]) : v;
      if (param !== undefined && typeof param !== 'string') fail(`Parameter name in "${name}" must be string`);
      if (typeof param === 'string' && scope.checkParameters !== false && !scope.parameters.has(param))
        fail(`Unknown parameter ${quoteText(param)}`);
      return;
    }
    case Fn.GetResource:
      return resource(arg, name);
    case Fn.GetAttrThenSelect:
    case Fn.GetAttr:
    case Fn.GetAttrAll: {
      if (!list || isStringArg) return fail(`Argument to "${name}" must be a list`);
      if (call.fn === Fn.GetAttrAll && list.length === 0) {
        fail(`Arguments to "${name}" can be of the next forms: [resource_name] or [resource_name, attribute, (path), ...]`);
      }
      if (call.fn !== Fn.GetAttrAll && list.length < 2) {
        fail(`Arguments to "${name}" must be of the form [resource_name, attribute, (path), ...]`);
      }
      return resource(list[0], name);
    }
    case Fn.GetFile: {
      const v = lit(arg);
      if (v !== undefined && typeof v !== 'string') fail(`Argument to "${name}" must be a string`);
      if (typeof v === 'string' && scope.files !== undefined && !Object.hasOwn(scope.files, v)) {
        fail(`No content found in the "files" section for ${name} path: ${showText(v)}`);
      }
      return;
    }
    case Fn.ResourceFacade:
    case Fn.CfnResourceFacade: {
      const allowed = call.fn === Fn.ResourceFacade ? [...FACADE_ATTRIBUTES] : CFN_FACADE_ATTRIBUTES;
      const v = lit(arg);
      if (typeof v !== 'string' || !allowed.includes(v)) fail(`Incorrect arguments to "${name}" should be one of: ${allowed.join(', ')}`);
      return;
    }
    case Fn.StrReplace:
    case Fn.StrReplaceJson:
    case Fn.StrReplaceStrict:
    case Fn.StrReplaceVStrict: {
      if (!map) return fail(`Arguments to "${name}" must be a map`);
      if (!map.has('params') || !map.has('template')) {
        fail(`"${name}" syntax should be ${name}: {template: "This is var1 template var2", params: {var1: a, var2: string}}`);
      }
      return replaceParams(map.get('params')!);
    }
    case Fn.CfnReplace: {
      const [params] = needList(2, `Incorrect arguments to "${name}" should be: {"${name}": [{"$var1": "foo"}, "$var1 is foo"]}`);
      return replaceParams(params!);
    }
    case Fn.ListJoin:
    case Fn.CfnJoin:
      needList(2, `Incorrect arguments to "${name}" should be: "${name}" : [ " ", [ "str1", "str2"]]`);
      return;
    case Fn.ListJoinMultiple:
      needList([2, Infinity], `Incorrect arguments to "${name}" should be: "${name}" : [ " ", [ "str1", "str2"] ...]`);
      return;
    case Fn.Repeat:
    case Fn.RepeatWithMap:
    case Fn.RepeatNested: {
      if (!map) return fail(`Arguments to "${name}" must be a map`);
      if (!map.has('for_each') || !map.has('template')) {
        fail(`"${name}" syntax should be repeat: {template: "This is %var%", for_each: {"%var%": [a, b, c]}}`);
      }
      const forEach = map.get('for_each')!;
      if (forEach.kind !== 'call' && !mapEntries(forEach)) fail(`The "for_each" argument to "${name}" must contain a map`);
      if (call.fn === Fn.RepeatNested && map.has('permutations') && typeof lit(map.get('permutations')) !== 'boolean') {
        fail(`"permutations" should be boolean type for ${name} function.`);
      }
      return;
    }
    case Fn.StrSplit:
    case Fn.CfnSplit:
      if (isStringArg || map) fail(`Incorrect arguments to "${name}" should be: "${name}" : [ ",", "apples,pears", <index>]`);
      if (call.fn === Fn.CfnSplit) needList(2, `Incorrect arguments to "${name}" should be: "${name}" : [ ",", "str1,str2"]`);
      return;
    case Fn.Yaql: {
      if (!map) return fail(`Arguments to "${name}" must be a map.`);
      if (!map.has('expression') || [...map.keys()].some((k) => k !== 'expression' && k !== 'data')) {
        fail(`"${name}" syntax should be yaql: {expression: $.data.var1.sum(), data: {var1: [3, 2, 1]}}`);
      }
      const expression = map.get('expression')!;
      if (expression.kind === 'call') return;
      if (!isStringLiteral(expression)) fail(`The "expression" argument to ${name} must contain a string.`);
      try {
        parseYaql(lit(expression) as string);
      } catch (e) {
        if (e instanceof YaqlError) fail(`Bad expression ${e.message}.`);
        throw e;
      }
      return;
    }
    case Fn.If:
    case Fn.IfNullable: {
      const items = needList(
        call.fn === Fn.If ? 3 : [2, 3],
        `Arguments to "${name}" must be of the form: [condition_name, value_if_true, value_if_false]`,
      );
      return condition(items[0]);
    }
    case Fn.Equals:
      needList(2, `Arguments to "${name}" must be of the form: [value_1, value_2]`);
      return;
    case Fn.Not:
      if (lit(arg) === null) fail(`Argument to "${name}" must be a condition`);
      return condition(arg);
    case Fn.And:
    case Fn.Or: {
      if (!list || isStringArg) return fail(`Arguments to "${name}" must be a list of conditions`);
      if (list.length < 2) fail(`The minimum number of condition arguments to "${name}" is 2.`);
      for (const item of list) condition(item);
      return;
    }
    case Fn.Filter:
      if (!list || isStringArg) return fail(`Argument to "${name}" must be a list`);
      if (list.length !== 2) fail(`"${name}" expected 2 arguments of the form [values, sequence] but got ${list.length} arguments instead`);
      return;
    case Fn.MakeUrl:
      return checkMakeUrl(name, map, fail);
    case Fn.Contains:
      needList(2, `Arguments to "${name}" must be of the form: [value1, [value1, value2]]`);
      return;
    case Fn.CfnSelect:
      needList(2, `Arguments to "${name}" must be of the form [index, collection]`);
      return;
    case Fn.CfnMemberListToMap: {
      const items = needList(3, `Wrong Arguments try: {"${name}": ["Name", "Value", [".member.0.Name=key", ".member.0.Value=door"]]}`);
      if (!isStringLiteral(items[0])) fail(`${name} Key Name must be a string`);
      if (!isStringLiteral(items[1])) fail(`${name} Value Name must be a string`);
      return;
    }
    case Fn.CfnRef: {
      const v = lit(arg);
      if (v === undefined) return;
      if (typeof v !== 'string' || (!scope.resources.has(v) && !scope.parameters.has(v))) {
        fail(`"Ref" references "${showValue(v)}", which is neither a resource nor a parameter`);
      }
      return;
    }
    default:
      return;
  }

  function replaceParams(params: Expr): void {
    if (params.kind !== 'call' && !mapEntries(params)) fail(`"${name}" parameters must be a mapping`);
  }
}

function checkMakeUrl(name: string, map: Map<string, Expr> | undefined, fail: (m: string) => never): void {
  if (!map) return fail(`The arguments to "${name}" must be a map`);
  const invalid = [...map.keys()].filter((k) => !MAKE_URL_KEYS.includes(k));
  if (invalid.length > 0) fail(`Invalid arguments to "${name}": ${invalid.map((k) => showText(k)).join(', ')}`);
  for (const [key, e] of map) {
    if (e.kind === 'call') continue;
    const v = lit(e);
    if (key === 'query') {
      if (!mapEntries(e)) fail(`The "query" argument to "${name}" must be a map`);
    } else if (key === 'port') {
      const port = typeof v === 'number' ? v : typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isInteger(port)) fail(`Invalid URL port "${showValue(v)}" for ${name}`);
      if (port < 1 || port > 65535) fail(`Invalid URL port ${port}, must be in range 1-65535`);
    } else if (typeof v !== 'string') fail(`The "${key}" argument to "${name}" must be a string`);
  }
}
