/**
 * Remote tasks under faults (docs/amqp.md, "Remote tasks"; issue 12), with real engine and
 * worker processes on a real RabbitMQ (a virtual host per dialect). The chain tasks
 * (c01…c10) of the chaos flows run on `Worker` processes; the engines claim and record.
 *
 * - a worker is SIGKILLed mid-task: its unacknowledged requests are delivered again to the
 *   other worker, executed again with the same idempotency key, recorded once;
 * - a worker is SIGKILLed holding batches of requests (the first atoms of 16 runs, claimed
 *   together, go out several to a message): every call of an unacknowledged batch, those it
 *   had finished included, is delivered again and recorded once;
 * - an engine is SIGKILLed with atoms out with the workers: the other engine takes them
 *   over and sends them again; replies to the dead engine are undeliverable (counted);
 * - the workers' AMQP connections are cut by a TCP proxy mid-run: they reconnect.
 *
 * After each, the chaos checker (test/chaos/checker.ts, with `redelivery`: one epoch may
 * run once per worker process) finds nothing: every outcome recorded once, no write by a
 * fenced claim, every run finished.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { testDialects } from '../helpers/databases.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { checkHistory, collectHistory, formatVerdict } from './checker.js';
import { Fleet, readEffects, sleep, submitRuns, waitTerminal, type Submitted } from './harness.js';
import { useScenario, type Scenario } from './scenario.js';
import { TcpProxy } from './tcp-proxy.js';

const KEY = 'chaos-key-0123456789abcdef';
const CHAIN_TASKS = Array.from({ length: 10 }, (_, i) => `c${String(i + 1).padStart(2, '0')}`).join(',');
const WORKER = join(import.meta.dirname, '../fixtures/worker-process.ts');
const FLOWS = ['chaosChain5', 'chaosChain8', 'chaosChain10'];
const STEP_MS = 200;

async function verifyRemote(s: Scenario, submitted: readonly Submitted[], label: string): Promise<void> {
  const history = await collectHistory(
    s.store,
    submitted.map((r) => ({ id: r.id, flow: r.flow, expect: 'SUCCESS' })),
    readEffects(s.log),
  );
  const verdict = checkHistory({ ...history, redelivery: true });
  console.log(formatVerdict(verdict, `${label} on ${s.dialect}`));
  expect(verdict.violations).toEqual([]);
}

// The dialects run at the same time (each has its own database, virtual host, engines, workers
// and log); the tests of one dialect run in turn.
for (const dialect of testDialects()) {
  describe(`remote tasks under faults on ${dialect}`, { concurrent: true }, () => {
    const s = useScenario(dialect, 'amqp-remote');
    let broker: TestVhost | null = null;
    let workers: Fleet | null = null;
    let proxy: TcpProxy | null = null;
    beforeAll(async () => {
      broker = await createTestVhost();
      if (broker) workers = new Fleet(broker.url);
    }, 60_000);
    afterAll(async () => {
      await workers?.cleanup();
      await proxy?.close();
      await broker?.drop();
    }, 60_000);

    const engineEnv = () => ({ ENGINE_POLL_MS: '200', ENGINE_AMQP: broker!.url, STOKER_AMQP_KEY: KEY, ENGINE_REMOTE_TASKS: CHAIN_TASKS });
    const workerEnv = { STOKER_AMQP_KEY: KEY, WORKER_TASKS: CHAIN_TASKS };

    /** Kills the victim in the middle of tasks, starts another worker, waits for every run; returns the stopped survivor. */
    async function replaceWorker(victim: Awaited<ReturnType<Fleet['start']>>, submitted: readonly Submitted[]) {
      // the victim is in the middle of tasks: started lines of its pid without an end
      const open = readEffects(s.log).filter((l) => l.pid === victim.pid);
      expect(open.filter((l) => l.phase === 'start').length).toBeGreaterThan(open.filter((l) => l.phase === 'end').length);
      await victim.kill9();
      const survivor = await workers!.start({ name: 'worker', concurrency: 4, env: workerEnv, script: WORKER });
      expect(
        await waitTerminal(
          s.store,
          submitted.map((r) => r.id),
          90_000,
        ),
      ).toEqual([]);
      await survivor.terminate();
      return survivor;
    }

    it.sequential(
      'kill -9 of a worker mid-task: its requests are delivered again and recorded once',
      async (ctx) => {
        if (!s.db || !broker || !workers) return ctx.skip();
        await s.fleet.start({ name: 'engine', leaseMs: 5000, concurrency: 8, env: engineEnv() });
        const victim = await workers.start({ name: 'worker', concurrency: 4, env: workerEnv, script: WORKER });
        const submitted = await submitRuns(s.store, 8, { log: s.log, stepMs: STEP_MS, flows: FLOWS });
        await sleep(1500);
        const survivor = await replaceWorker(victim, submitted);
        await s.fleet.terminateAll();
        console.log(`worker kill on ${dialect}: survivor ${JSON.stringify(survivor.stats)}`);
        // the killed worker's requests ran again elsewhere under the same epoch
        const again = readEffects(s.log).filter((l) => l.phase === 'start' && l.pid === survivor.pid);
        expect(again.length).toBeGreaterThan(0);
        await verifyRemote(s, submitted, 'worker kill -9');
      },
      180_000,
    );

    it.sequential(
      'kill -9 of a worker holding batches of requests: each batch is delivered again whole, every atom recorded once',
      async (ctx) => {
        if (!s.db || !broker || !workers) return ctx.skip();
        // the runs wait in the database until the engine starts: its first claim takes all their
        // first atoms, whose calls go out together (one task, one turn)
        const submitted = await submitRuns(s.store, 16, { log: s.log, stepMs: STEP_MS, flows: ['chaosChain10'] });
        const victim = await workers.start({ name: 'worker', concurrency: 4, env: workerEnv, script: WORKER });
        const engine = await s.fleet.start({ name: 'engine', leaseMs: 5000, concurrency: 16, env: engineEnv() });
        await expect
          .poll(() => readEffects(s.log).filter((l) => l.pid === victim.pid && l.phase === 'end').length, { timeout: 30_000, interval: 20 })
          .toBeGreaterThan(4);
        const survivor = await replaceWorker(victim, submitted);
        await engine.terminate();
        console.log(
          `worker kill mid-batch on ${dialect}: engine ${JSON.stringify(engine.stats)}, survivor ${JSON.stringify(survivor.stats)}`,
        );
        // calls shared messages: fewer request messages than requests
        expect(Number(engine.stats?.remoteRequestMessages)).toBeLessThan(Number(engine.stats?.remoteRequests));
        await verifyRemote(s, submitted, 'worker kill -9 mid-batch');
      },
      180_000,
    );

    it.sequential(
      'kill -9 of an engine with atoms out: another engine takes them over and sends them again',
      async (ctx) => {
        if (!s.db || !broker || !workers) return ctx.skip();
        const a = await s.fleet.start({ name: 'engine-a', leaseMs: 5000, concurrency: 8, env: engineEnv() });
        const b = await s.fleet.start({ name: 'engine-b', leaseMs: 5000, concurrency: 8, env: engineEnv() });
        const w = await workers.start({ name: 'worker', concurrency: 8, env: workerEnv, script: WORKER });
        const submitted = await submitRuns(s.store, 10, { log: s.log, stepMs: STEP_MS, flows: FLOWS });
        await sleep(1500);
        await a.kill9();
        expect(
          await waitTerminal(
            s.store,
            submitted.map((r) => r.id),
            90_000,
          ),
        ).toEqual([]);
        await b.terminate();
        await w.terminate();
        console.log(`engine kill on ${dialect}: worker ${JSON.stringify(w.stats)}, engine b ${JSON.stringify(b.stats)}`);
        await verifyRemote(s, submitted, 'engine kill -9 with remote atoms');
      },
      180_000,
    );

    it.sequential(
      'the workers connections cut by a TCP proxy mid-run: they reconnect, nothing is lost or recorded twice',
      async (ctx) => {
        if (!s.db || !broker || !workers) return ctx.skip();
        const target = new URL(broker.url);
        proxy = new TcpProxy(target.hostname, Number(target.port || 5672));
        const port = await proxy.listen();
        const viaProxy = new URL(broker.url);
        viaProxy.port = String(port);
        const proxied = new Fleet(viaProxy.toString());
        try {
          await s.fleet.start({ name: 'engine', leaseMs: 5000, concurrency: 8, env: engineEnv() });
          const w = await proxied.start({ name: 'worker', concurrency: 6, env: workerEnv, script: WORKER });
          const submitted = await submitRuns(s.store, 10, { log: s.log, stepMs: STEP_MS, flows: FLOWS });
          for (let i = 0; i < 3; i++) {
            await sleep(1000);
            expect(proxy.reset()).toBeGreaterThan(0);
          }
          expect(
            await waitTerminal(
              s.store,
              submitted.map((r) => r.id),
              90_000,
            ),
          ).toEqual([]);
          await w.terminate();
          await s.fleet.terminateAll();
          console.log(`proxy cuts on ${dialect}: worker ${JSON.stringify(w.stats)}`);
          expect(Number(w.stats?.reconnects)).toBeGreaterThanOrEqual(1);
          await verifyRemote(s, submitted, 'AMQP connection cuts');
        } finally {
          await proxied.cleanup();
        }
      },
      180_000,
    );
  });
}
