/**
 * The CLI's `-f json` shapes against docs/cli-json.md: runs, atoms, events, engines, locks,
 * failures and errors, as the built CLI prints them. Each object must have exactly the
 * fields the page lists (optional ones may be missing), each of the documented type; every
 * failing command prints one JSON error object as the last line of stderr and exits with
 * the code docs/errors.md gives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { codeSpans, readDoc, tableUnder } from '../../unit/docs/markdown.js';
import {
  buildCliAsync,
  json,
  migrateStore,
  runCli,
  startCli,
  tempDir,
  waitUntil,
  writeFile,
  type Built,
  type CliResult,
} from './harness.js';

const doc = readDoc('cli-json.md');

/** Field → documented type, and the fields that may be absent ("optional: …", "only …"). */
function shape(heading: string): { types: Map<string, string>; optional: Set<string> } {
  const table = tableUnder(doc, heading);
  expect(table.header).toEqual(['field', 'type', 'meaning']);
  const types = new Map<string, string>();
  const optional = new Set<string>();
  for (const [field, type, meaning] of table.rows) {
    const name = codeSpans(field ?? '')[0]!;
    types.set(name, type!);
    if (/^(optional|only|in `)/.test(meaning ?? '')) optional.add(name);
  }
  return { types, optional };
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks `value` against the documented type text ("string or null", "time", "failure" …). */
function checkType(type: string, value: unknown, where: string): void {
  const nullable = type.endsWith(' or null');
  const base = nullable ? type.slice(0, -' or null'.length) : type;
  if (value === null) {
    expect(nullable || base === 'JSON', `${where} is null, documented as ${type}`).toBe(true);
    return;
  }
  const ok: Record<string, () => boolean> = {
    string: () => typeof value === 'string',
    integer: () => Number.isSafeInteger(value),
    number: () => typeof value === 'number' && Number.isFinite(value),
    boolean: () => typeof value === 'boolean',
    object: () => isObject(value),
    JSON: () => value !== undefined,
    time: () => typeof value === 'string' && ISO.test(value),
    failure: () => (checkObject('Failure', value, where), true),
    'array of failures': () => Array.isArray(value) && (value.forEach((f, i) => checkObject('Failure', f, `${where}[${i}]`)), true),
  };
  const check = ok[base];
  expect(check, `unknown documented type "${type}" of ${where}`).toBeDefined();
  expect(check!(), `${where} = ${JSON.stringify(value)} is not ${type}`).toBe(true);
}

/** `value` has the fields of the table under `heading`, each of its type. */
function checkObject(heading: string, value: unknown, where = heading.toLowerCase()): void {
  expect(isObject(value), `${where} is an object`).toBe(true);
  const { types, optional } = shape(heading);
  const keys = Object.keys(value as object);
  expect(
    keys.filter((k) => !types.has(k)),
    `${where} has fields docs/cli-json.md does not list`,
  ).toEqual([]);
  expect(
    [...types.keys()].filter((k) => !optional.has(k) && !keys.includes(k)),
    `${where} lacks documented fields`,
  ).toEqual([]);
  for (const k of keys) checkType(types.get(k)!, (value as Record<string, unknown>)[k], `${where}.${k}`);
}

let built: Built;
let dir: { path: string; remove(): void };
let flows: string;
let n = 0;
const cli = (args: string[]): Promise<CliResult> => runCli(built, args, { cwd: dir.path });
const newStore = (): string => `sqlite:${join(dir.path, `shapes-${++n}.db`)}`;

beforeAll(async () => {
  built = await buildCliAsync();
  dir = tempDir();
  const lib = JSON.stringify(built.flowIndexUrl);
  flows = writeFile(
    dir.path,
    'flows.mjs',
    `import { task, linear } from ${lib};
export default [
  linear('greet', [task({ name: 'hello', requires: ['who'], provides: 'greeting', execute: ({ who }) => 'hello ' + who })]),
  linear('doomed', [
    task({
      name: 'fail',
      retry: { attempts: 2, backoffMs: 10 },
      execute: () => { throw Object.assign(new Error('no luck', { cause: new Error('deeper') }), { code: 'E_LUCK', details: { tries: 1 } }); },
    }),
  ]),
  linear('approval', [task({ name: 'ask', provides: 'decision', execute: (_i, ctx) => ctx.waitForSignal('approve') })]),
  linear('slow', [task({ name: 'nap', execute: (_i, ctx) => new Promise((r) => { const t = setTimeout(r, 20000); ctx.signal.addEventListener('abort', () => { clearTimeout(t); r(null); }); }) })]),
];
`,
  );
  writeFile(dir.path, 'throws.mjs', `throw new Error('cannot reach the config service');\n`);
}, 180_000);

afterAll(() => {
  built?.remove();
  dir?.remove();
});

describe('stoker -f json output (docs/cli-json.md)', () => {
  it('runs, atoms, events, failures, engines, signals, prune and migrate have the documented shapes', async () => {
    const store = newStore();
    const migrated = await cli(['migrate', '--store', store, '-f', 'json']);
    expect(migrated.code).toBe(0);
    const m = json<{ store: string; applied: unknown[] }>(migrated);
    expect(Object.keys(m)).toEqual(['store', 'applied']);
    expect(m.applied.length).toBeGreaterThan(0);

    const ok = await cli(['run', 'greet', '--flows', flows, '--store', store, '--args', '{"who":"ada"}', '--wait', '-f', 'json']);
    expect(ok.code, ok.stderr).toBe(0);
    const okRun = json<{ status: string; result: unknown }>(ok);
    checkObject('Run', okRun, 'run (run --wait)');
    expect(okRun.status).toBe('SUCCESS');

    const bad = await cli(['run', 'doomed', '--flows', flows, '--store', store, '--wait', '--poll-ms', '20', '-f', 'json']);
    expect(bad.code, bad.stderr).toBe(3);
    const badRun = json<{ id: string; status: string; failure: { code?: string; cause?: unknown } }>(bad);
    checkObject('Run', badRun, 'failed run');
    expect(badRun.status).toBe('REVERTED');
    expect(badRun.failure.code).toBe('E_LUCK');
    expect(badRun.failure.cause).toBeDefined();

    const shown = json<{ atoms: unknown[]; events: { atom: number | null; kind: string }[] }>(
      await cli(['runs', 'show', badRun.id, '--events', '--store', store, '-f', 'json']),
    );
    const { atoms, events, ...runOnly } = shown;
    checkObject('Run', runOnly, 'runs show');
    expect(atoms).toHaveLength(1);
    atoms.forEach((a, i) => checkObject('Atom', a, `atoms[${i}]`));
    expect(events.map((e) => e.kind)).toContain('atom.retry_scheduled');
    events.forEach((e, i) => checkObject('Event', e, `events[${i}]`));
    // atomName is there exactly for an atom's events
    for (const e of events) expect('atomName' in e).toBe(e.atom !== null);

    const list = json<unknown[]>(await cli(['runs', 'list', '--store', store, '-f', 'json']));
    expect(list).toHaveLength(2);
    list.forEach((r, i) => checkObject('Run', r, `runs list[${i}]`));

    // an engine, a waiting atom, a signal
    const engine = startCli(built, ['engine', '--flows', flows, '--store', store, '--poll-ms', '50'], { cwd: dir.path });
    try {
      await waitUntil(() => engine.output.stderr.includes(' started on '), 15_000, 'the engine to start');
      const engines = json<unknown[]>(await cli(['engines', 'list', '--store', store, '-f', 'json']));
      expect(engines).toHaveLength(1);
      checkObject('Engine', engines[0], 'engines list[0]');

      const waiting = json<{ id: string }>(await cli(['run', 'approval', '--flows', flows, '--store', store, '-f', 'json']));
      checkObject('Run', waiting, 'run (started)');
      let atom: { state?: string; waitKind?: string } = {};
      await waitUntil(
        async () => {
          atom = json<{ atoms: { state: string; waitKind: string }[] }>(
            await cli(['runs', 'show', waiting.id, '--store', store, '-f', 'json']),
          ).atoms[0]!;
          return atom.state === 'WAITING';
        },
        15_000,
        'the atom to wait for its signal',
      );
      checkObject('Atom', atom, 'waiting atom');
      expect(atom.waitKind).toBe('signal');
      const signal = json<Record<string, unknown>>(
        await cli(['signal', waiting.id, 'approve', '--payload', '{"by":"ana"}', '--store', store, '-f', 'json']),
      );
      expect(signal).toEqual({ runId: waiting.id, name: 'approve', payload: { by: 'ana' }, woke: 1 });
    } finally {
      engine.kill('SIGTERM');
      await engine.exited;
    }

    const prune = json<Record<string, unknown>>(
      await cli(['runs', 'prune', '--older-than', '30d', '--dry-run', '--store', store, '-f', 'json']),
    );
    expect(Object.keys(prune).sort()).toEqual(['atoms', 'dryRun', 'engines', 'events', 'olderThanMs', 'runs', 'signals']);
  }, 90_000);

  it('locks have the documented shape', async () => {
    const store = await migrateStore(newStore());
    const { openStore } = await import('../../../src/store/open-store.js');
    const { createLocks } = await import('../../../src/engine/locks.js');
    const s = await openStore(store);
    try {
      const held = await createLocks(s).acquire('reports/nightly', { ttlMs: 60_000 });
      expect(held).not.toBeNull();
      const locks = json<unknown[]>(await cli(['locks', 'list', '--store', store, '-f', 'json']));
      expect(locks).toHaveLength(1);
      checkObject('Lock', locks[0], 'locks list[0]');
    } finally {
      await s.close();
    }
  });
});

describe('errors with -f json (docs/cli-json.md, Error)', () => {
  let store: string;
  let ended: string;
  beforeAll(async () => {
    store = newStore();
    expect((await cli(['migrate', '--store', store])).code).toBe(0); // with the orchestration tables, for `stack show`
    const r = await cli(['run', 'greet', '--flows', flows, '--store', store, '--args', '{"who":"x"}', '--wait', '-f', 'json']);
    ended = json<{ id: string }>(r).id;
  }, 30_000);

  /** The last stderr line as the error object, checked against the doc. */
  function errorObject(r: CliResult): { code: string; message: string; details: Record<string, unknown>; stack?: string } {
    const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(last);
    } catch {
      throw new Error(`the last stderr line is not JSON (exit ${r.code}):\n${r.stderr}`);
    }
    checkObject('Error', parsed, 'error');
    return parsed as { code: string; message: string; details: Record<string, unknown> };
  }

  const cases: [string, () => string[], number, string][] = [
    ['usage: unknown flag', () => ['runs', 'list', '--bogus', '-f', 'json'], 2, 'STOKER_CLI_USAGE'],
    ['usage: bad flag value', () => ['runs', 'list', '--limit', 'x', '--format=json'], 2, 'STOKER_CLI_USAGE'],
    ['usage: a group without its subcommand', () => ['runs', '-f', 'json'], 2, 'STOKER_CLI_USAGE'],
    ['bad store URL', () => ['runs', 'list', '--store', 'mongodb://x/y', '-f', 'json'], 2, 'STOKER_STORE_URL_INVALID'],
    [
      'malformed JSON',
      () => ['run', 'greet', '--flows', flows, '--store', store, '--args', '{', '-f', 'json'],
      2,
      'STOKER_INPUT_INVALID_JSON',
    ],
    ['missing argument', () => ['run', 'greet', '--flows', flows, '--store', store, '-f', 'json'], 2, 'STOKER_RUN_MISSING_ARGUMENT'],
    ['not migrated', () => ['engines', 'list', '--store', newStore(), '-f', 'json'], 1, 'STOKER_STORE_NOT_MIGRATED'],
    ['unreachable database', () => ['runs', 'list', '--store', 'postgres://127.0.0.1:1/none', '-f', 'json'], 4, 'STOKER_STORE_UNREACHABLE'],
    ['unknown flow', () => ['run', 'nope', '--flows', flows, '--store', store, '-f', 'json'], 5, 'STOKER_FLOW_NOT_FOUND'],
    ['unknown run', () => ['runs', 'show', 'no-such-run', '--store', store, '-f', 'json'], 6, 'STOKER_RUN_NOT_FOUND'],
    [
      'flows module throws',
      () => ['run', 'greet', '--flows', 'throws.mjs', '--store', store, '-f', 'json'],
      7,
      'STOKER_FLOWS_MODULE_INVALID',
    ],
    [
      'engine with a bad flows module',
      () => ['engine', '--flows', 'throws.mjs', '--store', store, '-f', 'json'],
      7,
      'STOKER_FLOWS_MODULE_INVALID',
    ],
    ['cancel an ended run', () => ['runs', 'cancel', ended, '--store', store, '-f', 'json'], 8, 'STOKER_RUN_NOT_ACTIVE'],
    ['signal an ended run', () => ['signal', ended, 'go', '--store', store, '-f', 'json'], 8, 'STOKER_RUN_NOT_ACTIVE'],
    ['unknown stack', () => ['stack', 'show', 'no-such-stack', '--store', store, '-f', 'json'], 1, 'STOKER_STACK_NOT_FOUND'],
  ];
  for (const [what, args, exit, code] of cases) {
    it(`${what}: exit ${exit}, ${code}`, async () => {
      const r = await cli(args());
      expect(r.code, r.stderr).toBe(exit);
      expect(r.stdout).toBe('');
      const e = errorObject(r);
      expect(e.code).toBe(code);
      expect(e.message.length).toBeGreaterThan(0);
      expect(e.stack).toBeUndefined();
    });
  }

  it('the same error without -f json is one text line', async () => {
    const r = await cli(['runs', 'show', 'no-such-run', '--store', store]);
    expect(r.code).toBe(6);
    expect(r.stderr).toBe('stoker: error: no run no-such-run in this store (code STOKER_RUN_NOT_FOUND)\n');
  });

  it('details carry the facts of the error', async () => {
    const r = await cli(['runs', 'show', 'no-such-run', '--store', store, '-f', 'json']);
    expect(errorObject(r).details).toEqual({ runId: 'no-such-run' });
  });

  it('--log-level debug adds the stack of the error and its causes', async () => {
    const r = await cli(['run', 'greet', '--flows', 'throws.mjs', '--store', store, '-f', 'json', '--log-level', 'debug']);
    expect(r.code).toBe(7);
    const e = errorObject(r);
    expect(e.stack).toMatch(/caused by: Error: cannot reach the config service\n\s+at .*throws\.mjs:1:7/);
  });

  it('run --wait --timeout-ms: the run on stdout, the timeout error on stderr, exit 124', async () => {
    const r = await cli(['run', 'slow', '--flows', flows, '--store', store, '--wait', '--timeout-ms', '500', '-f', 'json']);
    expect(r.code, r.stderr).toBe(124);
    checkObject('Run', json(r), 'run (timed out)');
    expect(errorObject(r).code).toBe('STOKER_RUN_WAIT_TIMEOUT');
  });
});
