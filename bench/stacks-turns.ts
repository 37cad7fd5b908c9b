/**
 * Engine configurations compared in turns (docs/orchestration.md, "Performance"): one
 * database per configuration, each served by its own `stoker engine` processes, and the same
 * work done on each in turn, round after round (the order reversed every other round), so
 * that every configuration sees the same machine. A round is, per configuration: the no-op
 * reference (an unordered flow of N), then a group of N OS::Heat::TestResource created,
 * updated (every value in place) and deleted. bench/stacks.ts runs its configurations one
 * after the other, minutes apart; on this shared machine that is too far apart to rank two
 * configurations whose times differ by a tenth.
 *
 *   node --import tsx bench/stacks-turns.ts [--configs 1,2,1x32] [--size 1000] [--rounds 6] [--dialect postgres|sqlite]
 *
 * A configuration is `E` (E engine processes at their defaults) or `ExC` (E engines, each
 * with `--concurrency C`). Printed per configuration: each round's seconds, and the median of
 * rounds 2 and later (round 1 also warms V8 in every process).
 */
import type { ChildProcess } from 'node:child_process';
import type { Runtime } from '../src/runtime/create-runtime.js';
import { createTestStore, type TestStore } from '../test/helpers/databases.js';
import { group, stackClient, startEngine } from './stacks.js';

const PHASES = ['reference', 'create', 'update', 'delete'] as const;
type Phase = (typeof PHASES)[number];

interface Setup {
  label: string;
  db: TestStore;
  rt: Runtime;
  procs: ChildProcess[];
  seconds: Record<Phase, number[]>;
}

const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stdout.write(
    'node --import tsx bench/stacks-turns.ts [--configs 1,2,1x32] [--size 1000] [--rounds 6] [--dialect postgres|sqlite]\n' +
      '  --configs: E (engine processes at their defaults) or ExC (each with --concurrency C), comma-separated (default 1,2)\n',
  );
  process.exit(0);
}
const opt = (flag: string, dflt: string): string => {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const size = Number(opt('--size', '1000'));
const rounds = Number(opt('--rounds', '6'));
const dialectArg = opt('--dialect', 'postgres');
const configs = opt('--configs', '1,2').split(',');
for (const c of configs) if (!/^\d+(x\d+)?$/.test(c)) throw new Error(`--configs: "${c}" is not E or ExC`);
if (dialectArg !== 'postgres' && dialectArg !== 'sqlite') throw new Error(`--dialect: postgres or sqlite, got "${dialectArg}"`);
const dialect: 'postgres' | 'sqlite' = dialectArg;
if (![100, 1000, 10_000].includes(size)) throw new Error('--size: 100, 1000 or 10000 (the reference flows that exist)');
if (!Number.isInteger(rounds) || rounds < 2) throw new Error('--rounds: an integer of at least 2');

async function settle(rt: Runtime, id: string, expected: string): Promise<void> {
  for (;;) {
    const s = await rt.stacks!.get(id, undefined, { deleted: true });
    if (s.status !== 'IN_PROGRESS') {
      if (`${s.action}_${s.status}` !== expected) throw new Error(`stack ended ${s.action}_${s.status}, expected ${expected}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function oneRound(s: Setup, k: number): Promise<void> {
  const stacks = s.rt.stacks!;
  const name = `g${k}`;
  let id = '';
  s.seconds.reference.push(
    await timed(async () => {
      const { run } = await s.rt.client.startRun(`unordered${size}`, {});
      const done = await s.rt.client.waitForRun(run.id, { pollMs: 10 });
      if (done.status !== 'SUCCESS') throw new Error(`reference ended ${done.status}`);
    }),
  );
  s.seconds.create.push(
    await timed(async () => {
      id = (await stacks.create(name, { template: group(size) })).id;
      await settle(s.rt, id, 'CREATE_COMPLETE');
    }),
  );
  s.seconds.update.push(
    await timed(async () => {
      await stacks.update(name, { existing: true, parameters: { value: `v${k}` } });
      await settle(s.rt, id, 'UPDATE_COMPLETE');
    }),
  );
  s.seconds.delete.push(
    await timed(async () => {
      await stacks.delete(name);
      await settle(s.rt, id, 'DELETE_COMPLETE');
    }),
  );
}

const setups: Setup[] = [];
try {
  for (const label of configs) {
    const [engines, concurrency] = label.split('x').map(Number) as [number, number | undefined];
    const db = await createTestStore(dialect);
    if (!db) throw new Error(`${dialect} is not reachable`);
    const procs: ChildProcess[] = [];
    const rt = await stackClient(db.url);
    setups.push({ label, db, rt, procs, seconds: { reference: [], create: [], update: [], delete: [] } });
    for (let i = 0; i < engines; i++) procs.push(await startEngine(db.url, [], concurrency ? ['--concurrency', String(concurrency)] : []));
  }
  for (let k = 0; k < rounds; k++) {
    for (const s of k % 2 === 0 ? setups : [...setups].reverse()) await oneRound(s, k);
    process.stderr.write(`[stacks-turns] round ${k + 1}/${rounds} done\n`);
  }
  const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  process.stdout.write(
    `${dialect}, group of ${size}, ${rounds} rounds in turns; seconds per round, then the median of rounds 2–${rounds}\n`,
  );
  for (const s of setups) {
    const cells = PHASES.map(
      (p) => `${p} ${s.seconds[p].map((x) => x.toFixed(2)).join(' ')} (${median(s.seconds[p].slice(1)).toFixed(2)})`,
    );
    process.stdout.write(`${s.label.padEnd(6)} ${cells.join(' | ')}\n`);
  }
} finally {
  for (const s of setups) {
    await s.rt.stop({ timeoutMs: 5_000 });
    for (const p of s.procs) p.kill('SIGTERM');
    await Promise.all(s.procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on('exit', r)))));
    await s.db.drop();
  }
}
