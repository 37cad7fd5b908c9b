/**
 * Runs seeds outside vitest, for replay and tuning:
 *   node --import tsx test/sim/run-seeds.ts <from> [count] [--trace] [--faults=crash,pause] [--mutant=ignoreEpoch]
 */
import { formatViolations } from './checker.js';
import { ALL_FAULTS, runSeed, type FaultKind } from './sim-world.js';
import type { SimMutants } from './sim-store.js';

const args = process.argv.slice(2);
const flags = new Map(
  args
    .filter((a) => a.startsWith('--'))
    .map((a) => {
      const [k, v] = a.slice(2).split('=');
      return [k!, v ?? 'true'] as const;
    }),
);
const pos = args.filter((a) => !a.startsWith('--'));
const from = Number(pos[0] ?? 1);
const count = Number(pos[1] ?? 1);
const faults = flags.has('faults') ? (flags.get('faults')!.split(',') as FaultKind[]) : ALL_FAULTS;
const mutants: SimMutants = {};
if (flags.has('mutant')) for (const m of flags.get('mutant')!.split(',')) (mutants as Record<string, boolean>)[m] = true;
const supervisor = flags.get('supervisor') !== 'false';

const t0 = Date.now();
let bad = 0;
let virtual = 0;
for (let seed = from; seed < from + count; seed++) {
  const s0 = Date.now();
  const r = await runSeed(seed, { faults, mutants, supervisor, trace: flags.has('trace') });
  virtual += r.virtualMs;
  const st = r.check.stats;
  const line = `seed ${seed}: ${r.check.ok ? 'ok' : 'VIOLATION'} virtual=${(r.virtualMs / 1000).toFixed(0)}s wall=${Date.now() - s0}ms quiescent=${r.quiescent} runs=${r.stats.runs} engines=${r.stats.engines} fenced=${r.stats.fencedWrites} errors=${r.stats.engineErrors} sup=${r.stats.supervisorRestarts} timers=${r.stats.timersFired} ${JSON.stringify({ ...st, takeoverMs: st.takeoverMs.map(Math.round) })} hash=${r.hash.slice(0, 12)}`;
  if (!r.check.ok) {
    bad += 1;
    console.log(line);
    console.log(`SIM_SEED=${seed}`);
    console.log(formatViolations(r.check.violations));
    if (flags.has('nemesis')) console.log(r.nemesis.join('\n'));
  } else if (flags.has('v') || count === 1) console.log(line);
}
console.log(`${count} seeds, ${bad} with violations, ${(virtual / 3_600_000).toFixed(2)} virtual hours, ${Date.now() - t0} ms wall`);
