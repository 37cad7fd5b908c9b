import { describe, expect, it } from 'vitest';
import { compilePattern } from '../../../../src/orchestration/template/index.js';

/** Python: re.match(pattern, value) and match.end() == len(value). */
const whole = (pattern: string, value: string) => compilePattern(pattern).matchesWhole(value);

describe('compilePattern', () => {
  it("matches like Python's re.match followed by Heat's end-of-value check", () => {
    const cases: [string, string, boolean][] = [
      ['[a-zA-Z0-9]+', 'Abc123', true],
      ['[a-zA-Z0-9]+', 'Abc-12', false],
      ['[A-Z]+[a-zA-Z0-9]*', 'abc123', false],
      // the match Python prefers ends at 1, so Heat rejects "ab" although a|ab could match it all
      ['a|ab', 'ab', false],
      ['ab|a', 'ab', true],
      ['(a|ab)(c|bcd)', 'abcd', true],
      ['x*', '', true],
      ['\\d{3}-\\d{4}', '555-1234', true],
      ['a{2,3}', 'aaaa', false],
      ['a{2,3}?', 'aa', true],
      ['a{,2}', 'aa', true],
      ['a{', 'a{', true],
      ['.*', 'a\nb', false],
      ['[a-z]+$', 'abc\n', false],
      ['\\w+', 'héllo_1', true],
      ['\\s*\\S+', '  x', true],
      ['(?P<name>a)(?:b)', 'ab', true],
      ['[]a]', ']', true],
      ['[a-]', '-', true],
      ['[^0-9]+', 'abc', true],
      ['^abc\\Z', 'abc', true],
      ['\\bfoo\\b', 'foo', true],
      ['\\x41\\u0042', 'AB', true],
    ];
    for (const [pattern, value, expected] of cases) expect(whole(pattern, value), `${pattern} ~ ${JSON.stringify(value)}`).toBe(expected);
  });

  it('names the constructs it does not support', () => {
    expect(() => compilePattern('(?=a)')).toThrowError(/lookaround, backreference or flags/);
    expect(() => compilePattern('(a)\\1')).toThrowError('backreferences are not supported');
    expect(() => compilePattern('(?i)a')).toThrowError(/not supported/);
    expect(() => compilePattern('a*+')).toThrowError('possessive quantifiers are not supported');
    expect(() => compilePattern('(a')).toThrowError('missing ), unterminated subpattern');
    expect(() => compilePattern('[a')).toThrowError('unterminated character set');
    expect(() => compilePattern('*a')).toThrowError(/nothing to repeat/);
    expect(() => compilePattern('a{5000}')).toThrowError(/above 1000/);
  });

  it('runs in linear time on the classic ReDoS patterns', () => {
    expect(whole('(a+)+$', `${'a'.repeat(100_000)}b`)).toBe(false);
    expect(whole('(a|aa)*c', 'a'.repeat(100_000))).toBe(false);
    expect(whole('(x+x+)+y', 'x'.repeat(50_000))).toBe(false);
    expect(whole('^(\\w+\\s?)*$', `${'word '.repeat(10_000)}!`)).toBe(false);
  });

  it('stops at its step budget', () => {
    expect(() => compilePattern('(a|b|c|d)*').matchesWhole('abcd'.repeat(1000), 100)).toThrowError(/too expensive/);
  });
});
