/**
 * Where a chain step's time goes (docs/orchestration.md, "Performance"): one engine in this
 * process on PostgreSQL creates a chain of N OS::Heat::TestResource (each depending on the
 * one before) a few times, with a wrapper on `pg.Client.prototype.query` that records every
 * statement the process sends (the client waits on the run through the in-process hub,
 * without polling). It prints the last create's statements in order (the steps between the
 * first and the last elided) and one step's, from one completion to the next, with their
 * round trips; per create the statements by kind, per step and in all, and the CPU of the
 * process per step, from the first step's write to the run's end and for the create request
 * before it; and the stacks benchmark's reference, the no-op linear flow of 50.
 * `PROBE_DUMP=FILE` writes the first one-write create's text and parameters to FILE (for
 * EXPLAIN ANALYZE).
 *
 *   node --import tsx bench/chain-probe.ts [--size 50] [--runs 3]
 */
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { createTestStore } from '../test/helpers/databases.js';
import referenceFlows from './fixtures/stack-bench-flows.js';
import { chain } from './stacks.js';

interface Sent {
  kind: string;
  t0: number;
  t1: number;
}

const KINDS: [RegExp, string][] = [
  [/WITH r AS \(\s*SELECT id, status, pending_atoms(, row_version)? FROM \S*runs WHERE id = \$1 FOR UPDATE\s*\), a AS/, 'fast completion'],
  [/FROM unnest\(ARRAY\[\$1::text\]/, 'fast finish'],
  [/create resources|CROSS JOIN \(VALUES \(1, 'CREATE_IN_PROGRESS'\)/, 'stack: create at once'],
  [/jsonb_to_recordset[\s\S]*AS v\(ord int, "stackId" text, traversal text, name text, "rowId"/, 'stack: start step'],
  [/jsonb_to_recordset[\s\S]*names text\[\]/, 'stack: read step'],
  [/UPDATE \S*stack_resources r SET[\s\S]*cond text/, 'stack: write resource'],
  [/FOR UPDATE SKIP LOCKED/, 'claim'],
  [/stack_events/, 'stack event'],
  [/stacks/, 'stack statement'],
];

function kindOf(text: string): string {
  for (const [re, kind] of KINDS) if (re.test(text)) return kind;
  return text.replace(/\s+/g, ' ').slice(0, 70);
}

const args = process.argv.slice(2);
const opt = (flag: string, dflt: number) => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const size = opt('--size', 50);
const runs = opt('--runs', 3);

const sent: Sent[] = [];
let dumped = false;
let firstStepCpu: NodeJS.CpuUsage | null = null;
let recording = false;
const original = pg.Client.prototype.query;
(pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown }).query = function (this: pg.Client, ...a: unknown[]) {
  const cfg = a[0];
  const text = typeof cfg === 'string' ? cfg : ((cfg as { text?: string } | null)?.text ?? '');
  const entry: Sent = { kind: kindOf(text), t0: performance.now(), t1: 0 };
  if (recording) sent.push(entry);
  if (recording && entry.kind === 'stack: create at once' && firstStepCpu === null) firstStepCpu = process.cpuUsage();
  if (process.env.PROBE_DUMP && entry.kind === 'stack: create at once' && !dumped) {
    dumped = true;
    const cfg0 = a[0] as { values?: unknown[] } | string;
    writeFileSync(process.env.PROBE_DUMP, JSON.stringify({ text, values: typeof cfg0 === 'string' ? a[1] : cfg0.values }));
  }
  // pg-pool passes a callback; a client's own query returns a promise
  const last = a.length - 1;
  if (typeof a[last] === 'function') {
    const cb = a[last] as (...r: unknown[]) => unknown;
    a[last] = (...r: unknown[]) => {
      entry.t1 = performance.now();
      return cb(...r);
    };
  }
  const out = (original as unknown as (...x: unknown[]) => unknown).apply(this, a);
  if (out && typeof (out as Promise<unknown>).then === 'function') {
    (out as Promise<unknown>).then(
      () => (entry.t1 = performance.now()),
      () => (entry.t1 = performance.now()),
    );
  }
  return out;
};

const db = await createTestStore('postgres');
if (!db) throw new Error('no PostgreSQL');
const rt = await createRuntime({ store: db.url, orchestration: true, engines: 1, logLevel: 'error', flows: referenceFlows as never });
await rt.start();
try {
  const stacks = rt.stacks!;
  // one warm-up create (plans, template caches, connections)
  const warm = await stacks.create('warm', { template: chain(size) });
  await rt.client.waitForRun((await stacks.get(warm.id)).runId!, { pollMs: 5 });
  const perRun: { ms: number; cpuMs: number; stepsCpuMs: number; statements: number; byKind: Map<string, number> }[] = [];
  for (let k = 0; k < runs; k++) {
    sent.length = 0;
    const t0 = performance.now();
    recording = true;
    firstStepCpu = null;
    const cpu0 = process.cpuUsage();
    const created = await stacks.create(`chain${k}`, { template: chain(size) });
    const runId = (await stacks.get(created.id)).runId!;
    await rt.client.waitForRun(runId, { pollMs: 1000 });
    recording = false;
    const cpu = process.cpuUsage(cpu0);
    const stepsCpu = process.cpuUsage(firstStepCpu!);
    const ms = performance.now() - t0;
    const engineSent = sent.slice();
    const byKind = new Map<string, number>();
    for (const s of engineSent) byKind.set(s.kind, (byKind.get(s.kind) ?? 0) + 1);
    const durations = new Map<string, number[]>();
    for (const s of engineSent) durations.set(s.kind, [...(durations.get(s.kind) ?? []), s.t1 - s.t0]);
    const med = (k: string) => {
      const d = (durations.get(k) ?? [0]).sort((x, y) => x - y);
      return d[d.length >> 1]!.toFixed(2);
    };
    process.stdout.write(
      `median round trip: fast completion ${med('fast completion')} ms, stack: create at once ${med('stack: create at once')} ms\n`,
    );
    perRun.push({
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      stepsCpuMs: (stepsCpu.user + stepsCpu.system) / 1000,
      statements: engineSent.length,
      byKind,
    });
    if (k === runs - 1) {
      // the whole create, its first and last statements in order (the steps between them elided)
      const show = (s: Sent) =>
        process.stdout.write(`  +${(s.t0 - t0).toFixed(2).padStart(7)} ms  ${(s.t1 - s.t0).toFixed(2).padStart(6)} ms  ${s.kind}\n`);
      const firstStep = engineSent.findIndex((s) => s.kind === 'stack: create at once');
      const lastStep = engineSent.map((s) => s.kind).lastIndexOf('fast completion');
      process.stdout.write(`timeline (create called at 0, run ended at ${ms.toFixed(1)} ms):\n`);
      engineSent.slice(0, firstStep + 3).forEach(show);
      process.stdout.write('  …\n');
      engineSent.slice(lastStep - 1).forEach(show);
      // the statements between the 25th and 26th fast completions: one step, in order
      const completions = engineSent.map((s, i) => [s, i] as const).filter(([s]) => s.kind === 'fast completion');
      const mid = Math.floor(completions.length / 2);
      const from = completions[mid - 1]![1];
      const to = completions[mid]![1];
      const stepStart = engineSent[from]!.t0;
      const stepEnd = engineSent[to]!.t0;
      process.stdout.write(`one step (between two completions), ${(stepEnd - stepStart).toFixed(2)} ms:\n`);
      for (let i = from; i < to; i++) {
        const s = engineSent[i]!;
        process.stdout.write(`  +${(s.t0 - stepStart).toFixed(2).padStart(6)} ms  ${(s.t1 - s.t0).toFixed(2).padStart(6)} ms  ${s.kind}\n`);
      }
    }
  }
  // the reference: a no-op linear flow of 50 in the same engine
  for (let k = 0; k < runs; k++) {
    sent.length = 0;
    recording = true;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { run } = await rt.client.startRun('linear50', {});
    await rt.client.waitForRun(run.id, { pollMs: 1000 });
    const cpu = process.cpuUsage(cpu0);
    recording = false;
    process.stdout.write(
      `no-op linear 50: ${((performance.now() - t0) / 1000).toFixed(3)} s, ${(sent.length / 50).toFixed(2)} statements per atom, CPU ${((cpu.user + cpu.system) / 1000 / 50).toFixed(2)} ms per atom\n`,
    );
  }
  for (const r of perRun) {
    process.stdout.write(
      `chain of ${size}: ${(r.ms / 1000).toFixed(3)} s, ${(r.statements / size).toFixed(2)} statements per step (the create request included), CPU ${(r.cpuMs / size).toFixed(2)} ms per step (the create request included), ${(r.stepsCpuMs / size).toFixed(2)} from the first step's write to the run's end; the create request until then ${(r.cpuMs - r.stepsCpuMs).toFixed(1)} ms\n`,
    );
    process.stdout.write(`   ${[...r.byKind].map(([k, n]) => `${k}: ${n}`).join('; ')}\n`);
  }
} finally {
  await rt.stop({ timeoutMs: 5000 });
  await db.drop();
}
