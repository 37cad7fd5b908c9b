/**
 * docs/security.md §2.9 for the template layer: the hostile-input cases that cut across files.
 *
 * Here: alias bombs under every field of a template and of an environment (S1); 100 000-deep YAML
 * and JSON and a template of 512 KiB + 1 (S2, S3); hostile names (`../`, NUL, U+202E, CR LF) and
 * how messages show user-written text, escaped and shortened (S5); `get_file` outside the files
 * map (S7); and a hidden canary that must not appear in any error (S9).
 *
 * Elsewhere: 1001 resources in parse-template.test.ts ("limits resources per stack"); cycles of
 * length 1, 2 and 1000 in dependencies.test.ts; `__proto__` and duplicate keys in
 * parse-yaml.test.ts; ReDoS patterns in linear-regex.test.ts and parameters.test.ts ("checks
 * allowed_pattern in linear time"); budgets that run out and recursion that would overflow, as
 * coded errors, in error-codes.test.ts; random documents and values in fuzz.test.ts; template
 * resources that include each other and nested-stack depth in nested-templates.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { isStokerError } from '../../../../src/errors.js';
import {
  instantiateTemplate,
  parseEnvironment,
  parseTemplate,
  resolveParameters,
  resolveResourceType,
} from '../../../../src/orchestration/template/index.js';

function errorOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isStokerError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an error');
}

const bombLevels = (): string[] => {
  const lines = ['x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i < 9; i++) lines.push(`x${i}: &x${i} [${new Array(9).fill(`*x${i - 1}`).join(', ')}]`);
  return lines;
};

describe('bad inputs', () => {
  it('refuses an alias bomb nested under every field of a template and of an environment', () => {
    const bomb = bombLevels();
    const indent = (lines: string[], n: number) => lines.map((l) => ' '.repeat(n) + l).join('\n');
    const places = [
      `heat_template_version: 2016-10-14\ndescription:\n${indent(bomb, 2)}\n`,
      `heat_template_version: 2016-10-14\nparameters:\n  p:\n    type: json\n    default:\n${indent(bomb, 6)}\n`,
      `heat_template_version: 2016-10-14\nresources:\n  r:\n    type: x\n    properties:\n${indent(bomb, 6)}\n`,
      `heat_template_version: 2016-10-14\noutputs:\n  o:\n    value:\n${indent(bomb, 6)}\n`,
      `heat_template_version: 2016-10-14\nconditions:\n  c:\n    equals:\n      - 1\n      -\n${indent(bomb, 8).replace(/^ {8}x0/, '        - x0')}\n`,
    ];
    for (const text of places)
      expect(errorOf(() => parseTemplate(text)).code, text.slice(0, 60)).toMatch(/STOKER_TEMPLATE_(TOO_LARGE|INVALID)/);
    expect(errorOf(() => parseEnvironment(`parameter_defaults:\n${indent(bomb, 2)}\n`)).code).toBe('STOKER_TEMPLATE_TOO_LARGE');
  });

  it('refuses 100 000-deep YAML and JSON templates and a template of 512 KiB + 1', () => {
    const deep = 100_000;
    expect(
      errorOf(() => parseTemplate(`heat_template_version: 2016-10-14\ndescription: ${'['.repeat(deep)}${']'.repeat(deep)}`)).code,
    ).toBe('STOKER_INPUT_TOO_DEEP');
    expect(
      errorOf(() => parseTemplate(`{"heat_template_version": "2016-10-14", "description": ${'['.repeat(deep)}${']'.repeat(deep)}}`)).code,
    ).toBe('STOKER_INPUT_TOO_DEEP');
    const big = `heat_template_version: 2016-10-14\ndescription: "${'x'.repeat(524_288)}"\n`;
    expect(errorOf(() => parseTemplate(big)).code).toBe('STOKER_TEMPLATE_TOO_LARGE');
  });

  it('refuses hostile names', () => {
    for (const name of ['"a/../b"', '"x\\0y"', '"a\\u202Eb"', '"a\\r\\nb"']) {
      expect(errorOf(() => parseTemplate(`heat_template_version: 2016-10-14\nresources:\n  ${name}: {type: x}\n`)).code, name).toBe(
        'STOKER_TEMPLATE_INVALID',
      );
    }
    // the wildcard characters of AMQP and fnmatch are only data here
    expect(Object.keys(parseTemplate('heat_template_version: 2016-10-14\noutputs:\n  "*#": {value: 1}\n').outputs)).toEqual(['*#']);
  });

  it('shows user-written text in messages escaped and shortened, never raw', () => {
    // eslint-disable-next-line no-control-regex
    const RAW = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
    const hot = (body: string) => `heat_template_version: 2016-10-14\n${body}`;
    const cases: [string, () => unknown, string][] = [
      ['resource name with CR LF', () => parseTemplate(hot('resources:\n  "a\\r\\nb": {type: x}\n')), '"a\\u{d}\\u{a}b"'],
      ['resource name with U+202E', () => parseTemplate(hot('resources:\n  "a\\u202Eb": {type: x}\n')), '"a\\u{202e}b"'],
      ['output name with U+2028', () => parseTemplate(hot('outputs:\n  "a\\u2028b": {value: 1}\n')), '"a\\u{2028}b"'],
      [
        'parameter name with NUL',
        () => parseTemplate({ heat_template_version: '2016-10-14', parameters: { 'a\0b': { type: 'string' } } }),
        '"a\\u{0}b"',
      ],
      [
        'resource keyword',
        () => parseTemplate(hot('resources:\n  r: {type: x, "ty\\u202Epe": 1}\n')),
        '"ty\\u{202e}pe" is not a valid keyword',
      ],
      ['template section', () => parseTemplate(hot('"evil\\nsection": 1\n')), 'The template section is invalid: evil\\u{a}section'],
      ['depends_on', () => parseTemplate(hot('resources:\n  r: {type: x, depends_on: "x\\u202Ey"}\n')), 'reference "x\\u{202e}y"'],
      [
        'get_file key',
        () => parseTemplate(hot('resources:\n  r: {type: x, properties: {p: {get_file: "a\\u202E\\nb"}}}\n'), { files: {} }),
        'get_file path: a\\u{202e}\\u{a}b',
      ],
      [
        'path through a key',
        () => parseTemplate(hot('resources:\n  r: {type: x, properties: {"k\\u202E": {get_attr: x}}}\n')),
        'resources.r.properties.k\\u{202e}: ',
      ],
      [
        'parameter given by the user',
        () => resolveParameters(parseTemplate(hot('')), { parameters: { 'x\u202E\r\ny': 1 } }),
        'The Parameter (x\\u{202e}\\u{d}\\u{a}y) was not defined',
      ],
      ['environment section', () => parseEnvironment('"evil\\u202E": {}\n'), 'wrong section "evil\\u{202e}"'],
      [
        'registry file',
        () =>
          resolveResourceType(parseEnvironment('resource_registry:\n  "My::T": "a\\u202E.yaml"\n').environment.resourceRegistry, 'My::T'),
        'Could not fetch the template "a\\u{202e}.yaml"',
      ],
      ['file name used as a label', () => parseTemplate('a: [', { label: 'evil\u202E\n.yaml' }), 'evil\\u{202e}\\u{a}.yaml line 1'],
    ];
    for (const [what, f, shown] of cases) {
      const e = errorOf(f);
      expect(e.message, what).toContain(shown);
      expect(e.message, what).not.toMatch(RAW);
    }
  });

  it('caps very long names and keys in messages', () => {
    const long = 'n'.repeat(10_000);
    // objects: YAML itself refuses implicit keys over 1024 characters
    const version = { heat_template_version: '2016-10-14' };
    for (const f of [
      () => parseTemplate({ ...version, resources: { [long]: { type: 'x' } } }),
      () => parseTemplate({ ...version, [long]: 1 }),
      () => parseTemplate({ ...version, resources: { r: { type: 'x', depends_on: long } } }),
      () => parseTemplate({ ...version, resources: { r: { type: 'x', [long]: 1 } } }),
      () => resolveParameters(parseTemplate(version), { parameters: { [long]: 1 } }),
      () => parseEnvironment({ [long]: {} }),
      // many unknown parameters: the first 20 are named
      () =>
        resolveParameters(parseTemplate(version), {
          parameters: Object.fromEntries([long, ...Array.from({ length: 200 }, (_, i) => `p${i}`)].map((n) => [n, 1])),
        }),
    ]) {
      const e = errorOf(f);
      expect(e.message.length).toBeLessThan(600);
      expect(e.message).toContain('n'.repeat(80) + '…');
    }
  });

  it('never reads a file outside the files map', () => {
    for (const path of ['/etc/passwd', '../../x', 'file:///etc/passwd', '%2e%2e/x']) {
      const text = `heat_template_version: 2016-10-14\nresources:\n  r: {type: x, properties: {p: {get_file: '${path}'}}}\n`;
      expect(errorOf(() => parseTemplate(text, { files: {} })).message).toContain(`get_file path: ${path}`);
      const instance = instantiateTemplate(parseTemplate(text));
      expect(errorOf(() => instance.evaluateResource('r')).message).toContain(`get_file path: ${path}`);
    }
  });

  it('masks a hidden value where a message escapes it or cuts it short', () => {
    const text = `heat_template_version: 2017-09-01
parameters:
  pw: {type: string, hidden: true}
resources:
  whole: {type: x, properties: {p: {get_file: {get_param: pw}}}}
  inside: {type: x, properties: {p: {get_file: {list_join: ['', ['${'x'.repeat(70)}', {get_param: pw}]]}}}}
`;
    const template = parseTemplate(text);
    for (const secret of [`CANARY\n${'s'.repeat(100)}`, `CANARY\u202E-${'t'.repeat(20)}`]) {
      const instance = instantiateTemplate(template, { parameters: { pw: secret } });
      for (const name of ['whole', 'inside']) {
        const e = errorOf(() => instance.evaluateResource(name));
        expect(e.message, name).not.toContain('CANARY');
        expect(e.message, name).not.toContain('sss');
        expect(e.message, name).toContain('******');
        expect(e.message.length, name).toBeLessThan(300);
      }
    }
  });

  it('keeps a hidden canary out of every error', () => {
    const canary = 'CANARY-7d1e-secret';
    const text = `heat_template_version: 2017-09-01
parameters:
  pw: {type: string, hidden: true}
resources:
  split: {type: x, properties: {p: {str_split: [{get_param: pw}, 1]}}}
  file: {type: x, properties: {p: {get_file: {get_param: pw}}}}
  join: {type: x, properties: {p: {list_join: [',', [{get_param: pw}, 1]]}}}
  digest: {type: x, properties: {p: {digest: [{get_param: pw}, x]}}}
  vstrict: {type: x, properties: {p: {str_replace_vstrict: {template: {get_param: pw}, params: {nothere: x}}}}}
outputs:
  o: {value: {str_split: [',', {get_param: pw}, 9]}}
`;
    const instance = instantiateTemplate(parseTemplate(text), { parameters: { pw: canary } });
    const runtime = { getResource: () => 'id', getAttr: () => null };
    for (const name of ['split', 'file', 'join', 'digest', 'vstrict']) {
      const message = (() => {
        try {
          instance.evaluateResource(name, runtime);
          return 'no error';
        } catch (e) {
          return (e as Error).message;
        }
      })();
      expect(message, name).not.toContain(canary);
      expect(message, name).not.toBe('no error');
    }
    const output = instance.evaluateOutput('o', runtime);
    expect('error' in output && output.error).not.toContain(canary);
    // a resource name computed from the secret is checked when the stack is instantiated
    const ref = parseTemplate(
      'heat_template_version: 2017-09-01\nparameters:\n  pw: {type: string, hidden: true}\nresources:\n  r: {type: x, properties: {p: {get_attr: [{get_param: pw}, a]}}}\n',
    );
    const e = errorOf(() => instantiateTemplate(ref, { parameters: { pw: canary } }));
    expect(e.message).toBe('resources.r.properties: The specified reference "******" is not a resource of this template');
  });
});
