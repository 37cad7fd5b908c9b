/**
 * YAML/JSON text → plain JSON values, safely (docs/security.md S1–S3b).
 *
 * `yaml` (eemeli) with the YAML 1.2 core schema, so `2013-05-23` stays a string and no
 * custom tag constructs anything; merge keys (`<<`) are accepted because Heat's PyYAML
 * loader accepts them. The composed document is then converted by our own iterative walk,
 * never by `toJS()`, because that walk is where the budgets live: every alias counts as a
 * full copy against the node, depth and string-size budgets (an alias bomb is refused long
 * before it is materialised), keys must be scalars, duplicate keys (also `1` vs `'1'`) and
 * `__proto__`-style keys are refused, and so are non-finite numbers, integers outside the
 * safe range and control characters in strings.
 */
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { ErrorCode } from '../../errors.js';
import type { JsonObject, JsonValue } from '../../core/json.js';
import type { TemplateLimits } from './limits.js';
import { clipText, quoteText, showText, templateError } from './template-error.js';
import { checkYamlNesting } from './yaml-nesting.js';

/**
 * How to parse one document.
 *
 * @example
 * ```ts
 * const options: YamlParseOptions = { label: 'environment', invalidCode: 'STOKER_ENVIRONMENT_INVALID', limits };
 * ```
 */
export interface YamlParseOptions {
  /** names the document in messages: `template line 3, column 5: …` */
  label: string;
  /** the code for malformed input (size, depth and key errors have their own codes) */
  invalidCode: ErrorCode;
  limits: TemplateLimits;
  /** message when the top level is not a mapping */
  notMappingMessage: string;
}

/**
 * A parsed document: the plain value and, for top-level plain scalars, their source text
 * (so a version written as a YAML 1.1 date keeps its spelling).
 *
 * @example
 * ```ts
 * parseYamlMapping('heat_template_version: 2013-05-23', opts).topLevelSource['heat_template_version']; // '2013-05-23'
 * ```
 */
export interface ParsedYaml {
  value: JsonObject;
  topLevelSource: Record<string, string>;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
// C0 controls other than tab, line feed and carriage return, and DEL (S3b).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
/** The composer is recursive; never hand it more than this, whatever maxDepth says. */
const COMPOSER_DEPTH_CAP = 256;

interface Frame {
  node: Node;
  depth: number;
  path: string;
  put: (value: JsonValue) => void;
}

/**
 * Parses `text` and returns its top-level mapping. Empty text is an empty mapping (as in Heat).
 *
 * @example
 * ```ts
 * const { value } = parseYamlMapping('a: [1, 2]', { label: 'template', invalidCode: 'STOKER_TEMPLATE_INVALID',
 *   limits: DEFAULT_TEMPLATE_LIMITS, notMappingMessage: 'not a mapping' });
 * value; // { a: [1, 2] }
 * ```
 */
export function parseYamlMapping(text: string, options: YamlParseOptions): ParsedYaml {
  const { label, limits } = options;
  if (typeof text !== 'string') throw templateError(options.invalidCode, '', `The ${label} must be YAML or JSON text`);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxTemplateBytes) {
    throw templateError(
      'STOKER_TEMPLATE_TOO_LARGE',
      '',
      `The ${label} is ${bytes} bytes, over the maximum of ${limits.maxTemplateBytes} bytes`,
      { bytes, maxBytes: limits.maxTemplateBytes },
    );
  }
  checkYamlNesting(text, Math.min(limits.maxDepth * 2 + 8, COMPOSER_DEPTH_CAP), label);

  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { schema: 'core', merge: true, uniqueKeys: true, prettyErrors: false, lineCounter, strict: true });
  } catch (cause) {
    // a backstop: the pre-scan should make this unreachable
    throw templateError(options.invalidCode, '', `The ${label} could not be parsed: ${(cause as Error).message}`);
  }
  const where = (offset: number | undefined): string => {
    if (offset === undefined) return label;
    const { line, col } = lineCounter.linePos(offset);
    return `${label} line ${line}, column ${col}`;
  };
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const message = problem.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw templateError(options.invalidCode, '', `${where(problem.pos[0])}: ${message}`);
  }

  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return { value: {}, topLevelSource: {} };
  if (!isMap(doc.contents) && !isAlias(doc.contents)) throw templateError(options.invalidCode, '', options.notMappingMessage);

  const budget = { nodes: 0, aliases: 0, chars: 0 };
  const fail = (code: ErrorCode, node: Node, path: string, message: string): never => {
    throw templateError(code, '', `${where(node.range?.[0])}: ${message}${path === '' ? '' : ` (at ${clipText(path)})`}`, {
      yamlPath: path,
    });
  };

  const resolveAlias = (node: Node, path: string): Node => {
    let current: Node = node;
    while (isAlias(current)) {
      budget.aliases++;
      if (budget.aliases > limits.maxAliasCount) {
        fail('STOKER_TEMPLATE_TOO_LARGE', current, path, `more than ${limits.maxAliasCount} aliases (a resource exhaustion attack?)`);
      }
      const target = current.resolve(doc) as Node | undefined;
      if (target === undefined) fail(options.invalidCode, current, path, `unknown alias *${showText(current.source)}`);
      current = target!;
    }
    return current;
  };

  let root: JsonValue = null;
  const stack: Frame[] = [{ node: doc.contents, depth: 0, path: '', put: (v) => (root = v) }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const node = resolveAlias(frame.node, frame.path);
    budget.nodes++;
    if (budget.nodes > limits.maxNodes) fail('STOKER_TEMPLATE_TOO_LARGE', node, frame.path, `more than ${limits.maxNodes} values`);
    if (isScalar(node)) {
      frame.put(scalarValue(node.value, node, frame.path));
      continue;
    }
    if (frame.depth >= limits.maxDepth) {
      fail('STOKER_INPUT_TOO_DEEP', node, frame.path, `the document nests deeper than the limit of ${limits.maxDepth} levels`);
    }
    if (isSeq(node)) {
      const out: JsonValue[] = new Array<JsonValue>(node.items.length).fill(null);
      frame.put(out);
      node.items.forEach((item, i) => {
        stack.push({ node: item as Node, depth: frame.depth + 1, path: `${frame.path}[${i}]`, put: (v) => (out[i] = v) });
      });
      continue;
    }
    if (isMap(node)) {
      const out: JsonObject = {};
      frame.put(out);
      for (const [key, valueNode] of mapEntries(node, frame.path)) {
        // the key goes in now, so the mapping keeps the document's key order (the value
        // arrives later, from the stack)
        out[key] = null;
        const path = frame.path === '' ? key : `${frame.path}.${key}`;
        if (valueNode !== null) stack.push({ node: valueNode, depth: frame.depth + 1, path, put: (v) => (out[key] = v) });
      }
      continue;
    }
    fail(options.invalidCode, node, frame.path, 'unsupported YAML node');
  }

  const topLevelSource: Record<string, string> = {};
  const top = resolveAlias(doc.contents, '');
  if (isMap(top)) {
    for (const pair of top.items) {
      if (isScalar(pair.key) && isScalar(pair.value) && pair.value.type === 'PLAIN' && typeof pair.value.source === 'string') {
        topLevelSource[String(pair.key.value)] = pair.value.source;
      }
    }
  }
  return { value: root as unknown as JsonObject, topLevelSource };

  function scalarValue(value: unknown, node: Node, path: string): JsonValue {
    if (value === null || typeof value === 'boolean') return value;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) fail(options.invalidCode, node, path, `the number ${String(value)} is not finite`);
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
        fail(options.invalidCode, node, path, `the integer ${String(value)} is outside the safe range (±${Number.MAX_SAFE_INTEGER})`);
      }
      return value;
    }
    if (typeof value === 'string') {
      const bad = CONTROL_CHARACTER.exec(value);
      if (bad) {
        const code = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
        fail(options.invalidCode, node, path, `a string contains the control character U+${code}`);
      }
      budget.chars += value.length;
      if (budget.chars > limits.maxTemplateBytes) {
        fail('STOKER_TEMPLATE_TOO_LARGE', node, path, `the strings (aliases expanded) exceed ${limits.maxTemplateBytes} bytes`);
      }
      return value;
    }
    return fail(options.invalidCode, node, path, `unsupported scalar value (${typeof value})`);
  }

  /** The pairs of a mapping with merge keys applied: explicit keys win, then earlier merges. */
  function mapEntries(node: Node, path: string): [string, Node | null][] {
    const explicit: [string, Node | null][] = [];
    const seen = new Set<string>();
    const merges: Node[] = [];
    if (!isMap(node)) return explicit;
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      if (isScalar(keyNode) && typeof keyNode.value === 'symbol') {
        const source = resolveAlias(pair.value as Node, path);
        if (isSeq(source)) for (const item of source.items) merges.push(item as Node);
        else merges.push(source);
        continue;
      }
      const key = keyString(keyNode, node, path);
      if (seen.has(key)) fail(options.invalidCode, keyNode ?? node, path, `duplicate key ${quoteText(key)}`);
      seen.add(key);
      explicit.push([key, (pair.value as Node | null) ?? null]);
    }
    for (const mergeNode of merges) {
      const source = resolveAlias(mergeNode, path);
      if (!isMap(source)) fail(options.invalidCode, mergeNode, path, 'a merge key (<<) needs a mapping or a list of mappings');
      for (const [key, value] of mapEntries(source, path)) {
        if (seen.has(key)) continue;
        seen.add(key);
        explicit.push([key, value]);
      }
    }
    return explicit;
  }

  function keyString(keyNode: Node | null, mapNode: Node, path: string): string {
    const node = keyNode === null ? null : resolveAlias(keyNode, path);
    if (node === null || !isScalar(node) || node.value === null) {
      return fail(options.invalidCode, keyNode ?? mapNode, path, 'mapping keys must be strings');
    }
    const key = typeof node.value === 'string' ? node.value : String(node.value);
    if (FORBIDDEN_KEYS.has(key)) {
      throw templateError('STOKER_INPUT_FORBIDDEN_KEY', '', `${where(node.range?.[0])}: the key "${key}" is not allowed`, { key });
    }
    if (CONTROL_CHARACTER.test(key)) fail(options.invalidCode, node, path, 'a key contains a control character');
    return key;
  }
}
