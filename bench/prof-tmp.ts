import { Engine } from '/work/main/src/engine/engine.js';
import { FlowRegistry, linear, task } from '/work/main/src/flow/index.js';
import { createTestStore } from '/work/main/test/helpers/databases.js';
const dialect = (process.argv[2] ?? 'postgres') as 'postgres';
const db = (await createTestStore(dialect))!;
const times: Record<string, [number, number]> = {};
function wrap(obj: any, name: string) {
  for (const k of ['claimAtoms','runTransaction','getRun','getRunGraph','getAtomResults','startRun','heartbeat','requeueExpired','getRunStatuses','listRuns','completeSuccessFast']) {
    const f = obj[k];
    if (typeof f !== 'function' || k === 'constructor') continue;
    obj[k] = async (...a: any[]) => {
      const t0 = performance.now();
      try { 
        if (k === 'runTransaction') {
          const [ids, fn] = a;
          return await f.call(obj, ids, async (tx: any) => { wrapTx(tx); return fn(tx); });
        }
        return await f.apply(obj, a);
      } finally { const e = times[name + '.' + k] ??= [0, 0]; e[0]++; e[1] += performance.now() - t0; }
    };
  }
}
function wrapTx(tx: any) {
  for (const k of Object.keys(tx)) {
    const f = tx[k];
    if (typeof f !== 'function' || k === 'run') continue;
    tx[k] = async (...a: any[]) => { const t0 = performance.now(); try { return await f.apply(tx, a); } finally { const e = times['tx.' + k] ??= [0, 0]; e[0]++; e[1] += performance.now() - t0; } };
  }
}
wrap(db.store, 'store');
const r = new FlowRegistry();
r.register(linear('lin', Array.from({ length: 500 }, (_, i) => task({ name: 's' + i, execute: () => null }))));
const e = new Engine({ store: db.store, flows: r, concurrency: 1, pollMs: 200 });
e.on('error', (x) => console.error('ENGINE ERROR', x.message)); const ka = setInterval(() => {}, 1000);
await e.start();
const t0 = performance.now();
const { run } = await e.startRun('lin', {});
await e.waitForRun(run.id, { pollMs: 20 });
console.log('total ms', performance.now() - t0);
await e.stop();
for (const [k, [n, ms]] of Object.entries(times).sort((a, b) => b[1][1] - a[1][1])) console.log(k.padEnd(30), n, ms.toFixed(1), (ms / n).toFixed(3));
await db.drop(); clearInterval(ka);
