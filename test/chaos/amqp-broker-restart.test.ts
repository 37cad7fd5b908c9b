/**
 * RabbitMQ restarted mid-run (docs/amqp.md, "Remote tasks"; issue 12): `rabbitmqctl
 * stop_app` / `start_app` on a PRIVATE node (test/chaos/private-broker.ts; the shared broker
 * on 5672 is never stopped), with real engine and worker processes. The chain tasks
 * (c01…c10) run on workers; the other chaos flows run in the engines.
 *
 * - while the broker is down, no remote task starts (the workers have no connection), and
 *   runs of local tasks started meanwhile finish: local work goes on;
 * - after `start_app`, engines and workers reconnect (with backoff), the engines publish the
 *   calls still waiting again, and every run finishes;
 * - the chaos checker (with `redelivery`) finds nothing: every outcome recorded once, no
 *   write by a fenced claim.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { testDialects } from '../helpers/databases.js';
import { checkSubmitted } from './scenario.js';
import { checkHistory, collectHistory, formatVerdict } from './checker.js';
import { Fleet, readEffects, sleep, submitRuns, waitTerminal } from './harness.js';
import { PrivateBroker, privateBrokerUnavailable } from './private-broker.js';
import { useScenario } from './scenario.js';

const KEY = 'chaos-key-0123456789abcdef';
const CHAIN = Array.from({ length: 10 }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
const WORKER = join(import.meta.dirname, '../fixtures/worker-process.ts');
const REMOTE_FLOWS = ['chaosChain8', 'chaosChain10'];
const LOCAL_FLOWS = ['chaosFan', 'chaosRetry', 'chaosRevert'];
const GRACE_MS = 2000;

const unavailable = privateBrokerUnavailable();
if (unavailable) console.warn(`SKIP broker restart: ${unavailable}`);

describe.skipIf(unavailable !== null)('RabbitMQ stop_app / start_app mid-run', () => {
  let broker: PrivateBroker | null = null;
  let appStopped = false;
  beforeAll(async () => {
    broker = new PrivateBroker();
    await broker.start();
  }, 180_000);
  afterAll(async () => {
    await broker?.destroy();
  }, 60_000);

  for (const dialect of testDialects()) {
    describe(`on ${dialect}`, () => {
      const s = useScenario(dialect, 'amqp-restart');
      let workers: Fleet | null = null;
      afterAll(async () => {
        await workers?.cleanup();
        // a test that failed while the broker was down leaves it running for the next dialect
        if (appStopped) await broker?.startApp();
        appStopped = false;
      }, 180_000);

      it('engines and workers reconnect; remote atoms wait while it is down, local ones go on; nothing lost or recorded twice', async (ctx) => {
        if (!s.db || !broker) return ctx.skip();
        // a virtual host per dialect on the private node
        const vhost = `stoker_restart_${dialect}`;
        await broker.ctl('add_vhost', vhost);
        await broker.ctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
        const url = `${broker.url}${vhost}`;
        workers = new Fleet(url);
        const engineEnv = { ENGINE_POLL_MS: '200', ENGINE_AMQP: url, STOKER_AMQP_KEY: KEY, ENGINE_REMOTE_TASKS: CHAIN.join(',') };
        const workerEnv = { STOKER_AMQP_KEY: KEY, WORKER_TASKS: CHAIN.join(',') };
        await s.fleet.start({ name: 'engine-a', leaseMs: 5000, concurrency: 8, env: engineEnv });
        await s.fleet.start({ name: 'engine-b', leaseMs: 5000, concurrency: 8, env: engineEnv });
        await workers.start({ name: 'worker', concurrency: 4, env: workerEnv, script: WORKER });
        await workers.start({ name: 'worker', concurrency: 4, env: workerEnv, script: WORKER });
        const remote = await submitRuns(s.store, 8, { log: s.log, stepMs: 600, flows: REMOTE_FLOWS });
        await sleep(1000);

        appStopped = true;
        await broker.stopApp();
        const downAt = Date.now();
        // local work goes on while the broker is down
        const local = await submitRuns(s.store, 6, { log: s.log, stepMs: 50, flows: LOCAL_FLOWS });
        expect(
          await waitTerminal(
            s.store,
            local.map((r) => r.id),
            90_000,
          ),
        ).toEqual([]);
        await sleep(downAt + 5000 - Date.now()); // down for a few seconds at least
        const upAt = Date.now();
        // No remote task started while the workers had no broker. A request delivered just
        // before stop_app may still start a moment later in a worker slowed by the load of
        // the machine: the window begins GRACE_MS after stop_app returned.
        const startedWhileDown = readEffects(s.log).filter(
          (l) => l.phase === 'start' && CHAIN.includes(l.name) && l.t > downAt + GRACE_MS && l.t < upAt,
        );
        expect(startedWhileDown).toEqual([]);
        const statuses = await Promise.all(remote.map(async (r) => (await s.store.getRun(r.id))?.status));
        const waiting = statuses.filter((st) => st === 'PENDING' || st === 'RUNNING');
        console.log(
          `broker down on ${dialect} for ${upAt - downAt} ms: ${local.length} local runs finished, ${waiting.length} remote runs waiting (${statuses.join(' ')})`,
        );
        expect(waiting.length).toBeGreaterThan(0);

        await broker.startApp();
        appStopped = false;
        expect(
          await waitTerminal(
            s.store,
            remote.map((r) => r.id),
            120_000,
          ),
        ).toEqual([]);
        await workers.terminateAll();
        await s.fleet.terminateAll();
        for (const p of [...workers.all, ...s.fleet.all])
          console.log(
            `${p.name} on ${dialect}: ${JSON.stringify(p.stats)}${p.stats ? '' : ` (exit ${JSON.stringify(p.exit)}; stderr: ${p.stderr.slice(-2000)})`}`,
          );
        for (const w of workers.all) expect(Number(w.stats?.reconnects)).toBeGreaterThanOrEqual(1);
        for (const e of s.fleet.all) expect(Number(e.stats?.amqpReconnects)).toBeGreaterThanOrEqual(1);

        const history = await collectHistory(
          s.store,
          remote.map((r) => ({ id: r.id, flow: r.flow, expect: 'SUCCESS' })),
          readEffects(s.log),
        );
        const verdict = checkHistory({ ...history, redelivery: true });
        console.log(formatVerdict(verdict, `remote runs across a broker restart on ${dialect}`));
        expect(verdict.violations).toEqual([]);
        const { verdict: localVerdict } = await checkSubmitted(s.store, s.log, local, `local runs while the broker was down on ${dialect}`);
        expect(localVerdict.violations).toEqual([]);
        await broker.ctl('delete_vhost', vhost);
      }, 300_000);
    });
  }
});
