/**
 * docs/security.md §2.9 for the template layer: alias bombs under every field, deep and oversized
 * input, too many resources, cycles, prototype keys, hostile names, get_file outside the files
 * map, ReDoS in constraints, and a secret canary that must not appear in any error.
 */
import { describe, expect, it } from 'vitest';
import { isStokerError } from '../../../../src/errors.js';
import { instantiateTemplate, parseEnvironment, parseTemplate } from '../../../../src/orchestration/template/index.js';

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

  it('never reads a file outside the files map', () => {
    for (const path of ['/etc/passwd', '../../x', 'file:///etc/passwd', '%2e%2e/x']) {
      const text = `heat_template_version: 2016-10-14\nresources:\n  r: {type: x, properties: {p: {get_file: '${path}'}}}\n`;
      expect(errorOf(() => parseTemplate(text, { files: {} })).message).toContain(`get_file path: ${path}`);
      const instance = instantiateTemplate(parseTemplate(text));
      expect(errorOf(() => instance.evaluateResource('r')).message).toContain(`get_file path: ${path}`);
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
