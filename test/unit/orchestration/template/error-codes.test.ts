/**
 * Every error the template layer raises is a StokerError with a registered code (docs/security.md
 * S2, S3, S3b, S6): budgets that run out, recursion that would overflow the stack and keys that
 * could tamper with objects end in a coded error, never in a plain Error, a RangeError or a
 * crash. The property-based version of this rule is fuzz.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../../../src/core/json.js';
import { ErrorCodes, isStokerError } from '../../../../src/errors.js';
import {
  compilePattern,
  instantiateTemplate,
  parseEnvironment,
  parseTemplate,
  parseYaql,
  resolveParameters,
  resolveResourceType,
} from '../../../../src/orchestration/template/index.js';

function errorOf(f: () => unknown): { code: string; message: string; details: Record<string, JsonValue> } {
  try {
    f();
  } catch (e) {
    if (isStokerError(e)) return { code: e.code, message: e.message, details: e.details };
    throw e;
  }
  throw new Error('expected an error');
}

/** The error of output `o` of a template: thrown while instantiating, or the output's own error. */
function outputError(text: string): { code: string | null; message: string } {
  try {
    const o = instantiateTemplate(parseTemplate(text)).evaluateOutput('o');
    if ('error' in o) return { code: o.code, message: o.error };
  } catch (e) {
    if (isStokerError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an error');
}

// The threads of this pattern never die and never reach `match` on a value without "b", so the
// Pike VM does (program size) × (value length) steps: 60 000 characters need about 40 000 000.
const EXPENSIVE = '(?:.{1,1000})*b';
const paramTemplate = (extra = '') =>
  `heat_template_version: 2016-10-14\nparameters:\n  secret:\n    type: string\n    hidden: true\n${extra}    constraints:\n      - length: {min: 1}\n      - allowed_pattern: "${EXPENSIVE}"\n`;

describe('allowed_pattern budget', () => {
  it('a value too expensive to check is STOKER_PARAMETER_INVALID, naming the parameter and the constraint, never the value', () => {
    const value = `CANARY-${'a'.repeat(60_000)}`;
    const e = errorOf(() => resolveParameters(parseTemplate(paramTemplate()), { parameters: { secret: value } }));
    expect(e.code).toBe('STOKER_PARAMETER_INVALID');
    expect(e.message).toContain("Parameter 'secret'");
    expect(e.message).toContain('constraints[1]');
    expect(e.message).toContain('allowed_pattern');
    expect(e.message).not.toContain('CANARY');
    expect(e.message).not.toContain('aaaaaaaa');
    expect(e.details).toMatchObject({ parameter: 'secret', constraint: 1 });
  });

  it('a default too expensive to check makes the template invalid, without quoting the default', () => {
    const text = paramTemplate(`    default: "CANARY-${'a'.repeat(60_000)}"\n`);
    const e = errorOf(() => parseTemplate(text));
    expect(e.code).toBe('STOKER_TEMPLATE_INVALID');
    expect(e.message).toContain("Parameter 'secret'");
    expect(e.message).toContain('constraints[1]');
    expect(e.message).not.toContain('CANARY');
  });

  it('is shared by all the checks of one call (maxPatternSteps), so many parameters cannot each spend a full budget', () => {
    const params = Array.from(
      { length: 3 },
      (_, i) => `  p${i}:\n    type: string\n    constraints:\n      - allowed_pattern: "${EXPENSIVE}"\n`,
    ).join('');
    const template = parseTemplate(`heat_template_version: 2016-10-14\nparameters:\n${params}`);
    // each value matches, after about 1 000 000 steps
    const value = `${'a'.repeat(1000)}b`;
    const parameters = { p0: value, p1: value, p2: value };
    expect(resolveParameters(template, { parameters, limits: { maxPatternSteps: 4_000_000 } }).values['p2']).toBe(value);
    const e = errorOf(() => resolveParameters(template, { parameters, limits: { maxPatternSteps: 2_500_000 } }));
    expect(e.code).toBe('STOKER_PARAMETER_INVALID');
    expect(e.message).toContain("Parameter 'p2'");
    expect(e.message).toContain('2500000 steps');
  });

  it('compilePattern throws coded errors: STOKER_TEMPLATE_INVALID for syntax, STOKER_TEMPLATE_TOO_LARGE for the budget', () => {
    expect(errorOf(() => compilePattern('(?=a)')).code).toBe('STOKER_TEMPLATE_INVALID');
    expect(errorOf(() => compilePattern('(a|b|c|d)*').matchesWhole('abcd'.repeat(1000), 100)).code).toBe('STOKER_TEMPLATE_TOO_LARGE');
  });
});

describe('yaql', () => {
  it('parse errors are coded', () => {
    expect(errorOf(() => parseYaql('$.data.groupBy($)')).code).toBe('STOKER_TEMPLATE_INVALID');
  });

  const yaql = (expression: string) =>
    `heat_template_version: 2016-10-14\noutputs:\n  o: {value: {yaql: {expression: "${expression}", data: {}}}}\n`;

  it('counts its work against the evaluation budget (nested lambdas)', () => {
    const list = `'${'x'.repeat(200)}'.split('')`;
    expect(outputError(yaql(`${list}.select(${list}.select(${list})).len()`)).code).toBe('STOKER_TEMPLATE_TOO_LARGE');
  });

  it('counts what it produces against the output budget (a string that grows fourfold per call)', () => {
    const e = outputError(yaql(`'aaaa'${".replace('a', 'aaaa')".repeat(11)}.len()`));
    expect(e.code).toBe('STOKER_TEMPLATE_TOO_LARGE');
  });
});

describe('comparisons count against the evaluation budget', () => {
  // 3000 distinct numbers: comparing every item with every other is 9 000 000 comparisons
  const list = `[${Array.from({ length: 3000 }, (_, i) => i).join(', ')}]`;
  for (const fn of ['list_concat_unique', 'filter']) {
    it(fn, () => {
      const text = `heat_template_version: 2017-09-01\nparameters:\n  l: {type: json, default: ${list}}\noutputs:\n  o: {value: {${fn}: [{get_param: l}, {get_param: l}]}}\n`;
      expect(outputError(text).code).toBe('STOKER_TEMPLATE_TOO_LARGE');
    });
  }
});

describe('recursion that would overflow the stack', () => {
  it('conditions reaching each other through computed names, 3000 deep', () => {
    const n = 3000;
    const map = Array.from({ length: n }, (_, i) => `c${i}: c${i + 1}`).join(', ');
    const conditions = Array.from({ length: n }, (_, i) => `  c${i}: {not: {not: {get_param: [m, c${i}]}}}\n`).join('');
    const text = `heat_template_version: 2016-10-14\nparameters:\n  m: {type: json, default: {${map}}}\nconditions:\n${conditions}  c${n}: true\n`;
    const e = errorOf(() => instantiateTemplate(parseTemplate(text)));
    expect(e.code).toBe('STOKER_TEMPLATE_EVALUATION_FAILED');
    expect(e.message).toContain('nest too deeply');
  });

  it('Fn::Select of JSON text nested 100 000 deep', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const text = `heat_template_version: 2013-05-23\nresources:\n  r: {type: x, properties: {p: {'Fn::Select': [0, '${deep}']}}}\n`;
    expect(errorOf(() => instantiateTemplate(parseTemplate(text)).evaluateResource('r')).code).toBe('STOKER_INPUT_TOO_DEEP');
  });
});

describe('keys that could tamper with objects (S3b)', () => {
  const cases: [string, string][] = [
    ['2016-10-14', '{map_replace: [{a: {x: 1}}, {keys: {a: __proto__}}]}'],
    ['2016-10-14', '{repeat: {template: {"%k%": {x: 1}}, for_each: {"%k%": [__proto__]}}}'],
    ['2013-05-23', "{'Fn::MemberListToMap': [Name, Value, ['.member.0.Name=__proto__', '.member.0.Value=x']]}"],
    ['2013-05-23', '{\'Fn::Select\': [a, \'{"a": {"__proto__": {"polluted": 1}}}\']}'],
  ];
  for (const [version, value] of cases) {
    it(`are refused when a function would produce them: ${value.slice(0, 40)}`, () => {
      const e = outputError(`heat_template_version: ${version}\noutputs:\n  o: {value: ${value}}\n`);
      expect(e.code).toBe('STOKER_INPUT_FORBIDDEN_KEY');
      expect(Object.keys(ErrorCodes)).toContain(e.code);
    });
  }
});

describe('names of Object.prototype members (toString, valueOf, …)', () => {
  it('are data in templates, not functions, deletion policies, registry entries or outputs', () => {
    const o = instantiateTemplate(
      parseTemplate('heat_template_version: 2016-10-14\noutputs:\n  o: {value: {toString: 1}}\n'),
    ).evaluateOutput('o');
    expect(o).toEqual({ name: 'o', description: null, value: { toString: 1 } });
    expect(
      errorOf(() => parseTemplate('heat_template_version: 2016-10-14\nresources:\n  r: {type: x, deletion_policy: valueOf}\n')).message,
    ).toContain('Invalid deletion policy "valueOf"');
    const registry = parseEnvironment('resource_registry:\n  "My::A": a.yaml\n').environment.resourceRegistry;
    expect(resolveResourceType(registry, 'My::B', { resourceName: 'toString' })).toEqual({
      kind: 'plugin',
      type: 'My::B',
      chain: ['My::B'],
    });
    const instance = instantiateTemplate(parseTemplate('heat_template_version: 2016-10-14\n'));
    expect(errorOf(() => instance.evaluateOutput('toString')).code).toBe('STOKER_TEMPLATE_INVALID');
    expect(instance.outputDependencies('toString')).toEqual([]);
  });
});

describe('values that are objects without a prototype (passed in as objects)', () => {
  it('are shown in messages without a TypeError', () => {
    const bare = Object.create(null) as Record<string, JsonValue>;
    bare['x'] = 1;
    const e = errorOf(() => parseEnvironment({ parameter_merge_strategies: { p: bare } }));
    expect(e.code).toBe('STOKER_ENVIRONMENT_INVALID');
    expect(e.message).toContain('{"x":1}');
  });
});
