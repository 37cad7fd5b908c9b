/**
 * The CLI's size limits: run arguments (1 MiB by default) and task results / signal payloads
 * (256 KiB) are refused with STOKER_INPUT_TOO_LARGE naming the flag that raises them, and
 * `--max-args-bytes` / `--max-result-bytes` (or STOKER_MAX_ARGS_BYTES / STOKER_MAX_RESULT_BYTES)
 * raise them (docs/errors.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { buildCliAsync, json, runCli, tempDir, writeFile, type Built, type CliResult, type RunJson } from './harness.js';

let built: Built;
let dir: { path: string; remove(): void };
let flows: string;
let n = 0;

beforeAll(async () => {
  built = await buildCliAsync();
  dir = tempDir();
  flows = writeFile(
    dir.path,
    'flows.mjs',
    `import { task, linear } from ${JSON.stringify(built.flowIndexUrl)};
export default [
  linear('echo', [task({ name: 'size', requires: ['blob'], provides: 'length', execute: ({ blob }) => blob.length })]),
  linear('big', [task({ name: 'make', provides: 'blob', execute: () => 'x'.repeat(300 * 1024) })]),
];
`,
  );
  // 1.1 MiB of arguments: over the default 1 MiB (and too long for one argv string, hence @file)
  writeFile(dir.path, 'big-args.json', JSON.stringify({ blob: 'y'.repeat(1_150_000) }));
}, 180_000);

afterAll(() => {
  built?.remove();
  dir?.remove();
});

const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(built, args, { cwd: dir.path, env });

async function migrated(): Promise<string> {
  const store = `sqlite:${join(dir.path, `limits-${++n}.db`)}`;
  expect((await cli(['migrate', '--store', store])).code).toBe(0);
  return store;
}

describe('size limits of the CLI', () => {
  it('arguments over 1 MiB are refused (exit 2, no run), naming --max-args-bytes; the flag raises the limit', async () => {
    const store = await migrated();
    const refused = await cli(['run', 'echo', '--flows', flows, '--args', '@big-args.json', '--store', store, '-f', 'json']);
    expect(refused.code).toBe(2);
    const error = JSON.parse(refused.stderr.trimEnd().split('\n').at(-1)!) as { code: string; message: string };
    expect(error.code).toBe('STOKER_INPUT_TOO_LARGE');
    expect(error.message).toMatch(
      /^arguments of flow echo is \d+ bytes, over the limit of 1048576; .*--max-args-bytes or STOKER_MAX_ARGS_BYTES/,
    );
    expect(json<unknown[]>(await cli(['runs', 'list', '--store', store, '-f', 'json']))).toEqual([]);

    const raised = await cli([
      'run',
      'echo',
      '--flows',
      flows,
      '--args',
      '@big-args.json',
      '--store',
      store,
      '--wait',
      '--max-args-bytes',
      '2MiB',
      '-f',
      'json',
    ]);
    expect(raised.code, raised.stderr).toBe(0);
    expect(json<RunJson>(raised).result).toEqual({ length: 1_150_000 });
  }, 60_000);

  it('a result over 256 KiB fails its task, naming --max-result-bytes; the flag or STOKER_MAX_RESULT_BYTES raises the limit', async () => {
    const store = await migrated();
    const failed = await cli(['run', 'big', '--flows', flows, '--store', store, '--wait', '-f', 'json']);
    expect(failed.code, failed.stderr).toBe(3);
    const run = json<RunJson & { failure: { code?: string; message: string } }>(failed);
    expect(run.status).toBe('REVERTED');
    expect(run.failure.code).toBe('STOKER_INPUT_TOO_LARGE');
    expect(run.failure.message).toMatch(
      /result of make is \d+ bytes, over the limit of 262144; .*--max-result-bytes or STOKER_MAX_RESULT_BYTES/,
    );

    const byFlag = await cli(['run', 'big', '--flows', flows, '--store', store, '--wait', '--max-result-bytes', '512KiB', '-f', 'json']);
    expect(byFlag.code, byFlag.stderr).toBe(0);
    const byEnv = await cli(['run', 'big', '--flows', flows, '--store', store, '--wait', '-f', 'json'], {
      STOKER_MAX_RESULT_BYTES: '1MiB',
    });
    expect(byEnv.code, byEnv.stderr).toBe(0);
  }, 60_000);

  it('a size out of range is a usage error; --help shows the flags with their variables', async () => {
    const bad = await cli(['run', 'echo', '--flows', flows, '--max-args-bytes', '10']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-args-bytes <size>.*expected a size from 1KiB to 64MiB, such as 262144, 512KiB or 4MiB, got "10"/);
    for (const command of [['run'], ['engine'], ['signal']]) {
      // commander wraps help lines: compare with the whitespace collapsed
      const help = (await cli([...command, '--help'])).stdout.replace(/\s+/g, ' ');
      expect(help).toContain(
        '--max-result-bytes <size> largest task result or signal payload accepted (default 256KiB; up to 64MiB) (env: STOKER_MAX_RESULT_BYTES)',
      );
      if (command[0] !== 'signal')
        expect(help).toContain(
          '--max-args-bytes <size> largest run arguments accepted (default 1MiB; up to 64MiB) (env: STOKER_MAX_ARGS_BYTES)',
        );
    }
  }, 60_000);
});
