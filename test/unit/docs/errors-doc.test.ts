/**
 * docs/errors.md against the code registry (src/errors.ts) and the CLI's exit codes
 * (src/cli/exit-codes.ts): every registered code is documented once, nothing else is,
 * and the exit codes the doc states are the ones the CLI returns.
 */
import { describe, expect, it } from 'vitest';
import { ExitCode, exitCodeFor } from '../../../src/cli/exit-codes.js';
import {
  ConflictError,
  ErrorCodes,
  NotFoundError,
  StokerError,
  StoreError,
  TransportError,
  ValidationError,
  type ErrorCode,
} from '../../../src/errors.js';
import { codeSpans, readDoc, tableUnder, tablesUnder } from './markdown.js';

const doc = readDoc('errors.md');

/** Every row of every "| code | meaning | exit | what to do |" table in the doc. */
function codeRows(): { code: string; exit: string; row: string }[] {
  const tables = tablesUnder(doc, 'Errors').filter((t) => t.header[0] === 'code');
  expect(tables.length).toBeGreaterThan(0);
  return tables.flatMap((t) => {
    expect(t.header).toEqual(['code', 'meaning', 'exit', 'what to do']);
    return t.rows.map((r) => {
      const spans = codeSpans(r[0] ?? '');
      expect(spans, `row "${r.join(' | ')}" must name one code`).toHaveLength(1);
      return { code: spans[0] ?? '', exit: r[2] ?? '', row: r.join(' | ') };
    });
  });
}

describe('docs/errors.md', () => {
  const registry = Object.keys(ErrorCodes).sort();

  it('documents every registered code', () => {
    const documented = new Set(codeRows().map((r) => r.code));
    expect(
      registry.filter((c) => !documented.has(c)),
      'codes in src/errors.ts missing from docs/errors.md',
    ).toEqual([]);
  });

  it('documents no code that is not registered', () => {
    const unknown = codeRows()
      .map((r) => r.code)
      .filter((c) => !(c in ErrorCodes));
    expect(unknown, 'codes in docs/errors.md that src/errors.ts does not have').toEqual([]);
  });

  it('documents each code once', () => {
    const codes = codeRows().map((r) => r.code);
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
  });

  it('gives the exit code the CLI returns for each code', () => {
    const classes = [StokerError, ValidationError, NotFoundError, ConflictError, StoreError, TransportError];
    for (const { code, exit, row } of codeRows()) {
      if (exit === '—') continue; // recorded on an atom or run, not a command's outcome
      expect(exit, `row "${row}": the exit cell is a number or —`).toMatch(/^\d+$/);
      const stated = Number(exit);
      // the exit code when the code is mapped explicitly, whatever the error class …
      const byCode = exitCodeFor(new StokerError(code as ErrorCode, 'probe'));
      const possible = new Set(classes.map((C) => exitCodeFor(new C(code as ErrorCode, 'probe'))));
      if (byCode !== ExitCode.FAILURE || possible.size === 1) expect(stated, `${code}: the CLI exits ${byCode}`).toBe(byCode);
      // … otherwise it depends on the class raising it: the doc must state one of those
      else expect([...possible], `${code}: the doc says ${stated}`).toContain(stated);
    }
  });

  it('lists exactly the exit codes of the CLI', () => {
    const table = tableUnder(doc, 'Exit codes of the `stoker` command');
    const listed = table.rows.map((r) => Number(r[0])).sort((a, b) => a - b);
    expect(listed).toEqual([...new Set(Object.values(ExitCode))].sort((a, b) => a - b));
  });
});
