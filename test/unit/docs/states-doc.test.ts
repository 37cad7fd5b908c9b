/**
 * docs/states.md (and the state tables of docs/glossary.md) against the transition tables
 * in src/engine/states.ts: the same states and the same transitions, both ways.
 */
import { describe, expect, it } from 'vitest';
import { ATOM_TRANSITIONS, AtomState, RUN_TRANSITIONS, RunStatus, TERMINAL_RUN_STATUSES } from '../../../src/store/states.js';
import { codeSpans, readDoc, tableUnder, type Table } from './markdown.js';

/** A transition table of the doc ("from | to | when") as from → sorted to[]; `—` = none. */
function transitionsOf(table: Table): Record<string, string[]> {
  expect(table.header.slice(0, 2)).toEqual(['from', 'to']);
  const out: Record<string, string[]> = {};
  for (const row of table.rows) {
    const [fromCell = '', toCell = ''] = row;
    const from = codeSpans(fromCell);
    expect(from, `row "${row.join(' | ')}" must name one state in its "from" cell`).toHaveLength(1);
    const to = codeSpans(toCell);
    if (to.length === 0) expect(toCell, `row "${row.join(' | ')}": "to" is one state or —`).toBe('—');
    const list = (out[from[0]!] ??= []);
    for (const t of to) {
      expect(list, `${from[0]} → ${t} is listed twice`).not.toContain(t);
      list.push(t);
    }
  }
  for (const k of Object.keys(out)) out[k]!.sort();
  return out;
}

function sorted(table: Readonly<Record<string, readonly string[]>>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(table).map(([k, v]) => [k, [...v].sort()]));
}

function statesIn(table: Table): string[] {
  return table.rows.map((r) => codeSpans(r[0] ?? '')[0] ?? `(no state in "${r.join(' | ')}")`).sort();
}

describe('docs/states.md', () => {
  const doc = readDoc('states.md');

  it('lists exactly the run transitions of RUN_TRANSITIONS', () => {
    expect(transitionsOf(tableUnder(doc, 'Run transitions'))).toEqual(sorted(RUN_TRANSITIONS));
  });

  it('lists exactly the atom transitions of ATOM_TRANSITIONS', () => {
    expect(transitionsOf(tableUnder(doc, 'Atom transitions'))).toEqual(sorted(ATOM_TRANSITIONS));
  });

  it('marks exactly the terminal run statuses with —', () => {
    const terminal = Object.entries(transitionsOf(tableUnder(doc, 'Run transitions')))
      .filter(([, to]) => to.length === 0)
      .map(([from]) => from)
      .sort();
    expect(terminal).toEqual([...TERMINAL_RUN_STATUSES].sort());
  });
});

describe('docs/glossary.md', () => {
  const doc = readDoc('glossary.md');

  it('explains every run status and no other', () => {
    expect(statesIn(tableUnder(doc, 'Run statuses'))).toEqual(Object.values(RunStatus).sort());
  });

  it('explains every atom state and no other', () => {
    expect(statesIn(tableUnder(doc, 'Atom states'))).toEqual(Object.values(AtomState).sort());
  });
});
