/**
 * JSON given on the command line (`--args`, `--payload`). A shell quoting slip is the most
 * common failure, so a parse error says which flag, what was expected, and where (line,
 * column and the text around it). V8's own messages do not always carry a position, so a
 * small scanner locates the error when JSON.parse fails.
 */
import { readFileSync } from 'node:fs';
import type { JsonValue } from '../core/json.js';
import { ValidationError } from '../errors.js';

/**
 * Parses a flag's JSON text; `@path` reads the JSON from a file.
 *
 * @example
 * ```ts
 * parseJsonFlag('--args', '{"orderId": 42}'); // { orderId: 42 }
 * parseJsonFlag('--args', '{orderId: 42}');   // throws: --args is not valid JSON: expected a double-quoted property name at line 1, column 2 …
 * ```
 */
export function parseJsonFlag(flag: string, text: string): JsonValue {
  let source = text;
  let where = flag;
  if (text.startsWith('@')) {
    const file = text.slice(1);
    try {
      source = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ValidationError('STOKER_INPUT_INVALID_JSON', `${flag} names file ${file}, which cannot be read: ${(e as Error).message}`, {
        details: { flag, file },
      });
    }
    where = `${flag} (file ${file})`;
  }
  try {
    return JSON.parse(source) as JsonValue;
  } catch (e) {
    const found = locateJsonError(source);
    const { line, column } = lineAndColumn(source, found.pos);
    throw new ValidationError(
      'STOKER_INPUT_INVALID_JSON',
      `${where} is not valid JSON: ${found.problem} at line ${line}, column ${column}, near ${JSON.stringify(excerpt(source, found.pos))}${found.hint ? ` (${found.hint})` : ''}`,
      { cause: e, details: { flag, line, column, position: found.pos } },
    );
  }
}

/** Parses a flag's JSON that must be an object (run arguments). */
export function parseJsonObjectFlag(flag: string, text: string): Record<string, JsonValue> {
  const value = parseJsonFlag(flag, text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new ValidationError('STOKER_INPUT_INVALID_JSON', `${flag} must be a JSON object like '{"name": "value"}', got ${kind}`, {
      details: { flag },
    });
  }
  return value;
}

function lineAndColumn(text: string, pos: number): { line: number; column: number } {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}

function excerpt(text: string, pos: number): string {
  const start = Math.max(0, pos - 15);
  const end = Math.min(text.length, pos + 15);
  return `${start > 0 ? '…' : ''}${text.slice(start, end)}${end < text.length ? '…' : ''}`;
}

interface JsonProblem {
  pos: number;
  problem: string;
  hint?: string;
}

class Stop {
  constructor(readonly found: JsonProblem) {}
}

/** Finds the first syntax error of `text` (which JSON.parse rejected). */
export function locateJsonError(text: string): JsonProblem {
  let i = 0;
  const fail = (problem: string, at = i, hint?: string): never => {
    throw new Stop(hint === undefined ? { pos: at, problem } : { pos: at, problem, hint });
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const unexpected = (expected: string): never => {
    if (i >= text.length) return fail(`unexpected end of input, expected ${expected}`);
    const c = text[i]!;
    const hint =
      c === "'" ? 'JSON strings and names need double quotes; quote the whole argument in single quotes in the shell' : undefined;
    return fail(`unexpected character ${JSON.stringify(c)}, expected ${expected}`, i, hint);
  };
  const string = (): void => {
    const start = i;
    i++;
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text[i]!;
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const n = text[i + 1];
        if (n !== undefined && '"\\/bfnrt'.includes(n)) i += 2;
        else if (n === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail('invalid escape in string');
        continue;
      }
      if (c.charCodeAt(0) < 0x20) fail('unescaped control character in string');
      i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') unexpected('a double-quoted property name');
        string();
        ws();
        if (text[i] !== ':') unexpected("':' after the property name");
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === '}') fail('trailing comma before "}"', i);
          continue;
        }
        if (text[i] === '}') return void i++;
        unexpected("',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === ']') fail('trailing comma before "]"', i);
          continue;
        }
        if (text[i] === ']') return void i++;
        unexpected("',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const literal of ['true', 'false', 'null']) {
      if (c === literal[0]) {
        if (text.startsWith(literal, i)) return void (i += literal.length);
        fail(`invalid literal (expected ${literal})`);
      }
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
      m.lastIndex = i;
      const found = m.exec(text);
      if (!found) fail('invalid number');
      i = m.lastIndex;
      if (i < text.length && /[0-9.eE+-]/.test(text[i]!)) fail('invalid number');
      return;
    }
    unexpected('a JSON value');
  };
  try {
    value();
    ws();
    if (i < text.length) fail('unexpected text after the JSON value');
    return { pos: 0, problem: 'invalid JSON' };
  } catch (e) {
    if (e instanceof Stop) return e.found;
    throw e;
  }
}
