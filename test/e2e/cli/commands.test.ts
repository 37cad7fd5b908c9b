/**
 * The `stoker` commands end to end: the built CLI as a child process against temporary
 * SQLite files (and a PostgreSQL database for the peer watch).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createTestStore, testDialects } from '../../helpers/databases.js';
import {
  buildCliAsync,
  json,
  migrateStore,
  ROOT,
  runCli,
  startCli,
  tempDir,
  waitUntil,
  writeFile,
  type Built,
  type RunJson,
} from './harness.js';

let built: Built;
let dir: { path: string; remove(): void };
let flows: string;
let storeN = 0;
/** a fresh store URL per test, never touched */
const newStore = (): string => `sqlite:${join(dir.path, `store-${++storeN}.db`)}`;
/** a fresh store per test, migrated (as `stoker migrate` would) */
const freshStore = (): Promise<string> => migrateStore(newStore());

beforeAll(async () => {
  built = await buildCliAsync();
  dir = tempDir();
  flows = writeFile(
    dir.path,
    'flows.mjs',
    `import { task, linear } from ${JSON.stringify(built.flowIndexUrl)};
export default [
  linear('greet', [
    task({ name: 'hello', requires: ['who'], provides: 'greeting', execute: ({ who }) => 'hello ' + who }),
    task({ name: 'shout', requires: ['greeting'], provides: 'loud', execute: ({ greeting }) => greeting.toUpperCase() + '!' }),
  ]),
  linear('approval', [
    task({ name: 'ask', requires: ['doc'], provides: 'decision', execute: async ({ doc }, ctx) => ({ doc, ...(await ctx.waitForSignal('approve')) }) }),
  ]),
  linear('doomed', [
    task({ name: 'fail', execute: () => { const e = new Error('no luck'); e.retryable = false; throw e; } }),
  ]),
  // never ends and ignores ctx.signal, like a task stuck in a call without a timeout
  linear('stuck', [task({ name: 'hang', execute: () => new Promise(() => {}) })]),
];
`,
  );
}, 180_000);

afterAll(() => {
  built?.remove();
  dir?.remove();
});

const cli = (args: string[], env?: Record<string, string>) => runCli(built, args, { cwd: dir.path, ...(env ? { env } : {}) });

describe('stoker migrate', () => {
  it('applies the migrations once, then reports up to date', async () => {
    const store = newStore();
    const first = await cli(['migrate', '--store', store]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/applied migrations? 1/);
    const again = await cli(['migrate', '--store', store, '-f', 'json']);
    expect(again.code).toBe(0);
    expect(json(again)).toEqual({ store, applied: [] });
    const table = await cli(['migrate', '--store', store]);
    expect(table.stdout.trim()).toBe(`${store}: up to date`);
  });

  it('only migrate, engine and demo change the schema: other commands say "not migrated" and create nothing', async () => {
    // a folder that does not exist: nothing may create it
    const missingDir = join(dir.path, `nowhere-${++storeN}`);
    const missing = `sqlite:${join(missingDir, 'x.db')}`;
    for (const args of [
      ['runs', 'list'],
      ['runs', 'show', '00000000-0000-0000-0000-000000000000'],
      ['runs', 'prune', '--older-than', '30d', '--yes'],
      ['engines', 'list'],
      ['locks', 'list'],
      ['signal', '00000000-0000-0000-0000-000000000000', 'go'],
      ['run', 'greet', '--flows', flows, '--args', '{"who": "x"}'],
    ]) {
      const r = await cli([...args, '--store', missing]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(
        /^stoker: error: SQLite database .*x\.db does not exist: create it with `stoker migrate --store sqlite:.*` \(or check the path\) \(code STOKER_STORE_NOT_MIGRATED\)$/m,
      );
      expect(existsSync(missingDir), args.join(' ')).toBe(false);
    }
    // an existing database without Stoker's tables (the wrong database): read, never written
    const file = join(dir.path, `other-app-${++storeN}.db`);
    const other = new Database(file);
    other.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY)');
    other.close();
    const list = await cli(['runs', 'list', '--store', `sqlite:${file}`]);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(
      /stoker: error: the SQLite database has no Stoker tables \(prefix stoker_\): not migrated, run `stoker migrate` .*\(code STOKER_STORE_NOT_MIGRATED\)/,
    );
    const check = new Database(file, { readonly: true });
    const tables = check.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    check.close();
    expect(tables.map((t) => t.name)).toEqual(['customers']);
    // a database migrated by a newer Stoker
    const newer = await freshStore();
    const db = new Database(newer.slice('sqlite:'.length));
    db.exec("INSERT INTO stoker_schema_migrations (module, version, name, checksum, applied_at) VALUES ('core', 999, 'future', 'x', 0)");
    db.close();
    const tooNew = await cli(['runs', 'list', '--store', newer]);
    expect(tooNew.code).toBe(1);
    expect(tooNew.stderr).toMatch(/this Stoker knows up to \d+: upgrade Stoker \(code STOKER_STORE_SCHEMA_TOO_NEW\)/);
    // migrate creates it; then the same commands work
    expect((await cli(['migrate', '--store', missing])).code).toBe(0);
    const ok = await cli(['runs', 'list', '--store', missing, '-f', 'json']);
    expect(ok.code).toBe(0);
    expect(json(ok)).toEqual([]);
  });
});

describe('stoker run', () => {
  it('--wait --timeout-ms returns at the timeout with exit 124 and hands the running atom back; the run goes on', async () => {
    const store = await freshStore();
    // A drain would wait for the task (30 s by default): the harness kills the command before that.
    const r = await runCli(built, ['run', 'stuck', '--flows', flows, '--wait', '--timeout-ms', '500', '--store', store, '-f', 'json'], {
      cwd: dir.path,
      timeoutMs: 20_000,
    });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(124);
    const printed = json<RunJson>(r);
    expect(['PENDING', 'RUNNING']).toContain(printed.status);
    // with -f json the error is the last stderr line, as one JSON object (docs/cli-json.md)
    const error = JSON.parse(r.stderr.trimEnd().split('\n').at(-1)!) as { code: string; message: string };
    expect(error.code).toBe('STOKER_RUN_WAIT_TIMEOUT');
    expect(error.message).toMatch(/is still (PENDING|RUNNING) after --timeout-ms 500; it goes on when an engine runs /);
    const after = json<RunJson>(await cli(['runs', 'show', printed.id, '--store', store, '-f', 'json']));
    expect(after.status).toBe(printed.status);
    expect(after.atoms!.map((a) => a.state)).toEqual(['READY']);
  });

  it('--wait -f json executes the run and prints it with its result', async () => {
    const store = await freshStore();
    const r = await cli(['run', 'greet', '--flows', flows, '--args', '{"who": "ada"}', '--wait', '--store', store, '-f', 'json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const run = json<RunJson>(r);
    expect(run.status).toBe('SUCCESS');
    expect(run.flow).toBe('greet');
    expect(run.version).toBe('1');
    expect(run.args).toEqual({ who: 'ada' });
    expect(run.result).toEqual({ greeting: 'hello ada', loud: 'HELLO ADA!' });
    expect(run.failure).toBeNull();
    expect(new Date(run.createdAt).toISOString()).toBe(run.createdAt);
    expect(run.finishedAt).not.toBeNull();
  });

  it('--wait exits 3 when the run does not succeed, and prints the failure', async () => {
    const store = await freshStore();
    const r = await cli(['run', 'doomed', '--flows', flows, '--wait', '--store', store, '-f', 'json']);
    expect(r.code).toBe(3);
    const run = json<RunJson>(r);
    expect(run.status).toBe('REVERTED');
    expect(run.failure?.message).toBe('no luck');
  });

  it('without --wait only starts the run: runs show reports it PENDING with PENDING/READY atoms', async () => {
    const store = await freshStore();
    const r = await cli([
      'run',
      'greet',
      '--flows',
      flows,
      '--args',
      '{"who": "bob"}',
      '--key',
      'greet-bob',
      '--store',
      store,
      '-f',
      'json',
    ]);
    expect(r.code).toBe(0);
    const started = json<RunJson>(r);
    expect(started.status).toBe('PENDING');
    expect(started.key).toBe('greet-bob');

    const shown = await cli(['runs', 'show', started.id, '--store', store, '-f', 'json']);
    expect(shown.code).toBe(0);
    const run = json<RunJson>(shown);
    expect(run.id).toBe(started.id);
    expect(run.status).toBe('PENDING');
    expect(run.result).toBeNull();
    expect(run.atoms?.map((a) => [a.name, a.state, a.attempt])).toEqual([
      ['hello', 'READY', 1],
      ['shout', 'PENDING', 1],
    ]);

    // the same key and arguments while active: the same run, no second row
    const again = await cli([
      'run',
      'greet',
      '--flows',
      flows,
      '--args',
      '{"who": "bob"}',
      '--key',
      'greet-bob',
      '--store',
      store,
      '-f',
      'json',
    ]);
    expect(again.code).toBe(0);
    expect(json<RunJson>(again).id).toBe(started.id);
    expect(again.stderr).toContain('stoker: an active run with key "greet-bob" and the same arguments exists: showing it (no new run)');
    const list = await cli(['runs', 'list', '--store', store, '-f', 'json']);
    expect(json<RunJson[]>(list).map((x) => x.id)).toEqual([started.id]);

    const table = await cli(['runs', 'show', started.id, '--store', store]);
    expect(table.stdout).toMatch(/^id:\s+[0-9a-f-]{36}$/m);
    expect(table.stdout).toMatch(/^status:\s+PENDING$/m);
    expect(table.stdout).toMatch(/^0\s+hello\s+READY\s+1\s+0/m);
  });

  it('accepts a TypeScript flows module (examples/order-flows.ts) and runs its retry and its revert', async () => {
    const store = await freshStore();
    const example = join(ROOT, 'examples', 'order-flows.ts');
    const args = JSON.stringify({
      orderId: 'T-1',
      customer: 'ts@example.com',
      items: [{ sku: 'kettle', qty: 2 }],
      address: { city: 'Delft', country: 'NL' },
    });
    const ok = await cli(['run', 'order', '--flows', example, '--args', args, '--wait', '--store', store, '-f', 'json']);
    expect(ok.code).toBe(0);
    const run = json<RunJson>(ok);
    expect(run.status).toBe('SUCCESS');
    const result = run.result as { payment: { amountCents: number; attempt: number }; shipment: { to: string } };
    expect(result.payment.amountCents).toBe(2 * 3499);
    expect(result.payment.attempt).toBe(2);
    expect(result.shipment.to).toBe('Delft, NL');

    const bad = await cli(['run', 'order-express', '--flows', example, '--args', args, '--wait', '--store', store, '-f', 'json']);
    expect(bad.code).toBe(3);
    expect(json<RunJson>(bad).status).toBe('REVERTED');
    expect(json<RunJson>(bad).failure?.message).toBe('the express courier does not deliver to Delft, NL');
  });

  it('--help describes the command with an example', async () => {
    const r = await cli(['run', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: stoker run [options] <flow>');
    expect(r.stdout).toContain('--wait');
    expect(r.stdout).toMatch(/Examples:\n\s+\$ stoker run order/);
  });
});

describe('stoker runs', () => {
  it('list filters by status and flow, in table and JSON', async () => {
    const store = await freshStore();
    const done = json<RunJson>(
      await cli(['run', 'greet', '--flows', flows, '--args', '{"who": "x"}', '--wait', '--store', store, '-f', 'json']),
    );
    const pending = json<RunJson>(
      await cli(['run', 'approval', '--flows', flows, '--args', '{"doc": "d"}', '--store', store, '-f', 'json']),
    );

    const all = json<RunJson[]>(await cli(['runs', 'list', '--store', store, '-f', 'json']));
    expect(all.map((r) => [r.id, r.status])).toEqual([
      [pending.id, 'PENDING'],
      [done.id, 'SUCCESS'],
    ]);
    const ok = json<RunJson[]>(await cli(['runs', 'list', '--status', 'success', '--store', store, '-f', 'json']));
    expect(ok.map((r) => r.id)).toEqual([done.id]);
    const byFlow = json<RunJson[]>(await cli(['runs', 'list', '--flow', 'approval', '--store', store, '-f', 'json']));
    expect(byFlow.map((r) => r.id)).toEqual([pending.id]);
    const limited = json<RunJson[]>(await cli(['runs', 'list', '--limit', '1', '--store', store, '-f', 'json']));
    expect(limited).toHaveLength(1);

    const table = await cli(['runs', 'list', '--store', store]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+FLOW\s+STATUS\s+KEY\s+CREATED\s+TOOK/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^${pending.id}\\s+approval@1\\s+PENDING\\s`));
    expect(lines[2]).toMatch(new RegExp(`^${done.id}\\s+greet@1\\s+SUCCESS\\s`));
    // columns are aligned: STATUS starts at the same offset on every line
    const col = lines[0]!.indexOf('STATUS');
    expect(lines[1]!.slice(col, col + 7)).toBe('PENDING');
    expect(lines[2]!.slice(col, col + 7)).toBe('SUCCESS');
  });

  it('cancel cancels an active run and refuses a finished one (exit 8)', async () => {
    const store = await freshStore();
    const started = json<RunJson>(await cli(['run', 'greet', '--flows', flows, '--args', '{"who": "c"}', '--store', store, '-f', 'json']));
    const r = await cli(['runs', 'cancel', started.id, '--reason', 'changed my mind', '--store', store, '-f', 'json']);
    expect(r.code).toBe(0);
    expect(json<RunJson>(r).status).toBe('CANCELLED');
    const shown = json<RunJson>(await cli(['runs', 'show', started.id, '--events', '--store', store, '-f', 'json']));
    expect(shown.status).toBe('CANCELLED');
    expect(shown.atoms?.map((a) => a.state)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(shown.events?.map((e) => e.kind)).toContain('run.cancelled');

    const again = await cli(['runs', 'cancel', started.id, '--store', store]);
    expect(again.code).toBe(8);
    expect(again.stderr).toMatch(/^stoker: error: run [0-9a-f-]{36} already ended CANCELLED \(code STOKER_RUN_NOT_ACTIVE\)$/m);
  });
});

describe('stoker runs prune', () => {
  it('deletes finished runs older than --older-than, keeps active ones; --dry-run only counts; bad input is a usage error', async () => {
    const store = await freshStore();
    const done = json<RunJson>(
      await cli(['run', 'greet', '--flows', flows, '--args', '{"who": "p"}', '--wait', '--store', store, '-f', 'json']),
    );
    expect(done.status).toBe('SUCCESS');
    const open = json<RunJson>(await cli(['run', 'approval', '--flows', flows, '--args', '{"doc": "d"}', '--store', store, '-f', 'json']));

    const recent = await cli(['runs', 'prune', '--older-than', '1h', '--store', store, '-f', 'json']);
    expect(recent.code).toBe(0);
    expect(json(recent)).toEqual({ dryRun: false, olderThanMs: 3_600_000, runs: 0, atoms: 0, events: 0, signals: 0, engines: 0 });

    const dry = await cli(['runs', 'prune', '--older-than', '0s', '--force', '--dry-run', '--store', store, '-f', 'json']);
    expect(json<{ runs: number; atoms: number }>(dry)).toMatchObject({ dryRun: true, runs: 1, atoms: 2 });
    expect((await cli(['runs', 'show', done.id, '--store', store])).code).toBe(0);

    // a bare number is not an age (it used to mean milliseconds: "--older-than 3" deleted everything)
    const bare = await cli(['runs', 'prune', '--older-than', '3', '--store', store]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/expected an age with a unit, such as 45s, 90m, 12h or 30d, got "3"/);
    // under a minute needs --force
    const young = await cli(['runs', 'prune', '--older-than', '59s', '--store', store]);
    expect(young.code).toBe(2);
    expect(young.stderr).toMatch(/--older-than 59\.0 s would delete runs that ended moments ago: pass --force/);
    expect((await cli(['runs', 'show', done.id, '--store', store])).code).toBe(0);

    const pruned = await cli(['runs', 'prune', '--older-than', '0s', '--force', '--store', store]);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(/^deleted: 1 runs, 2 atoms, \d+ events, 0 signals, \d+ engine rows \(ended more than /);
    const gone = await cli(['runs', 'show', done.id, '--store', store]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/no run .* in this store/);
    expect(json<RunJson>(await cli(['runs', 'show', open.id, '--store', store, '-f', 'json'])).status).toBe('PENDING');

    const missing = await cli(['runs', 'prune', '--store', store]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/needs --older-than/);
    const bad = await cli(['runs', 'prune', '--older-than', 'soon', '--store', store]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/expected an age with a unit/);
    // an engine's retention takes the same ages, and at least a minute
    const bareRetention = await cli(['engine', '--flows', flows, '--retention', '3', '--store', store]);
    expect(bareRetention.code).toBe(2);
    expect(bareRetention.stderr).toMatch(/expected an age with a unit/);
    const shortRetention = await cli(['engine', '--flows', flows, '--retention', '30s', '--store', store]);
    expect(shortRetention.code).toBe(2);
    expect(shortRetention.stderr).toMatch(/--retention 30\.0 s would delete runs almost as soon as they end/);
  });

  it('on a terminal, shows what would be deleted and deletes only when the answer is yes', async () => {
    const store = await freshStore();
    const done = json<RunJson>(
      await cli(['run', 'greet', '--flows', flows, '--args', '{"who": "t"}', '--wait', '--store', store, '-f', 'json']),
    );
    // script(1) gives the command a pseudo-terminal, so stdin is a TTY as for a person
    const onTerminal = (answer: string) =>
      new Promise<string>((resolveRun, reject) => {
        const command = [process.execPath, built.main, 'runs', 'prune', '--older-than', '0s', '--force', '--store', store]
          .map((a) => `'${a}'`)
          .join(' ');
        const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: dir.path, stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          if (out.includes('[y/N]') && !child.stdin.writableEnded) child.stdin.end(`${answer}\n`);
        });
        child.on('error', reject);
        child.on('close', () => resolveRun(out));
      });
    const declined = await onTerminal('n');
    expect(declined).toMatch(/delete 1 runs that ended more than 0 ms ago, with 2 atoms, \d+ events and 0 signals\? \[y\/N\]/);
    expect(declined).toMatch(/nothing deleted/);
    expect((await cli(['runs', 'show', done.id, '--store', store])).code).toBe(0);
    const accepted = await onTerminal('y');
    expect(accepted).toMatch(/deleted: 1 runs, 2 atoms/);
    expect((await cli(['runs', 'show', done.id, '--store', store])).code).toBe(6);
  });
});

describe('stoker engine, signal and engines list', () => {
  it('an engine process executes a run that waits for a signal, and stops gracefully on SIGTERM', async () => {
    const store = await freshStore();
    const engine = startCli(built, ['engine', '--flows', flows, '--store', store, '--poll-ms', '50'], { cwd: dir.path });
    try {
      await waitUntil(() => engine.output.stderr.includes(' started on '), 15_000, 'the engine to start');
      expect(engine.output.stderr).toMatch(/stoker: engine [0-9a-f-]{36} started on sqlite:.*flows: greet@1, approval@1, doomed@1/);

      const engines = json<{ id: string; pid: number; state: string; atomsHeld: number }[]>(
        await cli(['engines', 'list', '--store', store, '-f', 'json']),
      );
      expect(engines).toHaveLength(1);
      expect(engines[0]!.pid).toBe(engine.pid);
      expect(engines[0]!.state).toBe('alive');
      const table = await cli(['engines', 'list', '--store', store]);
      expect(table.stdout).toMatch(/^ID\s+HOST\s+PID\s+VERSION\s+LEASE AGE\s+ATOMS HELD\s+QUEUED REMOTELY\s+STATE$/m);
      expect(table.stdout).toContain(String(engine.pid));

      const run = json<RunJson>(
        await cli(['run', 'approval', '--flows', flows, '--args', '{"doc": "contract-7"}', '--store', store, '-f', 'json']),
      );
      await waitUntil(
        async () => {
          const shown = json<RunJson>(await cli(['runs', 'show', run.id, '--store', store, '-f', 'json']));
          return shown.atoms?.[0]?.state === 'WAITING';
        },
        15_000,
        'the atom to wait for its signal',
      );

      const malformed = await cli(['signal', run.id, 'approve', '--payload', '{"by": ann}', '--store', store]);
      expect(malformed.code).toBe(2);
      expect(malformed.stderr).toMatch(/--payload is not valid JSON: .* at line 1, column 8/);

      const sent = await cli(['signal', run.id, 'approve', '--payload', '{"by": "ann"}', '--store', store, '-f', 'json']);
      expect(sent.code).toBe(0);
      expect(json(sent)).toEqual({ runId: run.id, name: 'approve', payload: { by: 'ann' }, woke: 1 });

      await waitUntil(
        async () => json<RunJson>(await cli(['runs', 'show', run.id, '--store', store, '-f', 'json'])).status === 'SUCCESS',
        15_000,
        'the run to succeed',
      );
      const done = json<RunJson>(await cli(['runs', 'show', run.id, '--store', store, '-f', 'json']));
      expect(done.result).toEqual({ decision: { doc: 'contract-7', by: 'ann' } });

      // the run ended: a signal is refused (exit 8) and nothing is stored
      const late = await cli(['signal', run.id, 'approve', '--payload', '{"by": "bob"}', '--store', store]);
      expect(late.code).toBe(8);
      expect(late.stdout).toBe('');
      expect(late.stderr).toMatch(
        /^stoker: error: run [0-9a-f-]{36} already ended SUCCESS: it takes no more signals \(code STOKER_RUN_NOT_ACTIVE\)$/m,
      );
      const events = json<RunJson>(await cli(['runs', 'show', run.id, '--events', '--store', store, '-f', 'json'])).events!;
      expect(events.filter((e) => e.kind === 'run.signal')).toHaveLength(1);

      engine.kill('SIGTERM');
      const exit = await engine.exited;
      expect(exit.code).toBe(0);
      expect(exit.stderr).toMatch(/received SIGTERM: stopping/);
      // with what it did: the run's atoms, and its claim statements and wake-ups (bench/claim-probe.ts reads them)
      expect(exit.stderr).toMatch(
        /engine [0-9a-f-]{36} stopped after SIGTERM \(claimed [1-9]\d*, executed [1-9]\d*, claim statements [1-9]\d* \(\d+ empty\), wake-ups heard \d+\)/,
      );
      const after = json<{ id: string }[]>(await cli(['engines', 'list', '--store', store, '-f', 'json']));
      expect(after).toEqual([]);
    } finally {
      if (engine.exitCode === null) engine.kill('SIGKILL');
    }
  });

  it('signal to an unknown run exits 6', async () => {
    const store = await freshStore();
    const r = await cli(['signal', '00000000-0000-0000-0000-000000000000', 'approve', '--store', store]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('(code STOKER_RUN_NOT_FOUND)');
  });
});

describe('configuration sources', () => {
  it('reads STOKER_STORE and STOKER_FLOWS when the flags are absent; a flag wins over the variable', async () => {
    const store = await freshStore();
    const viaEnv = await cli(['run', 'greet', '--args', '{"who": "env"}', '--wait', '-f', 'json'], {
      STOKER_STORE: store,
      STOKER_FLOWS: flows,
    });
    expect(viaEnv.code).toBe(0);
    const id = json<RunJson>(viaEnv).id;
    const listed = json<RunJson[]>(await cli(['runs', 'list', '--store', store, '-f', 'json']));
    expect(listed.map((r) => r.id)).toEqual([id]);

    const other = await freshStore();
    const flagWins = await cli(['runs', 'list', '--store', other, '-f', 'json'], { STOKER_STORE: store });
    expect(json(flagWins)).toEqual([]);
  });
});

describe.runIf(testDialects().includes('postgres'))('stoker engine --no-watch-peers', () => {
  it('on PostgreSQL an engine process watches another one on a connection of its own, unless told not to', async () => {
    const db = (await createTestStore('postgres'))!;
    const watchers = async () =>
      Number(
        (
          await db.exec(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'stoker-engine-watch' AND datname = current_database()`,
          )
        )[0]!.n,
      );
    const quiet = startCli(built, ['engine', '--flows', flows, '--store', db.url, '--no-watch-peers'], { cwd: dir.path });
    const watching = startCli(built, ['engine', '--flows', flows, '--store', db.url], { cwd: dir.path });
    try {
      for (const e of [quiet, watching]) await waitUntil(() => e.output.stderr.includes(' started on '), 15_000, 'the engines to start');
      await waitUntil(async () => (await watchers()) >= 1, 15_000, 'an engine to watch the other');
      // the first one, alone when it started, would have looked again after 2 s
      await new Promise((r) => setTimeout(r, 3_000));
      expect(await watchers()).toBe(1);
    } finally {
      for (const e of [quiet, watching]) e.kill('SIGTERM');
      await Promise.all([quiet.exited, watching.exited]);
      await db.drop();
    }
  }, 60_000);
});
