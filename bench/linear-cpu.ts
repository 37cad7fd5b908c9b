/**
 * CPU per atom of a linear flow in one engine at its defaults (PostgreSQL by default):
 * warms up on 10,000 atoms, then measures one linear run of 5,000 no-op tasks:
 * process.cpuUsage() per atom (user + system, µs), statements sent per atom (counted on
 * pg's Client.query), and atoms/s (noise on a loaded machine; quote `uptime` beside it).
 *
 *   node --import tsx bench/linear-cpu.ts [--dialect postgres] [--runs 3]
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/linear-cpu.ts
 */
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry, linear, task } from '../src/flow/index.js';
import { createTestStore, type Dialect } from '../test/helpers/databases.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const dialect = opt('dialect', 'postgres') as Dialect;
const runs = Number(opt('runs', '3'));
const N = 5000;

let statements = 0;
if (dialect === 'postgres') {
  const pg = (await import('pg')).default;
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: unknown, ...a: unknown[]) {
    statements += 1;
    return (original as (...x: unknown[]) => unknown).apply(this, a);
  } as typeof original;
}

const registry = new FlowRegistry();
registry.register(
  linear(
    `linear${N}`,
    Array.from({ length: N }, (_, i) => task({ name: `s${i}`, execute: () => null })),
  ),
);
const db = await createTestStore(dialect);
if (!db) throw new Error(`${dialect} is not reachable`);
const engine = new Engine({ store: db.store, flows: registry });
await engine.start();
try {
  // the end is seen through the engine's event, not by polling: no statement but the engine's
  const once = async (): Promise<void> => {
    let id = '';
    let ended: ((status: string) => void) | null = null;
    const finished = new Promise<string>((resolve) => (ended = resolve));
    const seen = new Map<string, string>();
    const listener = ({ runId, status }: { runId: string; status: string }): void => {
      if (runId === id) ended?.(status);
      else seen.set(runId, status);
    };
    engine.on('run.finished', listener);
    const { run } = await engine.startRun(`linear${N}`, {});
    id = run.id;
    const early = seen.get(id);
    const status = early ?? (await finished);
    engine.off('run.finished', listener);
    if (status !== 'SUCCESS') throw new Error(`ended ${status}`);
  };
  for (let i = 0; i < 2; i++) await once();
  for (let i = 0; i < runs; i++) {
    const s0 = statements;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await once();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    console.log(
      JSON.stringify({
        dialect,
        atoms: N,
        cpuUsPerAtom: Math.round((cpu.user + cpu.system) / N),
        userUsPerAtom: Math.round(cpu.user / N),
        systemUsPerAtom: Math.round(cpu.system / N),
        statementsPerAtom: Number(((statements - s0) / N).toFixed(3)),
        atomsPerSec: Math.round(N / seconds),
        commits: engine.stats.commits,
      }),
    );
  }
} finally {
  await engine.stop();
  await db.drop();
}
