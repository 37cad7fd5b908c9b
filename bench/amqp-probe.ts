/**
 * Where the time of remote tasks goes (docs/amqp.md, "Performance"): runs `remote1000` (a
 * queue per task) or `remote1000shared` (one shared queue), or both taking turns run by
 * run, on PostgreSQL through N `stoker worker` processes and prints, per atom, counts that do not
 * depend on the machine's load: the engine's CPU ms, the workers', the broker's and the
 * PostgreSQL backends' (of the bench's database) CPU ms,
 * claim statements and commit batches, requests published and the messages that carried
 * them, `started`/`heartbeat` messages, reply messages, and how many atoms were out with
 * workers on average (sampled).
 *
 *   node --import tsx bench/amqp-probe.ts [workers=1,4] [runs=2] [flows=remote1000]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry } from '../src/flow/index.js';
import { openAmqp } from '../src/runtime/amqp.js';
import { createTestStore } from '../test/helpers/databases.js';
import { createTestVhost } from '../test/helpers/rabbitmq.js';
import { KEY, beamPids as beam, cpuMs as ticks, startWorkers, stopWorkers } from './amqp.js';
import remoteFlows, { REMOTE_ATOMS } from './fixtures/amqp-flows.js';

const workerCounts = (process.argv[2] ?? '1,4').split(',').map(Number);
const runs = Number(process.argv[3] ?? 2);
const flowNames = (process.argv[4] ?? 'remote1000').split(',');
const broker = (await createTestVhost())!;
const db = (await createTestStore('postgres'))!;
const registry = (): FlowRegistry => {
  const r = new FlowRegistry();
  for (const f of remoteFlows) r.register(f);
  return r;
};
const amqp = await openAmqp({ url: broker.url, key: KEY, name: 'probe' });
const engine = new Engine({ store: db.store, flows: registry(), amqp, concurrency: 16, pollMs: 200, maxBatch: 256 });
await engine.start();
const core = (engine as unknown as { core: { inflight: { remote: number; size: number } } }).core;
const beams = beam();
const dbName = new URL(db.url).pathname.slice(1);
/** a process's system CPU time so far (ms at 100 Hz), from /proc; 0 when it is gone */
const sysMs = (pid: number): number => {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[12]) * 10;
  } catch {
    return 0;
  }
};
/** the PostgreSQL backends serving the bench's database (its pool's connections) */
const backends = (): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
        return cmd.startsWith('postgres: ') && cmd.includes(` ${dbName} `);
      } catch {
        return false;
      }
    })
    .map(Number);
try {
  const warm = new Set<string>();
  for (const n of workerCounts) {
    const workers = await startWorkers(broker.url, n);
    try {
      for (const flow of flowNames) {
        if (warm.has(flow)) continue;
        const { run } = await engine.startRun(flow, {});
        await engine.waitForRun(run.id, { timeoutMs: 600_000, pollMs: 20 });
        warm.add(flow);
      }
      for (let i = 0; i < runs * flowNames.length; i++) {
        const flow = flowNames[i % flowNames.length]!;
        const s0 = { ...engine.stats };
        const p0 = amqp.remote!.snapshot().published;
        const r0 = amqp.remote!.snapshot().replyMessages;
        const q0 = amqp.remote!.snapshot().requestMessages;
        const n0 = amqp.remote!.snapshot().notices;
        const c0 = process.cpuUsage();
        const w0 = workers.map((w) => ticks(w.child.pid!));
        const ws0 = workers.map((w) => sysMs(w.child.pid!));
        const b0 = beams.map(ticks);
        const pgs = backends();
        const g0 = pgs.map(ticks);
        let samples = 0;
        let out = 0;
        let outMax = 0;
        const sampler = setInterval(() => {
          samples += 1;
          out += core.inflight.remote;
          outMax = Math.max(outMax, core.inflight.remote);
        }, 2);
        const t0 = performance.now();
        const { run } = await engine.startRun(flow, {});
        const done = await engine.waitForRun(run.id, { timeoutMs: 600_000, pollMs: 20 });
        const s = (performance.now() - t0) / 1000;
        clearInterval(sampler);
        const c = process.cpuUsage(c0);
        const w = workers.reduce((a, wk, k) => a + ticks(wk.child.pid!) - w0[k]!, 0);
        const ws = workers.reduce((a, wk, k) => a + sysMs(wk.child.pid!) - ws0[k]!, 0);
        const b = beams.reduce((a, pid, k) => a + ticks(pid) - b0[k]!, 0);
        const g = pgs.reduce((a, pid, k) => a + ticks(pid) - g0[k]!, 0);
        const A = REMOTE_ATOMS;
        const st = engine.stats;
        console.log(
          `${flow}, workers ${n}: ${done.status} ${(A / s).toFixed(0)} atoms/s (${s.toFixed(3)} s) | per atom: engine CPU ${((c.user + c.system) / 1000 / A).toFixed(3)} ms, workers CPU ${(w / A).toFixed(3)} ms (system ${(ws / A).toFixed(3)}), broker CPU ${(b / A).toFixed(3)} ms, PostgreSQL CPU ${(g / A).toFixed(3)} ms (engine user/system ${(c.user / 1000 / A).toFixed(3)}/${(c.system / 1000 / A).toFixed(3)}), claim stmts ${((st.claimCommits - s0.claimCommits) / A).toFixed(3)}, commits ${((st.commits - s0.commits) / A).toFixed(3)}, requests ${((amqp.remote!.snapshot().published - p0) / A).toFixed(3)} in ${((amqp.remote!.snapshot().requestMessages - q0) / A).toFixed(3)} msgs, started/heartbeat msgs ${((amqp.remote!.snapshot().notices - n0) / A).toFixed(3)}, reply msgs ${((amqp.remote!.snapshot().replyMessages - r0) / A).toFixed(3)} | remote out avg ${(out / Math.max(1, samples)).toFixed(1)} max ${outMax} | load ${loadavg()[0]!.toFixed(2)}`,
        );
      }
    } finally {
      console.log('  ' + (await stopWorkers(workers)).join(' | '));
    }
  }
} finally {
  await engine.stop();
  await amqp.close();
  await db.drop();
  await broker.drop();
}
