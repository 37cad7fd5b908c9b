/**
 * Bad input to the CLI: each case exits with its documented code, says what is wrong in one
 * line on stderr, prints nothing on stdout, and leaves no run behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildCliAsync, migrateStore, runCli, tempDir, writeFile, type Built, type CliResult } from './harness.js';

let built: Built;
let dir: { path: string; remove(): void };
let flows: string;
let n = 0;

beforeAll(async () => {
  built = await buildCliAsync();
  dir = tempDir();
  const lib = JSON.stringify(built.flowIndexUrl);
  flows = writeFile(
    dir.path,
    'flows.mjs',
    `import { task, linear } from ${lib};
export default [
  linear('greet', [task({ name: 'hello', requires: ['who', 'lang'], provides: 'greeting', execute: ({ who }) => 'hello ' + who })]),
  linear('noop', [task({ name: 'nothing', execute: () => null })]),
];
`,
  );
  writeFile(
    dir.path,
    'bad/syntax.mjs',
    `import { task, linear } from ${lib};\nexport default [\n  linear('x', [task({ name: 'a', execute: () => 1 ]),\n];\n`,
  );
  writeFile(
    dir.path,
    'bad/object.mjs',
    `import { task, linear } from ${lib};\nexport default { flows: [linear('x', [task({ name: 'a', execute: () => 1 })])] };\n`,
  );
  writeFile(
    dir.path,
    'bad/named.mjs',
    `import { task, linear } from ${lib};\nexport const x = linear('x', [task({ name: 'a', execute: () => 1 })]);\n`,
  );
  writeFile(
    dir.path,
    'bad/task.mjs',
    `import { task, linear } from ${lib};\nexport default [linear('x', [task({ name: 'a', execute: () => 1 })]), task({ name: 'loose', execute: () => 2 })];\n`,
  );
  writeFile(dir.path, 'bad/throws.mjs', `throw new Error('cannot reach the config service');\n`);
  writeFile(dir.path, 'bad/throws.ts', `function config(): string {\n  throw new Error('no CONFIG_URL');\n}\nexport default [config()];\n`);
  writeFile(dir.path, 'bad/syntax.ts', `import { task, linear } from ${lib};\nconst broken: number = ;\nexport default [];\n`);
}, 180_000);

afterAll(() => {
  built?.remove();
  dir?.remove();
});

/** A store path that no command has touched yet. */
function fresh(): { url: string; file: string } {
  const file = join(dir.path, `err-${++n}.db`);
  return { url: `sqlite:${file}`, file };
}

const cli = (args: string[], cwd = dir.path) => runCli(built, args, { cwd });

/** The one error line, checked for shape; returns its message. */
function errorLine(r: CliResult, code: string): string {
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  const m = /^stoker: error: (.+) \(code (STOKER_[A-Z_]+)\)$/.exec(lines[0]!);
  expect(m, r.stderr).not.toBeNull();
  expect(m![2]).toBe(code);
  return m![1]!;
}

/** Nothing was written: the store file was never created, and a listing of it does not create it either. */
async function expectNoRuns(store: { url: string; file: string }): Promise<void> {
  expect(existsSync(store.file)).toBe(false);
  const list = await cli(['runs', 'list', '--store', store.url, '-f', 'json']);
  expect(list.code).toBe(1);
  // with -f json the error is one JSON object on stderr (docs/cli-json.md)
  expect(JSON.parse(list.stderr)).toMatchObject({ code: 'STOKER_STORE_NOT_MIGRATED' });
  expect(existsSync(store.file)).toBe(false);
}

describe('stoker run with bad input', () => {
  it('malformed --args JSON: exit 2, names the flag and where the JSON broke', async () => {
    const store = fresh();
    const r = await cli(['run', 'greet', '--flows', flows, '--args', '{"who": "ada", lang: "en"}', '--store', store.url]);
    expect(r.code).toBe(2);
    const msg = errorLine(r, 'STOKER_INPUT_INVALID_JSON');
    expect(msg).toBe(
      `--args is not valid JSON: unexpected character "l", expected a double-quoted property name at line 1, column 16, near "{\\"who\\": \\"ada\\", lang: \\"en\\"}"`,
    );
    await expectNoRuns(store);
  });

  it('single-quoted JSON gets a hint about shell quoting', async () => {
    const store = fresh();
    const r = await cli(['run', 'greet', '--flows', flows, '--args', "{'who': 'ada'}", '--store', store.url]);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_INPUT_INVALID_JSON')).toContain('at line 1, column 2');
    expect(r.stderr).toContain('JSON strings and names need double quotes');
    await expectNoRuns(store);
  });

  it('--args that is not an object: exit 2', async () => {
    const store = fresh();
    const r = await cli(['run', 'greet', '--flows', flows, '--args', '["ada"]', '--store', store.url]);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_INPUT_INVALID_JSON')).toBe(`--args must be a JSON object like '{"name": "value"}', got an array`);
    await expectNoRuns(store);
  });

  it('unknown flow: exit 5, lists the registered flows', async () => {
    const store = fresh();
    const r = await cli(['run', 'greeet', '--flows', flows, '--args', '{}', '--store', store.url]);
    expect(r.code).toBe(5);
    expect(errorLine(r, 'STOKER_FLOW_NOT_FOUND')).toBe(`No flow 'greeet' is registered. Registered flows: greet@1, noop@1.`);
    await expectNoRuns(store);
  });

  it('unknown flow version: exit 5', async () => {
    const store = fresh();
    const r = await cli(['run', 'noop', '--version', '7', '--flows', flows, '--store', store.url]);
    expect(r.code).toBe(5);
    expect(errorLine(r, 'STOKER_FLOW_NOT_FOUND')).toContain(`version '7'`);
    await expectNoRuns(store);
  });

  it('arguments missing a required one: exit 2, names it', async () => {
    const store = fresh();
    const r = await cli(['run', 'greet', '--flows', flows, '--args', '{"who": "ada"}', '--store', store.url]);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_RUN_MISSING_ARGUMENT')).toBe('flow greet@1 needs argument lang in --args (it takes lang, who)');
    await expectNoRuns(store);
  });

  it('no --flows at all: exit 2, says how to give it', async () => {
    const store = fresh();
    const r = await cli(['run', 'greet', '--store', store.url]);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CLI_USAGE')).toBe('stoker run needs a flows module: pass --flows MODULE (or set STOKER_FLOWS)');
    await expectNoRuns(store);
  });

  it('--supersede without --key: exit 2', async () => {
    const store = fresh();
    const r = await cli(['run', 'noop', '--flows', flows, '--supersede', '--store', store.url]);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CLI_USAGE')).toContain('--supersede needs --key');
    await expectNoRuns(store);
  });
});

describe('stoker run with a bad flows module (exit 7, names the file)', () => {
  const cases: [string, string, RegExp][] = [
    ['missing file', 'bad/nope.mjs', /^flows module bad\/nope\.mjs was not found \(looked for .*bad\/nope\.mjs\)$/],
    [
      'syntax error (.mjs)',
      'bad/syntax.mjs',
      /^flows module bad\/syntax\.mjs has a syntax error at line 3 \("linear\('x', \[task\(\{ name: 'a', execute: \(\) => 1 \]\),"\): .+$/,
    ],
    [
      'syntax error (.ts)',
      'bad/syntax.ts',
      /^flows module bad\/syntax\.ts has a syntax error at line 2, column 24 \("const broken: number = ;"\): Unexpected ";"$/,
    ],
    [
      'error while loading',
      'bad/throws.mjs',
      /^flows module bad\/throws\.mjs failed to load: cannot reach the config service \(thrown at bad\/throws\.mjs:1:7; --log-level debug shows the stack\)$/,
    ],
    [
      'error while loading a TypeScript module, thrown in a function',
      'bad/throws.ts',
      /^flows module bad\/throws\.ts failed to load: no CONFIG_URL \(thrown at bad\/throws\.ts:2:9; --log-level debug shows the stack\)$/,
    ],
    [
      'default export not an array',
      'bad/object.mjs',
      /^flows module bad\/object\.mjs must default-export an array of flows, but its default export is a plain object that is not a flow$/,
    ],
    [
      'no default export',
      'bad/named.mjs',
      /^flows module bad\/named\.mjs has no default export \(it exports x\); add `export default \[myFlow, …\]`$/,
    ],
    [
      'an element that is a task, not a flow',
      'bad/task.mjs',
      /^flows module bad\/task\.mjs default export element 1 is a task \("loose"\), not a flow: wrap it, e\.g\. linear\('my-flow', \[thatTask\]\)$/,
    ],
  ];
  for (const [what, file, expected] of cases) {
    it(what, async () => {
      const store = fresh();
      const r = await cli(['run', 'x', '--flows', file, '--store', store.url]);
      expect(r.code).toBe(7);
      expect(errorLine(r, 'STOKER_FLOWS_MODULE_INVALID')).toMatch(expected);
      await expectNoRuns(store);
    });
  }

  it('a TypeScript module in a folder without "type": "module" loads as well (tsx CommonJS hooks)', async () => {
    const lib = JSON.stringify(built.flowIndexUrl);
    writeFile(
      dir.path,
      'cjs/flows.ts',
      `import { linear, task } from ${lib};\nconst n: number = 2;\nexport default [linear('typed', [task({ name: 'a', execute: () => n * 21 })])];\n`,
    );
    const store = fresh();
    expect((await cli(['migrate', '--store', store.url])).code).toBe(0);
    const r = await cli(['run', 'typed', '--flows', 'cjs/flows.ts', '--store', store.url, '--wait', '-f', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { result: unknown }).result).toEqual({});
  });

  it('--log-level debug prints the stack of the error the module threw', async () => {
    const store = fresh();
    const r = await cli(['run', 'x', '--flows', 'bad/throws.mjs', '--store', store.url, '--log-level', 'debug']);
    expect(r.code).toBe(7);
    const [first, ...stack] = r.stderr.trimEnd().split('\n');
    expect(first).toMatch(/^stoker: error: flows module bad\/throws\.mjs failed to load: .* \(code STOKER_FLOWS_MODULE_INVALID\)$/);
    const text = stack.join('\n');
    expect(text).toMatch(/^StokerError: flows module bad\/throws\.mjs failed to load/);
    expect(text).toMatch(/\ncaused by: Error: cannot reach the config service\n\s+at file:\/\/\/.*\/bad\/throws\.mjs:1:7\n/);
    // STOKER_LOG_LEVEL works as the flag does
    const env = await runCli(built, ['run', 'x', '--flows', 'bad/throws.mjs', '--store', store.url], {
      cwd: dir.path,
      env: { STOKER_LOG_LEVEL: 'debug' },
    });
    expect(env.stderr).toContain('caused by: Error: cannot reach the config service');
    await expectNoRuns(store);
  });

  it('the engine command rejects it the same way', async () => {
    const store = fresh();
    const r = await cli(['engine', '--flows', 'bad/object.mjs', '--store', store.url]);
    expect(r.code).toBe(7);
    expect(errorLine(r, 'STOKER_FLOWS_MODULE_INVALID')).toContain('must default-export an array of flows');
    expect(existsSync(store.file)).toBe(false);
  });
});

describe('bad stores', () => {
  it('a SQLite path under /proc: a clear error, not a spin (Node 20 recursive mkdir)', async () => {
    // the harness kills a command after 30 s: a spinning one ends with SIGKILL, not an exit code
    const migrate = await cli(['migrate', '--store', 'sqlite:/proc/x/y.db']);
    expect(migrate.code).toBe(4);
    expect(errorLine(migrate, 'STOKER_STORE_UNREACHABLE')).toMatch(/^cannot create the folder \/proc\/x for the SQLite database: /);
    const list = await cli(['runs', 'list', '--store', 'sqlite:/proc/x/y.db']);
    expect(list.code).toBe(1);
    expect(errorLine(list, 'STOKER_STORE_NOT_MIGRATED')).toMatch(/^SQLite database \/proc\/x\/y\.db does not exist/);
  });

  it('an unknown URL scheme: exit 2, and no default store is created instead', async () => {
    const cwd = tempDir();
    try {
      const r = await cli(['run', 'noop', '--flows', flows, '--store', 'foo://x'], cwd.path);
      expect(r.code).toBe(2);
      const msg = errorLine(r, 'STOKER_STORE_URL_INVALID');
      expect(msg).toMatch(/^store URL foo:\/\/x has the unknown scheme "foo:"; accepted forms: sqlite:PATH/);
      const list = await cli(['runs', 'list', '--store', 'foo://x'], cwd.path);
      expect(list.code).toBe(2);
      expect(existsSync(join(cwd.path, '.stoker'))).toBe(false);
    } finally {
      cwd.remove();
    }
  });

  it('an unreachable database: exit 4, names host and port', async () => {
    const r = await cli(['runs', 'list', '--store', 'postgres://stoker:secret@127.0.0.1:1/x']);
    expect(r.code).toBe(4);
    const msg = errorLine(r, 'STOKER_STORE_UNREACHABLE');
    expect(msg).toContain('127.0.0.1:1');
    expect(msg).not.toContain('secret');
    const run = await cli(['run', 'noop', '--flows', flows, '--store', 'postgres://127.0.0.1:1/x']);
    expect(run.code).toBe(4);
  });
});

describe('usage errors (exit 2, with a pointer to --help)', () => {
  it('an unknown option', async () => {
    const r = await cli(['runs', 'list', '--colour']);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CLI_USAGE')).toBe(`unknown option '--colour'; see 'stoker runs list --help'`);
  });

  it('an unknown command, with a suggestion', async () => {
    const r = await cli(['rn']);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CLI_USAGE')).toBe(`unknown command 'rn' (Did you mean run?); see 'stoker --help'`);
  });

  it('a non-integer --limit and an unknown format', async () => {
    const limit = await cli(['runs', 'list', '--limit', 'ten']);
    expect(limit.code).toBe(2);
    expect(errorLine(limit, 'STOKER_CLI_USAGE')).toContain(`argument 'ten' is invalid`);
    const format = await cli(['runs', 'list', '-f', 'yaml']);
    expect(format.code).toBe(2);
    expect(errorLine(format, 'STOKER_CLI_USAGE')).toContain('Allowed choices are table, json');
  });

  it('an unknown --status', async () => {
    const store = fresh();
    const r = await cli(['runs', 'list', '--status', 'DONE', '--store', store.url]);
    expect(r.code).toBe(2);
    expect(errorLine(r, 'STOKER_CLI_USAGE')).toMatch(/^--status "DONE" is not a run status \(use PENDING, RUNNING, /);
  });

  it('runs show of an unknown run: exit 6', async () => {
    const store = fresh();
    await migrateStore(store.url);
    const r = await cli(['runs', 'show', 'no-such-run', '--store', store.url]);
    expect(r.code).toBe(6);
    expect(errorLine(r, 'STOKER_RUN_NOT_FOUND')).toBe('no run no-such-run in this store');
  });
});
