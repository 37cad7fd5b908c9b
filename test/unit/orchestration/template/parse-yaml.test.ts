import { describe, expect, it } from 'vitest';
import { isStokerError } from '../../../../src/errors.js';
import {
  DEFAULT_TEMPLATE_LIMITS,
  parseTemplate,
  parseYamlMapping,
  resolveTemplateLimits,
} from '../../../../src/orchestration/template/index.js';

const options = {
  label: 'template',
  invalidCode: 'STOKER_TEMPLATE_INVALID' as const,
  limits: DEFAULT_TEMPLATE_LIMITS,
  notMappingMessage: 'not a mapping',
};
const parse = (text: string, limits = DEFAULT_TEMPLATE_LIMITS) => parseYamlMapping(text, { ...options, limits }).value;

function errorOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isStokerError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an error');
}

describe('parseYamlMapping', () => {
  it('keeps heat_template_version a string (YAML 1.2 core schema) and records the plain source', () => {
    const parsed = parseYamlMapping('heat_template_version: 2013-05-23\nx: 2013-05-23T10:00:00\n', options);
    expect(parsed.value).toEqual({ heat_template_version: '2013-05-23', x: '2013-05-23T10:00:00' });
    expect(parsed.topLevelSource['heat_template_version']).toBe('2013-05-23');
  });

  it('reads YAML 1.1 words as strings (core schema) and keeps key order', () => {
    expect(parse('b: yes\na: on\nc: 0x10\nd: ~\n')).toEqual({ b: 'yes', a: 'on', c: 16, d: null });
    expect(Object.keys(parse('z: 1\na: 2\nm: 3\n'))).toEqual(['z', 'a', 'm']);
  });

  it('parses JSON text, tabs included', () => {
    expect(parse('{\n\t"heat_template_version": "2016-10-14",\n\t"resources": {}\n}')).toEqual({
      heat_template_version: '2016-10-14',
      resources: {},
    });
  });

  it('treats empty text and a null document as an empty mapping, like Heat', () => {
    expect(parse('')).toEqual({});
    expect(parse('# just a comment\n')).toEqual({});
  });

  it('rejects a top level that is not a mapping', () => {
    expect(errorOf(() => parse('- a\n- b\n'))).toEqual({ code: 'STOKER_TEMPLATE_INVALID', message: 'not a mapping' });
    expect(errorOf(() => parse('just text'))).toMatchObject({ code: 'STOKER_TEMPLATE_INVALID' });
  });

  it('names the line and column of malformed YAML', () => {
    const e = errorOf(() => parse('a: 1\nb: [1, 2\nc: 3\n'));
    expect(e.code).toBe('STOKER_TEMPLATE_INVALID');
    expect(e.message).toMatch(/^template line \d+, column \d+: /);
    expect(errorOf(() => parse('a: 1\n  b: 2\n')).message).toBe(
      'template line 1, column 4: Nested mappings are not allowed in compact mappings',
    );
  });

  it('rejects duplicate keys, also 1 and "1", with their position', () => {
    expect(errorOf(() => parse('a: 1\nb: 2\na: 3\n')).message).toMatch(/^template line 3, column 1: .*(unique|duplicate)/i);
    expect(errorOf(() => parse("x:\n  1: a\n  '1': b\n")).message).toBe('template line 3, column 3: duplicate key "1" (at x)');
  });

  it('rejects __proto__, constructor and prototype keys', () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      expect(errorOf(() => parse(`a:\n  ${key}: {polluted: true}\n`))).toMatchObject({ code: 'STOKER_INPUT_FORBIDDEN_KEY' });
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('rejects control characters, non-finite numbers, unsafe integers, multiple documents and unknown tags', () => {
    expect(errorOf(() => parse('a: "x\\0y"\n')).message).toContain('control character U+0000');
    expect(errorOf(() => parse('a: "\\e[0m"\n')).message).toContain('U+001B');
    expect(errorOf(() => parse('a: .inf\n')).message).toContain('not finite');
    expect(errorOf(() => parse('a: 99999999999999999999\n')).message).toContain('safe range');
    expect(errorOf(() => parse('a: 1\n---\nb: 2\n')).message).toContain('multiple documents');
    expect(errorOf(() => parse('a: !Ref x\n')).message).toContain('Unresolved tag');
    expect(parse('a: "tab\\tand\\nnewline"\n')).toEqual({ a: 'tab\tand\nnewline' });
  });

  it('accepts merge keys (<<) as PyYAML does; explicit keys win', () => {
    expect(parse('base: &b {x: 1, y: 2}\nres:\n  <<: *b\n  x: 3\n')).toEqual({ base: { x: 1, y: 2 }, res: { x: 3, y: 2 } });
  });

  it('rejects unknown aliases and complex keys', () => {
    expect(errorOf(() => parse('a: *nope\n')).message).toMatch(/alias|nope/i);
    expect(errorOf(() => parse('? [a, b]\n: c\n')).message).toContain('mapping keys must be strings');
  });

  it('refuses the 342-byte billion-laughs document quickly', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      levels.push(`${cur}: &${cur} [${new Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const bomb = levels.join('\n');
    expect(errorOf(() => parse(bomb)).code).toBe('STOKER_TEMPLATE_TOO_LARGE');
  });

  it('counts every alias as a copy against the node budget', () => {
    const small = resolveTemplateLimits({ maxNodes: 50 });
    const text = `a: &a [${new Array(20).fill('1').join(',')}]\nb: [*a, *a, *a]\n`;
    expect(errorOf(() => parse(text, small))).toMatchObject({ code: 'STOKER_TEMPLATE_TOO_LARGE' });
    expect(parse(text)['b']).toHaveLength(3);
    const fewAliases = resolveTemplateLimits({ maxAliasCount: 2 });
    expect(errorOf(() => parse('a: &a 1\nb: [*a, *a, *a]\n', fewAliases)).message).toContain('more than 2 aliases');
  });

  it('gives a clean error, not a RangeError, for 100 000-deep flow and block nesting and deep JSON', () => {
    const n = 100_000;
    for (const text of ['a: ' + '['.repeat(n) + ']'.repeat(n), '- '.repeat(n) + 'x', '{"a":'.repeat(n) + '1' + '}'.repeat(n)]) {
      const e = errorOf(() => parse(text, resolveTemplateLimits({ maxTemplateBytes: 2_000_000 })));
      expect(e.code).toBe('STOKER_INPUT_TOO_DEEP');
      expect(e.message).toMatch(/^template line 1, column \d+: the document nests deeper than the limit/);
    }
  });

  it('enforces the exact depth limit after composing', () => {
    const nested = (depth: number) => 'a: ' + '['.repeat(depth - 1) + ']'.repeat(depth - 1);
    expect(() => parse(nested(64))).not.toThrow();
    expect(errorOf(() => parse(nested(65))).code).toBe('STOKER_INPUT_TOO_DEEP');
    const block = (depth: number) => Array.from({ length: depth }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n') + ' 1\n';
    expect(() => parse(block(64))).not.toThrow();
    expect(errorOf(() => parse(block(65))).code).toBe('STOKER_INPUT_TOO_DEEP');
  });

  it('refuses text over the size limit before parsing, with a configurable limit', () => {
    const big = `a: "${'x'.repeat(DEFAULT_TEMPLATE_LIMITS.maxTemplateBytes)}"`;
    expect(errorOf(() => parse(big))).toMatchObject({ code: 'STOKER_TEMPLATE_TOO_LARGE' });
    expect(errorOf(() => parse('a: 12345', resolveTemplateLimits({ maxTemplateBytes: 5 }))).message).toBe(
      'The template is 8 bytes, over the maximum of 5 bytes',
    );
  });
});

describe('parseTemplate on objects', () => {
  it('applies the same guards to an already-parsed template', () => {
    const deep: Record<string, unknown> = {};
    let cursor = deep;
    for (let i = 0; i < 100; i++) cursor = (cursor['a'] = {}) as Record<string, unknown>;
    expect(
      errorOf(() =>
        parseTemplate({ heat_template_version: '2016-10-14', description: 'x', resources: {}, outputs: { o: { value: deep } } } as never),
      ).code,
    ).toBe('STOKER_INPUT_TOO_DEEP');
    const polluted = JSON.parse('{"heat_template_version": "2016-10-14", "resources": {"__proto__": {"type": "x"}}}') as never;
    expect(errorOf(() => parseTemplate(polluted)).code).toBe('STOKER_INPUT_FORBIDDEN_KEY');
  });
});

describe('a version read as a YAML 1.1 date', () => {
  it('is taken back to its text when the template comes as an object', () => {
    const fromYaml11 = { heat_template_version: new Date('2013-05-23T00:00:00Z'), resources: {} } as never;
    expect(parseTemplate(fromYaml11).version.date).toBe('2013-05-23');
  });
});
