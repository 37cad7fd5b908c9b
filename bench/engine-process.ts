/**
 * One engine process of `npm run bench:engines` (bench/engines.ts):
 * `node --import tsx bench/engine-process.ts <storeUrl> <concurrency> <leaseMs>`, with the
 * flows module named by `ENGINE_FLOWS` (loaded by `loadFlowsModule`, as `stoker engine
 * --flows` does) and `ENGINE_POLL_MS` (default 200).
 *
 * It opens the store and builds the engine, prints `armed`, and waits for SIGUSR2 before
 * starting it, so that every engine of a configuration starts claiming at the same moment
 * (process start-up, a second or so of module loading, stays out of the measurement).
 * Then it prints `ready <engineId>` (and `id <engineId>` if it ever registers again under
 * a new id). SIGTERM stops it gracefully; it prints `stats <json>` (engine.stats and its
 * final id) and `calls <json>` (how many times the engine called each Store method, counted
 * by a pass-through proxy: what the database's transaction count is made of), `counts
 * <json>` (claim statements, empty ones, atoms claimed by them, wake-ups received, the
 * statements sent to PostgreSQL by name and their errors by SQLSTATE) and `cpu <json>`
 * (this process's user and system CPU time since the release, ms), and exits 0. SIGUSR1
 * prints `cpu-now <json>` (CPU ms, statements and atoms executed so far: bench/shared-run.ts).
 * The lines are those of test/fixtures/engine-process.ts, so test/chaos/harness.ts's
 * EngineProc drives it.
 */
import { writeSync } from 'node:fs';
import pg from 'pg';
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry } from '../src/flow/index.js';
import { loadFlowsModule } from '../src/runtime/load-flows.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/store.js';

const [url, concurrency = '16', leaseMs = '30000'] = process.argv.slice(2);
const flowsModule = process.env.ENGINE_FLOWS;
if (!url || !flowsModule) throw new Error('usage: ENGINE_FLOWS=<module> bench/engine-process.ts <storeUrl> [concurrency] [leaseMs]');
const say = (line: string): void => {
  writeSync(1, line + '\n');
};

const registry = new FlowRegistry();
await loadFlowsModule(flowsModule, registry);
const store = await openStore(url, { role: 'bench-engine' });
/** Store method → calls made by the engine (only calls after the release count). */
const calls: Record<string, number> = {};
/**
 * What the engine's claims and wake-ups came to, and the statements it sent to PostgreSQL
 * (by prepared name, else the first words) with the errors they got (by SQLSTATE).
 */
const counts = {
  claims: 0,
  emptyClaims: 0,
  claimedAtoms: 0,
  wakeups: 0,
  statements: {} as Record<string, number>,
  errors: {} as Record<string, number>,
};
let counting = false;
const query = pg.Client.prototype.query as (...a: unknown[]) => unknown;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const first = args[0] as string | { name?: string; text?: string };
  const label = typeof first === 'string' ? first : (first.name ?? first.text ?? '?');
  const key = label.replace(/\s+/g, ' ').trim().slice(0, 40);
  if (counting) counts.statements[key] = (counts.statements[key] ?? 0) + 1;
  const out = query.apply(this, args);
  if (counting && out instanceof Promise)
    out.catch((e: { code?: string }) => {
      const code = e.code ?? 'other';
      counts.errors[code] = (counts.errors[code] ?? 0) + 1;
    });
  return out;
} as typeof pg.Client.prototype.query;
const wakeups = store.wakeups && {
  ...store.wakeups,
  notify: () => store.wakeups!.notify(),
  subscribe: (onWake: () => void) =>
    store.wakeups!.subscribe(() => {
      if (counting) counts.wakeups += 1;
      onWake();
    }),
};
const counted = new Proxy(store, {
  get(target, key, receiver) {
    if (key === 'wakeups') return wakeups;
    const value: unknown = Reflect.get(target, key, receiver);
    if (typeof value !== 'function' || typeof key !== 'string') return value;
    return (...args: unknown[]) => {
      if (counting) calls[key] = (calls[key] ?? 0) + 1;
      const out = (value as (...a: unknown[]) => unknown).apply(target, args);
      if (key === 'claimAtoms' && counting && out instanceof Promise)
        void out.then(
          (claims: unknown[]) => {
            counts.claims += 1;
            counts.claimedAtoms += claims.length;
            if (claims.length === 0) counts.emptyClaims += 1;
          },
          () => undefined,
        );
      return out;
    };
  },
}) as Store;
const engine = new Engine({
  store: counted,
  flows: registry,
  concurrency: Number(concurrency),
  leaseMs: Number(leaseMs),
  pollMs: Number(process.env.ENGINE_POLL_MS ?? 200),
});
engine.on('error', (e) => process.stderr.write(`engine error: ${e.message}\n`));

// the engine's timers are unref'd: this keeps the process up until SIGTERM (and reports a new id)
let lastId = '';
const keepAlive = setInterval(() => {
  if (lastId !== '' && engine.id !== lastId) {
    lastId = engine.id;
    say(`id ${lastId}`);
  }
}, 50);

const go = new Promise<void>((resolve) => process.once('SIGUSR2', () => resolve()));
say('armed');
await go;
counting = true;
const cpuAtRelease = process.cpuUsage();
// SIGUSR1: this process's CPU time since the release so far, and its statements (bench/shared-run.ts)
process.on('SIGUSR1', () => {
  const cpu = process.cpuUsage(cpuAtRelease);
  const statements = Object.values(counts.statements).reduce((a, b) => a + b, 0);
  say(`cpu-now ${JSON.stringify({ ms: (cpu.user + cpu.system) / 1000, statements, executed: engine.stats.executed })}`);
});
await engine.start();
lastId = engine.id;
say(`ready ${engine.id}`);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void engine.stop().then(async () => {
    clearInterval(keepAlive);
    say(`stats ${JSON.stringify({ ...engine.stats, id: engine.id })}`);
    say(`calls ${JSON.stringify(calls)}`);
    say(`counts ${JSON.stringify(counts)}`);
    const cpu = process.cpuUsage(cpuAtRelease);
    say(`cpu ${JSON.stringify({ userMs: cpu.user / 1000, systemMs: cpu.system / 1000 })}`);
    await store.close();
    process.exit(0);
  });
});
