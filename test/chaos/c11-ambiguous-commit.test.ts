/**
 * C11 (docs/reliability.md): ambiguous commits with real processes, on PostgreSQL and MariaDB.
 * One engine (`part`) reaches the database through the fault-injecting TCP proxy
 * (tcp-proxy.ts); two workers connect directly. Every 0.4–1.2 s for 10 s the proxy drops
 * every reply from the server for 100–300 ms (what the engine sends still reaches the server
 * and is executed: a COMMIT sent then commits) and then resets all of `part`'s connections:
 * statements, commits among them, executed while their replies were lost and the
 * connection died. The engine must resolve each by re-reading, never by applying twice.
 *
 * Must hold: replies were lost (the proxy dropped bytes from the server); `part` survives,
 * registers again (it gives its id up when an outcome is unknown) and works again; every run
 * ends as expected and the checker finds no violation of I1–I4, I6 (one terminal transition
 * per run, one recorded result per atom, from the execution under its final epoch).
 */
import { describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/databases.js';
import { EngineProc, randInt, sleep, submitRuns, waitTerminal } from './harness.js';
import { useScenario, verify, worksAgain } from './scenario.js';
import { ProxyProcess } from './tcp-proxy.js';

const LEASE_MS = 3000;
const STEP_MS = 100;
const WINDOW_MS = 10_000;

// The dialects run at the same time: each has its own database, proxy, engines and log.
for (const dialect of testDialects().filter((d) => d !== 'sqlite')) {
  describe(`C11 ambiguous commits (replies lost, then the connection reset) on ${dialect}`, { concurrent: true }, () => {
    const s = useScenario(dialect, 'c11');

    it('commits whose reply was lost are resolved by re-reading, never applied twice', async (ctx) => {
      if (!s.db) return ctx.skip();
      const proxy = await ProxyProcess.inFrontOf(s.db.url);
      try {
        const part = new EngineProc(proxy.through(s.db.url), {
          leaseMs: LEASE_MS,
          concurrency: 6,
          name: 'part',
          // every completion is a transaction of its own (no one-statement fast path), so
          // that lost replies hit commits as well as single statements
          env: { ENGINE_POLL_MS: '100', ENGINE_ROLE: 'part', ENGINE_FAST_PATHS: '0' },
        });
        s.fleet.all.push(part);
        await part.ready;
        const submitted = await submitRuns(s.store, 20, { log: s.log, stepMs: STEP_MS });
        const worker = { leaseMs: LEASE_MS, concurrency: 4, env: { ENGINE_POLL_MS: '200' } };
        const workers = await Promise.all([s.fleet.start({ ...worker, name: 'worker' }), s.fleet.start({ ...worker, name: 'worker' })]);
        let cuts = 0;
        let connectionsReset = 0;
        const until = Date.now() + WINDOW_MS;
        while (Date.now() < until) {
          await sleep(randInt(400, 1200));
          await proxy.setMode({ kind: 'blackhole', direction: 'down', drop: true });
          await sleep(randInt(100, 300));
          connectionsReset += await proxy.reset();
          await proxy.setMode({ kind: 'pass' });
          cuts += 1;
          if (cuts % 3 === 0) submitted.push(...(await submitRuns(s.store, 4, { log: s.log, stepMs: STEP_MS })));
        }
        const lastCut = Date.now();
        const stats = await proxy.stats();
        const droppedReplies = stats.connections.reduce((n, c) => n + c.droppedDown, 0);
        expect(part.alive, `${part.name} survived; stderr: ${part.stderr.slice(-1500)}`).toBe(true);
        // it works again: new runs until it starts a task of its own
        expect(await worksAgain(s, part, submitted, lastCut, STEP_MS), `${part.name} works again`).toBe(true);
        const left = await waitTerminal(
          s.store,
          submitted.map((r) => r.id),
          60_000,
        );
        expect(left, 'runs still active').toEqual([]);
        await s.fleet.terminateAll();
        const { verdict } = await verify(s, submitted, `C11 ambiguous commits ${dialect}`);
        // what the engine was doing when it lost an answer: the operations of its store errors
        const lost = new Map<string, number>();
        for (const m of part.stderr.matchAll(
          /engine error: (?:cannot connect to \w+ at \S+ \((.+?)\)|(?:PostgreSQL|MySQL): (.+?) failed)/g,
        )) {
          const op = (m[1] ?? m[2])!.replace(/: (begin|commit|rollback)$/, ' ($1)');
          lost.set(op, (lost.get(op) ?? 0) + 1);
        }
        console.log(
          `C11 ${dialect}: ${cuts} cuts (${connectionsReset} connections reset, ${stats.connections.length} opened, ${droppedReplies} reply bytes dropped); ` +
            `re-registrations of ${part.name} ${part.ids.length - 1}; engine errors logged ${(part.stderr.match(/engine error/g) ?? []).length}, by operation ${JSON.stringify(Object.fromEntries(lost))}; ` +
            `${submitted.length} runs; requeues ${verdict.stats.requeues}; re-executions ${verdict.stats.reexecutions}; fenced writes ${verdict.stats.fencedWriteEvents} events; stats ${JSON.stringify(part.stats)}`,
        );
        expect(droppedReplies, 'reply bytes dropped by the proxy (statements executed without an answer)').toBeGreaterThan(0);
        expect(part.ids.length, `${part.name} gave its id up after unknown outcomes`).toBeGreaterThan(1);
        expect([part, ...workers].map((p) => p.exit?.code)).toEqual([0, 0, 0]);
        expect(verdict.violations).toEqual([]);
      } finally {
        await proxy.close();
      }
    }, 150_000);
  });
}
