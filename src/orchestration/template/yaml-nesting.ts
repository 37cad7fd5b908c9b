/**
 * A pre-scan that bounds how deeply a YAML text nests *before* the `yaml` package composes it.
 *
 * Why: `yaml` 2.x composes documents recursively. Measured here (Node 20, yaml 2.9.1): a
 * 1000-deep `[[[…` ends in "Maximum call stack size exceeded" and a 5000-deep one aborted the
 * process with an out-of-memory error inside V8's RegExp compiler, which no `try` can catch
 * (docs/security.md S2). The lexer, by contrast, is a flat state machine (200 000 tokens in about
 * 0.1 s), so we walk its tokens and keep an *upper bound* of the nesting depth:
 *
 * - flow collections: the count of open `[` / `{` (the lexer already separates quoted text);
 * - block collections: every nested block node sits at a strictly larger column than its
 *   parent, or follows a `-` / `?` indicator, so the stack of increasing columns opened by
 *   line indentation and by those indicators is at least as tall as the block nesting.
 *
 * The bound may exceed the real depth by a level or two, so the caller rejects only well
 * above the real limit; the exact limit is enforced by the walk over the composed document.
 */
import { CST, Lexer } from 'yaml';
import { templateError } from './template-error.js';

/** Zero-width markers the lexer emits that are not part of the source text. */
const MARKERS = new Set(['\u0002', '\u0018', '\u001f']);

/**
 * Throws STOKER_INPUT_TOO_DEEP when the estimated nesting of `text` exceeds `cap`.
 *
 * @example
 * ```ts
 * checkYamlNesting('a: ' + '['.repeat(100000), 256, 'template'); // throws, no stack overflow
 * ```
 */
export function checkYamlNesting(text: string, cap: number, label: string): void {
  let line = 1;
  let col = 0;
  let atLineStart = true;
  let flow = 0;
  let nextIsScalarSource = false;
  const columns: number[] = [];

  for (const token of new Lexer().lex(text)) {
    if (MARKERS.has(token)) {
      if (token === CST.SCALAR) nextIsScalarSource = true;
      continue;
    }
    const type = nextIsScalarSource ? 'scalar-source' : CST.tokenType(token);
    nextIsScalarSource = false;

    if (type !== 'newline' && type !== 'space' && type !== 'comment' && type !== 'byte-order-mark') {
      if (atLineStart && flow === 0) {
        while (columns.length > 0 && columns[columns.length - 1]! > col) columns.pop();
        if (columns.length === 0 || columns[columns.length - 1]! < col) columns.push(col);
      }
      atLineStart = false;
      if (flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind')) columns.push(col + 1);
      if (type === 'flow-map-start' || type === 'flow-seq-start') flow++;
      else if ((type === 'flow-map-end' || type === 'flow-seq-end') && flow > 0) flow--;
      if (columns.length + flow + 1 > cap) {
        throw templateError(
          'STOKER_INPUT_TOO_DEEP',
          '',
          `${label} line ${line}, column ${col + 1}: the document nests deeper than the limit of ${cap} levels`,
          { line, column: col + 1, maxDepth: cap },
        );
      }
    }

    const lastNewline = token.lastIndexOf('\n');
    if (lastNewline === -1) col += token.length;
    else {
      for (let i = token.indexOf('\n'); i !== -1; i = token.indexOf('\n', i + 1)) line++;
      col = token.length - lastNewline - 1;
      atLineStart = col === 0;
    }
  }
}
