/**
 * Runs every example of examples/guide/ (the files docs/guide.md and docs/errors.md show,
 * test/unit/docs/examples-doc.test.ts keeps them equal) as a user runs a script: a Node
 * process with tsx, against a new SQLite file, importing 'stoker' (mapped to src/ by
 * tsconfig.json's paths). Each must exit 0 on its own (an engine left running would keep
 * it alive) and print what it is expected to print.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runCommand, tempDir } from './run-example.js';

/** What each example prints (stdout); a file missing here fails its test. */
const EXPECTED: Record<string, RegExp> = {
  'errors.ts': /^STOKER_FLOW_NOT_FOUND \{"flow":"order","version":null,"known":\[\]\}\n$/,
};

let dir: { path: string; remove(): void };
beforeAll(() => {
  dir = tempDir('stoker-guide-');
});
afterAll(() => dir?.remove());

describe('the examples of the guide run against SQLite', () => {
  const files = readdirSync(join(ROOT, 'examples', 'guide')).filter((f) => f.endsWith('.ts'));
  for (const file of files) {
    it(
      file,
      async () => {
        const store = `sqlite:${join(dir.path, `${file}.db`)}`;
        const r = await runCommand(process.execPath, ['--import', 'tsx', join('examples', 'guide', file)], {
          cwd: ROOT,
          env: { STOKER_STORE: store },
          timeoutMs: 60_000,
        });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(EXPECTED[file], `no expected output for ${file} in this test`).toBeDefined();
        expect(r.stdout).toMatch(EXPECTED[file]!);
      },
      90_000,
    );
  }
});
