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
  'linear.ts': /^SUCCESS \{"text":"hello ada","loud":"HELLO ADA!"\}\n$/,
  'unordered.ts': /^SUCCESS \{"price":40,"rate":0\.21,"shipping":5,"total":53\.4\}\n$/,
  'graph.ts': /^SUCCESS fetch:SUCCESS score:SUCCESS approve:SUCCESS review:SKIPPED\n$/,
  'retry.ts': /^SUCCESS \{"receipt":\{"amount":12,"attempt":3,"key":"charge\/3"\}\}\n$/,
  'revert.ts': /^REVERTED address refused\nreserve kettle → charge → refund \(r-1, after: none\) → release kettle\n$/,
  'sleep.ts': /^SUCCESS \{"sent":"sent after the sleep \(execution 2\)"\} slept\n$/,
  'signals.ts': /^SUCCESS \{"approved":\{"amount":80,"answer":\{"by":"ana"\}\}\}\n$/,
  'child.ts': /^SUCCESS \{"billed":\{"invoice":"INV-7"\}\} invoice:SUCCESS\n$/,
  'links.ts': /^SUCCESS build release 4\n$/,
  'runtime.ts': /^SUCCESS \{"text":"hi bob"\} same run for the same key\n$/,
  'service.ts': /^run finished SUCCESS\nengine stopped; engines left: 0\n$/,
};

/** stderr may hold the runtime's info log lines (JSON, level below 40), nothing else. */
function unexpectedStderr(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => {
      try {
        const level = (JSON.parse(l) as { level?: unknown }).level;
        return !(typeof level === 'number' && level < 40);
      } catch {
        return true;
      }
    });
}

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
        expect(unexpectedStderr(r.stderr), r.stderr).toEqual([]);
        expect(r.code).toBe(0);
        expect(EXPECTED[file], `no expected output for ${file} in this test`).toBeDefined();
        expect(r.stdout).toMatch(EXPECTED[file]!);
      },
      90_000,
    );
  }
});
