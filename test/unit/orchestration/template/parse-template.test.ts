import { describe, expect, it } from 'vitest';
import { isStokerError } from '../../../../src/errors.js';
import { SUPPORTED_TEMPLATE_VERSIONS, parseTemplate, templateVersion } from '../../../../src/orchestration/template/index.js';

function errorOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isStokerError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an error');
}
const hot = (version: string, body: string) => `heat_template_version: ${version}\n${body}`;

describe('template versions', () => {
  it('accepts every HOT version and its release name', () => {
    expect(SUPPORTED_TEMPLATE_VERSIONS.map((v) => v.date)).toEqual([
      '2013-05-23',
      '2014-10-16',
      '2015-04-30',
      '2015-10-15',
      '2016-04-08',
      '2016-10-14',
      '2017-02-24',
      '2017-09-01',
      '2018-03-02',
      '2018-08-31',
      '2021-04-16',
    ]);
    for (const [name, date] of [
      ['newton', '2016-10-14'],
      ['ocata', '2017-02-24'],
      ['pike', '2017-09-01'],
      ['queens', '2018-03-02'],
      ['rocky', '2018-08-31'],
      ['wallaby', '2021-04-16'],
    ]) {
      expect(templateVersion(name).date).toBe(date);
      expect(parseTemplate(hot(name!, 'resources: {}')).version.date).toBe(date);
    }
  });

  it('rejects an unknown version, a missing one and CFN templates', () => {
    expect(errorOf(() => parseTemplate(hot('2012-12-12', '')))).toMatchObject({
      code: 'STOKER_TEMPLATE_INVALID',
      message: expect.stringContaining('The template version is invalid: "2012-12-12"') as string,
    });
    expect(errorOf(() => parseTemplate('resources: {}')).message).toBe('Template format version not found.');
    expect(errorOf(() => parseTemplate('AWSTemplateFormatVersion: 2010-09-09')).message).toContain(
      'CloudFormation-format templates are not supported',
    );
  });

  it('keeps a quoted or unquoted version and the text as written', () => {
    expect(parseTemplate("heat_template_version: '2013-05-23'").versionText).toBe('2013-05-23');
    expect(parseTemplate('heat_template_version: pike').versionText).toBe('pike');
  });
});

describe('sections and keys per version', () => {
  it('rejects unknown top-level sections, and conditions before 2016-10-14', () => {
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'resourcez: {}'))).message).toBe('The template section is invalid: resourcez');
    expect(errorOf(() => parseTemplate(hot('2016-04-08', 'conditions: {}'))).message).toContain(
      'The template section is invalid: conditions',
    );
    expect(() => parseTemplate(hot('2016-10-14', 'conditions: {c: true}'))).not.toThrow();
  });

  it('accepts empty sections as Heat does', () => {
    const t = parseTemplate(hot('2016-10-14', 'description:\nparameters:\nresources:\noutputs:\nconditions:\n'));
    expect([t.resources, t.outputs, t.parameters, t.conditions]).toEqual([{}, {}, {}, {}]);
  });

  it('checks resource keys per version (condition and external_id from 2016-10-14)', () => {
    const res = (extra: string) => `resources:\n  r:\n    type: OS::Heat::None\n    ${extra}\n`;
    expect(errorOf(() => parseTemplate(hot('2016-04-08', 'conditions: {}')))).toMatchObject({ code: 'STOKER_TEMPLATE_INVALID' });
    expect(errorOf(() => parseTemplate(hot('2016-04-08', res('condition: true')))).message).toBe(
      'resources.r: "condition" is not a valid keyword inside a resource definition (it needs heat_template_version 2016-10-14 or later)',
    );
    expect(errorOf(() => parseTemplate(hot('2015-10-15', res('external_id: abc')))).message).toContain(
      '"external_id" is not a valid keyword',
    );
    expect(parseTemplate(hot('2016-10-14', res('external_id: abc'))).resources['r']?.externalId).toEqual({ kind: 'literal', value: 'abc' });
    expect(errorOf(() => parseTemplate(hot('2013-05-23', res('Properties: {}')))).message).toBe(
      'resources.r: "Properties" is not a valid keyword inside a resource definition',
    );
  });

  it('checks resource fields', () => {
    const r = (body: string) => parseTemplate(hot('2016-10-14', `resources:\n  r:\n${body}`));
    expect(errorOf(() => r('    properties: {}\n')).message).toBe('resources.r: Resource r is missing "type"');
    expect(errorOf(() => r('    type: [a]\n')).message).toBe('resources.r.type: Resource r type must be string');
    expect(errorOf(() => r('    type: x\n    properties: [1]\n')).message).toBe(
      'resources.r.properties: Resource r properties type must be object',
    );
    expect(errorOf(() => r('    type: x\n    depends_on: {a: b}\n')).message).toBe(
      'resources.r.depends_on: Resource r depends_on type must be list or string',
    );
    expect(errorOf(() => r('    type: x\n    depends_on: nope\n')).message).toContain('"nope"');
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'resources:\n  r:\n')))).toMatchObject({
      message: 'resources.r: Each resource must contain a type key.',
    });
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'resources: [a]')))).toMatchObject({
      message: 'resources: "resources" must contain a map of resource maps. Found a [list] instead',
    });
    expect(r('    type: x\n    properties: {get_param: OS::stack_name}\n').resources['r']?.properties?.kind).toBe('call');
    expect(r('    type: x\n    depends_on: [r2]\n  r2:\n    type: y\n').resources['r']?.dependsOn).toEqual(['r2']);
  });

  it('accepts Heat deletion policies, lower case from 2016-10-14', () => {
    const dp = (version: string, policy: string) =>
      parseTemplate(hot(version, `resources:\n  r:\n    type: x\n    deletion_policy: ${policy}\n`));
    expect(dp('2015-10-15', 'Retain').resources['r']?.deletionPolicy).toEqual({ kind: 'literal', value: 'Retain' });
    expect(dp('2016-10-14', 'snapshot').resources['r']?.deletionPolicy).toEqual({ kind: 'literal', value: 'Snapshot' });
    expect(errorOf(() => dp('2015-10-15', 'retain')).message).toBe('resources.r.deletion_policy: Invalid deletion policy "retain"');
    expect(errorOf(() => dp('2016-10-14', 'Keep')).message).toContain('Invalid deletion policy "Keep"');
    expect(dp('2016-10-14', '{get_param: p}\nparameters: {p: {type: string, default: Delete}}').resources['r']?.deletionPolicy?.kind).toBe(
      'call',
    );
  });

  it('checks outputs (condition from 2016-10-14)', () => {
    expect(errorOf(() => parseTemplate(hot('2015-10-15', 'outputs:\n  o:\n    value: 1\n    condition: true\n'))).message).toContain(
      '"condition" is not a valid keyword inside a output definition',
    );
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'outputs:\n  o:\n    description: x\n'))).message).toBe(
      'outputs.o: Each output definition must contain a value key.',
    );
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'outputs:\n  o: 5\n'))).message).toBe(
      'outputs.o: Output definitions must be a map. Found a number instead',
    );
    expect(parseTemplate(hot('2016-10-14', 'outputs:\n  o:\n    value: null\n')).outputs['o']?.value).toEqual({
      kind: 'literal',
      value: null,
    });
  });

  it('checks condition definitions and references', () => {
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'conditions:\n  c: some_string\n'))).message).toBe(
      'conditions.c: The definition of condition "c" is invalid: "some_string"',
    );
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'resources:\n  r:\n    type: x\n    condition: nope\n'))).message).toBe(
      'resources.r.condition: Invalid condition "nope"',
    );
    expect(
      errorOf(() => parseTemplate(hot('2016-10-14', 'conditions:\n  c: {get_attr: [r, a]}\nresources:\n  r: {type: x}\n'))).message,
    ).toBe('conditions.c: The function "get_attr" is not allowed in a condition');
    // contains is no function at all before 2017-09-01: a plain map, so not a condition
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'conditions:\n  c: {contains: [a, [a]]}\n'))).message).toContain(
      'The definition of condition "c" is invalid',
    );
    expect(errorOf(() => parseTemplate(hot('2017-09-01', 'conditions:\n  c: {str_split: [a, b]}\n'))).message).toContain(
      '"str_split" is not allowed in a condition',
    );
    expect(() => parseTemplate(hot('2017-09-01', 'conditions:\n  c: {contains: [a, [a]]}\n'))).not.toThrow();
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'outputs:\n  o: {value: {if: [nope, 1, 2]}}\n'))).message).toBe(
      'outputs.o.value: Invalid condition "nope"',
    );
  });

  it('checks names: Unicode is fine, control and bidi characters and "/" in resource names are not', () => {
    expect(Object.keys(parseTemplate(hot('2014-10-16', 'resources:\n  资源: {type: x}\n')).resources)).toEqual(['资源']);
    expect(errorOf(() => parseTemplate(hot('2014-10-16', 'resources:\n  "a/b": {type: x}\n'))).message).toContain(
      'resource names may not contain "/"',
    );
    expect(errorOf(() => parseTemplate(hot('2014-10-16', 'resources:\n  "a\\u202Eb": {type: x}\n'))).message).toContain('U+202E');
    expect(errorOf(() => parseTemplate(hot('2014-10-16', 'outputs:\n  "": {value: 1}\n'))).message).toContain('must not be empty');
  });

  it('limits resources per stack (1000 by default, configurable)', () => {
    const many = (n: number) => hot('2014-10-16', `resources:\n${Array.from({ length: n }, (_, i) => `  r${i}: {type: x}`).join('\n')}\n`);
    expect(Object.keys(parseTemplate(many(1000)).resources)).toHaveLength(1000);
    expect(errorOf(() => parseTemplate(many(1001)))).toMatchObject({
      code: 'STOKER_TEMPLATE_TOO_LARGE',
      message: 'resources: The template has 1001 resources, over the limit of 1000',
    });
    expect(errorOf(() => parseTemplate(many(3), { limits: { maxResources: 2 } })).code).toBe('STOKER_TEMPLATE_TOO_LARGE');
  });
});

describe('parameter schemas', () => {
  const p = (version: string, body: string) => parseTemplate(hot(version, `parameters:\n${body}`)).parameters;

  it('reads type, default, hidden, immutable, label, description, tags and constraints', () => {
    const params = p(
      '2018-03-02',
      `  pw:
    type: string
    label: Password
    description: the password
    default: Secret1
    hidden: true
    immutable: yes
    tags: [a, b]
    constraints:
      - length: {min: 6, max: 8}
        description: six to eight
      - allowed_pattern: '[A-Z][a-z0-9]*'
      - custom_constraint: nova.keypair
`,
    );
    expect(params['pw']).toMatchObject({
      type: 'string',
      label: 'Password',
      hidden: true,
      immutable: true,
      tags: ['a', 'b'],
      default: 'Secret1',
    });
    expect(params['pw']?.constraints.map((c) => c.kind)).toEqual(['length', 'allowed_pattern', 'custom_constraint']);
  });

  it('rejects what Heat rejects, with its messages', () => {
    const e = (version: string, body: string) => errorOf(() => p(version, body)).message;
    expect(e('2016-10-14', '  KeyName:\n    type: string\n    tags: [a]\n')).toContain("Invalid key 'tags' for parameter (KeyName)");
    expect(e('2018-03-02', '  KeyName:\n    type: string\n    tags: feature\n')).toBe(
      'parameters.KeyName: Tags property should be a list for parameter: KeyName',
    );
    expect(e('2016-10-14', '  x:\n    default: 1\n')).toBe('parameters.x: Missing parameter type for parameter: x');
    expect(e('2016-10-14', '  x:\n    type: integer\n')).toContain('Invalid type (integer)');
    expect(e('2016-10-14', '  x: 5\n')).toBe('parameters.x: Invalid parameter (x), expected a mapping');
    expect(e('2016-10-14', '  x:\n    type: number\n    constraints: {range: {min: 1}}\n')).toContain(
      'Invalid parameter constraints for parameter x, expected a list',
    );
    expect(e('2016-10-14', '  x:\n    type: number\n    constraints:\n      - modulo: {step: 2, offset: 1}\n')).toContain(
      'No constraint expressed',
    );
    expect(e('2017-02-24', '  x:\n    type: number\n    constraints:\n      - modulo: {step: 2, offset: 2}\n')).toContain(
      'offset must be smaller (by absolute value) than step.',
    );
    expect(e('2016-10-14', '  x:\n    type: number\n    constraints:\n      - range: {low: 1}\n')).toContain(
      "Invalid key 'low' for range constraint",
    );
    expect(e('2016-10-14', '  x:\n    type: string\n    constraints:\n      - length: {min: 1.5}\n')).toContain(
      'min/max length must be integral',
    );
    expect(e('2016-10-14', '  x:\n    type: string\n    constraints:\n      - range: {min: 1}\n')).toContain(
      "Parameter 'x' is invalid: Range constraint invalid for string",
    );
    expect(e('2016-10-14', '  x:\n    type: string\n    constraints:\n      - allowed_pattern: "(?=a)"\n')).toContain(
      'Invalid allowed_pattern',
    );
    expect(e('2016-10-14', '  x:\n    type: string\n    constraints:\n      - bogus: 1\n')).toContain(
      "Invalid key 'bogus' for parameter constraints",
    );
  });

  it('checks the default against the type and the constraints, hiding a hidden one', () => {
    const e = (body: string) => errorOf(() => p('2016-10-14', body)).message;
    expect(e('  n:\n    type: number\n    default: abc\n')).toBe(
      'parameters.n: Parameter \'n\' is invalid: Invalid default abc (Value "abc" is invalid for data type "number")',
    );
    expect(e('  s:\n    type: string\n    default: toolongvalue\n    hidden: true\n    constraints:\n      - length: {max: 3}\n')).toBe(
      "parameters.s: Parameter 's' is invalid: Invalid default ****** (length (12) is out of range (min: None, max: 3))",
    );
    expect(() =>
      p('2016-10-14', '  l:\n    type: comma_delimited_list\n    default: a,b\n    constraints:\n      - allowed_values: [a, b, c]\n'),
    ).not.toThrow();
  });

  it('validates parameter_groups', () => {
    const g = (groups: string) =>
      parseTemplate(hot('2016-10-14', `parameters:\n  a: {type: string}\n  b: {type: string}\nparameter_groups:\n${groups}`));
    expect(g('- label: one\n  parameters: [a, b]\n').parameterGroups).toEqual([
      { label: 'one', description: null, parameters: ['a', 'b'] },
    ]);
    expect(errorOf(() => g('- parameters: [a]\n- parameters: [a]\n')).message).toBe(
      'parameter_groups[1]: The a parameter must be assigned to one parameter group only.',
    );
    expect(errorOf(() => g('- parameters: [c]\n')).message).toBe(
      'parameter_groups[0]: The grouped parameter c does not reference a valid parameter.',
    );
    expect(errorOf(() => g('- label: x\n')).message).toBe('parameter_groups[0]: The parameters must be provided for each parameter group.');
    expect(errorOf(() => parseTemplate(hot('2016-10-14', 'parameter_groups: {a: 1}'))).message).toBe(
      'parameter_groups: The parameter_groups should be a list.',
    );
  });
});
