/**
 * Output the way the `openstack` client prints it (python-cliff's formatters, with
 * python-heatclient's conventions for complex values), for the `stoker stack …` and
 * `stoker orchestration …` commands. A "show" command prints one record of fields, a "list"
 * command rows under named columns; `-f` picks the format, `-c` the fields or columns.
 *
 * What each format writes, as cliff does (python 3, prettytable, PyYAML):
 *
 * - `table`: prettytable boxes (`+---+`, `| a |`, one space of padding). A show prints
 *   `Field | Value` rows, both left-aligned; a list aligns a column right when its value in the
 *   first row is a number. A cell of several lines takes several lines of the table. A list
 *   without rows prints one empty line (cliff writes prettytable's empty string and a newline),
 *   or with `--print-empty` the header alone.
 * - `json`: `json.dump(…, indent=2)`: `{field: value}` for a show, a list of such objects for a
 *   list; non-ASCII characters escaped; `--noindent` writes one line with `", "` and `": "`.
 * - `yaml`: `yaml.safe_dump(…, default_flow_style=False)`: a show dumps each field on its own
 *   (so fields keep their order and the keys inside a value are sorted), a list dumps the list of
 *   objects (keys sorted, as PyYAML sorts them).
 * - `value`: a show prints each value on its own line, a list each row on a line, values
 *   separated by one space.
 * - `shell` (show only): `field="value"` lines, the name lower-cased with spaces, `:` and `-`
 *   made `_`, `--prefix` in front.
 * - `csv` (list only): Python's csv writer: a header row, then the rows; `--quote` as cliff's
 *   (default `nonnumeric`: every field quoted except numbers and booleans).
 *
 * Scalars print as Python's `str()` does in table, value, shell and csv output: `None`,
 * `True`, `False`. A map or list value is printed, as `openstack stack show` prints
 * `parameters` and `outputs`, as YAML in a table (heatclient's `yaml_formatter`, trailing line
 * break included, so the cell ends with an empty line) and as JSON with an indent of 2 in value,
 * shell and csv output (heatclient's `json_formatter`: `", "` between items, non-ASCII kept).
 * `tableComplex: 'json'` prints JSON in tables too.
 *
 * Where this differs from cliff, on purpose: control characters other than line feed and tab
 * (a terminal escape sequence in a stored value) are written as `\u{1b}` in table, value,
 * shell and csv output, and the shell format escapes `\`, `$` and `` ` `` as well as `"`, so
 * that `eval "$(stoker … -f shell)"` cannot run text from a value (cliff escapes only `"`).
 * Output for values without those characters is the same as cliff's.
 */
import { Option, type Command } from 'commander';
import type { JsonValue } from '../core/json.js';
import { pyYamlDump } from '../orchestration/resources/index.js';
import { pyNumber } from '../orchestration/template/python-values.js';
import { usageError } from './options.js';

/**
 * The formats of a "show" command.
 *
 * @example
 * ```ts
 * SHOW_FORMATS.includes('shell'); // true
 * ```
 */
export const SHOW_FORMATS = ['json', 'shell', 'table', 'value', 'yaml'] as const;
export type ShowFormat = (typeof SHOW_FORMATS)[number];

/**
 * The formats of a "list" command.
 *
 * @example
 * ```ts
 * LIST_FORMATS.includes('csv'); // true
 * ```
 */
export const LIST_FORMATS = ['csv', 'json', 'table', 'value', 'yaml'] as const;
export type ListFormat = (typeof LIST_FORMATS)[number];

/**
 * When the csv format quotes a field (Python's `csv.QUOTE_*`).
 *
 * @example
 * ```ts
 * formatList(['n'], [[1]], 'csv', { quote: 'all' }); // '"n"\n"1"\n'
 * ```
 */
export const CSV_QUOTE_MODES = ['all', 'minimal', 'none', 'nonnumeric'] as const;
export type CsvQuoteMode = (typeof CSV_QUOTE_MODES)[number];

/**
 * The options of {@link formatShow} and {@link formatList} (the flags of
 * {@link withShowOutputOptions} and {@link withListOutputOptions}).
 *
 * @example
 * ```ts
 * const options: OutputOptions = { columns: ['id', 'stack_status'], noindent: true };
 * ```
 */
export interface OutputOptions {
  /** `-c`: only these fields (show) or columns (list), kept in the record's order */
  columns?: readonly string[];
  /** `--noindent`: json on one line */
  noindent?: boolean;
  /** `--prefix`: put in front of every shell variable name */
  prefix?: string;
  /** `--quote`: when csv quotes a field (default `nonnumeric`) */
  quote?: CsvQuoteMode;
  /** `--print-empty`: a table without rows still prints its header */
  printEmpty?: boolean;
  /** how a map or list value is written in a table cell: YAML (heatclient's choice, the default) or indented JSON */
  tableComplex?: 'yaml' | 'json';
}

/**
 * One record as a "show" command prints it.
 *
 * @example
 * ```ts
 * formatShow({ id: 'abc' }, 'table');
 * // +-------+-------+
 * // | Field | Value |
 * // +-------+-------+
 * // | id    | abc   |
 * // +-------+-------+
 * ```
 */
export function formatShow(record: Readonly<Record<string, JsonValue>>, format: ShowFormat, options: OutputOptions = {}): string {
  const fields = selectColumns(Object.keys(record), options.columns);
  const values = fields.map((f) => record[f]!);
  switch (format) {
    case 'table': {
      const complex = options.tableComplex ?? 'yaml';
      const rows = fields.map((f, i) => [cellText(f, complex), cellText(values[i]!, complex)]);
      return prettyTable(['Field', 'Value'], rows, ['l', 'l'], false);
    }
    case 'json':
      return `${pyJson(Object.fromEntries(fields.map((f, i) => [f, values[i]!])), options.noindent ? null : 2, true, ',')}\n`;
    case 'yaml':
      return fields.map((f, i) => pyYamlDump({ [f]: values[i]! })).join('');
    case 'value':
      return values.map((v) => `${cellText(v, 'json')}\n`).join('');
    case 'shell':
      return fields
        .map((f, i) => {
          const name = f.toLowerCase().replace(/ /g, '_').replace(/[:-]/g, '_');
          return `${options.prefix ?? ''}${name}="${shellEscape(cellText(values[i]!, 'json'))}"\n`;
        })
        .join('');
  }
}

/**
 * Rows under named columns as a "list" command prints them.
 *
 * @example
 * ```ts
 * formatList(['Resource Type'], [['OS::Heat::None']], 'table');
 * // +----------------+
 * // | Resource Type  |
 * // +----------------+
 * // | OS::Heat::None |
 * // +----------------+
 * ```
 */
export function formatList(
  columns: readonly string[],
  rows: readonly (readonly JsonValue[])[],
  format: ListFormat,
  options: OutputOptions = {},
): string {
  const names = selectColumns(columns, options.columns);
  const index = names.map((n) => columns.indexOf(n));
  const picked = rows.map((row) => index.map((i) => row[i] ?? null));
  switch (format) {
    case 'table': {
      const complex = options.tableComplex ?? 'yaml';
      const first = picked[0];
      const align = names.map((_, i) => (first !== undefined && typeof first[i] === 'number' ? 'r' : 'l'));
      return prettyTable(
        names,
        picked.map((row) => row.map((v) => cellText(v, complex))),
        align,
        options.printEmpty === true,
      );
    }
    case 'json':
      return `${pyJson(
        picked.map((row) => Object.fromEntries(names.map((n, i) => [n, row[i]!]))),
        options.noindent ? null : 2,
        true,
        ',',
      )}\n`;
    case 'yaml':
      return pyYamlDump(picked.map((row) => Object.fromEntries(names.map((n, i) => [n, row[i]!]))));
    case 'value':
      return picked.map((row) => `${row.map((v) => cellText(v, 'json')).join(' ')}\n`).join('');
    case 'csv': {
      const mode = options.quote ?? 'nonnumeric';
      return [names as readonly JsonValue[], ...picked].map((row) => `${csvRow(row, mode)}\n`).join('');
    }
  }
}

/**
 * {@link formatShow}, written with `out`.
 *
 * @example
 * ```ts
 * printShow(registry.show('OS::Heat::None') as unknown as Record<string, JsonValue>, 'yaml', { out: ctx.out });
 * ```
 */
export function printShow(
  record: Readonly<Record<string, JsonValue>>,
  format: ShowFormat,
  options: OutputOptions & { out: (text: string) => void },
): void {
  options.out(formatShow(record, format, options));
}

/**
 * {@link formatList}, written with `out`.
 *
 * @example
 * ```ts
 * printList(['ID', 'Stack Name'], stacks.map((s) => [s.id, s.name]), o.format, { ...outputOptions(o), out: ctx.out });
 * ```
 */
export function printList(
  columns: readonly string[],
  rows: readonly (readonly JsonValue[])[],
  format: ListFormat,
  options: OutputOptions & { out: (text: string) => void },
): void {
  options.out(formatList(columns, rows, format, options));
}

// ------------------------------------------------------------------ flags

/**
 * The flags {@link withShowOutputOptions} and {@link withListOutputOptions} add, as commander
 * parses them.
 *
 * @example
 * ```ts
 * cmd.action((o: OutputFlags & { format: ShowFormat }) => printShow(record, o.format, { ...outputOptions(o), out: ctx.out }));
 * ```
 */
export interface OutputFlags {
  column?: string[];
  noindent?: boolean;
  prefix?: string;
  quote?: CsvQuoteMode;
  printEmpty?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function withCommonOutputOptions(cmd: Command, formats: readonly string[], defaultFormat: string): Command {
  return cmd
    .addOption(new Option('-f, --format <format>', 'the output format').choices([...formats]).default(defaultFormat))
    .addOption(
      new Option('-c, --column <name>', 'show only this column (of a list) or field (of a show); repeat for several').argParser(collect),
    )
    .addOption(new Option('--noindent', 'json: on one line'));
}

/**
 * Adds the flags of a "show" command: `-f json|shell|table|value|yaml`, `-c` (repeatable),
 * `--noindent` and `--prefix`.
 *
 * @example
 * ```ts
 * withShowOutputOptions(program.command('show').argument('<type>'), 'yaml');
 * ```
 */
export function withShowOutputOptions(cmd: Command, defaultFormat: ShowFormat): Command {
  return withCommonOutputOptions(cmd, SHOW_FORMATS, defaultFormat).addOption(
    new Option('--prefix <prefix>', 'shell: put this in front of every variable name'),
  );
}

/**
 * Adds the flags of a "list" command: `-f csv|json|table|value|yaml`, `-c` (repeatable),
 * `--noindent`, `--quote` and `--print-empty`.
 *
 * @example
 * ```ts
 * withListOutputOptions(program.command('list'), 'table');
 * ```
 */
export function withListOutputOptions(cmd: Command, defaultFormat: ListFormat): Command {
  return withCommonOutputOptions(cmd, LIST_FORMATS, defaultFormat)
    .addOption(new Option('--quote <mode>', 'csv: when to quote a field').choices([...CSV_QUOTE_MODES]).default('nonnumeric'))
    .addOption(new Option('--print-empty', 'table: print the header even when there are no rows'));
}

/**
 * The {@link OutputOptions} in a command's parsed flags.
 *
 * @example
 * ```ts
 * formatList(columns, rows, o.format, outputOptions(o));
 * ```
 */
export function outputOptions(flags: OutputFlags): OutputOptions {
  const options: OutputOptions = { columns: flags.column ?? [] };
  if (flags.noindent) options.noindent = true;
  if (flags.prefix !== undefined) options.prefix = flags.prefix;
  if (flags.quote !== undefined) options.quote = flags.quote;
  if (flags.printEmpty) options.printEmpty = true;
  return options;
}

// ------------------------------------------------------------------ helpers

/** cliff's `-c`: the known names asked for, in their own order; none known is an error. */
function selectColumns(names: readonly string[], wanted: readonly string[] | undefined): string[] {
  if (wanted === undefined || wanted.length === 0) return [...names];
  const chosen = names.filter((n) => wanted.includes(n));
  if (chosen.length === 0) {
    const list = (l: readonly string[]): string => `[${l.map((s) => JSON.stringify(s)).join(', ')}]`;
    throw usageError(`No recognized column names in ${list(wanted)}. Recognized columns are ${list(names)}.`);
  }
  return chosen;
}

// C0 and C1 control characters and DEL, except tab and line feed
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;
const neutralize = (text: string): string => text.replace(CONTROL, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);

/** Python's `str()` of a value, with heatclient's formatters for maps and lists. */
function cellText(value: JsonValue, complex: 'yaml' | 'json'): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value === null) text = 'None';
  else if (typeof value === 'boolean') text = value ? 'True' : 'False';
  else if (typeof value === 'number') text = pyNumber(value);
  else text = complex === 'yaml' ? pyYamlDump(value) : pyJson(value, 2, false, ', ');
  // cliff's _format_row, for every format that writes text as it is
  return neutralize(text.replace(/\r\n/g, '\n').replace(/\r/g, ' '));
}

/**
 * Python's `json.dumps` with `indent` (null: one line with `", "`), `ensure_ascii`, and the
 * item separator written before a line break (`','` for json.dump, `', '` for heatclient's
 * json_formatter, which leaves a space at the end of those lines).
 */
function pyJson(value: JsonValue, indent: number | null, ensureAscii: boolean, itemSeparator: ',' | ', '): string {
  const out: string[] = [];
  const write = (v: JsonValue, depth: number): void => {
    if (v === null) out.push('null');
    else if (typeof v === 'boolean') out.push(v ? 'true' : 'false');
    else if (typeof v === 'number') out.push(Number.isInteger(v) ? String(v) : pyNumber(v));
    else if (typeof v === 'string') out.push(jsonString(v, ensureAscii));
    else {
      const entries: [string | null, JsonValue][] = Array.isArray(v) ? v.map((x) => [null, x]) : Object.entries(v);
      const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
      if (entries.length === 0) {
        out.push(open + close);
        return;
      }
      out.push(open);
      entries.forEach(([key, item], i) => {
        if (indent === null) {
          if (i > 0) out.push(', ');
        } else out.push(`${i > 0 ? itemSeparator : ''}\n${' '.repeat(indent * (depth + 1))}`);
        if (key !== null) out.push(`${jsonString(key, ensureAscii)}: `);
        write(item, depth + 1);
      });
      if (indent !== null) out.push(`\n${' '.repeat(indent * depth)}`);
      out.push(close);
    }
  };
  write(value, 0);
  return out.join('');
}

const JSON_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

function jsonString(s: string, ensureAscii: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    const escaped = JSON_ESCAPES[ch];
    if (escaped !== undefined) out += escaped;
    else if (code < 0x20 || (ensureAscii && code > 0x7e)) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Inside double quotes a shell still expands `$`, `` ` `` and `\`: escape them with `"`. */
const shellEscape = (text: string): string => text.replace(/[\\"$`]/g, (c) => `\\${c}`);

/** Python's csv writer: `,` delimiter, `"` quote doubled, `\` escape char, `\n` line ends. */
function csvRow(row: readonly JsonValue[], mode: CsvQuoteMode): string {
  const fields = row.map((value) => {
    const numeric = typeof value === 'number' || typeof value === 'boolean';
    let quoted = mode === 'all' || (mode === 'nonnumeric' && !numeric);
    const text = value === null ? '' : cellText(value, 'json');
    let out = '';
    for (const c of text) {
      if (c === ',' || c === '"' || c === '\\' || c === '\n' || c === '\r') {
        if (mode === 'none' || c === '\\') out += '\\';
        else {
          if (c === '"') out += '"';
          quoted = true;
        }
      }
      out += c;
    }
    return quoted ? `"${out}"` : out;
  });
  // a row of one empty field is written as "" (else it would read back as no field)
  if (fields.length === 1 && fields[0] === '' && mode !== 'none') return '""';
  return fields.join(',');
}

/** Terminal columns of `text`, as wcwidth counts them: wide East Asian characters 2, combining marks 0. */
function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (/\p{Mn}|\p{Me}/u.test(ch) || cp === 0x200b) continue;
    width += isWide(cp) ? 2 : 1;
  }
  return width;
}

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

/** prettytable's `get_string()` with cliff's settings, then cliff's newline. */
function prettyTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly ('l' | 'r')[],
  printEmpty: boolean,
): string {
  if (rows.length === 0 && !printEmpty) return '\n';
  const cells = rows.map((row) => row.map((text) => text.split('\n')));
  const widths = header.map((h, i) => Math.max(displayWidth(h), ...cells.flatMap((row) => row[i]!.map(displayWidth))));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (texts: readonly string[]): string =>
    `|${texts
      .map((t, i) => {
        const pad = ' '.repeat(widths[i]! - displayWidth(t));
        return ` ${align[i] === 'r' ? pad + t : t + pad} `;
      })
      .join('|')}|`;
  const lines = [rule, line(header), rule];
  for (const row of cells) {
    const height = Math.max(...row.map((c) => c.length));
    for (let k = 0; k < height; k++) lines.push(line(row.map((c) => c[k] ?? '')));
  }
  lines.push(rule);
  return `${lines.join('\n')}\n`;
}
