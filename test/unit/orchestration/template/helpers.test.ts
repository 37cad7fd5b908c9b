import { describe, expect, it } from 'vitest';
import { globMatch } from '../../../../src/orchestration/template/glob-match.js';
import { instantiateTemplate, parseEnvironment, parseTemplate } from '../../../../src/orchestration/template/index.js';
import { pyEquals, pyJsonDumps, pyNumber, pyRepr, pyStr } from '../../../../src/orchestration/template/python-values.js';

describe("Python's view of values", () => {
  it('equality treats booleans as 0 and 1 and compares containers deeply', () => {
    expect(pyEquals(true, 1)).toBe(true);
    expect(pyEquals(1, 1.0)).toBe(true);
    expect(pyEquals('1', 1)).toBe(false);
    expect(pyEquals({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(pyEquals({ a: 1 }, { a: 1, b: 2 })).toBe(false);
  });

  it('prints str, repr and json.dumps as Python does', () => {
    expect(pyStr(true)).toBe('True');
    expect(pyStr(null)).toBe('None');
    expect(pyRepr(['a', "it's", 1, { k: false }])).toBe("['a', \"it's\", 1, {'k': False}]");
    expect(pyNumber(1e-5)).toBe('1e-05');
    expect(pyNumber(1e22)).toBe('1e+22');
    expect(pyJsonDumps({ b: [1, 'x'], a: 'é\n' }, { sortKeys: true })).toBe('{"a": "\\u00e9\\n", "b": [1, "x"]}');
    expect(pyJsonDumps({ b: 1, a: 2 })).toBe('{"b": 1, "a": 2}');
  });
});

describe('globMatch (fnmatch.fnmatchcase)', () => {
  it('supports *, ? and classes, case-sensitively, without backtracking blow-ups', () => {
    expect(globMatch('foo_*', 'foo_step2')).toBe(true);
    expect(globMatch('*ar', 'bar')).toBe(true);
    expect(globMatch('b?r', 'bar')).toBe(true);
    expect(globMatch('[bc]ar', 'car')).toBe(true);
    expect(globMatch('[!bc]ar', 'car')).toBe(false);
    expect(globMatch('Foo', 'foo')).toBe(false);
    expect(globMatch('a*a*a*a*a*a*a*a*a*b', 'a'.repeat(255))).toBe(false);
  });
});

describe('messages name the path', () => {
  it('as in resources.server.properties.name: Unknown parameter "x"', () => {
    const text =
      'heat_template_version: 2016-10-14\nresources:\n  server:\n    type: OS::Nova::Server\n    properties:\n      name: {get_param: x}\n';
    expect(() => parseTemplate(text)).toThrowError('resources.server.properties.name: Unknown parameter "x"');
  });
});

describe('values handed out', () => {
  it('are copies: changing them does not change the template', () => {
    const t = parseTemplate(
      'heat_template_version: 2016-10-14\nresources:\n  r: {type: x, properties: {list: [1, 2], map: {a: b}}}\noutputs:\n  o: {value: {k: [1]}}\n',
    );
    const instance = instantiateTemplate(t);
    const first = instance.evaluateResource('r');
    (first.properties['list'] as number[]).push(3);
    expect(instance.evaluateResource('r').properties).toEqual({ list: [1, 2], map: { a: 'b' } });
    const out = instance.evaluateOutput('o');
    if ('value' in out) (out.value as { k: number[] }).k.push(2);
    expect(instance.evaluateOutput('o')).toMatchObject({ value: { k: [1] } });
  });

  it('environments given as objects get the same checks as text', () => {
    expect(parseEnvironment({ parameters: { a: 1 } }).environment.parameters).toEqual({ a: 1 });
    expect(() => parseEnvironment({ params: {} })).toThrowError('environment has wrong section "params"');
  });
});
