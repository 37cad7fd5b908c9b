import { performance } from 'node:perf_hooks';
import mysql from 'mysql2';
import { Engine } from './src/engine/engine.js';
import { FlowRegistry, linear, task } from './src/flow/index.js';
import { createTestStore } from './test/helpers/databases.js';
const kinds = new Map<string, number>();
const proto = mysql.Connection.prototype as unknown as { query: (...a: unknown[]) => unknown };
const original = proto.query;
proto.query = function (this: unknown, ...a: unknown[]) {
  const t = typeof a[0] === 'string' ? a[0] : String((a[0] as { sql?: string }).sql ?? '?');
  const k = t.replace(/\s+/g, ' ').slice(0, 50);
  kinds.set(k, (kinds.get(k) ?? 0) + 1);
  return original.apply(this, a);
};
const r = new FlowRegistry();
for (const n of [100, 1000, 10000]) r.register(linear(`linear${n}`, Array.from({ length: n }, (_, i) => task({ name: `s${i}`, execute: () => null }))));
const db = (await createTestStore('mysql'))!;
for (let i = 0; i < 8; i++) {
  const engine = new Engine({ store: db.store, flows: r, concurrency: 1, pollMs: 200, maxBatch: 256 });
  await engine.start();
  kinds.clear();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const { run } = await engine.startRun('linear1000', {});
  const done = await engine.waitForRun(run.id, { timeoutMs: 600_000, pollMs: 20 });
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  await engine.stop();
  console.log(done.status, Math.round(1000 / s), 'atoms/s', Math.round((cpu.user + cpu.system) / 1000), 'us cpu/atom', JSON.stringify([...kinds].filter(([, n]) => n > 3)));
}
await db.drop();
