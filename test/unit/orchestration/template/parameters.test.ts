import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../../../src/core/json.js';
import { isStokerError } from '../../../../src/errors.js';
import {
  HIDDEN_VALUE,
  checkImmutableParameters,
  displayParameters,
  maskHiddenValues,
  parseEnvironment,
  parseTemplate,
  resolveParameters,
  type ParameterInput,
} from '../../../../src/orchestration/template/index.js';

const template = (params: string, version = '2017-02-24') => parseTemplate(`heat_template_version: ${version}\nparameters:\n${params}`);
const value = (type: string, given: JsonValue, extra = '') =>
  resolveParameters(template(`  p:\n    type: ${type}\n${extra}`), { parameters: { p: given } }).values['p'];

function errorOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isStokerError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an error');
}

describe('conversion to the parameter type', () => {
  it('number: Python int() then float(), from text or JSON', () => {
    expect(value('number', '42')).toBe(42);
    expect(value('number', ' 7 ')).toBe(7);
    expect(value('number', '1_000')).toBe(1000);
    expect(value('number', '0.5')).toBe(0.5);
    expect(value('number', '1e3')).toBe(1000);
    expect(value('number', 3)).toBe(3);
    expect(errorOf(() => value('number', 'abc')).message).toBe(
      'parameters.p: Parameter \'p\' is invalid: Value "abc" is invalid for data type "number"',
    );
    expect(errorOf(() => value('number', 'inf')).code).toBe('STOKER_PARAMETER_INVALID');
    expect(errorOf(() => value('number', true)).code).toBe('STOKER_PARAMETER_INVALID');
  });

  it('boolean: the strings oslo accepts, case-insensitive', () => {
    for (const t of ['1', 't', 'true', 'on', 'y', 'yes', 'YES', 'True', true, 1]) expect(value('boolean', t)).toBe(true);
    for (const f of ['0', 'f', 'false', 'off', 'n', 'no', false, 0]) expect(value('boolean', f)).toBe(false);
    expect(errorOf(() => value('boolean', 'maybe')).message).toContain(
      "Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'",
    );
  });

  it('comma_delimited_list: split on commas without trimming; lists are kept as strings', () => {
    expect(value('comma_delimited_list', 'one, two')).toEqual(['one', ' two']);
    expect(value('comma_delimited_list', '')).toEqual([]);
    expect(value('comma_delimited_list', ['a', 1, true])).toEqual(['a', '1', 'True']);
    expect(errorOf(() => value('comma_delimited_list', 5)).message).toContain('Value must be a comma-delimited list string');
  });

  it('json: from text or as given', () => {
    expect(value('json', '{"key": "value"}')).toEqual({ key: 'value' });
    expect(value('json', { a: [1] })).toEqual({ a: [1] });
    expect(errorOf(() => value('json', '{nope')).message).toBe("parameters.p: Parameter 'p' is invalid: Value must be valid JSON");
  });

  it("string: Python's str()", () => {
    expect(value('string', 40)).toBe('40');
    expect(value('string', true)).toBe('True');
    expect(value('string', 'x')).toBe('x');
  });
});

describe('where values come from', () => {
  const t = template(
    `  a: {type: string, default: tdefault}\n  b: {type: string, default: tdefault}\n  c: {type: string, default: tdefault}\n  d: {type: string}\n`,
  );
  const env = parseEnvironment('parameters: {b: env, d: envd}\nparameter_defaults: {a: pd, c: pd, unknown_elsewhere: 1}\n').environment;

  it('user > environment parameters > parameter_defaults > template default', () => {
    const r = resolveParameters(t, { parameters: { a: 'user' }, environment: env });
    expect(r.values).toMatchObject({ a: 'user', b: 'env', c: 'pd', d: 'envd' });
    expect(r.sources).toEqual({ a: 'parameters', b: 'parameters', c: 'parameter_defaults', d: 'parameters' });
    expect(resolveParameters(t, { parameters: { d: 'x', a: null } }).values).toMatchObject({ a: 'tdefault', d: 'x' });
  });

  it('an unknown user parameter is an error, an unknown parameter_default is not', () => {
    expect(errorOf(() => resolveParameters(t, { parameters: { d: 'x', zzz: 1 } }))).toEqual({
      code: 'STOKER_PARAMETER_INVALID',
      message: 'parameters.zzz: The Parameter (zzz) was not defined in template.',
    });
  });

  it('a parameter without a value or default is missing', () => {
    expect(errorOf(() => resolveParameters(t, {})).message).toBe('parameters.d: The Parameter (d) was not provided.');
  });

  it('pseudo parameters come from the caller', () => {
    const r = resolveParameters(t, { parameters: { d: 'x' }, pseudo: { stackName: 's', stackId: 'i', projectId: 'p' } });
    expect(r.values).toMatchObject({ 'OS::stack_name': 's', 'OS::stack_id': 'i', 'OS::project_id': 'p' });
  });

  it('limits each value (64 KiB, depth 64)', () => {
    const big = template('  j: {type: json}\n  s: {type: string}\n');
    expect(errorOf(() => resolveParameters(big, { parameters: { j: {}, s: 'x'.repeat(70_000) } })).code).toBe('STOKER_PARAMETER_INVALID');
    const deep = '['.repeat(100) + ']'.repeat(100);
    expect(errorOf(() => resolveParameters(big, { parameters: { j: deep, s: '' } })).code).toBe('STOKER_INPUT_TOO_DEEP');
    expect(errorOf(() => resolveParameters(big, { parameters: { j: '{"__proto__": {"x": 1}}', s: '' } })).code).toBe(
      'STOKER_INPUT_FORBIDDEN_KEY',
    );
  });
});

describe('constraints', () => {
  const check = (type: string, constraint: string, given: JsonValue) => () =>
    value(type, given, `    constraints:\n      - ${constraint}\n`);

  it("length, range, modulo, allowed_values, allowed_pattern with Heat's default messages", () => {
    expect(errorOf(check('string', 'length: {min: 3}', 'ab')).message).toContain('length (2) is out of range (min: 3, max: None)');
    expect(errorOf(check('comma_delimited_list', 'length: {max: 1}', 'a,b')).message).toContain(
      'length (2) is out of range (min: None, max: 1)',
    );
    expect(errorOf(check('number', 'range: {min: 1, max: 5}', 9)).message).toContain('9 is out of range (min: 1, max: 5)');
    expect(check('number', 'range: {min: "1", max: "5"}', '5')()).toBe(5);
    expect(errorOf(check('number', 'modulo: {step: 2, offset: 1}', 4)).message).toContain('4 is not a multiple of 2 with an offset of 1');
    expect(check('number', 'modulo: {step: 2, offset: 1}', '7')()).toBe(7);
    expect(errorOf(check('string', 'allowed_values: [a, b]', 'c')).message).toContain('"c" is not an allowed value [a, b]');
    expect(check('number', 'allowed_values: ["1", 2]', '1')()).toBe(1);
    expect(check('boolean', 'allowed_values: ["yes"]', 'true')()).toBe(true);
    expect(errorOf(check('comma_delimited_list', 'allowed_values: [a, b]', 'a,c')).message).toContain('is not an allowed value');
    expect(errorOf(check('string', "allowed_pattern: '[a-z]+'", 'abc1')).message).toContain('"abc1" does not match pattern "[a-z]+"');
    expect(check('string', 'custom_constraint: nova.flavor', 'anything')()).toBe('anything');
  });

  it("uses the constraint's description as the message", () => {
    expect(errorOf(check('string', "{allowed_pattern: '[A-Z].*', description: Must start upper}", 'abc')).message).toBe(
      "parameters.p: Parameter 'p' is invalid: Must start upper",
    );
  });

  it('checks allowed_pattern in linear time (no ReDoS)', () => {
    expect(errorOf(check('string', "allowed_pattern: '(a+)+$'", `${'a'.repeat(50_000)}b`)).code).toBe('STOKER_PARAMETER_INVALID');
    expect(errorOf(check('string', "allowed_pattern: '(a|a)*c'", 'a'.repeat(50_000))).code).toBe('STOKER_PARAMETER_INVALID');
  });
});

describe('hidden parameters', () => {
  const t = template(
    `  pw:\n    type: string\n    hidden: true\n    constraints:\n      - allowed_values: [nope]\n  n:\n    type: number\n    hidden: true\n  l: {type: comma_delimited_list, default: 'a,b'}\n  j: {type: json, default: {b: 1, a: 2}}\n  f: {type: boolean, default: false}\n`,
  );
  const canary = 'CANARY-s3cret-9f2';

  it('never appear in a message', () => {
    for (const input of [
      { pw: canary, n: 1 },
      { pw: 'nope', n: canary },
    ] as ParameterInput['parameters'][]) {
      const e = errorOf(() => resolveParameters(t, { parameters: input! }));
      expect(e.message).not.toContain(canary);
      expect(e.message).toContain(HIDDEN_VALUE);
    }
  });

  it('display as ******, the rest as stack show prints them', () => {
    const r = resolveParameters(t, { parameters: { pw: 'nope', n: '3' }, pseudo: { stackName: 's' } });
    expect(displayParameters(r)).toEqual({
      pw: '******',
      n: '******',
      l: 'a,b',
      j: '{"b": 1, "a": 2}',
      f: 'False',
      'OS::stack_name': 's',
      'OS::stack_id': '',
      'OS::project_id': '',
    });
  });

  it('are masked by value in any text', () => {
    const r = resolveParameters(template('  pw: {type: string, hidden: true}\n  x: {type: string}\n'), {
      parameters: { pw: canary, x: canary.slice(0, 6) },
    });
    expect(maskHiddenValues(`login as admin/${canary} failed`, r)).toBe('login as admin/****** failed');
  });
});

describe('immutable parameters', () => {
  it('may not change on update', () => {
    const t = template('  p: {type: string, default: d, immutable: true}\n  q: {type: string, default: d}\n');
    const before = resolveParameters(t, { parameters: { p: 'value1' } });
    expect(() => checkImmutableParameters(before, resolveParameters(t, { parameters: { p: 'value1', q: 'changed' } }))).not.toThrow();
    expect(errorOf(() => checkImmutableParameters(before, resolveParameters(t, { parameters: { p: 'value2' } })))).toEqual({
      code: 'STOKER_PARAMETER_INVALID',
      message: 'parameters: The following parameters are immutable and may not be updated: p',
    });
  });
});
