/**
 * A documented subset of YAQL for HOT's `yaql` function, parsed into a tree and interpreted
 * here (no `eval`, docs/security.md S6). Anything outside the subset is rejected with a message that
 * names the construct, at template validation when the expression is a literal.
 *
 * The subset (the expression sees `$` = `{data: <the data argument>}`):
 * - literals: integers, decimals, `'…'` / `"…"` strings, `true`, `false`, `null`, `[a, b]`;
 * - `$` (the current value), `.key` on mappings, `[index]` on lists and strings, `[key]` on
 *   mappings;
 * - operators, loosest first: `or`, `and`, `not`, `= != < <= > >= in`, `+ -`, `* / mod`,
 *   unary `-`; `/` of two integers divides as integers (floor), as YAQL does; `+` also joins
 *   strings and lists;
 * - methods (`x.f(…)`) and the same as functions (`f(x, …)`): `len count sum max min first
 *   last distinct flatten keys values join(sep) split(sep) toUpper toLower trim
 *   replace(old, new) str int float`, and with an expression evaluated per item with `$`
 *   bound to the item: `select(e) where(e) any(e?) all(e?) orderBy(e)`.
 *
 * Heat limits collections walked by YAQL to 200 items (`[yaql] limit_iterators`); so do we.
 * Evaluation also spends the caller's budget (docs/security.md S6): a step per node and per item
 * walked, and the size of every string and list it builds, counted *before* building it, so
 * nested lambdas or a string that grows with each `replace` end in STOKER_TEMPLATE_TOO_LARGE
 * instead of minutes of CPU or an out-of-memory crash.
 */
import type { JsonValue } from '../../core/json.js';
import { ValidationError } from '../../errors.js';
import { DEFAULT_TEMPLATE_LIMITS } from './limits.js';
import { isMapping, pyContains, pyEquals, pyStr, pyTruthy } from './python-values.js';
import { showText } from './template-error.js';

/**
 * Thrown for an expression outside the subset or a failed evaluation (STOKER_TEMPLATE_INVALID;
 * the evaluator reports a failed evaluation as STOKER_TEMPLATE_EVALUATION_FAILED).
 *
 * @example
 * ```ts
 * try { parseYaql('$.data.groupBy($)'); } catch (e) { if (e instanceof YaqlError) … }
 * ```
 */
export class YaqlError extends ValidationError {
  constructor(message: string) {
    super('STOKER_TEMPLATE_INVALID', message);
  }
}

/**
 * What an evaluation may spend: `step` counts work, `charge` the size (characters or items) of
 * what it is about to build; either throws when its budget is gone.
 *
 * @example
 * ```ts
 * parseYaql(text).evaluate(data, { step: (n) => ev.step(n), charge: (n) => ev.charge(call, n) });
 * ```
 */
export interface YaqlBudget {
  step(n?: number): void;
  charge(size: number): void;
}

/** The budget of an evaluation whose caller gives none: the evaluator's default limits. */
function defaultBudget(): YaqlBudget {
  let steps = 0;
  let size = 0;
  const fail = (what: string): never => {
    throw new ValidationError('STOKER_TEMPLATE_TOO_LARGE', `The yaql expression ${what}`);
  };
  const { maxEvaluationSteps, maxEvaluationOutputBytes } = DEFAULT_TEMPLATE_LIMITS;
  return {
    step: (n = 1) => {
      if ((steps += n) > maxEvaluationSteps) fail(`took more than ${maxEvaluationSteps} steps`);
    },
    charge: (n) => {
      if ((size += n) > maxEvaluationOutputBytes) fail(`produced more than ${maxEvaluationOutputBytes} bytes of output`);
    },
  };
}

/**
 * Heat's default `[yaql] limit_iterators`.
 *
 * @example
 * ```ts
 * YAQL_MAX_ITEMS; // 200
 * ```
 */
export const YAQL_MAX_ITEMS = 200;
const MAX_LENGTH = 4096;
const MAX_NESTING = 64;

type Node =
  | { t: 'lit'; v: JsonValue }
  | { t: 'list'; items: Node[] }
  | { t: 'ctx' }
  | { t: 'get'; target: Node; key: string }
  | { t: 'index'; target: Node; index: Node }
  | { t: 'call'; name: string; target: Node | null; args: Node[] }
  | { t: 'bin'; op: string; left: Node; right: Node }
  | { t: 'not'; arg: Node }
  | { t: 'neg'; arg: Node };

/** The methods with per-item lambda arguments. */
const LAMBDAS = new Set(['select', 'where', 'any', 'all', 'orderBy']);
const FUNCTIONS = new Set([
  'len',
  'count',
  'sum',
  'max',
  'min',
  'first',
  'last',
  'distinct',
  'flatten',
  'keys',
  'values',
  'join',
  'split',
  'toUpper',
  'toLower',
  'trim',
  'replace',
  'str',
  'int',
  'float',
  ...LAMBDAS,
]);

/**
 * A parsed expression.
 *
 * @example
 * ```ts
 * parseYaql('$.data.var1.sum()').evaluate({ var1: [1, 2, 3, 4] }); // 10
 * ```
 */
export interface YaqlExpression {
  evaluate(data: JsonValue, budget?: YaqlBudget): JsonValue;
}

/**
 * Parses `source`, throwing {@link YaqlError} for syntax outside the subset.
 *
 * @example
 * ```ts
 * parseYaql('$.data.items.where($ > 1).len()');
 * ```
 */
export function parseYaql(source: string): YaqlExpression {
  if (source.length > MAX_LENGTH) throw new YaqlError(`the expression is longer than ${MAX_LENGTH} characters`);
  const tree = new YaqlParser(tokenize(source)).parse();
  return { evaluate: (data, budget = defaultBudget()) => evaluateNode(tree, { data }, 0, budget) };
}

type Token = { k: 'num'; v: number } | { k: 'str'; v: string } | { k: 'id'; v: string } | { k: 'op'; v: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^\d+(\.\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ k: 'num', v: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[j + 1]!;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else s += src[j++];
      }
      if (j >= src.length) throw new YaqlError('unterminated string');
      out.push({ k: 'str', v: s });
      i = j + 1;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (id) {
      out.push({ k: 'id', v: id[0] });
      i += id[0].length;
      continue;
    }
    const op = ['!=', '<=', '>=', '=', '<', '>', '+', '-', '*', '/', '.', ',', '(', ')', '[', ']', '$'].find((o) => src.startsWith(o, i));
    if (!op) throw new YaqlError(`unexpected character "${showText(c)}"`);
    out.push({ k: 'op', v: op });
    i += op.length;
  }
  return out;
}

class YaqlParser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const node = this.or();
    if (this.pos < this.tokens.length) throw new YaqlError(`unexpected "${this.describe(this.tokens[this.pos]!)}"`);
    return node;
  }

  private describe(t: Token): string {
    return t.k === 'str' ? `'${showText(t.v)}'` : showText(String(t.v));
  }
  private isOp(v: string): boolean {
    const t = this.tokens[this.pos];
    return t !== undefined && t.k === 'op' && t.v === v;
  }
  private isWord(v: string): boolean {
    const t = this.tokens[this.pos];
    return t !== undefined && t.k === 'id' && t.v === v;
  }
  private expect(v: string): void {
    if (!this.isOp(v)) throw new YaqlError(`expected "${v}"`);
    this.pos++;
  }
  private nested<T>(f: () => T): T {
    if (++this.depth > MAX_NESTING) throw new YaqlError('the expression nests too deeply');
    const r = f();
    this.depth--;
    return r;
  }

  private or(): Node {
    let left = this.and();
    while (this.isWord('or')) {
      this.pos++;
      left = { t: 'bin', op: 'or', left, right: this.and() };
    }
    return left;
  }
  private and(): Node {
    let left = this.not();
    while (this.isWord('and')) {
      this.pos++;
      left = { t: 'bin', op: 'and', left, right: this.not() };
    }
    return left;
  }
  private not(): Node {
    if (this.isWord('not')) {
      this.pos++;
      return this.nested(() => ({ t: 'not', arg: this.not() }));
    }
    return this.comparison();
  }
  private comparison(): Node {
    const left = this.additive();
    for (const op of ['=', '!=', '<=', '>=', '<', '>']) {
      if (this.isOp(op)) {
        this.pos++;
        return { t: 'bin', op, left, right: this.additive() };
      }
    }
    if (this.isWord('in')) {
      this.pos++;
      return { t: 'bin', op: 'in', left, right: this.additive() };
    }
    return left;
  }
  private additive(): Node {
    let left = this.multiplicative();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.tokens[this.pos++] as { v: string }).v;
      left = { t: 'bin', op, left, right: this.multiplicative() };
    }
    return left;
  }
  private multiplicative(): Node {
    let left = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isWord('mod')) {
      const op = (this.tokens[this.pos++] as { v: string }).v;
      left = { t: 'bin', op, left, right: this.unary() };
    }
    return left;
  }
  private unary(): Node {
    if (this.isOp('-')) {
      this.pos++;
      return this.nested(() => ({ t: 'neg', arg: this.unary() }));
    }
    return this.postfix();
  }
  private postfix(): Node {
    let node = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        this.pos++;
        const t = this.tokens[this.pos++];
        if (!t || t.k !== 'id') throw new YaqlError('expected a name after "."');
        if (this.isOp('(')) node = { t: 'call', name: checkFunction(t.v), target: node, args: this.args() };
        else node = { t: 'get', target: node, key: t.v };
      } else if (this.isOp('[')) {
        this.pos++;
        const index = this.nested(() => this.or());
        this.expect(']');
        node = { t: 'index', target: node, index };
      } else return node;
    }
  }
  private args(): Node[] {
    this.expect('(');
    const args: Node[] = [];
    while (!this.isOp(')')) {
      args.push(this.nested(() => this.or()));
      if (!this.isOp(')')) this.expect(',');
    }
    this.pos++;
    return args;
  }
  private primary(): Node {
    const t = this.tokens[this.pos++];
    if (!t) throw new YaqlError('unexpected end of expression');
    if (t.k === 'num' || t.k === 'str') return { t: 'lit', v: t.v };
    if (t.k === 'op' && t.v === '$') {
      const next = this.tokens[this.pos];
      if (next && next.k === 'id') throw new YaqlError(`variables ($${showText(next.v)}) are not supported; use $.${showText(next.v)}`);
      return { t: 'ctx' };
    }
    if (t.k === 'op' && t.v === '(') {
      const inner = this.nested(() => this.or());
      this.expect(')');
      return inner;
    }
    if (t.k === 'op' && t.v === '[') {
      const items: Node[] = [];
      while (!this.isOp(']')) {
        items.push(this.nested(() => this.or()));
        if (!this.isOp(']')) this.expect(',');
      }
      this.pos++;
      return { t: 'list', items };
    }
    if (t.k === 'id') {
      if (t.v === 'true' || t.v === 'false') return { t: 'lit', v: t.v === 'true' };
      if (t.v === 'null') return { t: 'lit', v: null };
      if (this.isOp('(')) {
        const args = this.args();
        if (args.length === 0) throw new YaqlError(`${t.v}() needs an argument`);
        return { t: 'call', name: checkFunction(t.v), target: args[0]!, args: args.slice(1) };
      }
    }
    throw new YaqlError(`unexpected "${this.describe(t)}"`);
  }
}

function checkFunction(name: string): string {
  if (!FUNCTIONS.has(name)) {
    throw new YaqlError(`the function "${showText(name)}" is not in Stoker's YAQL subset (${[...FUNCTIONS].join(', ')})`);
  }
  return name;
}

function items(value: JsonValue, what: string): JsonValue[] {
  const list = Array.isArray(value) ? value : isMapping(value) ? Object.keys(value) : undefined;
  if (list === undefined) throw new YaqlError(`${what} needs a list`);
  if (list.length > YAQL_MAX_ITEMS) throw new YaqlError(`${what}: collections are limited to ${YAQL_MAX_ITEMS} items`);
  return list;
}

function num(value: JsonValue, what: string): number {
  if (typeof value !== 'number') throw new YaqlError(`${what} needs numbers`);
  return value;
}

function compare(a: JsonValue, b: JsonValue): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new YaqlError('only numbers or strings can be compared');
}

/** How many times `part` occurs in `text` (a step per occurrence), as `split` would cut it. */
function occurrences(text: string, part: string, budget: YaqlBudget): number {
  if (part === '') return Math.max(text.length - 1, 0);
  let count = 0;
  for (let i = text.indexOf(part); i !== -1; i = text.indexOf(part, i + part.length)) {
    count++;
    budget.step();
  }
  return count;
}

function evaluateNode(node: Node, ctx: JsonValue, depth: number, budget: YaqlBudget): JsonValue {
  if (depth > MAX_NESTING * 4) throw new YaqlError('the evaluation nests too deeply');
  budget.step();
  const ev = (n: Node, c: JsonValue = ctx): JsonValue => evaluateNode(n, c, depth + 1, budget);
  switch (node.t) {
    case 'lit':
      return node.v;
    case 'ctx':
      return ctx;
    case 'list':
      budget.charge(node.items.length);
      return node.items.map((i) => ev(i));
    case 'get': {
      const target = ev(node.target);
      if (!isMapping(target)) throw new YaqlError(`.${node.key} needs a mapping`);
      return Object.hasOwn(target, node.key) ? target[node.key]! : null;
    }
    case 'index': {
      const target = ev(node.target);
      const index = ev(node.index);
      if (isMapping(target) && typeof index === 'string') return Object.hasOwn(target, index) ? target[index]! : null;
      if ((Array.isArray(target) || typeof target === 'string') && typeof index === 'number' && Number.isInteger(index)) {
        if (typeof target === 'string') budget.step(target.length);
        const seq = typeof target === 'string' ? [...target] : target;
        const item = seq[index < 0 ? seq.length + index : index];
        if (item === undefined) throw new YaqlError('index out of range');
        return item;
      }
      throw new YaqlError('[] needs a list and an integer, or a mapping and a string');
    }
    case 'not':
      return !pyTruthy(ev(node.arg));
    case 'neg':
      return -num(ev(node.arg), 'unary -');
    case 'bin':
      return binary(node.op, node.left, node.right, ev, budget);
    case 'call':
      return call(node, ev, budget);
  }
}

function binary(op: string, left: Node, right: Node, ev: (n: Node, c?: JsonValue) => JsonValue, budget: YaqlBudget): JsonValue {
  if (op === 'and') return pyTruthy(ev(left)) ? ev(right) : ev(left);
  if (op === 'or') return pyTruthy(ev(left)) ? ev(left) : ev(right);
  const a = ev(left);
  const b = ev(right);
  switch (op) {
    case '=':
      return pyEquals(a, b);
    case '!=':
      return !pyEquals(a, b);
    case '<':
      return compare(a, b) < 0;
    case '<=':
      return compare(a, b) <= 0;
    case '>':
      return compare(a, b) > 0;
    case '>=':
      return compare(a, b) >= 0;
    case 'in': {
      if (Array.isArray(b)) budget.step(b.length);
      const r = pyContains(a, isMapping(b) ? Object.keys(b) : b);
      if (r === undefined) throw new YaqlError('"in" needs a list or a string on its right');
      return r;
    }
    case '+':
      if (typeof a === 'string' && typeof b === 'string') {
        budget.charge(a.length + b.length);
        return a + b;
      }
      if (Array.isArray(a) && Array.isArray(b)) {
        budget.charge(a.length + b.length);
        return [...a, ...b];
      }
      return num(a, '+') + num(b, '+');
    case '-':
      return num(a, '-') - num(b, '-');
    case '*':
      return num(a, '*') * num(b, '*');
    case '/': {
      const x = num(a, '/');
      const y = num(b, '/');
      if (y === 0) throw new YaqlError('division by zero');
      return Number.isInteger(x) && Number.isInteger(y) ? Math.floor(x / y) : x / y;
    }
    default: {
      const x = num(a, 'mod');
      const y = num(b, 'mod');
      if (y === 0) throw new YaqlError('division by zero');
      return ((x % y) + y) % y;
    }
  }
}

function call(node: Extract<Node, { t: 'call' }>, ev: (n: Node, c?: JsonValue) => JsonValue, budget: YaqlBudget): JsonValue {
  const target = ev(node.target!);
  const name = node.name;
  if (LAMBDAS.has(name)) {
    const list = items(target, name);
    const f = node.args[0];
    const apply = (item: JsonValue): JsonValue => (f ? ev(f, item) : item);
    if (name === 'select' || name === 'where' || name === 'orderBy') budget.charge(list.length);
    if (name === 'select') return list.map(apply);
    if (name === 'where') return list.filter((i) => pyTruthy(apply(i)));
    if (name === 'any') return list.some((i) => pyTruthy(apply(i)));
    if (name === 'all') return list.every((i) => pyTruthy(apply(i)));
    budget.step(list.length * 8);
    const keyed = list.map((i) => [apply(i), i] as const);
    return keyed.sort((x, y) => compare(x[0], y[0])).map(([, i]) => i);
  }
  const args = node.args.map((a) => ev(a));
  const str = (v: JsonValue): string => {
    if (typeof v !== 'string') throw new YaqlError(`${name}() needs a string`);
    return v;
  };
  /** Charges the size of a string built by `f` (its size is known only after). */
  const built = (s: string): string => (budget.charge(s.length), s);
  switch (name) {
    case 'len':
    case 'count':
      if (typeof target === 'string') budget.step(target.length);
      return typeof target === 'string' ? [...target].length : items(target, name).length;
    case 'sum':
      return items(target, name).reduce<number>((s, v) => s + num(v, 'sum()'), 0);
    case 'max':
    case 'min': {
      const list = items(target, name);
      if (list.length === 0) throw new YaqlError(`${name}() of an empty list`);
      return list.reduce((m, v) => ((name === 'max' ? compare(v, m) > 0 : compare(v, m) < 0) ? v : m));
    }
    case 'first':
    case 'last': {
      const list = items(target, name);
      if (list.length === 0) throw new YaqlError(`${name}() of an empty list`);
      return name === 'first' ? list[0]! : list[list.length - 1]!;
    }
    case 'distinct': {
      const list = items(target, name);
      budget.step(list.length * list.length);
      budget.charge(list.length);
      return list.filter((v, i, all) => all.findIndex((w) => pyEquals(v, w)) === i);
    }
    case 'flatten': {
      const list = items(target, name);
      budget.charge(list.reduce<number>((n, v) => n + (Array.isArray(v) ? v.length : 1), 0));
      return list.flatMap((v) => (Array.isArray(v) ? v : [v]));
    }
    case 'keys':
    case 'values':
      if (!isMapping(target)) throw new YaqlError(`${name}() needs a mapping`);
      budget.charge(Object.keys(target).length);
      return name === 'keys' ? Object.keys(target) : Object.values(target);
    case 'join': {
      const separator = str(args[0] ?? '');
      const parts = items(target, name).map((v) => built(pyStr(v)));
      budget.charge(separator.length * Math.max(parts.length - 1, 0));
      return parts.join(separator);
    }
    case 'split': {
      const text = str(target);
      const separator = str(args[0] ?? ' ');
      budget.charge(occurrences(text, separator, budget) + 1);
      return text.split(separator);
    }
    case 'toUpper':
      return built(str(target).toUpperCase());
    case 'toLower':
      return built(str(target).toLowerCase());
    case 'trim':
      return built(str(target).trim());
    case 'replace': {
      const text = str(target);
      const old = str(args[0] ?? '');
      const replacement = str(args[1] ?? '');
      const count = occurrences(text, old, budget);
      // the size of the result, before building it: a string that grows fourfold per call must not get the chance
      budget.charge(text.length + count * Math.max(replacement.length - old.length, 0));
      return text.split(old).join(replacement);
    }
    case 'str':
      return built(pyStr(target));
    default: {
      const n = typeof target === 'string' ? Number(target.trim()) : typeof target === 'boolean' ? Number(target) : target;
      if (typeof n !== 'number' || !Number.isFinite(n)) throw new YaqlError(`${name}() cannot convert this value`);
      return name === 'int' ? Math.trunc(n) : n;
    }
  }
}
