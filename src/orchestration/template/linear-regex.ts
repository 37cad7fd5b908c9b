/**
 * A linear-time matcher for the Python `re` subset that Heat's `allowed_pattern` uses
 * (docs/security.md S6: user regexes never reach a backtracking engine).
 *
 * Heat checks `re.match(pattern, value)` and then `match.end() == len(value)`, so what matters
 * is *where the match Python's backtracking engine prefers ends*, not whether some full match
 * exists (`a|ab` against `ab` ends at 1 and fails in Heat). A Pike VM that keeps its threads in
 * priority order and drops lower-priority threads once a higher one matches finds exactly that
 * end, in O(value × program) steps, with a hard step budget on top.
 *
 * Supported: literals and escapes (`\n \t \xhh \uhhhh`, escaped punctuation), `.`, classes
 * with ranges and negation, `\d \D \w \W \s \S` (Unicode, as Python 3), anchors `^ $ \A \Z \b
 * \B`, groups `( )`, `(?: )`, `(?P<name> )`, alternation, `* + ? {m} {m,} {,n} {m,n}` and their
 * lazy forms. Not supported (an error naming the construct): backreferences, lookaround,
 * inline flags, conditionals, possessive quantifiers.
 *
 * Errors are StokerErrors: {@link PatternError} (STOKER_TEMPLATE_INVALID) for a pattern outside
 * the subset, {@link PatternBudgetError} (STOKER_TEMPLATE_TOO_LARGE) when a match runs out of
 * steps; constraints.ts turns the latter into an error about the parameter.
 */
import { ValidationError, type ErrorCode } from '../../errors.js';

type Test = (cp: number) => boolean;
type AssertKind = 'start' | 'end' | 'endOrNewline' | 'wordBoundary' | 'notWordBoundary';
type Ast =
  | { t: 'empty' }
  | { t: 'char'; test: Test }
  | { t: 'seq'; items: Ast[] }
  | { t: 'alt'; items: Ast[] }
  | { t: 'repeat'; node: Ast; min: number; max: number; greedy: boolean }
  | { t: 'assert'; kind: AssertKind };
type Inst =
  | { op: 'char'; test: Test }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'assert'; kind: AssertKind }
  | { op: 'match' };

/**
 * Thrown for patterns outside the subset (STOKER_TEMPLATE_INVALID); constraints.ts puts the
 * parameter and the pattern in front of the message.
 *
 * @example
 * ```ts
 * try { compilePattern('(?=a)'); } catch (e) { if (e instanceof PatternError) … }
 * ```
 */
export class PatternError extends ValidationError {
  constructor(message: string, code: ErrorCode = 'STOKER_TEMPLATE_INVALID') {
    super(code, message);
  }
}

/**
 * Thrown when a match runs out of its step budget (STOKER_TEMPLATE_TOO_LARGE). The message never
 * quotes the value, which may be secret.
 *
 * @example
 * ```ts
 * try { p.matchesWhole(value, budget); } catch (e) { if (e instanceof PatternBudgetError) … }
 * ```
 */
export class PatternBudgetError extends PatternError {
  constructor(readonly limit: number) {
    super(`the value is too expensive to check against this pattern (more than ${limit} steps)`, 'STOKER_TEMPLATE_TOO_LARGE');
  }
}

/**
 * Steps left for matching, shared by the matches that are given the same object.
 *
 * @example
 * ```ts
 * const budget = patternBudget(20_000_000);
 * p.matchesWhole(a, budget); q.matchesWhole(b, budget); // together at most 20 000 000 steps
 * ```
 */
export interface PatternBudget {
  readonly limit: number;
  remaining: number;
}

/**
 * A fresh budget of `limit` steps.
 *
 * @example
 * ```ts
 * patternBudget(1000).remaining; // 1000
 * ```
 */
export function patternBudget(limit: number): PatternBudget {
  return { limit, remaining: limit };
}

/** Steps of one match when no budget is given (docs/security.md S6). */
const DEFAULT_MATCH_STEPS = 20_000_000;

const MAX_PROGRAM = 10_000;
const MAX_GROUP_NESTING = 100;
const DIGIT = /\p{Nd}/u;
const WORD = /[\p{L}\p{N}\p{Mn}\p{Pc}]/u;
const SPACE = /\s/u;
const isDigit: Test = (cp) => DIGIT.test(String.fromCodePoint(cp));
const isWord: Test = (cp) => cp === 0x5f || WORD.test(String.fromCodePoint(cp));
const isSpace: Test = (cp) => (cp >= 0x1c && cp <= 0x1f) || cp === 0x85 || SPACE.test(String.fromCodePoint(cp));
const CLASS_ESCAPES: Record<string, Test> = {
  d: isDigit,
  D: (cp) => !isDigit(cp),
  w: isWord,
  W: (cp) => !isWord(cp),
  s: isSpace,
  S: (cp) => !isSpace(cp),
};
const CHAR_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, f: 12, v: 11, a: 7 };

/**
 * A compiled pattern.
 *
 * @example
 * ```ts
 * const p = compilePattern('[A-Z]+[a-zA-Z0-9]*');
 * p.matchesWhole('Abc123'); // true
 * p.matchesWhole('abc123'); // false
 * ```
 */
export interface CompiledPattern {
  /**
   * Heat's test: the preferred match from the start ends at the end of `value`. `budget` is a
   * number of steps or a shared {@link PatternBudget}; running out throws {@link PatternBudgetError}.
   */
  matchesWhole(value: string, budget?: number | PatternBudget): boolean;
}

/**
 * Compiles `pattern`, throwing {@link PatternError} for syntax outside the subset.
 *
 * @example
 * ```ts
 * compilePattern('(a+)+$').matchesWhole('a'.repeat(10000) + 'b'); // false, in linear time
 * ```
 */
export function compilePattern(pattern: string): CompiledPattern {
  const ast = new PatternParser(pattern).parse();
  const prog: Inst[] = [];
  emit(ast, prog);
  prog.push({ op: 'match' });
  return {
    matchesWhole: (value, budget = DEFAULT_MATCH_STEPS) => run(prog, value, typeof budget === 'number' ? patternBudget(budget) : budget),
  };
}

class PatternParser {
  private readonly cps: number[];
  private pos = 0;
  private depth = 0;
  constructor(private readonly source: string) {
    this.cps = [...source].map((c) => c.codePointAt(0)!);
  }

  parse(): Ast {
    const ast = this.alternation();
    if (this.pos < this.cps.length) throw new PatternError(`unbalanced parenthesis at position ${this.pos}`);
    return ast;
  }

  private peek(offset = 0): string | undefined {
    const cp = this.cps[this.pos + offset];
    return cp === undefined ? undefined : String.fromCodePoint(cp);
  }

  private alternation(): Ast {
    const items = [this.sequence()];
    while (this.peek() === '|') {
      this.pos++;
      items.push(this.sequence());
    }
    return items.length === 1 ? items[0]! : { t: 'alt', items };
  }

  private sequence(): Ast {
    const items: Ast[] = [];
    while (this.pos < this.cps.length && this.peek() !== '|' && this.peek() !== ')') {
      let atom = this.atom();
      for (;;) {
        const q = this.quantifier();
        if (!q) break;
        if (atom.t === 'assert' || atom.t === 'empty') throw new PatternError(`nothing to repeat at position ${this.pos}`);
        atom = { t: 'repeat', node: atom, ...q };
      }
      items.push(atom);
    }
    if (items.length === 0) return { t: 'empty' };
    return items.length === 1 ? items[0]! : { t: 'seq', items };
  }

  private quantifier(): { min: number; max: number; greedy: boolean } | undefined {
    const c = this.peek();
    let min: number;
    let max: number;
    if (c === '*' || c === '+' || c === '?') {
      this.pos++;
      [min, max] = c === '*' ? [0, Infinity] : c === '+' ? [1, Infinity] : [0, 1];
    } else if (c === '{') {
      const m = /^\{(\d*)(,?)(\d*)\}/.exec(this.source.slice(this.offsetOf(this.pos)));
      if (!m || (m[1] === '' && m[2] === '')) return undefined; // a literal '{', as in Python
      this.pos += [...m[0]].length;
      min = m[1] === '' ? 0 : Number(m[1]);
      max = m[2] === '' ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (max < min) throw new PatternError('min repeat greater than max repeat');
      if (min > 1000 || (max !== Infinity && max > 1000)) throw new PatternError('repeat counts above 1000 are not supported');
    } else return undefined;
    let greedy = true;
    if (this.peek() === '?') {
      this.pos++;
      greedy = false;
    } else if (this.peek() === '+') throw new PatternError('possessive quantifiers are not supported');
    return { min, max, greedy };
  }

  private offsetOf(cpIndex: number): number {
    let offset = 0;
    for (let i = 0; i < cpIndex; i++) offset += this.cps[i]! > 0xffff ? 2 : 1;
    return offset;
  }

  private atom(): Ast {
    const c = this.peek()!;
    this.pos++;
    switch (c) {
      case '.':
        return { t: 'char', test: (cp) => cp !== 10 };
      case '^':
        return { t: 'assert', kind: 'start' };
      case '$':
        return { t: 'assert', kind: 'endOrNewline' };
      case '[':
        return this.charClass();
      case '(':
        return this.group();
      case '\\':
        return this.escape(false) as Ast;
      case '*':
      case '+':
      case '?':
        throw new PatternError(`nothing to repeat at position ${this.pos - 1}`);
      default: {
        const cp = c.codePointAt(0)!;
        return { t: 'char', test: (x) => x === cp };
      }
    }
  }

  private group(): Ast {
    if (++this.depth > MAX_GROUP_NESTING) throw new PatternError('groups nest too deeply');
    if (this.peek() === '?') {
      const rest = this.source.slice(this.offsetOf(this.pos));
      if (rest.startsWith('?:')) this.pos += 2;
      else if (/^\?P<[A-Za-z_][A-Za-z0-9_]*>/.test(rest)) this.pos += [.../^\?P<[^>]*>/.exec(rest)![0]].length;
      else throw new PatternError(`the group construct "(${rest.slice(0, 3)}" (lookaround, backreference or flags) is not supported`);
    }
    const inner = this.alternation();
    if (this.peek() !== ')') throw new PatternError('missing ), unterminated subpattern');
    this.pos++;
    this.depth--;
    return inner;
  }

  /** An escape after the backslash; in a class, returns a code point or a class test. */
  private escape(inClass: boolean): Ast | number | Test {
    const c = this.peek();
    if (c === undefined) throw new PatternError('bad escape (end of pattern)');
    this.pos++;
    const klass = CLASS_ESCAPES[c];
    if (klass) return inClass ? klass : { t: 'char', test: klass };
    if (!inClass) {
      if (c === 'A') return { t: 'assert', kind: 'start' };
      if (c === 'Z') return { t: 'assert', kind: 'end' };
      if (c === 'b') return { t: 'assert', kind: 'wordBoundary' };
      if (c === 'B') return { t: 'assert', kind: 'notWordBoundary' };
      if (/[1-9]/.test(c)) throw new PatternError('backreferences are not supported');
    }
    let cp: number;
    if (c === 'b') cp = 8;
    else if (CHAR_ESCAPES[c] !== undefined) cp = CHAR_ESCAPES[c];
    else if (c === '0') cp = 0;
    else if (c === 'x' || c === 'u' || c === 'U') {
      const len = c === 'x' ? 2 : c === 'u' ? 4 : 8;
      const hex = this.cps
        .slice(this.pos, this.pos + len)
        .map((x) => String.fromCodePoint(x))
        .join('');
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw new PatternError(`incomplete escape \\${c}${hex}`);
      this.pos += len;
      cp = parseInt(hex, 16);
    } else if (/[A-Za-z0-9]/.test(c)) throw new PatternError(`bad escape \\${c}`);
    else cp = c.codePointAt(0)!;
    if (inClass) return cp;
    return { t: 'char', test: (x) => x === cp };
  }

  private charClass(): Ast {
    const negate = this.peek() === '^';
    if (negate) this.pos++;
    const tests: Test[] = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) throw new PatternError('unterminated character set');
      if (c === ']' && !first) {
        this.pos++;
        break;
      }
      first = false;
      const low = this.classAtom();
      if (typeof low === 'number' && this.peek() === '-' && this.peek(1) !== undefined && this.peek(1) !== ']') {
        this.pos++;
        const high = this.classAtom();
        if (typeof high !== 'number') throw new PatternError('bad character range');
        if (high < low) throw new PatternError('bad character range');
        tests.push((cp) => cp >= low && cp <= high);
      } else if (typeof low === 'number') tests.push((cp) => cp === low);
      else tests.push(low);
    }
    return { t: 'char', test: (cp) => tests.some((t) => t(cp)) !== negate };
  }

  private classAtom(): number | Test {
    const c = this.peek()!;
    this.pos++;
    if (c === '\\') return this.escape(true) as number | Test;
    return c.codePointAt(0)!;
  }
}

function emit(ast: Ast, prog: Inst[]): void {
  if (prog.length > MAX_PROGRAM) throw new PatternError('the pattern is too large once its repetitions are expanded');
  switch (ast.t) {
    case 'empty':
      return;
    case 'char':
      prog.push({ op: 'char', test: ast.test });
      return;
    case 'assert':
      prog.push({ op: 'assert', kind: ast.kind });
      return;
    case 'seq':
      for (const item of ast.items) emit(item, prog);
      return;
    case 'alt': {
      const jumps: { op: 'jmp'; x: number }[] = [];
      ast.items.forEach((item, i) => {
        if (i < ast.items.length - 1) {
          const split: Inst = { op: 'split', x: prog.length + 1, y: -1 };
          prog.push(split);
          emit(item, prog);
          const jmp = { op: 'jmp' as const, x: -1 };
          jumps.push(jmp);
          prog.push(jmp);
          split.y = prog.length;
        } else emit(item, prog);
      });
      for (const j of jumps) j.x = prog.length;
      return;
    }
    case 'repeat': {
      for (let i = 0; i < ast.min; i++) emit(ast.node, prog);
      if (ast.max === Infinity) {
        const loop = prog.length;
        const split: Inst = { op: 'split', x: -1, y: -1 };
        prog.push(split);
        const body = prog.length;
        emit(ast.node, prog);
        prog.push({ op: 'jmp', x: loop });
        [split.x, split.y] = ast.greedy ? [body, prog.length] : [prog.length, body];
        return;
      }
      const splits: { op: 'split'; x: number; y: number }[] = [];
      for (let i = ast.min; i < ast.max; i++) {
        const split = { op: 'split' as const, x: prog.length + 1, y: -1 };
        splits.push(split);
        prog.push(split);
        emit(ast.node, prog);
      }
      for (const s of splits) {
        const out = prog.length;
        if (ast.greedy) s.y = out;
        else [s.x, s.y] = [out, s.x];
      }
      return;
    }
  }
}

/** True when the highest-priority match from position 0 ends at the end of `value`. */
function run(prog: Inst[], value: string, budget: PatternBudget): boolean {
  const cps = [...value].map((c) => c.codePointAt(0)!);
  const n = cps.length;
  const mark = new Int32Array(prog.length).fill(-1);
  const wordAt = (i: number): boolean => i >= 0 && i < n && isWord(cps[i]!);
  const holds = (kind: AssertKind, pos: number): boolean => {
    switch (kind) {
      case 'start':
        return pos === 0;
      case 'end':
        return pos === n;
      case 'endOrNewline':
        return pos === n || (pos === n - 1 && cps[pos] === 10);
      case 'wordBoundary':
        return wordAt(pos - 1) !== wordAt(pos);
      case 'notWordBoundary':
        return wordAt(pos - 1) === wordAt(pos);
    }
  };
  // the closure of `pc` at `pos`, in priority order (depth-first, preferred branch first)
  const add = (list: number[], start: number, pos: number, generation: number): void => {
    const todo = [start];
    while (todo.length > 0) {
      const pc = todo.pop()!;
      if (mark[pc] === generation) continue;
      mark[pc] = generation;
      if (--budget.remaining < 0) throw new PatternBudgetError(budget.limit);
      const inst = prog[pc]!;
      if (inst.op === 'jmp') todo.push(inst.x);
      else if (inst.op === 'split') todo.push(inst.y, inst.x);
      else if (inst.op === 'assert') {
        if (holds(inst.kind, pos)) todo.push(pc + 1);
      } else list.push(pc);
    }
  };
  let current: number[] = [];
  add(current, 0, 0, 0);
  let matchedAt = -1;
  for (let pos = 0; pos <= n && current.length > 0; pos++) {
    const next: number[] = [];
    for (const pc of current) {
      const inst = prog[pc]!;
      if (inst.op === 'match') {
        matchedAt = pos;
        break; // lower-priority threads can no longer win
      }
      if (inst.op === 'char' && pos < n && inst.test(cps[pos]!)) add(next, pc + 1, pos + 1, pos + 1);
    }
    current = next;
  }
  return matchedAt === n;
}
