/**
 * The sleeping remote tasks of bench/amqp.ts alone (docs/amqp.md, "Performance"): N runs
 * (default 2,000) of one remote task that sleeps 100 ms on PostgreSQL, 4 `stoker worker`
 * processes × `--concurrency 50` (ideal: N × 0.1 s / 200 slots), with the counts that do not
 * depend on the machine's load: claim statements, commit batches, requests and reply
 * messages, the remote atoms out (sampled every 5 ms), the CPU per atom of the engine, the
 * workers and the broker (from /proc).
 *
 *   node --import tsx bench/amqp-sleep-probe.ts [runs=2000]
 */
import { loadavg } from 'node:os';
import { Engine } from '../src/engine/engine.js';
import { FlowRegistry } from '../src/flow/index.js';
import { openAmqp } from '../src/runtime/amqp.js';
import { createTestStore } from '../test/helpers/databases.js';
import { createTestVhost } from '../test/helpers/rabbitmq.js';
import { KEY, beamPids, cpuMs, sleepingRuns, startWorkers, stopWorkers } from './amqp.js';
import remoteFlows, { SLEEP_MS } from './fixtures/amqp-flows.js';

const runs = Number(process.argv[2] ?? 2000);
const broker = (await createTestVhost())!;
const db = (await createTestStore('postgres'))!;
const registry = new FlowRegistry();
for (const f of remoteFlows) registry.register(f);
const amqp = await openAmqp({ url: broker.url, key: KEY, name: 'probe' });
const engine = new Engine({ store: db.store, flows: registry, amqp, concurrency: 16, pollMs: 200, maxBatch: 256 });
await engine.start();
const inflight = (engine as unknown as { core: { inflight: { remote: number } } }).core.inflight;
const workers = await startWorkers(broker.url, 4, 50);
try {
  let samples = 0;
  let out = 0;
  let outMax = 0;
  const sampler = setInterval(() => {
    samples += 1;
    out += inflight.remote;
    outMax = Math.max(outMax, inflight.remote);
  }, 5);
  const s0 = { ...engine.stats };
  const r0 = amqp.remote!.snapshot();
  const c0 = process.cpuUsage();
  const beams = beamPids();
  const w0 = workers.map((w) => cpuMs(w.child.pid!));
  const b0 = beams.map(cpuMs);
  const seconds = await sleepingRuns(engine, runs);
  clearInterval(sampler);
  const c = process.cpuUsage(c0);
  const w = workers.reduce((a, wk, k) => a + cpuMs(wk.child.pid!) - w0[k]!, 0);
  const b = beams.reduce((a, pid, k) => a + cpuMs(pid) - b0[k]!, 0);
  const st = engine.stats;
  const r = amqp.remote!.snapshot();
  const claims = st.claimCommits - s0.claimCommits;
  console.log(
    `${runs} × ${SLEEP_MS} ms: ${seconds.toFixed(2)} s (ideal ${(runs * SLEEP_MS) / 1000 / 200} s) | claim statements ${claims}, ` +
      `commits ${st.commits - s0.commits}, requests ${r.published - r0.published} in ${r.requestMessages - r0.requestMessages} messages, started/heartbeat messages ${r.notices - r0.notices}, reply messages ${r.replyMessages - r0.replyMessages} | ` +
      `remote out avg ${(out / Math.max(1, samples)).toFixed(1)} max ${outMax} | CPU per atom: engine ${((c.user + c.system) / 1000 / runs).toFixed(3)} ms, workers ${(w / runs).toFixed(3)} ms, broker ${(b / runs).toFixed(3)} ms | load ${loadavg()[0]!.toFixed(2)}`,
  );
} finally {
  console.log('  ' + (await stopWorkers(workers)).join(' | '));
  await engine.stop();
  await amqp.close();
  await db.drop();
  await broker.drop();
}
