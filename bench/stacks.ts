/**
 * The stacks benchmark (issue "Heat-compatible orchestration"): create, update (every value
 * changed in place) and delete a stack holding one OS::Heat::ResourceGroup of N
 * OS::Heat::TestResource, N = 100, 1,000, 10,000, and create a chain of 50 resources each
 * depending on the one before, on SQLite and PostgreSQL, with 1 and 2 `stoker engine`
 * processes at their default settings (the bench raises the resources-per-stack limit, as an
 * operator would). The reference is a no-op flow of the same shape (unordered of N; linear of
 * 50) run by the same engine processes in the same run: the ratio of resource steps per
 * second to its atoms per second is the cost of orchestration.
 *
 *   node --import tsx bench/stacks.ts [--dialects sqlite,postgres] [--engines 1,2] [--sizes 100,1000,10000] [--quick] [--rounds N]
 *
 * `--rounds N` (default 1) runs each size's create, update and delete N times on the same
 * engine processes, a new stack each round, each after its own run of the reference, and
 * reports each round apart (`round`): the first
 * round of the first size runs on engines that have run only the no-op reference, so every
 * process still compiles the stack layer's code (V8) meanwhile; later rounds show the
 * engines warm.
 *
 * (also part of `npm run bench`: `--scenarios stacks`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Orchestrator } from '../src/orchestration/stacks/index.js';
import { createRuntime, type Runtime } from '../src/runtime/create-runtime.js';
import { createTestStore } from '../test/helpers/databases.js';
import { progressFor, round, writeResults } from './common.js';

const ROOT = join(import.meta.dirname, '..');
const FLOWS = join(import.meta.dirname, 'fixtures', 'stack-bench-flows.ts');
const MAX_RESOURCES = 20_000;
/** creates of the chain of 50 per configuration (the row gives their median) */
const CHAIN_RUNS = 5;

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

export interface StackBenchRow {
  dialect: string;
  engines: number;
  scenario: string;
  /** 1: the first create/update/delete of this size on these engine processes (`--rounds`) */
  round: number;
  resources: number;
  seconds: number;
  stepsPerSec: number;
  referenceAtomsPerSec: number;
  ratio: number;
}

export const group = (n: number): string => `
heat_template_version: 2016-10-14
parameters:
  value: {type: string, default: one}
resources:
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: ${n}
      resource_def: {type: OS::Heat::TestResource, properties: {value: {get_param: value}}}
`;

/** a chain of `n` TestResources, each depending on the one before (also bench/chain-probe.ts) */
export const chain = (n: number): string =>
  `heat_template_version: 2016-10-14\nresources:\n` +
  Array.from(
    { length: n },
    (_, i) => `  r${i}: {type: OS::Heat::TestResource, properties: {value: v${i}}${i > 0 ? `, depends_on: r${i - 1}` : ''}}\n`,
  ).join('');

/** a `stoker engine` process at its default settings (`nodeArgs`: options for node itself, e.g. --cpu-prof); resolves once it has started */
export function startEngine(url: string, nodeArgs: readonly string[] = [], engineArgs: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--import',
      'tsx',
      join(ROOT, 'src', 'cli', 'main.ts'),
      'engine',
      '--store',
      url,
      '--flows',
      FLOWS,
      '--stats-ms',
      '0',
      ...engineArgs,
    ],
    { cwd: ROOT, env: { ...process.env, STOKER_MAX_RESOURCES_PER_STACK: String(MAX_RESOURCES) }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (err.includes('started on')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`engine exited ${code}: ${err}`)));
  });
}

/** the bench's client: the reference flows loaded, no engine of its own, the resources-per-stack limit raised as an operator would */
export async function stackClient(url: string): Promise<Runtime> {
  const { loadFlowsModule } = await import('../src/runtime/load-flows.js');
  const { FlowRegistry } = await import('../src/flow/index.js');
  const flows = new FlowRegistry();
  await loadFlowsModule(FLOWS, flows);
  return createRuntime({
    store: url,
    flows,
    engines: 0,
    orchestration: { limits: { maxResourcesPerStack: MAX_RESOURCES } },
    logLevel: 'error',
  });
}

async function settle(stacks: Orchestrator, id: string): Promise<string> {
  for (;;) {
    const s = await stacks.get(id, undefined, { deleted: true });
    if (s.status !== 'IN_PROGRESS') return `${s.action}_${s.status}`;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function timed(what: string, fn: () => Promise<string>, expected: string): Promise<number> {
  const t0 = performance.now();
  const status = await fn();
  if (status !== expected) throw new Error(`${what} ended ${status}, expected ${expected}`);
  return (performance.now() - t0) / 1000;
}

async function reference(rt: Runtime, flow: string, atoms: number): Promise<number> {
  const t0 = performance.now();
  const { run } = await rt.client.startRun(flow, {});
  const done = await rt.client.waitForRun(run.id, { pollMs: 10 });
  if (done.status !== 'SUCCESS') throw new Error(`${flow} ended ${done.status}`);
  return atoms / ((performance.now() - t0) / 1000);
}

export async function benchStacks(
  options: {
    dialects?: string[];
    engines?: number[];
    sizes?: number[];
    quick?: boolean;
    rounds?: number;
    progress?: (m: string) => void;
  } = {},
): Promise<StackBenchRow[]> {
  const progress = options.progress ?? progressFor('stacks');
  const sizes = options.sizes ?? (options.quick ? [100, 1000] : [100, 1000, 10_000]);
  const rows: StackBenchRow[] = [];
  for (const dialect of (options.dialects ?? ['sqlite', 'postgres']).filter((d) => d === 'sqlite' || d === 'postgres')) {
    for (const engines of options.engines ?? [1, 2]) {
      const db = await createTestStore(dialect as 'sqlite' | 'postgres');
      if (!db) continue;
      const procs: ChildProcess[] = [];
      let rt: Runtime | null = null;
      try {
        for (let i = 0; i < engines; i++) procs.push(await startEngine(db.url));
        rt = await stackClient(db.url);
        const stacks = rt.stacks!;
        const add = (scenario: string, resources: number, seconds: number, ref: number, nth = 1) => {
          const stepsPerSec = round(resources / seconds, 0);
          rows.push({
            dialect,
            engines,
            scenario,
            round: nth,
            resources,
            seconds: round(seconds, 2),
            stepsPerSec,
            referenceAtomsPerSec: round(ref, 0),
            ratio: round(stepsPerSec / ref, 2),
          });
          progress(
            `${dialect}, ${engines} engine${engines > 1 ? 's' : ''}: ${scenario} ${resources}${nth > 1 ? ` (round ${nth})` : ''}: ${round(seconds, 2)} s, ${stepsPerSec} steps/s, ${round(stepsPerSec / ref, 2)} of the no-op flow`,
          );
        };
        for (const n of sizes) {
          for (let nth = 1; nth <= (options.rounds ?? 1); nth++) {
            // each round's own reference, just before it: as cold or warm as the round's stack
            const ref = await reference(rt, `unordered${n}`, n);
            const name = nth === 1 ? `g${n}` : `g${n}r${nth}`;
            let id = '';
            const create = await timed(
              `create ${n}`,
              async () => {
                id = (await stacks.create(name, { template: group(n) })).id;
                return settle(stacks, id);
              },
              'CREATE_COMPLETE',
            );
            add('group create', n, create, ref, nth);
            const update = await timed(
              `update ${n}`,
              async () => {
                await stacks.update(name, { existing: true, parameters: { value: 'two' } });
                return settle(stacks, id);
              },
              'UPDATE_COMPLETE',
            );
            add('group update (every value in place)', n, update, ref, nth);
            const del = await timed(
              `delete ${n}`,
              async () => {
                await stacks.delete(name);
                return settle(stacks, id);
              },
              'DELETE_COMPLETE',
            );
            add('group delete', n, del, ref, nth);
          }
        }
        // a chain takes a fifth of a second: one sample is mostly noise, so the median of
        // CHAIN_RUNS creates (each a new stack) against the median of as many reference runs
        const refs: number[] = [];
        const chains: number[] = [];
        for (let k = 0; k < CHAIN_RUNS; k++) {
          refs.push(await reference(rt, 'linear50', 50));
          chains.push(
            await timed(
              'chain',
              async () => settle(stacks, (await stacks.create(`chain${k}`, { template: chain(50) })).id),
              'CREATE_COMPLETE',
            ),
          );
        }
        add(`chain of 50 create (median of ${CHAIN_RUNS})`, 50, median(chains), median(refs));
      } finally {
        await rt?.stop({ timeoutMs: 5_000 });
        for (const p of procs) p.kill('SIGTERM');
        await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on('exit', r)))));
        await db.drop();
      }
    }
  }
  return rows;
}

export function stacksMarkdown(rows: readonly StackBenchRow[]): string {
  const lines = [
    '| dialect | engine processes | scenario | round | resources | seconds | resource steps/s | no-op flow atoms/s | ratio |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.dialect} | ${r.engines} | ${r.scenario} | ${r.round} | ${r.resources} | ${r.seconds} | ${r.stepsPerSec} | ${r.referenceAtomsPerSec} | ${r.ratio} |`,
    ),
    '',
    'Engines are `stoker engine` processes at their default settings; the client (stack create/update/delete) is this process. Round 1 is the first create/update/delete of each size on those processes (for the first size, V8 still compiling the stack layer code in each of them), later rounds (`--rounds`) the same again on the warm engines. The reference is a no-op flow of the same shape (unordered of N, linear of 50) run by the same engines just before each round; ratio = resource steps/s ÷ its atoms/s (the cost of orchestration).',
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    process.stdout.write(
      'node --import tsx bench/stacks.ts [--dialects sqlite,postgres] [--engines 1,2] [--sizes 100,1000,10000] [--quick] [--rounds N]\n' +
        '  --quick: sizes 100 and 1,000 (default: 100, 1,000 and 10,000); --sizes: these group sizes (unordered flows of 100, 1,000 and 10,000 exist)\n' +
        '  --rounds N: create, update and delete each size N times on the same engine processes (default 1), each round reported apart\n',
    );
    process.exit(0);
  }
  const list = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 && args[i + 1] ? args[i + 1]!.split(',') : undefined;
  };
  const dialects = list('--dialects');
  const engines = list('--engines')?.map(Number);
  const sizes = list('--sizes')?.map(Number);
  const rounds = Number(list('--rounds')?.[0] ?? '1');
  const rows = await benchStacks({
    quick: args.includes('--quick'),
    rounds,
    ...(dialects ? { dialects } : {}),
    ...(engines ? { engines } : {}),
    ...(sizes ? { sizes } : {}),
  });
  const md = stacksMarkdown(rows);
  writeResults('stacks-', { at: new Date().toISOString(), node: process.version, rows }, md);
  process.stdout.write(md + '\n');
}
