/**
 * Just enough Markdown for the docs tests: the tables under a heading, as rows of cells.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type Table = { header: string[]; rows: string[][] };

/** The text of `docs/<name>`. */
export function readDoc(name: string): string {
  return readFileSync(fileURLToPath(new URL(`../../../docs/${name}`, import.meta.url)), 'utf8');
}

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim());
}

/**
 * The tables in the section that starts at the heading whose text is `heading` (any
 * level) and ends at the next heading of the same or a higher level. Throws when the
 * heading is missing, so a renamed section fails loudly instead of checking nothing.
 */
export function tablesUnder(markdown: string, heading: string): Table[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^#{1,6} /.test(l) && l.replace(/^#+ /, '').trim() === heading);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const level = /^#+/.exec(lines[start] ?? '')?.[0].length ?? 1;
  const tables: Table[] = [];
  let current: Table | null = null;
  let inFence = false;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('```')) inFence = !inFence;
    if (inFence) continue;
    const h = /^(#{1,6}) /.exec(line);
    if (h && (h[1] ?? '').length <= level) break;
    if (line.trim().startsWith('|')) {
      const row = cells(line);
      if (current === null) {
        current = { header: row, rows: [] };
        tables.push(current);
      } else if (!row.every((c) => /^:?-+:?$/.test(c))) {
        current.rows.push(row);
      }
    } else {
      current = null;
    }
  }
  return tables;
}

/** The single table of a section. */
export function tableUnder(markdown: string, heading: string): Table {
  const tables = tablesUnder(markdown, heading);
  if (tables.length !== 1) throw new Error(`expected one table under "${heading}", found ${tables.length}`);
  return tables[0]!;
}

/** The identifiers written as inline code in a cell: "`A`, `B`" → ['A', 'B']. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
}
