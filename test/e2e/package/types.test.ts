/**
 * The published type declarations, as an application meets them: the package is built and
 * packed (`npm pack`, so the "files" list counts), unpacked as the only package of a new
 * TypeScript project in a temporary folder, and that project is type-checked with the
 * project's own `tsc`, `skipLibCheck: false` and no @types/node. Nothing else is installed,
 * so a declaration that reaches another package (node:events, pg, pino …) fails the check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, buildCliAsync, tempDir, writeFile, type Built } from '../cli/harness.js';

const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

let built: Built;
let work: { path: string; remove(): void };
let app: string;

beforeAll(async () => {
  built = await buildCliAsync();
  work = tempDir('stoker-types-');
  // the package as `npm pack` would publish it
  const stage = join(work.path, 'stage');
  mkdirSync(stage);
  for (const f of ['package.json', 'README.md', 'ARCHITECTURE.md', 'docs']) cpSync(join(ROOT, f), join(stage, f), { recursive: true });
  cpSync(built.dist, join(stage, 'dist'), { recursive: true });
  execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work.path], { cwd: stage, stdio: 'pipe' });
  const tarball = readdirSync(work.path).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error('npm pack wrote no tarball');
  app = join(work.path, 'app');
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  execFileSync('tar', ['-xzf', join(work.path, tarball), '-C', join(app, 'node_modules')]);
  renameSync(join(app, 'node_modules', 'package'), join(app, 'node_modules', 'stoker'));
  writeFile(app, 'package.json', JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFile(
    app,
    'tsconfig.json',
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        skipLibCheck: false,
        // no @types at all, even if some were installed
        types: [],
        noEmit: true,
      },
      include: ['src'],
    }),
  );
}, 120_000);

afterAll(() => {
  built?.remove();
  work?.remove();
});

/** Runs tsc on the application (asynchronously: a blocked test worker misses its heartbeats). */
function typeCheck(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, '-p', app], { encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** An application using the public API: flows, an engine, a runtime, errors, JSON views. */
const APP = `import {
  Engine, FlowRegistry, RunClient, createRuntime, graph, isStokerError, linear, openStore, runJson, task, times, unordered,
  type JsonValue, type RunRow, type TaskContext,
} from 'stoker';

interface Reservation { id: string; sku: string; until: string; lines: { qty: number }[]; note?: string }

async function reserve(sku: string): Promise<Reservation> {
  return { id: 'r-1', sku, until: '2030-01-01T00:00:00Z', lines: [{ qty: 1 }] };
}

export const order = linear('order', [
  task({
    name: 'reserve',
    requires: ['sku'],
    provides: 'reservation',
    // an interface-typed result, no cast
    execute: async ({ sku }) => reserve(String(sku)),
    revert: async ({ sku }, ctx: TaskContext) => void ctx.idempotencyKey.concat(String(sku)),
  }),
  task({
    name: 'charge',
    requires: ['reservation', 'amount'],
    inject: { currency: 'EUR' },
    retry: { attempts: 3, backoffMs: 200 },
    execute: async ({ reservation, amount, currency }, ctx) => {
      ctx.signal.throwIfAborted();
      await ctx.sleep(10);
      const approval: JsonValue = await ctx.waitForSignal('approve');
      return { reservation, amount, currency, approval, execution: ctx.execution };
    },
  }),
  unordered('notify', [task({ name: 'mail', execute: () => undefined }), task({ name: 'sms', execute: () => 'sent' })]),
]);

export const routed = graph(
  'routed',
  [
    task({ name: 'check', provides: 'ok', execute: () => true }),
    task({ name: 'yes', execute: async (_inputs, ctx) => ctx.runChild('order', { sku: 'kettle', amount: 3 }) }),
  ],
  [{ from: 'check', to: 'yes', decider: (result) => result === true }],
  { retry: times(2) },
);

export async function main(): Promise<RunRow> {
  const store = await openStore('sqlite:./stoker.db');
  await store.migrate();
  const flows = new FlowRegistry();
  flows.register(order);
  flows.register(routed);
  const engine = new Engine({ store, flows, concurrency: 4 });
  engine.on('error', (e: Error) => console.error(e.message));
  engine.on('run.finished', ({ runId, status }) => console.log(runId, status));
  await engine.start();
  const { run } = await engine.startRun('order', { sku: 'kettle', amount: 3 }, { key: 'order-1' });
  const client = new RunClient({ store, flows });
  await client.signal(run.id, 'approve', { by: 'ana' });
  const done = await engine.waitForRun(run.id);
  console.log(JSON.stringify(runJson(done)));
  await engine.stop();
  const runtime = await createRuntime({ store: 'sqlite:./other.db', flows: [order], engines: 1 });
  try {
    await runtime.client.startRun('order', { sku: 'toaster', amount: 1 });
  } catch (e) {
    if (isStokerError(e) && e.code === 'STOKER_FLOW_NOT_FOUND') console.log(e.details);
  } finally {
    await runtime.stop();
  }
  return done;
}
`;

describe('the packed package type-checks in an application (skipLibCheck false, no @types/node)', () => {
  it('an application using the public API compiles', async () => {
    writeFile(app, 'src/app.ts', APP);
    const r = await typeCheck();
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  }, 120_000);

  it("a typo in a task's input names, and a result that is not JSON, are compile errors", async () => {
    writeFile(
      app,
      'src/wrong.ts',
      `import { task } from 'stoker';
export const t = task({ name: 'reserve', requires: ['sku'], execute: async ({ skew }) => skew });
export const u = task({ name: 'big', execute: () => 10n });
`,
    );
    try {
      const r = await typeCheck();
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/src\/wrong\.ts\(2,\d+\): error TS2339: Property 'skew' does not exist/);
      expect(r.output).toMatch(/src\/wrong\.ts\(3,\d+\): error TS2322/);
      expect(r.output).not.toMatch(/src\/app\.ts/);
    } finally {
      writeFile(app, 'src/wrong.ts', 'export {};\n');
    }
  }, 120_000);

  it('the declarations cite only what ships (docs/*.md), never issue numbers or notes outside the package', () => {
    const dist = join(app, 'node_modules', 'stoker', 'dist');
    const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.d.ts'));
    expect(files.length).toBeGreaterThan(10);
    const found: string[] = [];
    for (const f of files) {
      readFileSync(join(dist, f), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\bissues? #?\d+|\.\.\/shared|\/work\/|\bbackground\/|RULES\.md|TEST-PLAN|DESIGN\.md|STYLE\.md/.test(line))
            found.push(`${f}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(found).toEqual([]);
  });
});
