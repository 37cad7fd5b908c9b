/**
 * The runnable examples the docs show: a fenced block right after a marker
 * `<!-- example: examples/guide/NAME.ts … -->` must be that file, character for character,
 * and every file in examples/guide/ must be shown somewhere. test/e2e/guide/examples.test.ts
 * runs the files, so what the docs show is what was run.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const docs = ['README.md', ...readdirSync(`${root}docs`).map((f) => `docs/${f}`)].filter((f) => f.endsWith('.md'));

/** Every marker in every doc, with the block that follows it. */
function shown(): { doc: string; file: string; block: string | null }[] {
  const found: { doc: string; file: string; block: string | null }[] = [];
  for (const doc of docs) {
    const text = readFileSync(`${root}${doc}`, 'utf8');
    for (const m of text.matchAll(/<!-- example: (\S+)[^>]*-->\n\n```ts\n([\s\S]*?)```\n/g)) {
      found.push({ doc, file: m[1]!, block: m[2]! });
    }
    const markers = [...text.matchAll(/<!-- example: (\S+)/g)].length;
    const matched = found.filter((f) => f.doc === doc).length;
    if (markers !== matched) found.push({ doc, file: '(a marker without a ```ts block right after it)', block: null });
  }
  return found;
}

describe('examples shown in the docs', () => {
  const list = shown();

  it('every marker is followed by its block', () => {
    expect(list.filter((s) => s.block === null).map((s) => s.doc)).toEqual([]);
  });

  for (const s of list.filter((x) => x.block !== null)) {
    it(`${s.doc} shows ${s.file} exactly`, () => {
      expect(s.block).toBe(readFileSync(`${root}${s.file}`, 'utf8'));
    });
  }

  it('every file of examples/guide is shown in a doc', () => {
    const files = readdirSync(`${root}examples/guide`).map((f) => `examples/guide/${f}`);
    const seen = new Set(list.map((s) => s.file));
    expect(files.filter((f) => !seen.has(f))).toEqual([]);
  });
});
