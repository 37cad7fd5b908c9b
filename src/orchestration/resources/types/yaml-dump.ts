/**
 * `yaml.dump(value, Dumper=CSafeDumper)` for JSON values, byte for byte: what Heat's
 * OS::Heat::CloudConfig writes (PyYAML's representer, libyaml's emitter). Block style, keys
 * sorted, strings plain when PyYAML's YAML 1.1 resolver would read them back as strings and
 * quoted otherwise (single quotes, or double quotes with escapes for control and non-ASCII
 * characters), lines folded past 80 columns, empty collections as `[]` and `{}`, keys longer
 * than 128 bytes or spanning lines written as `? key`. This follows the emitter's state machine
 * (indent, column, whitespace and indention flags) for the events a JSON value produces;
 * anchors, tags and flow collections with content never occur.
 */
import type { JsonObject, JsonValue } from '../../../core/json.js';
import { comparePython, isMapping, pyNumber } from '../../template/python-values.js';

const BEST_WIDTH = 80;
const BEST_INDENT = 2;
const BREAKS = '\n\x85\u2028\u2029';
const SPACES_AND_BREAKS = `\0 \t\r${BREAKS}`;

/** PyYAML's implicit resolvers (first characters, then the pattern), which decide whether plain text reads back as a string. */
const RESOLVERS: [string, RegExp][] = [
  ['yYnNtTfFoO', /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)\n?$/],
  [
    '-+0123456789.',
    /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\n?$/,
  ],
  ['-+0123456789', /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)\n?$/],
  ['<', /^(?:<<)\n?$/],
  ['~nN', /^(?:~|null|Null|NULL)\n?$/],
  [
    '0123456789',
    /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)\n?$/,
  ],
  ['=', /^(?:=)\n?$/],
];

/** True when plain `text` would be read back as a string (the scalar event's `implicit[0]`). */
function readsAsString(text: string): boolean {
  if (text === '') return false; // the empty plain scalar is null
  return !RESOLVERS.some(([first, re]) => first.includes(text[0]!) && re.test(text));
}

interface Analysis {
  empty: boolean;
  multiline: boolean;
  allowBlockPlain: boolean;
  allowSingleQuoted: boolean;
}

/** The emitter's `analyze_scalar` (flow styles left out: nothing is written in flow context). */
function analyze(text: string): Analysis {
  const chars = [...text];
  if (chars.length === 0) return { empty: true, multiline: false, allowBlockPlain: true, allowSingleQuoted: true };
  let blockIndicators = text.startsWith('---') || text.startsWith('...');
  let lineBreaks = false;
  let special = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let precededByWhitespace = true;
  let followedByWhitespace = chars.length === 1 || SPACES_AND_BREAKS.includes(chars[1]!);
  let previousSpace = false;
  let previousBreak = false;
  chars.forEach((ch, index) => {
    if (index === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) blockIndicators = true;
      if ('?:'.includes(ch) && followedByWhitespace) blockIndicators = true;
      if (ch === '-' && followedByWhitespace) blockIndicators = true;
    } else {
      if (ch === ':' && followedByWhitespace) blockIndicators = true;
      if (ch === '#' && precededByWhitespace) blockIndicators = true;
    }
    if (BREAKS.includes(ch)) lineBreaks = true;
    // allow_unicode is off: control and non-ASCII characters alike need double quotes
    if (!(ch === '\n' || (ch >= ' ' && ch <= '~'))) special = true;
    if (ch === ' ') {
      if (index === 0) leadingSpace = true;
      if (index === chars.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (BREAKS.includes(ch)) {
      if (index === 0) leadingBreak = true;
      if (index === chars.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = SPACES_AND_BREAKS.includes(ch);
    followedByWhitespace = index + 2 >= chars.length || SPACES_AND_BREAKS.includes(chars[index + 2]!);
  });
  let allowBlockPlain = !(leadingSpace || leadingBreak || trailingSpace || trailingBreak);
  let allowSingleQuoted = true;
  if (breakSpace) allowBlockPlain = allowSingleQuoted = false;
  if (spaceBreak || special) allowBlockPlain = allowSingleQuoted = false;
  if (lineBreaks || blockIndicators) allowBlockPlain = false;
  return { empty: false, multiline: lineBreaks, allowBlockPlain, allowSingleQuoted };
}

const ESCAPES: Record<string, string> = {
  '\0': '0',
  '\x07': 'a',
  '\x08': 'b',
  '\t': 't',
  '\n': 'n',
  '\x0B': 'v',
  '\x0C': 'f',
  '\r': 'r',
  '\x1B': 'e',
  '"': '"',
  '\\': '\\',
  '\x85': 'N',
  '\xA0': '_',
  '\u2028': 'L',
  '\u2029': 'P',
};

interface NodeContext {
  sequence?: boolean;
  mapping?: boolean;
  simpleKey?: boolean;
}

/** The emitter, reduced to block collections and scalars. */
class Emitter {
  out = '';
  private column = 0;
  private whitespace = true;
  private indention = true;
  private indent: number | null = null;
  private readonly indents: (number | null)[] = [];
  private ctx: NodeContext = {};

  document(value: JsonValue): string {
    this.node(value, {});
    // libyaml (which Heat's CSafeDumper uses) ends even a scalar document without `...`
    this.writeIndent();
    return this.out;
  }

  private node(value: JsonValue, ctx: NodeContext): void {
    this.ctx = ctx;
    if (Array.isArray(value)) {
      if (value.length === 0) return this.emptyFlow('[', ']');
      this.increaseIndent(false, ctx.mapping === true && !this.indention);
      for (const item of value) {
        this.writeIndent();
        this.writeIndicator('-', true, false, true);
        this.node(item, { sequence: true });
      }
      this.indent = this.indents.pop() ?? null;
    } else if (isMapping(value)) {
      const keys = Object.keys(value).sort(comparePython);
      if (keys.length === 0) return this.emptyFlow('{', '}');
      this.increaseIndent(false, false);
      for (const key of keys) this.entry(key, (value as JsonObject)[key]!);
      this.indent = this.indents.pop() ?? null;
    } else this.scalar(value);
  }

  private entry(key: string, value: JsonValue): void {
    this.writeIndent();
    // libyaml's simple key: one line of at most 128 bytes (the empty key included)
    if (!analyze(key).multiline && Buffer.byteLength(key, 'utf8') <= 128) {
      this.node(key, { mapping: true, simpleKey: true });
      this.writeIndicator(':', false);
    } else {
      this.writeIndicator('?', true, false, true);
      this.node(key, { mapping: true });
      this.writeIndent();
      this.writeIndicator(':', true, false, true);
    }
    this.node(value, { mapping: true });
  }

  private emptyFlow(open: string, close: string): void {
    this.writeIndicator(open, true, true);
    this.writeIndicator(close, false);
  }

  private scalar(value: Exclude<JsonValue, JsonValue[] | JsonObject>): void {
    const { text, plainReadsBack } = scalarText(value);
    this.increaseIndent(true, false);
    const analysis = analyze(text);
    const simpleKey = this.ctx.simpleKey === true;
    const split = !simpleKey;
    if (plainReadsBack && !(simpleKey && (analysis.empty || analysis.multiline)) && analysis.allowBlockPlain) this.writePlain(text, split);
    else if (analysis.allowSingleQuoted && !(simpleKey && analysis.multiline)) this.writeSingleQuoted(text, split);
    else this.writeDoubleQuoted(text, split);
    this.indent = this.indents.pop() ?? null;
  }

  private increaseIndent(flow: boolean, indentless: boolean): void {
    this.indents.push(this.indent);
    if (this.indent === null) this.indent = flow ? BEST_INDENT : 0;
    else if (!indentless) this.indent += BEST_INDENT;
  }

  private write(data: string): void {
    this.out += data;
    this.column += [...data].length;
  }

  private writeIndicator(indicator: string, needWhitespace: boolean, whitespace = false, indention = false): void {
    this.write(this.whitespace || !needWhitespace ? indicator : ` ${indicator}`);
    this.whitespace = whitespace;
    this.indention = this.indention && indention;
  }

  /** libyaml's `write_indent`: a line break unless already at a fresh indentation, then spaces up to the indent. */
  private writeIndent(): void {
    const indent = this.indent ?? 0;
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) this.writeLineBreak();
    if (this.column < indent) this.write(' '.repeat(indent - this.column));
    this.whitespace = true;
    this.indention = true;
  }

  private writeLineBreak(data = '\n'): void {
    this.whitespace = true;
    this.indention = true;
    this.out += data;
    this.column = 0;
  }

  private writePlain(text: string, split: boolean): void {
    if (text === '') return;
    if (!this.whitespace) this.write(' ');
    this.whitespace = false;
    this.indention = false;
    const chars = [...text];
    let spaces = false;
    let start = 0;
    for (let end = 0; end <= chars.length; end++) {
      const ch = end < chars.length ? chars[end]! : null;
      if (spaces) {
        if (ch !== ' ') {
          if (start + 1 === end && this.column > BEST_WIDTH && split) {
            this.writeIndent();
            this.whitespace = false;
            this.indention = false;
          } else this.write(chars.slice(start, end).join(''));
          start = end;
        }
      } else if (ch === null || ch === ' ') {
        this.write(chars.slice(start, end).join(''));
        start = end;
      }
      if (ch !== null) spaces = ch === ' ';
    }
  }

  private writeSingleQuoted(text: string, split: boolean): void {
    this.writeIndicator("'", true);
    const chars = [...text];
    let spaces = false;
    let breaks = false;
    let start = 0;
    for (let end = 0; end <= chars.length; end++) {
      const ch = end < chars.length ? chars[end]! : null;
      if (spaces) {
        if (ch !== ' ') {
          if (start + 1 === end && this.column > BEST_WIDTH && split && start !== 0 && end !== chars.length) this.writeIndent();
          else this.write(chars.slice(start, end).join(''));
          start = end;
        }
      } else if (breaks) {
        if (ch === null || !BREAKS.includes(ch)) {
          if (chars[start] === '\n') this.writeLineBreak();
          for (const br of chars.slice(start, end)) this.writeLineBreak(br === '\n' ? '\n' : br);
          this.writeIndent();
          start = end;
        }
      } else if (ch === null || ` ${BREAKS}'`.includes(ch)) {
        if (start < end) {
          this.write(chars.slice(start, end).join(''));
          start = end;
        }
      }
      if (ch === "'") {
        this.write("''");
        start = end + 1;
      }
      if (ch !== null) {
        spaces = ch === ' ';
        breaks = BREAKS.includes(ch);
      }
    }
    this.writeIndicator("'", false);
  }

  /** libyaml's double-quoted writer (Heat dumps with CSafeDumper): folds at a single space past the width. */
  private writeDoubleQuoted(text: string, split: boolean): void {
    this.writeIndicator('"', true);
    const chars = [...text];
    let spaces = false;
    chars.forEach((ch, i) => {
      if (!(ch >= ' ' && ch <= '~') || ch === '"' || ch === '\\') {
        const cp = ch.codePointAt(0)!;
        const hex = cp.toString(16).toUpperCase();
        const escape = ESCAPES[ch];
        this.write(
          escape !== undefined
            ? `\\${escape}`
            : cp <= 0xff
              ? `\\x${hex.padStart(2, '0')}`
              : cp <= 0xffff
                ? `\\u${hex.padStart(4, '0')}`
                : `\\U${hex.padStart(8, '0')}`,
        );
        spaces = false;
      } else if (ch === ' ') {
        if (split && !spaces && this.column > BEST_WIDTH && i !== 0 && i !== chars.length - 1) {
          this.writeIndent();
          // a space starting the next line would be folded away: escape it
          if (chars[i + 1] === ' ') this.write('\\');
        } else this.write(' ');
        spaces = true;
      } else {
        this.write(ch);
        spaces = false;
      }
    });
    this.writeIndicator('"', false);
  }
}

/** The text of a scalar and whether its plain form reads back as the same value. */
function scalarText(value: Exclude<JsonValue, JsonValue[] | JsonObject>): { text: string; plainReadsBack: boolean } {
  if (value === null) return { text: 'null', plainReadsBack: true };
  if (typeof value === 'boolean') return { text: value ? 'true' : 'false', plainReadsBack: true };
  if (typeof value === 'number') {
    // JSON cannot tell 1e20 from an integer; Python would print such a float in exponent form
    if (Number.isInteger(value) && Math.abs(value) < 1e16) return { text: String(value), plainReadsBack: true };
    let text = pyNumber(value).toLowerCase();
    if (!text.includes('.') && text.includes('e')) text = text.replace('e', '.0e');
    return { text, plainReadsBack: true };
  }
  return { text: value, plainReadsBack: readsAsString(value) };
}

/**
 * `yaml.dump(value, Dumper=yaml.CSafeDumper)` as PyYAML 6 with libyaml writes it (block style,
 * sorted keys, width 80, no Unicode).
 *
 * @example
 * ```ts
 * pyYamlDump({ foo: 'bar', runcmd: ['ls', 'yes'] }); // "foo: bar\nruncmd:\n- ls\n- 'yes'\n"
 * pyYamlDump(null); // 'null\n'
 * ```
 */
export function pyYamlDump(value: JsonValue): string {
  return new Emitter().document(value);
}
