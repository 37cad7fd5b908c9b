/**
 * Intrinsic functions, evaluated through an output of a template of the version that has them;
 * snippets and expected results follow Heat's own tests (heat/tests/test_hot.py) where they exist.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../../../src/core/json.js';
import { isStokerError } from '../../../../src/errors.js';
import {
  instantiateTemplate,
  parseTemplate,
  type RuntimeContext,
  type TemplateLimits,
} from '../../../../src/orchestration/template/index.js';

interface Options {
  params?: string;
  values?: Record<string, JsonValue>;
  runtime?: RuntimeContext;
  files?: Record<string, string>;
  resources?: string;
  limits?: Partial<TemplateLimits>;
}

/** Evaluates `value` (YAML flow text) as output `o` of a template of `version`. */
function run(version: string, value: string, options: Options = {}): JsonValue {
  const text = `heat_template_version: ${version}\n${options.params ? `parameters: ${options.params}\n` : ''}${options.resources ? `resources: ${options.resources}\n` : ''}outputs:\n  o:\n    value: ${value}\n`;
  const template = parseTemplate(text, options.files ? { files: options.files } : {});
  const instance = instantiateTemplate(template, {
    ...(options.values ? { parameters: options.values } : {}),
    ...(options.files ? { files: options.files } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    pseudo: { stackName: 'mystack', stackId: 'sid', projectId: 'pid' },
  });
  const out = instance.evaluateOutput('o', options.runtime);
  if ('error' in out) throw Object.assign(new Error(out.error), { code: out.code });
  return out.value;
}

function failure(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isStokerError(e)) return e.code;
    return (e as { code: string }).code;
  }
  throw new Error('expected an error');
}

describe('str_replace family', () => {
  it('replaces longest keys first, then in lexicographic order, in a single pass', () => {
    expect(run('2013-05-23', "{str_replace: {template: 'Template var1 string var2', params: {var1: foo, var2: bar}}}")).toBe(
      'Template foo string bar',
    );
    expect(
      run(
        '2013-05-23',
        "{str_replace: {template: '1234567890', params: {'1': a, '12': b, '123': c, '1234': d, '12345': e, '123456': f, '1234567': g}}}",
      ),
    ).toBe('g890');
    expect(
      run(
        '2013-05-23',
        "{str_replace: {template: '1234567890', params: {'1': a, '4': d, '8': h, '9': i, '123': '1', '456': '4', '890': '8', '90': '9'}}}",
      ),
    ).toBe('1478');
    expect(
      run(
        '2013-05-23',
        "{str_replace: {template: '9876543210', params: {'987654': a, '876543': b, '765432': c, '654321': d, '543210': e}}}",
      ),
    ).toBe('9876e');
  });

  it('prints numbers and booleans as Python does and null as nothing', () => {
    expect(run('2015-10-15', "{str_replace: {template: 'a b c d', params: {a: 1, b: 2.5, c: true, d: null}}}")).toBe('1 2.5 True ');
  });

  it('JSON-encodes maps and lists from 2015-10-15 (sorted keys, Python separators), refuses them before', () => {
    expect(run('2015-10-15', "{str_replace: {template: 'v=X', params: {X: {b: 1, a: [x, 'é']}}}}")).toBe(
      'v={"a": ["x", "\\u00e9"], "b": 1}',
    );
    expect(failure(() => run('2015-04-30', "{str_replace: {template: 'v=X', params: {X: [1]}}}"))).toContain(
      '"str_replace" params must be strings or numbers, param X is not valid',
    );
  });

  it('str_replace_strict (2017-02-24) needs every param in the template', () => {
    expect(run('2017-02-24', "{str_replace_strict: {template: 'a-b', params: {a: x, b: y}}}")).toBe('x-y');
    expect(failure(() => run('2017-02-24', "{str_replace_strict: {template: 'a', params: {a: x, bb: y, c: z}}}"))).toContain(
      'The following params were not found in the template: bb,c',
    );
    expect(run('2016-10-14', '{str_replace_strict: {template: a, params: {}}}')).toEqual({
      str_replace_strict: { template: 'a', params: {} },
    });
  });

  it('str_replace_vstrict (2017-09-01) also refuses empty values', () => {
    expect(failure(() => run('2017-09-01', "{str_replace_vstrict: {template: 'a b', params: {a: x, b: ''}}}"))).toContain(
      'str_replace_vstrict has an undefined or empty value for param b, must be a defined non-empty value',
    );
    expect(failure(() => run('2017-09-01', "{str_replace_vstrict: {template: 'a b', params: {a: x, b: []}}}"))).toContain(
      'empty value for param b',
    );
  });

  it('checks its arguments statically', () => {
    expect(failure(() => run('2016-10-14', '{str_replace: [a, b]}'))).toBe('outputs.o.value: Arguments to "str_replace" must be a map');
    expect(failure(() => run('2016-10-14', '{str_replace: {template: a}}'))).toContain('"str_replace" syntax should be');
    expect(failure(() => run('2016-10-14', '{str_replace: {template: a, params: [x]}}'))).toContain(
      '"str_replace" parameters must be a mapping',
    );
    expect(failure(() => run('2016-10-14', '{str_replace: {template: [a], params: {}}}'))).toContain(
      '"str_replace" template must be a string',
    );
  });
});

describe('list_join, str_split, digest', () => {
  it('list_join joins one list before 2015-10-15, several after, maps as JSON', () => {
    expect(run('2014-10-16', "{list_join: [', ', [a, b, null]]}")).toBe('a, b, ');
    expect(failure(() => run('2014-10-16', "{list_join: [',', [a], [b]]}"))).toContain('Incorrect arguments to "list_join"');
    expect(run('2015-10-15', "{list_join: [',', [bar, baz], [bar2, baz2]]}")).toBe('bar,baz,bar2,baz2');
    expect(run('2015-10-15', "{list_join: [',', [{foo: json}, {foo2: json2}]]}")).toBe('{"foo": "json"},{"foo2": "json2"}');
    expect(run('2015-10-15', "{list_join: [',', []]}")).toBe('');
    expect(failure(() => run('2015-10-15', "{list_join: [',', [1]]}"))).toContain(
      'Items to join must be string, map or list, not a number',
    );
    expect(failure(() => run('2015-10-15', '{list_join: [1, [a]]}'))).toContain('"list_join" delimiter must be a string');
    expect(failure(() => run('2015-10-15', "{list_join: [',', abc]}"))).toContain('"list_join" must operate on a list');
  });

  it('str_split splits, selects an index (negative from the end) and passes null through', () => {
    expect(run('2015-10-15', "{str_split: [',', 'bar,baz']}")).toEqual(['bar', 'baz']);
    expect(run('2015-10-15', "{str_split: [',', 'bar,baz', 1]}")).toBe('baz');
    expect(run('2015-10-15', "{str_split: [',', 'bar,baz', '-1']}")).toBe('baz');
    expect(run('2015-10-15', "{str_split: [',', null]}")).toBeNull();
    expect(failure(() => run('2015-10-15', "{str_split: [',', 'bar,baz', 2]}"))).toContain(
      'Incorrect index to "str_split" should be between 0 and 1',
    );
    expect(failure(() => run('2015-10-15', "{str_split: [',', 'a', x]}"))).toContain('Incorrect index to "str_split"');
    expect(failure(() => run('2015-10-15', "{str_split: 'a,b'}"))).toContain('Incorrect arguments to "str_split"');
    expect(run('2015-04-30', "{str_split: [',', 'bar,baz']}")).toEqual({ str_split: [',', 'bar,baz'] });
  });

  it('digest computes every algorithm of the brief, hashing latin-1 as Heat does', () => {
    for (const algorithm of ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']) {
      for (const value of ['', 'foobar', 'x'.repeat(200), 'café']) {
        const want = createHash(algorithm).update(Buffer.from(value, 'latin1')).digest('hex');
        expect(run('2015-04-30', `{digest: [${algorithm}, ${JSON.stringify(value)}]}`), `${algorithm} ${value.length}`).toBe(want);
      }
    }
    expect(run('2015-04-30', '{digest: [SHA256, foobar]}')).toBe(createHash('sha256').update('foobar').digest('hex'));
    expect(failure(() => run('2015-04-30', '{digest: [md4, x]}'))).toContain(
      'Algorithm must be one of md5, sha1, sha224, sha256, sha384, sha512',
    );
    expect(failure(() => run('2015-04-30', "{digest: [md5, '€']}"))).toContain('latin-1');
    expect(failure(() => run('2015-04-30', '{digest: [md5, 1]}'))).toContain('must be a list of strings');
  });
});

describe('collections', () => {
  it('repeat: nested loops (first key slowest), maps from 2016-10-14, zip with permutations: false', () => {
    expect(run('2015-04-30', "{repeat: {template: 'this is %var%', for_each: {'%var%': [a, b, c]}}}")).toEqual([
      'this is a',
      'this is b',
      'this is c',
    ]);
    expect(run('2015-04-30', "{repeat: {template: {p: '<x>-<y>'}, for_each: {'<x>': ['1', '2'], '<y>': [a, b]}}}")).toEqual([
      { p: '1-a' },
      { p: '1-b' },
      { p: '2-a' },
      { p: '2-b' },
    ]);
    expect(run('2016-10-14', '{repeat: {template: {SERVICE_enabled: true}, for_each: {SERVICE: [x, y]}}}')).toEqual([
      { x_enabled: true },
      { y_enabled: true },
    ]);
    expect(run('2016-10-14', '{repeat: {template: K, for_each: {K: {k1: 1, k2: 2}}}}')).toEqual(['k1', 'k2']);
    expect(failure(() => run('2015-10-15', '{repeat: {template: K, for_each: {K: {k1: 1}}}}'))).toContain('must be lists');
    expect(run('2017-09-01', "{repeat: {template: '<x><y>', for_each: {'<x>': [a, b], '<y>': ['1', '2']}, permutations: false}}")).toEqual([
      'a1',
      'b2',
    ]);
    expect(failure(() => run('2017-09-01', '{repeat: {template: x, for_each: {x: [a], y: [b, c]}, permutations: false}}'))).toContain(
      'the length of for_each values should be equal if no nested loop',
    );
    expect(failure(() => run('2017-09-01', '{repeat: {template: x, for_each: {x: [a]}, permutations: nope}}'))).toContain(
      '"permutations" should be boolean',
    );
    expect(failure(() => run('2015-04-30', '{repeat: {template: x, for_each: [a]}}'))).toContain(
      'The "for_each" argument to "repeat" must contain a map',
    );
    expect(run('2015-04-30', '{repeat: {template: x, for_each: {x: null}}}')).toEqual([]);
  });

  it('map_merge and map_replace', () => {
    expect(run('2016-04-08', '{map_merge: [{f1: b1, f2: b2}, {f1: b2}, null]}')).toEqual({ f1: 'b2', f2: 'b2' });
    expect(failure(() => run('2016-04-08', '{map_merge: [{a: 1}, [b]]}'))).toContain('Items to merge must be maps');
    expect(run('2016-10-14', '{map_replace: [{f1: b1, f2: b2}, {keys: {f1: F1}, values: {b2: B2}}]}')).toEqual({ F1: 'b1', f2: 'B2' });
    expect(failure(() => run('2016-10-14', '{map_replace: [{f1: a, f2: b}, {keys: {f1: f2}}]}'))).toContain(
      'key replacement f2 collides with a key in the input map',
    );
    expect(failure(() => run('2016-10-14', '{map_replace: [{f1: a, f2: b}, {keys: {f1: x, f2: x}}]}'))).toContain(
      'collides with a key in the output map',
    );
    expect(failure(() => run('2016-10-14', '{map_replace: [{f1: a}, {kees: {}}]}'))).toContain('Incorrect arguments to "map_replace"');
  });

  it('filter, list_concat, list_concat_unique, contains', () => {
    expect(run('2017-02-24', '{filter: [[null], [1, null, 4, 2, null]]}')).toEqual([1, 4, 2]);
    expect(run('2017-02-24', '{filter: [[], [1]]}')).toEqual([1]);
    expect(failure(() => run('2017-02-24', '{filter: [[a], {a: b}]}'))).toContain('"filter" only works with lists');
    expect(run('2017-09-01', '{list_concat: [[v1, v2], [v3, v4], null]}')).toEqual(['v1', 'v2', 'v3', 'v4']);
    expect(run('2017-09-01', '{list_concat_unique: [[v1, v2], [v1, v3]]}')).toEqual(['v1', 'v2', 'v3']);
    expect(failure(() => run('2017-09-01', '{list_concat: [[a], b]}'))).toContain('Items to concat must be lists');
    expect(run('2017-09-01', '{contains: [v1, [v1, v2]]}')).toBe(true);
    expect(run('2017-09-01', '{contains: [a, abc]}')).toBe(true);
    expect(run('2017-09-01', '{contains: [1, [true]]}')).toBe(true); // Python: 1 == True
    expect(failure(() => run('2017-09-01', '{contains: [a, {a: 1}]}'))).toContain('Second argument to "contains" should be a sequence.');
  });
});

describe('conditions and if', () => {
  const conditions =
    'conditions: {prod: {equals: [{get_param: env}, prod]}, notprod: {not: prod}, both: {and: [prod, true]}, either: {or: [prod, notprod]}}';
  const tpl = (version: string) => `heat_template_version: ${version}\nparameters: {env: {type: string, default: test}}\n${conditions}\n`;

  it('evaluates equals, not, and, or and if over them', () => {
    const text = `${tpl('2016-10-14')}outputs:\n  o: {value: [{if: [prod, a, b]}, {if: [notprod, a, b]}, {if: [both, a, b]}, {if: [either, a, b]}, {if: [false, a, b]}]}\n`;
    const i = instantiateTemplate(parseTemplate(text));
    expect(i.conditions).toEqual({ prod: false, notprod: true, both: false, either: true });
    expect(i.evaluateOutput('o')).toMatchObject({ value: ['b', 'a', 'b', 'a', 'b'] });
    const prod = instantiateTemplate(parseTemplate(text), { parameters: { env: 'prod' } });
    expect(prod.evaluateOutput('o')).toMatchObject({ value: ['a', 'b', 'a', 'a', 'b'] });
  });

  it('two-argument if elides the value from 2021-04-16, and is an error before', () => {
    const value =
      '{single: {if: [false, x]}, nested: {if: [true, {if: [false, foo]}, bar]}, list: [1, {if: [false, 2]}, 3], control: {if: [false, true, null]}}';
    expect(run('2021-04-16', value)).toEqual({ list: [1, 3], control: null });
    expect(run('2021-04-16', '{if: [false, x]}')).toBeNull();
    expect(failure(() => run('2018-08-31', '{if: [false, a]}'))).toContain(
      'Arguments to "if" must be of the form: [condition_name, value_if_true, value_if_false]',
    );
  });

  it('yaql: a documented subset, checked when the template is parsed', () => {
    expect(run('2016-10-14', "{yaql: {expression: '$.data.var1.sum()', data: {var1: [1, 2, 3, 4]}}}")).toBe(10);
    expect(run('2016-10-14', "{yaql: {expression: '$.data.l.where($ > 1).select($ * 10)', data: {l: [1, 2, 3]}}}")).toEqual([20, 30]);
    expect(run('2016-10-14', "{yaql: {expression: 'len($.data.s) + $.data.m.keys().len()', data: {s: abc, m: {a: 1}}}}")).toBe(4);
    expect(run('2016-10-14', '{yaql: {expression: "$.data.l.join(\'-\').toUpper()", data: {l: [a, b]}}}')).toBe('A-B');
    expect(run('2016-10-14', "{yaql: {expression: '7 / 2 + 7 mod 3', data: {}}}")).toBe(4);
    expect(failure(() => run('2016-10-14', "{yaql: {expression: '$.data.l.groupBy($)', data: {l: []}}}"))).toContain(
      'Bad expression the function "groupBy" is not in Stoker\'s YAQL subset',
    );
    expect(failure(() => run('2016-10-14', "{yaql: {expression: '$.data.(', data: {}}}"))).toContain('Bad expression');
    expect(failure(() => run('2016-10-14', "{yaql: {expression: '$.data.l.sum()', data: {l: [1, 2]}, extra: 1}}"))).toContain(
      '"yaql" syntax should be',
    );
    const big = `[${Array.from({ length: 201 }, (_, i) => i).join(', ')}]`;
    expect(failure(() => run('2016-10-14', `{yaql: {expression: '$.data.l.sum()', data: {l: ${big}}}}`))).toContain('limited to 200 items');
  });
});

describe('make_url', () => {
  it('builds escaped URLs as Python urllib does', () => {
    expect(run('2017-09-01', '{make_url: {scheme: http, host: example.com, path: /foo/bar}}')).toBe('http://example.com/foo/bar');
    expect(
      run(
        '2017-09-01',
        "{make_url: {scheme: https, username: 'a b', password: 'p@ss', host: '::1', port: 8080, path: 'x y', query: {q: 'a b/c', n: 1}, fragment: f}}",
      ),
    ).toBe('https://a%20b:p%40ss@[::1]:8080/x%20y?q=a+b/c&n=1#f');
    expect(run('2017-09-01', "{make_url: {scheme: http, host: '[fe80::1]', path: 'rel'}}")).toBe('http://[fe80::1]/rel');
    expect(failure(() => run('2017-09-01', "{make_url: {scheme: 'ht:tp', host: x}}"))).toContain('URL "scheme" should not contain \':\'');
    expect(failure(() => run('2017-09-01', '{make_url: {host: x, port: 70000}}'))).toContain(
      'Invalid URL port 70000, must be in range 1-65535',
    );
    expect(failure(() => run('2017-09-01', '{make_url: {host: x, colour: red}}'))).toContain('Invalid arguments to "make_url": colour');
  });
});

describe('references', () => {
  const runtime: RuntimeContext = {
    getResource: (name) => `${name}-id`,
    getAttr: (name, attr, path) => ({ name, attr, path }) as unknown as JsonValue,
    resourceFacade: { metadata: { foo: 'bar' }, deletion_policy: 'Retain', update_policy: {} },
  };
  const resources = '{r: {type: OS::Heat::None}}';

  it('get_param with paths into json and list values; a miss gives an empty string', () => {
    const params = "{j: {type: json, default: {a: [1, {b: 2}]}}, l: {type: comma_delimited_list, default: 'x,y'}}";
    expect(run('2015-10-15', '{get_param: [j, a, 1, b]}', { params })).toBe(2);
    expect(run('2015-10-15', "{get_param: [j, a, '0']}", { params })).toBe(1);
    expect(run('2015-10-15', '{get_param: [l, 1]}', { params })).toBe('y');
    expect(run('2015-10-15', '{get_param: [j, nope, 3]}', { params })).toBe('');
    expect(run('2015-10-15', '{get_param: OS::stack_name}')).toBe('mystack');
    expect(run('2015-10-15', '[{get_param: OS::stack_id}, {get_param: OS::project_id}]')).toEqual(['sid', 'pid']);
    expect(failure(() => run('2015-10-15', '{get_param: nope}'))).toContain('Unknown parameter "nope"');
  });

  it('get_attr per version: select locally (2013-05-23), pass the path (2014-10-16), all attributes (2015-10-15)', () => {
    const attrs: RuntimeContext = {
      getAttr: (_name, attr, path): JsonValue => (attr === null ? { all: true } : { x: { y: [path, attr] } }),
    };
    expect(run('2013-05-23', '{get_attr: [r, show, x, y, 1]}', { resources, runtime: attrs })).toBe('show');
    expect(run('2014-10-16', '{get_attr: [r, show, x]}', { resources, runtime: runtime })).toEqual({
      name: 'r',
      attr: 'show',
      path: ['x'],
    });
    expect(run('2015-10-15', '{get_attr: [r]}', { resources, runtime: attrs })).toEqual({ all: true });
    expect(failure(() => run('2014-10-16', '{get_attr: [r]}', { resources }))).toContain('Arguments to "get_attr" must be of the form');
    expect(failure(() => run('2015-10-15', '{get_attr: [nope, a]}', { resources }))).toContain(
      '"get_attr" references "nope", which is not a resource of this template',
    );
    expect(failure(() => run('2015-10-15', '{get_attr: r}', { resources }))).toContain('Argument to "get_attr" must be a list');
  });

  it('get_resource, resource_facade and CFN Ref', () => {
    expect(run('2015-10-15', '{get_resource: r}', { resources, runtime })).toBe('r-id');
    expect(run('2015-10-15', '{resource_facade: metadata}', { runtime })).toEqual({ foo: 'bar' });
    expect(failure(() => run('2015-10-15', '{resource_facade: metadata}'))).toContain(
      'only available in a template used as a template resource',
    );
    expect(failure(() => run('2015-10-15', '{resource_facade: properties}'))).toContain(
      'should be one of: metadata, deletion_policy, update_policy',
    );
    expect(run('2013-05-23', '[{Ref: r}, {Ref: p}]', { resources, runtime, params: '{p: {type: string, default: v}}' })).toEqual([
      'r-id',
      'v',
    ]);
  });

  it('get_file reads only the files map and names a missing file', () => {
    expect(run('2015-10-15', '{get_file: my.sh}', { files: { 'my.sh': '#!/bin/sh' } })).toBe('#!/bin/sh');
    expect(failure(() => run('2015-10-15', '{get_file: /etc/passwd}', { files: {} }))).toBe(
      'outputs.o.value: No content found in the "files" section for get_file path: /etc/passwd',
    );
    expect(failure(() => run('2015-10-15', '{get_file: ../../x}'))).toContain('get_file path: ../../x');
    expect(failure(() => run('2015-10-15', '{get_file: [a]}'))).toContain('Argument to "get_file" must be a string');
  });
});

describe('CFN functions of 2013-05-23', () => {
  it('Fn::Select, Fn::Join, Fn::Split, Fn::Replace, Fn::Base64, Fn::MemberListToMap, Fn::GetAZs', () => {
    expect(run('2013-05-23', "{'Fn::Select': [1, [a, b]]}")).toBe('b');
    expect(run('2013-05-23', "{'Fn::Select': ['1', [a, b]]}")).toBe('b');
    expect(run('2013-05-23', "{'Fn::Select': [5, [a, b]]}")).toBe('');
    expect(run('2013-05-23', "{'Fn::Select': [k, {k: v}]}")).toBe('v');
    expect(run('2013-05-23', '{\'Fn::Select\': [k, \'{"k": "v"}\']}')).toBe('v');
    expect(run('2013-05-23', "{'Fn::Join': ['-', [a, b]]}")).toBe('a-b');
    expect(run('2013-05-23', "{'Fn::Split': [',', 'a,b']}")).toEqual(['a', 'b']);
    expect(run('2013-05-23', "{'Fn::Replace': [{'$x': y}, 'a $x']}")).toBe('a y');
    expect(run('2013-05-23', "{'Fn::Base64': abc}")).toBe('abc');
    expect(
      run(
        '2013-05-23',
        "{'Fn::MemberListToMap': [Name, Value, ['.member.0.Name=key', '.member.0.Value=door', '.member.1.Name=k2', '.member.1.Value=v2']]}",
      ),
    ).toEqual({
      key: 'door',
      k2: 'v2',
    });
    expect(run('2013-05-23', "{'Fn::GetAZs': ''}")).toEqual(['nova']);
  });

  it('are removed from later versions with an error naming the function and the version', () => {
    expect(failure(() => run('2014-10-16', "{'Fn::Join': ['-', [a]]}"))).toBe(
      'outputs.o.value: The function "Fn::Join" is not supported in heat_template_version 2014-10-16 (use list_join)',
    );
    expect(code(() => run('2015-10-15', "{'Fn::Select': [1, [a]]}"))).toBe('STOKER_TEMPLATE_FUNCTION_UNKNOWN');
    expect(run('2015-04-30', "{'Fn::Select': [1, [a, b]]}")).toBe('b');
  });
});

describe('functions of other versions', () => {
  it('are data, as in Heat; strictFunctions makes them errors naming function and version', () => {
    expect(run('2017-02-24', '{list_concat: [[v1], [v2]]}')).toEqual({ list_concat: [['v1'], ['v2']] });
    const text = 'heat_template_version: 2017-02-24\noutputs:\n  o: {value: {list_concat: [[v1], [v2]]}}\n';
    const e = (() => {
      try {
        parseTemplate(text, { strictFunctions: true });
      } catch (err) {
        return err as Error;
      }
      return undefined;
    })();
    expect(e?.message).toBe('outputs.o.value: The function "list_concat" is not available in heat_template_version 2017-02-24');
    expect(isStokerError(e) && e.code).toBe('STOKER_TEMPLATE_FUNCTION_UNKNOWN');
  });
});

describe('evaluation budgets', () => {
  it('refuses a repeat that would explode', () => {
    const list = `[${Array.from({ length: 100 }, (_, i) => `'${i}'`).join(', ')}]`;
    expect(code(() => run('2015-04-30', `{repeat: {template: 'a-b-c', for_each: {a: ${list}, b: ${list}, c: ${list}}}}`))).toBe(
      'STOKER_TEMPLATE_TOO_LARGE',
    );
    expect(failure(() => run('2015-04-30', `{repeat: {template: 'a-b-c', for_each: {a: ${list}, b: ${list}, c: ${list}}}}`))).toContain(
      'bytes of output',
    );
  });

  it('counts steps', () => {
    expect(failure(() => run('2017-09-01', '{list_concat: [[a], [b], [c], [d]]}', { limits: { maxEvaluationSteps: 3 } }))).toContain(
      'more than 3 steps',
    );
  });
});
