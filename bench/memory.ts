/**
 * The engine's peak RSS with 10,000 runs in flight, in a process of its own (so that the
 * other scenarios' heap does not count): `node --import tsx bench/memory.ts <storeUrl>`.
 *
 * 10,000 runs of a two-task flow whose first task parks on a durable 3 s sleep are started
 * from 8 concurrent clients in this process, then drained by one engine (64 slots). Prints
 * one JSON line: `{"peakRssMb":…,"baselineRssMb":…,"runs":…,"seconds":…}`.
 */
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry, linear, task } from '../src/flow/index.js';
import { openStore } from '../src/store/open-store.js';

const url = process.argv[2];
if (!url) throw new Error('usage: bench/memory.ts <storeUrl>');
const RUNS = Number(process.env.BENCH_MEMORY_RUNS ?? 10_000);
const store = await openStore(url, { role: 'bench-memory' });
await store.migrate();
const baseline = process.memoryUsage().rss;
const registry = new FlowRegistry();
registry.register(
  linear('parked', [task({ name: 'nap', execute: async (_i, ctx) => ctx.sleep(3000) }), task({ name: 'after', execute: () => null })]),
);
const engine = new Engine({ store, flows: registry, concurrency: 64, pollMs: 100, maxBatch: 256 });
await engine.start();
let peak = process.memoryUsage().rss;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
const t0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < RUNS) {
      next += 1;
      await engine.startRun('parked', {});
    }
  }),
);
for (;;) {
  const left = await store.listRuns({ status: ['PENDING', 'RUNNING'], limit: 1 });
  if (left.length === 0) break;
  await new Promise((r) => setTimeout(r, 50));
}
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss);
await engine.stop();
await store.close();
const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
process.stdout.write(
  JSON.stringify({
    peakRssMb: mb(peak),
    baselineRssMb: mb(baseline),
    runs: RUNS,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  }) + '\n',
);
