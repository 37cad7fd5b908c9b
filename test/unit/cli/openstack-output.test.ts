/**
 * The openstack client's output formats. Every expected string below is what python-cliff 4.0
 * (prettytable 3.6, PyYAML 6) printed for the same data, with heatclient's formatters for map
 * and list values (YAML in a table, indented JSON in value and shell output), except where a
 * comment says Stoker differs on purpose.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../../src/core/json.js';
import { isStokerError } from '../../../src/errors.js';
import {
  formatList,
  formatShow,
  outputOptions,
  printList,
  printShow,
  withListOutputOptions,
  withShowOutputOptions,
  type OutputFlags,
} from '../../../src/cli/openstack-output.js';

/** Lines of output, each ended by a newline. */
const lines = (...text: string[]): string => text.map((l) => `${l}\n`).join('');

const mixed: Record<string, JsonValue> = {
  id: 'abc',
  stack_name: 'web',
  count: 3,
  ratio: 0.5,
  small: 0.00001,
  enabled: true,
  missing: null,
  description: 'line1\nline2',
  parameters: {
    'OS::stack_name': 'web',
    b: 1,
    a: 'x',
  },
  outputs: [],
  tags: ['a', 'b'],
  uni: 'héllo 日本',
  quote: 'say "hi" $HOME `x` \\n',
  'Field-With:Chars': 'v',
};

const columns = ['ID', 'Name', 'Size', 'Enabled', 'Note'];
const rows: JsonValue[][] = [
  ['a1', 'first', 10, true, null],
  ['b22', 'second, "quoted"', 2.5, false, 'multi\nline'],
  ['c', '日本語', 300, true, 'back\\slash'],
];
/** The same rows on one line each (cliff's csv writer, with quote modes other than nonnumeric). */
const flatRows = rows.map((row) => row.map((v) => (typeof v === 'string' ? v.replace('\n', ' ') : v)));

describe('formatShow', () => {
  it('prints a table of fields the way cliff does', () => {
    expect(formatShow({ id: 'abc' }, 'table')).toBe(
      lines('+-------+-------+', '| Field | Value |', '+-------+-------+', '| id    | abc   |', '+-------+-------+'),
    );
  });

  it('prints multi-line values, maps and lists as YAML, None and True in a table', () => {
    expect(formatShow(mixed, 'table')).toBe(
      lines(
        '+------------------+-----------------------+',
        '| Field            | Value                 |',
        '+------------------+-----------------------+',
        '| id               | abc                   |',
        '| stack_name       | web                   |',
        '| count            | 3                     |',
        '| ratio            | 0.5                   |',
        '| small            | 1e-05                 |',
        '| enabled          | True                  |',
        '| missing          | None                  |',
        '| description      | line1                 |',
        '|                  | line2                 |',
        '| parameters       | OS::stack_name: web   |',
        '|                  | a: x                  |',
        '|                  | b: 1                  |',
        '|                  |                       |',
        '| outputs          | []                    |',
        '|                  |                       |',
        '| tags             | - a                   |',
        '|                  | - b                   |',
        '|                  |                       |',
        '| uni              | héllo 日本            |',
        '| quote            | say "hi" $HOME `x` \\n |',
        '| Field-With:Chars | v                     |',
        '+------------------+-----------------------+',
      ),
    );
  });

  it('prints an empty record as one empty line', () => {
    expect(formatShow({}, 'table')).toBe('\n');
  });

  it('prints JSON with an indent of 2 and non-ASCII escaped, or on one line with noindent', () => {
    expect(formatShow(mixed, 'json')).toBe(
      lines(
        '{',
        '  "id": "abc",',
        '  "stack_name": "web",',
        '  "count": 3,',
        '  "ratio": 0.5,',
        '  "small": 1e-05,',
        '  "enabled": true,',
        '  "missing": null,',
        '  "description": "line1\\nline2",',
        '  "parameters": {',
        '    "OS::stack_name": "web",',
        '    "b": 1,',
        '    "a": "x"',
        '  },',
        '  "outputs": [],',
        '  "tags": [',
        '    "a",',
        '    "b"',
        '  ],',
        '  "uni": "h\\u00e9llo \\u65e5\\u672c",',
        '  "quote": "say \\"hi\\" $HOME `x` \\\\n",',
        '  "Field-With:Chars": "v"',
        '}',
      ),
    );
    expect(formatShow(mixed, 'json', { noindent: true })).toBe(
      '{"id": "abc", "stack_name": "web", "count": 3, "ratio": 0.5, "small": 1e-05, "enabled": true, "missing": null, "description": "line1\\nline2", "parameters": {"OS::stack_name": "web", "b": 1, "a": "x"}, "outputs": [], "tags": ["a", "b"], "uni": "h\\u00e9llo \\u65e5\\u672c", "quote": "say \\"hi\\" $HOME `x` \\\\n", "Field-With:Chars": "v"}\n',
    );
  });

  it('prints YAML one field at a time, keys inside a value sorted', () => {
    expect(formatShow(mixed, 'yaml')).toBe(
      lines(
        'id: abc',
        'stack_name: web',
        'count: 3',
        'ratio: 0.5',
        'small: 1.0e-05',
        'enabled: true',
        'missing: null',
        "description: 'line1",
        '',
        "  line2'",
        'parameters:',
        '  OS::stack_name: web',
        '  a: x',
        '  b: 1',
        'outputs: []',
        'tags:',
        '- a',
        '- b',
        'uni: "h\\xE9llo \\u65E5\\u672C"',
        'quote: say "hi" $HOME `x` \\n',
        'Field-With:Chars: v',
      ),
    );
  });

  it('prints each value on its own line, maps and lists as heatclient JSON', () => {
    expect(formatShow(mixed, 'value')).toBe(
      lines(
        'abc',
        'web',
        '3',
        '0.5',
        '1e-05',
        'True',
        'None',
        'line1',
        'line2',
        '{',
        '  "OS::stack_name": "web", ',
        '  "b": 1, ',
        '  "a": "x"',
        '}',
        '[]',
        '[',
        '  "a", ',
        '  "b"',
        ']',
        'héllo 日本',
        'say "hi" $HOME `x` \\n',
        'v',
      ),
    );
  });

  it('prints shell assignments, escaping $, backquote and backslash as well as double quotes', () => {
    // cliff writes quote="say \"hi\" $HOME `x` \n": eval would expand $HOME and run x
    expect(formatShow(mixed, 'shell')).toBe(
      lines(
        'id="abc"',
        'stack_name="web"',
        'count="3"',
        'ratio="0.5"',
        'small="1e-05"',
        'enabled="True"',
        'missing="None"',
        'description="line1',
        'line2"',
        'parameters="{',
        '  \\"OS::stack_name\\": \\"web\\", ',
        '  \\"b\\": 1, ',
        '  \\"a\\": \\"x\\"',
        '}"',
        'outputs="[]"',
        'tags="[',
        '  \\"a\\", ',
        '  \\"b\\"',
        ']"',
        'uni="héllo 日本"',
        'quote="say \\"hi\\" \\$HOME \\`x\\` \\\\n"',
        'field_with_chars="v"',
      ),
    );
    expect(formatShow({ id: 'abc', 'Stack Name': 'x' }, 'shell', { prefix: 'os_' })).toBe(lines('os_id="abc"', 'os_stack_name="x"'));
  });

  it('keeps only the fields given with -c, in the record order', () => {
    expect(formatShow(mixed, 'value', { columns: ['count', 'id', 'nope'] })).toBe(lines('abc', '3'));
  });

  it('refuses -c naming no field, listing the fields', () => {
    try {
      formatShow({ id: 'a', name: 'b' }, 'table', { columns: ['x'] });
      expect.unreachable();
    } catch (e) {
      expect(isStokerError(e) && e.code).toBe('STOKER_CLI_USAGE');
      expect((e as Error).message).toBe('No recognized column names in ["x"]. Recognized columns are ["id", "name"].');
    }
  });

  it('prints maps as indented JSON in a table when asked', () => {
    expect(formatShow({ p: { a: 1 } }, 'table', { tableComplex: 'json' })).toBe(
      lines(
        '+-------+----------+',
        '| Field | Value    |',
        '+-------+----------+',
        '| p     | {        |',
        '|       |   "a": 1 |',
        '|       | }        |',
        '+-------+----------+',
      ),
    );
  });

  it('writes control characters escaped in text formats, and JSON escapes them itself', () => {
    expect(formatShow({ reason: 'bad\u001b[2Jthing' }, 'value')).toBe(lines('bad\\u{1b}[2Jthing'));
    expect(formatShow({ reason: 'bad\u001b[2Jthing' }, 'json', { noindent: true })).toBe(lines('{"reason": "bad\\u001b[2Jthing"}'));
  });
});

describe('formatList', () => {
  it('prints a table, numbers right-aligned by the first row, multi-line cells, wide characters', () => {
    expect(formatList(columns, rows, 'table')).toBe(
      lines(
        '+-----+------------------+------+---------+------------+',
        '| ID  | Name             | Size | Enabled | Note       |',
        '+-----+------------------+------+---------+------------+',
        '| a1  | first            |   10 | True    | None       |',
        '| b22 | second, "quoted" |  2.5 | False   | multi      |',
        '|     |                  |      |         | line       |',
        '| c   | 日本語           |  300 | True    | back\\slash |',
        '+-----+------------------+------+---------+------------+',
      ),
    );
  });

  it('aligns by the first row only', () => {
    expect(
      formatList(
        ['n', 's'],
        [
          ['1', 'x'],
          [22, 'yy'],
        ],
        'table',
      ),
    ).toBe(lines('+----+----+', '| n  | s  |', '+----+----+', '| 1  | x  |', '| 22 | yy |', '+----+----+'));
  });

  it('prints a list of objects as JSON', () => {
    expect(formatList(columns, rows, 'json')).toBe(
      lines(
        '[',
        '  {',
        '    "ID": "a1",',
        '    "Name": "first",',
        '    "Size": 10,',
        '    "Enabled": true,',
        '    "Note": null',
        '  },',
        '  {',
        '    "ID": "b22",',
        '    "Name": "second, \\"quoted\\"",',
        '    "Size": 2.5,',
        '    "Enabled": false,',
        '    "Note": "multi\\nline"',
        '  },',
        '  {',
        '    "ID": "c",',
        '    "Name": "\\u65e5\\u672c\\u8a9e",',
        '    "Size": 300,',
        '    "Enabled": true,',
        '    "Note": "back\\\\slash"',
        '  }',
        ']',
      ),
    );
    expect(formatList(columns, rows, 'json', { noindent: true })).toBe(
      '[{"ID": "a1", "Name": "first", "Size": 10, "Enabled": true, "Note": null}, {"ID": "b22", "Name": "second, \\"quoted\\"", "Size": 2.5, "Enabled": false, "Note": "multi\\nline"}, {"ID": "c", "Name": "\\u65e5\\u672c\\u8a9e", "Size": 300, "Enabled": true, "Note": "back\\\\slash"}]\n',
    );
  });

  it('prints YAML with the keys of each row sorted, as PyYAML does', () => {
    expect(formatList(columns, rows, 'yaml')).toBe(
      lines(
        '- Enabled: true',
        '  ID: a1',
        '  Name: first',
        '  Note: null',
        '  Size: 10',
        '- Enabled: false',
        '  ID: b22',
        '  Name: second, "quoted"',
        "  Note: 'multi",
        '',
        "    line'",
        '  Size: 2.5',
        '- Enabled: true',
        '  ID: c',
        '  Name: "\\u65E5\\u672C\\u8A9E"',
        '  Note: back\\slash',
        '  Size: 300',
      ),
    );
  });

  it('prints one row a line, values separated by a space', () => {
    expect(formatList(columns, rows, 'value')).toBe(
      lines('a1 first 10 True None', 'b22 second, "quoted" 2.5 False multi', 'line', 'c 日本語 300 True back\\slash'),
    );
  });

  it('prints csv as Python does: nonnumeric quoting by default, and the other quote modes', () => {
    expect(formatList(columns, rows, 'csv')).toBe(
      lines(
        '"ID","Name","Size","Enabled","Note"',
        '"a1","first",10,True,""',
        '"b22","second, ""quoted""",2.5,False,"multi',
        'line"',
        '"c","日本語",300,True,"back\\\\slash"',
      ),
    );
    expect(formatList(columns, flatRows, 'csv', { quote: 'all' })).toBe(
      lines(
        '"ID","Name","Size","Enabled","Note"',
        '"a1","first","10","True",""',
        '"b22","second, ""quoted""","2.5","False","multi line"',
        '"c","日本語","300","True","back\\\\slash"',
      ),
    );
    expect(formatList(columns, flatRows, 'csv', { quote: 'minimal' })).toBe(
      lines(
        'ID,Name,Size,Enabled,Note',
        'a1,first,10,True,',
        'b22,"second, ""quoted""",2.5,False,multi line',
        'c,日本語,300,True,back\\\\slash',
      ),
    );
    expect(formatList(columns, flatRows, 'csv', { quote: 'none' })).toBe(
      lines(
        'ID,Name,Size,Enabled,Note',
        'a1,first,10,True,',
        'b22,second\\, \\"quoted\\",2.5,False,multi line',
        'c,日本語,300,True,back\\\\slash',
      ),
    );
  });

  it('prints an empty list as cliff does in every format', () => {
    const none = (format: 'table' | 'json' | 'yaml' | 'value' | 'csv') => formatList(['Resource Type'], [], format);
    expect(none('table')).toBe('\n');
    expect(none('json')).toBe('[]\n');
    expect(none('yaml')).toBe('[]\n');
    expect(none('value')).toBe('');
    expect(none('csv')).toBe('"Resource Type"\n');
    expect(formatList(['Resource Type'], [], 'table', { printEmpty: true })).toBe(
      lines('+---------------+', '| Resource Type |', '+---------------+', '+---------------+'),
    );
  });

  it('keeps only the columns given with -c', () => {
    expect(formatList(columns, rows, 'csv', { columns: ['Size', 'ID'] })).toBe(lines('"ID","Size"', '"a1",10', '"b22",2.5', '"c",300'));
  });
});

describe('flags', () => {
  it('parse into output options, and print writes the formatted text', () => {
    const show = withShowOutputOptions(new Command('show').exitOverride(), 'yaml');
    show.parse(['-f', 'shell', '-c', 'id', '-c', 'name', '--prefix', 'x_'], { from: 'user' });
    const flags = show.opts<OutputFlags & { format: string }>();
    expect(flags.format).toBe('shell');
    expect(outputOptions(flags)).toEqual({ columns: ['id', 'name'], prefix: 'x_' });
    let out = '';
    printShow({ id: 'a', other: 1, name: 'b' }, 'shell', { ...outputOptions(flags), out: (t) => (out += t) });
    expect(out).toBe(lines('x_id="a"', 'x_name="b"'));

    const list = withListOutputOptions(new Command('list').exitOverride(), 'table');
    list.parse(['--quote', 'all', '--print-empty', '--noindent'], { from: 'user' });
    const listFlags = list.opts<OutputFlags & { format: string }>();
    expect(listFlags.format).toBe('table');
    expect(outputOptions(listFlags)).toEqual({ columns: [], noindent: true, quote: 'all', printEmpty: true });
    out = '';
    printList(['a'], [[1]], 'csv', { ...outputOptions(listFlags), out: (t) => (out += t) });
    expect(out).toBe(lines('"a"', '"1"'));
  });

  it('refuse a format the command does not have', () => {
    const list = withListOutputOptions(new Command('list').exitOverride().configureOutput({ writeErr: () => undefined }), 'table');
    expect(() => list.parse(['-f', 'shell'], { from: 'user' })).toThrow(/Allowed choices are csv, json, table, value, yaml/);
  });
});
