/**
 * The engine suite, run against every dialect in STOKER_TEST_DIALECTS with a real database
 * per test file. Each test registers its own flows, runs them on a real Engine and checks
 * the stored atoms, results and events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import type { JsonValue } from '../../../src/core/json.js';
import {
  FlowRegistry,
  alwaysRevert,
  forEach,
  graph,
  linear,
  parameterizedForEach,
  revertAll,
  task,
  times,
  unordered,
} from '../../../src/flow/index.js';
import type { FlowDefinition, TaskContext } from '../../../src/flow/index.js';
import type { EventRow, Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';

for (const dialect of testDialects()) {
  describe(`engine on ${dialect}`, () => {
    let db: TestStore | null = null;
    let store: Store;

    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (db) store = db.store;
    });
    afterAll(async () => {
      await db?.drop();
    });

    /** Registers `flows`, runs `name` with `args` on a fresh engine and returns the finished run. */
    async function runFlow(
      flows: FlowDefinition[],
      name: string,
      args: Record<string, JsonValue> = {},
      options: { concurrency?: number; timeoutMs?: number; during?: (engine: Engine, runId: string) => Promise<void> } = {},
    ) {
      const registry = new FlowRegistry();
      for (const f of flows) registry.register(f);
      const engine = new Engine({ store, flows: registry, concurrency: options.concurrency ?? 4, pollMs: 50, leaseMs: 5000 });
      await engine.start();
      try {
        const { run } = await engine.startRun(name, args);
        if (options.during) await options.during(engine, run.id);
        const done = await engine.waitForRun(run.id, { timeoutMs: options.timeoutMs ?? 15_000 });
        const atoms = await store.getAtoms(run.id);
        const byName = Object.fromEntries(atoms.map((a) => [a.name, a]));
        const events = await store.listEvents({ runId: run.id });
        return { run: done, atoms, byName, events, engine };
      } finally {
        await engine.stop();
      }
    }

    /** A test that is skipped (with the helper's SKIP line) when the dialect's server is unavailable. */
    const dbIt = (name: string, fn: () => Promise<void>) =>
      it(name, async (ctx) => {
        if (db === null) return ctx.skip();
        await fn();
      });

    dbIt('runs a linear flow with data flow and stores every transition', async () => {
      const flow = linear('lin', [
        task({ name: 'a', requires: ['n'], provides: 'x', execute: ({ n }) => (n as number) + 1 }),
        task({ name: 'b', requires: ['x'], provides: 'y', execute: ({ x }) => (x as number) * 10 }),
        task({
          name: 'c',
          requires: ['x', 'y'],
          provides: ['sum', 'diff'],
          execute: ({ x, y }) => ({ sum: (x as number) + (y as number), diff: (y as number) - (x as number) }),
        }),
      ]);
      const { run, byName, events } = await runFlow([flow], 'lin', { n: 1 });
      expect(run.status).toBe('SUCCESS');
      expect(run.result).toEqual({ x: 2, y: 20, sum: 22, diff: 18 });
      expect(Object.values(byName).map((a) => a.state)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
      expect(byName.c!.result).toEqual({ sum: 22, diff: 18 });
      // every atom went READY/PENDING → RUNNING → SUCCESS with an event each
      for (const idx of [0, 1, 2]) {
        const kinds = events.filter((e) => e.atom === idx).map((e) => e.kind);
        expect(kinds).toContain('atom.claimed');
        expect(kinds).toContain('atom.success');
      }
      expect(events.map((e) => e.kind)).toContain('run.success');
      expect(events.filter((e) => e.kind === 'run.success')).toHaveLength(1);
    });

    dbIt('runs an unordered flow in parallel up to the concurrency', async () => {
      let active = 0;
      let peak = 0;
      const children = Array.from({ length: 12 }, (_, i) =>
        task({
          name: `t${i}`,
          provides: `v${i}`,
          execute: async () => {
            active += 1;
            peak = Math.max(peak, active);
            await new Promise((r) => setTimeout(r, 30));
            active -= 1;
            return i;
          },
        }),
      );
      const { run } = await runFlow([unordered('par', children)], 'par', {}, { concurrency: 4 });
      expect(run.status).toBe('SUCCESS');
      expect(Object.keys(run.result as object)).toHaveLength(12);
      expect(peak).toBeGreaterThan(1);
      expect(peak).toBeLessThanOrEqual(4);
    });

    dbIt('runs a graph with explicit and inferred links, and nested flows', async () => {
      const order: string[] = [];
      const rec =
        (name: string, value: JsonValue = name) =>
        async () => {
          order.push(name);
          return value;
        };
      const flow = graph(
        'g',
        [
          task({ name: 'start', provides: 'seed', execute: rec('start', 3) }),
          task({
            name: 'left',
            requires: ['seed'],
            provides: 'l',
            execute: async ({ seed }) => (order.push('left'), (seed as number) + 1),
          }),
          task({
            name: 'right',
            requires: ['seed'],
            provides: 'r',
            execute: async ({ seed }) => (order.push('right'), (seed as number) * 2),
          }),
          linear('tail', [
            task({
              name: 'join',
              requires: ['l', 'r'],
              provides: 'joined',
              execute: async ({ l, r }) => (order.push('join'), (l as number) + (r as number)),
            }),
            task({ name: 'last', execute: rec('last') }),
          ]),
          task({ name: 'audit', execute: rec('audit') }),
        ],
        [{ from: 'tail', to: 'audit' }],
      );
      const { run } = await runFlow([flow], 'g');
      expect(run.status).toBe('SUCCESS');
      expect((run.result as Record<string, JsonValue>).joined).toBe(10);
      expect(order[0]).toBe('start');
      expect(order.indexOf('join')).toBeGreaterThan(Math.max(order.indexOf('left'), order.indexOf('right')));
      expect(order.indexOf('audit')).toBeGreaterThan(order.indexOf('last'));
    });

    dbIt('retries a task with exponential backoff and a new idempotency key per attempt', async () => {
      const seen: { attempt: number; key: string; execution: number }[] = [];
      const flow = linear('flaky', [
        task({
          name: 'charge',
          retry: { attempts: 4, backoffMs: 40, factor: 2, jitter: 0 },
          execute: (_in, ctx) => {
            seen.push({ attempt: ctx.attempt, key: ctx.idempotencyKey, execution: ctx.execution });
            if (ctx.attempt < 3) throw new Error(`declined ${ctx.attempt}`);
            return 'charged';
          },
        }),
      ]);
      const { run, byName, events } = await runFlow([flow], 'flaky');
      expect(run.status).toBe('SUCCESS');
      expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3]);
      expect(new Set(seen.map((s) => s.key)).size).toBe(3);
      expect(seen.every((s) => s.execution === 1)).toBe(true);
      expect(byName.charge!.attempt).toBe(3);
      const delays = events.filter((e) => e.kind === 'atom.retry_scheduled').map((e) => (e.data as { delayMs: number }).delayMs);
      expect(delays).toEqual([40, 80]);
    });

    dbIt('gives up after the last attempt and reverts in reverse dependency order', async () => {
      const log: string[] = [];
      const step = (name: string, fail = false) =>
        task({
          name,
          execute: () => {
            log.push(name);
            if (fail) throw Object.assign(new Error(`${name} failed`), { retryable: false });
          },
          revert: (_in, ctx) => {
            log.push(`undo ${name}${ctx.failure ? ' (failed)' : ''}`);
          },
        });
      const flow = graph(
        'diamond',
        [step('a'), step('b'), step('c'), step('d', true)],
        [
          { from: 'a', to: 'b' },
          { from: 'a', to: 'c' },
          { from: 'b', to: 'd' },
          { from: 'c', to: 'd' },
        ],
      );
      const { run, byName } = await runFlow([flow], 'diamond');
      expect(run.status).toBe('REVERTED');
      expect(run.failure?.message).toBe('d failed');
      const undo = log.filter((l) => l.startsWith('undo'));
      expect(undo[0]).toBe('undo d (failed)');
      expect(undo.at(-1)).toBe('undo a');
      expect(new Set(undo.slice(1, 3))).toEqual(new Set(['undo b', 'undo c']));
      expect(Object.values(byName).every((a) => a.state === 'REVERTED')).toBe(true);
    });

    dbIt('ends FAILED when a revert itself fails', async () => {
      const flow = linear('badrevert', [
        task({
          name: 'x',
          execute: () => 1,
          revert: () => {
            throw new Error('cannot undo x');
          },
        }),
        task({
          name: 'y',
          execute: () => {
            throw Object.assign(new Error('y broke'), { retryable: false });
          },
        }),
      ]);
      const { run, byName } = await runFlow([flow], 'badrevert');
      expect(run.status).toBe('FAILED');
      expect(byName.x!.state).toBe('REVERT_FAILURE');
      expect(byName.x!.failure?.message).toBe('cannot undo x');
    });

    dbIt('retries a sub-flow with times(n), reverting it between attempts', async () => {
      const log: string[] = [];
      let tries = 0;
      const flow = linear('outer', [
        task({
          name: 'before',
          execute: () => {
            log.push('before');
          },
          revert: () => {
            log.push('undo before');
          },
        }),
        linear(
          'inner',
          [
            task({
              name: 'i1',
              execute: () => {
                log.push('i1');
              },
              revert: () => {
                log.push('undo i1');
              },
            }),
            task({
              name: 'i2',
              execute: (_in, ctx) => {
                tries += 1;
                log.push(`i2 #${String(ctx.retryValue)}`);
                if (tries < 3) throw new Error('no');
              },
            }),
          ],
          { retry: times(3) },
        ),
      ]);
      const { run, byName } = await runFlow([flow], 'outer');
      expect(run.status).toBe('SUCCESS');
      expect(log).toEqual(['before', 'i1', 'i2 #1', 'undo i1', 'i1', 'i2 #2', 'undo i1', 'i1', 'i2 #3']);
      expect(byName.i1!.attempt).toBe(3);
    });

    dbIt('times(n) exhausted reverts the scope and then the whole run', async () => {
      const log: string[] = [];
      const flow = linear('exhaust', [
        task({
          name: 'first',
          execute: () => {
            log.push('first');
          },
          revert: () => {
            log.push('undo first');
          },
        }),
        linear(
          'sub',
          [
            task({
              name: 'never',
              execute: () => {
                log.push('never');
                throw new Error('always');
              },
              revert: () => {
                log.push('undo never');
              },
            }),
          ],
          { retry: times(2) },
        ),
      ]);
      const { run } = await runFlow([flow], 'exhaust');
      expect(run.status).toBe('REVERTED');
      expect(log).toEqual(['first', 'never', 'undo never', 'never', 'undo never', 'undo first']);
    });

    dbIt('forEach tries each value until one succeeds', async () => {
      const tried: JsonValue[] = [];
      const flow = linear('hosts', [
        linear(
          'pick',
          [
            task({
              name: 'connect',
              requires: ['host'],
              provides: 'conn',
              execute: ({ host }) => {
                tried.push(host!);
                if (host !== 'c') throw new Error(`${String(host)} down`);
                return `conn:${String(host)}`;
              },
            }),
          ],
          { retry: forEach(['a', 'b', 'c', 'd'], { provides: 'host' }) },
        ),
      ]);
      const { run } = await runFlow([flow], 'hosts');
      expect(run.status).toBe('SUCCESS');
      expect(tried).toEqual(['a', 'b', 'c']);
      expect((run.result as Record<string, JsonValue>).conn).toBe('conn:c');
    });

    dbIt('parameterizedForEach takes its values from a run argument', async () => {
      const tried: JsonValue[] = [];
      const flow = linear('mirrors', [
        linear(
          'try',
          [
            task({
              name: 'fetch',
              requires: ['mirror'],
              execute: ({ mirror }) => {
                tried.push(mirror!);
                if (mirror !== 'm2') throw new Error('miss');
                return mirror!;
              },
            }),
          ],
          { retry: parameterizedForEach('mirrorList', { provides: 'mirror' }) },
        ),
      ]);
      const { run } = await runFlow([flow], 'mirrors', { mirrorList: ['m1', 'm2', 'm3'] });
      expect(run.status).toBe('SUCCESS');
      expect(tried).toEqual(['m1', 'm2']);
    });

    dbIt('alwaysRevert reverts the scope and fails outwards; revertAll reverts everything', async () => {
      const log: string[] = [];
      const mk = (name: string, fail = false) =>
        task({
          name,
          execute: () => {
            log.push(name);
            if (fail) throw new Error(`${name} failed`);
          },
          revert: () => {
            log.push(`undo ${name}`);
          },
        });
      const f1 = linear('ar', [mk('p'), linear('s', [mk('q'), mk('r', true)], { retry: alwaysRevert() })]);
      const r1 = await runFlow([f1], 'ar');
      expect(r1.run.status).toBe('REVERTED');
      expect(log).toEqual(['p', 'q', 'r', 'undo r', 'undo q', 'undo p']);
      log.length = 0;
      const f2 = linear('ra', [
        mk('p2'),
        linear('outerScope', [mk('q2'), linear('s2', [mk('r2', true)], { retry: revertAll() })], { retry: times(5) }),
      ]);
      const r2 = await runFlow([f2], 'ra');
      expect(r2.run.status).toBe('REVERTED');
      // revertAll skips the outer times(5): no second attempt of anything
      expect(log.filter((l) => l === 'r2')).toHaveLength(1);
      expect(log.at(-1)).toBe('undo p2');
    });

    dbIt('a decider can skip a branch: its atoms become SKIPPED', async () => {
      const ran: string[] = [];
      const mk = (name: string, value: JsonValue = null) =>
        task({
          name,
          provides: name,
          execute: () => {
            ran.push(name);
            return value;
          },
        });
      const flow = graph(
        'decide',
        [mk('check', { express: false }), mk('express'), mk('expressLabel'), mk('standard'), mk('notify')],
        [
          { from: 'check', to: 'express', decider: (r) => (r as { express: boolean }).express },
          { from: 'express', to: 'expressLabel' },
          { from: 'check', to: 'standard', decider: (r) => !(r as { express: boolean }).express },
        ],
      );
      const { run, byName } = await runFlow([flow], 'decide');
      expect(run.status).toBe('SUCCESS');
      expect(byName.express!.state).toBe('SKIPPED');
      expect(byName.expressLabel!.state).toBe('SKIPPED');
      expect(byName.standard!.state).toBe('SUCCESS');
      expect(byName.notify!.state).toBe('SUCCESS');
      expect(ran).not.toContain('express');
    });

    dbIt('cancel stops new atoms and aborts in-flight ones through ctx.signal', async () => {
      let aborted = false;
      let startedSecond = false;
      const flow = linear('cancellable', [
        task({
          name: 'slow',
          execute: (_in, ctx: TaskContext) =>
            new Promise((resolve, reject) => {
              const t = setTimeout(() => resolve('late'), 10_000);
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
                clearTimeout(t);
                reject(new Error('aborted'));
              });
            }),
        }),
        task({
          name: 'after',
          execute: () => {
            startedSecond = true;
          },
        }),
        task({
          name: 'last',
          execute: () => {
            startedSecond = true;
          },
        }),
      ]);
      const { run, byName, events } = await runFlow(
        [flow],
        'cancellable',
        {},
        {
          during: async (engine, runId) => {
            await waitUntil(async () => (await store.getAtoms(runId)).some((a) => a.state === 'RUNNING'));
            await engine.cancel(runId);
          },
        },
      );
      expect(run.status).toBe('CANCELLED');
      expect(aborted).toBe(true);
      expect(startedSecond).toBe(false);
      expect(byName.after!.state).toBe('CANCELLED');
      expect(byName.last!.state).toBe('CANCELLED');
      // one event per atom the cancel took out of PENDING, then the run's own (the aborted
      // running atom is recorded RUNNING → CANCELLED when its engine reports it)
      const cancelled = events
        .filter((e) => e.kind === 'atom.cancelled' && e.fromState === 'PENDING')
        .map((e) => [e.atom, e.fromState, e.toState]);
      expect(cancelled).toEqual([
        [byName.after!.index, 'PENDING', 'CANCELLED'],
        [byName.last!.index, 'PENDING', 'CANCELLED'],
      ]);
      expect(events.filter((e) => e.kind === 'run.cancelled')).toHaveLength(1);
    });

    dbIt('many runs of a graph in flight at once: every run ends right, every atom recorded once', async () => {
      // completions of several runs arrive together: on PostgreSQL one fast statement per run, sent at once
      const flow = graph('fanjoin', [
        task({ name: 'src', requires: ['n'], provides: 'x', execute: ({ n }) => n as number }),
        task({ name: 'left', requires: ['x'], provides: 'l', execute: ({ x }) => (x as number) * 2 }),
        task({ name: 'right', requires: ['x'], provides: 'r', execute: ({ x }) => (x as number) * 3 }),
        task({ name: 'join', requires: ['l', 'r'], provides: 'sum', execute: ({ l, r }) => (l as number) + (r as number) }),
      ]);
      const registry = new FlowRegistry();
      registry.register(flow);
      const engine = new Engine({ store, flows: registry, concurrency: 16, pollMs: 50, leaseMs: 5000 });
      await engine.start();
      try {
        const runs = await engine.startRuns(
          'fanjoin',
          Array.from({ length: 24 }, (_, n) => ({ n })),
        );
        for (const [n, r] of runs.entries()) {
          const done = await engine.waitForRun(r.id, { timeoutMs: 15_000 });
          expect(done.status).toBe('SUCCESS');
          expect(done.result).toEqual({ x: n, l: 2 * n, r: 3 * n, sum: 5 * n });
          const events = await store.listEvents({ runId: r.id });
          for (const i of [0, 1, 2, 3])
            expect(
              events.filter((e) => e.atom === i && e.kind === 'atom.success'),
              `run ${n} atom ${i}`,
            ).toHaveLength(1);
          expect(events.filter((e) => e.kind === 'run.success')).toHaveLength(1);
        }
      } finally {
        await engine.stop();
      }
    });

    dbIt('retention: an engine with retentionMs prunes runs that ended, never active ones', async () => {
      // tables of its own: pruning here must not take other tests' runs
      const own = await db!.open({ tablePrefix: 'ret_' });
      const registry = new FlowRegistry();
      registry.register(linear('short', [task({ name: 'one', execute: () => 1 })]));
      registry.register(linear('parked', [task({ name: 'wait', execute: async (_in, ctx) => ctx.waitForSignal('never') })]));
      const engine = new Engine({ store: own, flows: registry, pollMs: 50, leaseMs: 5000, retentionMs: 0, retentionEveryMs: 1000 });
      expect(() => new Engine({ store: own, flows: registry, retentionMs: -5 })).toThrow(/retentionMs must be a number of milliseconds/);
      await engine.start();
      try {
        const { run: done } = await engine.startRun('short', {});
        const { run: open } = await engine.startRun('parked', {});
        expect((await engine.waitForRun(done.id, { timeoutMs: 10_000 })).status).toBe('SUCCESS');
        await waitUntil(async () => (await own.getRun(done.id)) === null, 5_000);
        expect(await own.listEvents({ runId: done.id })).toEqual([]);
        expect((await own.getRun(open.id))?.status).toBe('RUNNING');
      } finally {
        await engine.stop();
        await own.close();
      }
    });

    dbIt('a durable sleep parks the atom without a claim and resumes it', async () => {
      const marks: number[] = [];
      const flow = linear('sleepy', [
        task({
          name: 'nap',
          execute: async (_in, ctx) => {
            marks.push(ctx.execution);
            await ctx.sleep(300);
            return `woke after ${marks.length} executions`;
          },
        }),
      ]);
      const { run, events } = await runFlow(
        [flow],
        'sleepy',
        {},
        {
          during: async (_engine, runId) => {
            await waitUntil(async () => (await store.getAtoms(runId))[0]!.state === 'WAITING');
            const [a] = await store.getAtoms(runId);
            expect(a!.claimedBy).toBeNull();
            expect(a!.waitKind).toBe('sleep');
          },
        },
      );
      expect(run.status).toBe('SUCCESS');
      expect(run.result).toEqual({});
      expect(marks).toEqual([1, 2]);
      expect(events.some((e) => e.kind === 'atom.waiting')).toBe(true);
    });

    dbIt('waitForSignal with a name no signal can have fails the atom at once, not retried (it used to park for ever)', async () => {
      const flow = linear('badWait', [
        task({ name: 'ask', retry: { attempts: 3, backoffMs: 0 }, execute: async (_in, ctx) => ctx.waitForSignal('bad name!') }),
      ]);
      const { run, byName } = await runFlow([flow], 'badWait');
      expect(run.status).toBe('REVERTED');
      expect(byName.ask!.attempt).toBe(1);
      expect(byName.ask!.failure).toMatchObject({ code: 'STOKER_CONFIG_INVALID', retryable: false });
      expect(byName.ask!.failure?.message).toBe(
        `ctx.waitForSignal needs a signal name that is a letter followed by at most 127 letters, digits, "_", "." or "-"; got 'bad name!'`,
      );
    });

    /** Every state change of a run and of each atom starts from the state the one before ended in. */
    function expectChained(events: EventRow[]): void {
      const last = new Map<string, string>();
      for (const e of events) {
        if (e.toState === null || e.kind === 'atom.fenced_write') continue;
        const key = e.atom === null ? 'run' : `atom ${e.atom}`;
        const before = last.get(key);
        // only the event that creates the row has no from-state
        if (before !== undefined) expect(e.fromState, `${e.kind} of ${key} (event ${e.id}) has no from-state`).not.toBeNull();
        if (before !== undefined) expect(`${key}: ${e.kind} from ${e.fromState}`).toBe(`${key}: ${e.kind} from ${before}`);
        last.set(key, e.toState);
      }
    }

    dbIt('every event names the state its row left: claims of waiting and retried atoms, the run moving on', async () => {
      let tries = 0;
      const flow = linear('chained', [
        task({ name: 'nap', provides: 'n', execute: async (_in, ctx) => (await ctx.sleep(50), 1) }),
        task({
          name: 'flaky',
          provides: 'f',
          retry: { attempts: 2, backoffMs: 0, jitter: 0 },
          execute: () => {
            if ((tries += 1) === 1) throw new Error('once');
            return 2;
          },
        }),
      ]);
      const { run, events } = await runFlow([flow], 'chained');
      expect(run.status).toBe('SUCCESS');
      const claims = events.filter((e) => e.kind === 'atom.claimed').map((e) => [e.atom, e.fromState, e.toState]);
      expect(claims).toContainEqual([0, 'WAITING', 'RUNNING']);
      expect(claims.filter(([atom]) => atom === 1)).toHaveLength(2);
      expect(claims.every(([, from]) => from !== null)).toBe(true);
      expectChained(events);
      expect(events.filter((e) => e.atom === null).map((e) => `${e.kind} ${e.fromState} → ${e.toState}`)).toEqual([
        'run.created null → PENDING',
        'run.running PENDING → RUNNING',
        'run.success RUNNING → SUCCESS',
      ]);
    });

    dbIt('a run cancelled before its first completion goes PENDING → CANCELLED; its running task ends CANCELLED', async () => {
      const flow = linear('cancelEarly', [
        task({
          name: 'long',
          execute: (_in, ctx) =>
            new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })),
        }),
      ]);
      const { run } = await runFlow(
        [flow],
        'cancelEarly',
        {},
        {
          during: async (engine, runId) => {
            await waitUntil(async () => (await store.getAtoms(runId))[0]!.state === 'RUNNING');
            await engine.cancel(runId, 'changed my mind');
          },
        },
      );
      expect(run.status).toBe('CANCELLED');
      // read again once the engine has stopped: the aborted task's outcome is recorded by then
      const [long] = await store.getAtoms(run.id);
      expect(long!.state).toBe('CANCELLED');
      expect(long!.failure?.message).toMatch(/changed my mind|aborted/);
      const after = await store.listEvents({ runId: run.id });
      expect(after.filter((e) => e.atom === null).map((e) => `${e.kind} ${e.fromState} → ${e.toState}`)).toEqual([
        'run.created null → PENDING',
        'run.cancelled PENDING → CANCELLED',
      ]);
      expectChained(after);
    });

    dbIt('a run cancelled by another client: the engine finds it at its heartbeat and aborts the task with the stored reason', async () => {
      const flow = linear('cancelElsewhere', [
        task({
          name: 'long',
          execute: (_in, ctx) =>
            new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
        }),
      ]);
      const registry = new FlowRegistry();
      registry.register(flow);
      // a short lease: the heartbeat (a third of it) is what finds the cancel, no notice reaches this engine
      const engine = new Engine({ store, flows: registry, pollMs: 50, leaseMs: 900 });
      const elsewhere = new Engine({ store, flows: registry });
      await engine.start();
      try {
        const { run } = await engine.startRun('cancelElsewhere', {});
        await waitUntil(async () => (await store.getAtoms(run.id))[0]!.state === 'RUNNING');
        await elsewhere.cancel(run.id, 'stopped from another host');
        await waitUntil(async () => (await store.getAtoms(run.id))[0]!.state === 'CANCELLED', 5_000);
        const [long] = await store.getAtoms(run.id);
        expect(long!.failure?.message).toContain('stopped from another host');
      } finally {
        await engine.stop();
      }
    });

    dbIt('the default lease is 10 s: the engine row is registered and renewed with it', async () => {
      const engine = new Engine({ store, flows: new FlowRegistry() });
      await engine.start();
      try {
        const row = (await store.listEngines()).find((e) => e.id === engine.id)!;
        expect(row.leaseExpiresAt.getTime() - row.heartbeatAt.getTime()).toBe(10_000);
      } finally {
        await engine.stop();
      }
    });

    dbIt('waits for a named signal sent from outside, and takes one sent earlier at once', async () => {
      const flow = linear('approval', [
        task({ name: 'ask', provides: 'decision', execute: async (_in, ctx) => ctx.waitForSignal('approve') }),
        task({ name: 'again', provides: 'second', execute: async (_in, ctx) => ctx.waitForSignal('early') }),
      ]);
      const { run } = await runFlow(
        [flow],
        'approval',
        {},
        {
          during: async (engine, runId) => {
            await engine.signal(runId, 'early', { n: 1 });
            await waitUntil(async () => (await store.getAtoms(runId))[0]!.state === 'WAITING');
            expect(await engine.signal(runId, 'approve', { ok: true, by: 'ana' })).toBe(1);
          },
        },
      );
      expect(run.status).toBe('SUCCESS');
      expect(run.result).toEqual({ decision: { ok: true, by: 'ana' }, second: { n: 1 } });
    });

    dbIt('runs a child run and resumes the parent atom with its result or failure', async () => {
      const child = linear('child', [
        task({ name: 'double', requires: ['v'], provides: 'doubled', execute: ({ v }) => (v as number) * 2 }),
      ]);
      const bad = linear('badChild', [
        task({
          name: 'boom',
          execute: () => {
            throw Object.assign(new Error('child broke'), { retryable: false });
          },
        }),
      ]);
      const parent = linear('parent', [
        task({ name: 'spawn', provides: 'out', execute: async (_in, ctx) => ctx.runChild('child', { v: 21 }) }),
        task({
          name: 'spawnBad',
          provides: 'caught',
          execute: async (_in, ctx) => {
            try {
              await ctx.runChild('badChild', {});
              return 'no';
            } catch (e) {
              return (e as Error).name;
            }
          },
        }),
      ]);
      const { run } = await runFlow([child, bad, parent], 'parent');
      expect(run.status).toBe('SUCCESS');
      expect(run.result).toEqual({ out: { doubled: 42 }, caught: 'ChildRunFailedError' });
      const children = await store.listRuns({ parentRunId: run.id });
      expect(children.map((c) => c.status).sort()).toEqual(['REVERTED', 'SUCCESS']);
    });

    dbIt('times out a task that runs longer than timeoutMs', async () => {
      const flow = linear('slowpoke', [task({ name: 'hang', timeoutMs: 100, execute: () => new Promise((r) => setTimeout(r, 5000)) })]);
      const { run, byName } = await runFlow([flow], 'slowpoke');
      expect(run.status).toBe('REVERTED');
      expect(byName.hang!.failure?.code).toBe('STOKER_TASK_TIMEOUT');
    });

    dbIt('rejects bad input with a clear error and writes nothing', async () => {
      const registry = new FlowRegistry();
      registry.register(linear('strict', [task({ name: 'echo', requires: ['x'], provides: 'y', execute: ({ x }) => x! })]));
      const engine = new Engine({ store, flows: registry });
      const before = (await store.listRuns({ limit: 10_000 })).length;
      let deep: JsonValue = 1;
      for (let i = 0; i < 100; i++) deep = [deep];
      const cases: [unknown, string, RegExp][] = [
        [{ x: deep }, 'STOKER_INPUT_TOO_DEEP', /deeper than 64 levels at \$\.x/],
        [JSON.parse('{"x": 1, "__proto__": {"polluted": true}}'), 'STOKER_INPUT_FORBIDDEN_KEY', /__proto__/],
        [{ x: 'a'.repeat(2 * 1024 * 1024) }, 'STOKER_INPUT_TOO_LARGE', /over the limit/],
        [{ x: () => 1 }, 'STOKER_INPUT_NOT_JSON', /not plain JSON at \$\.x: a function/],
        [{}, 'STOKER_RUN_MISSING_ARGUMENT', /needs argument x/],
      ];
      for (const [args, code, message] of cases) {
        const err = await engine.startRun('strict', args as Record<string, JsonValue>).then(
          () => null,
          (e: unknown) => e as { code: string; message: string },
        );
        expect(err?.code, `args ${JSON.stringify(args)?.slice(0, 40)}`).toBe(code);
        expect(err!.message).toMatch(message);
      }
      await expect(engine.startRun('nope', {})).rejects.toMatchObject({ code: 'STOKER_FLOW_NOT_FOUND' });
      await expect(engine.signal('no-such-run', 'go')).rejects.toMatchObject({ code: 'STOKER_RUN_NOT_FOUND' });
      await expect(engine.signal('no-such-run', 'bad name!')).rejects.toMatchObject({ code: 'STOKER_CONFIG_INVALID' });
      await expect(engine.cancel('no-such-run')).rejects.toMatchObject({ code: 'STOKER_RUN_NOT_FOUND' });
      expect((await store.listRuns({ limit: 10_000 })).length).toBe(before);
    });

    dbIt(
      'failures keep their information: results that are not JSON, thrown non-Errors, AggregateErrors, the final failure event',
      async () => {
        const circular: Record<string, unknown> = {};
        circular.self = circular;
        const flow = unordered('lossless', [
          task({ name: 'date', provides: 'd', execute: () => ({ when: new Date(0) }) as unknown as JsonValue }),
          task({ name: 'cycle', provides: 'c', execute: () => circular as JsonValue }),
          task({
            name: 'many',
            provides: 'm',
            execute: () => {
              throw new AggregateError([new Error('db down'), new Error('cache down')], 'all backends failed');
            },
          }),
        ]);
        const { run, byName } = await runFlow([flow], 'lossless');
        expect(run.status).toBe('REVERTED');
        expect(byName.date!.failure).toMatchObject({
          code: 'STOKER_INPUT_NOT_JSON',
          retryable: false,
          message: 'result of date is not plain JSON at $.when: a Date (store date.toISOString() instead)',
        });
        expect(byName.cycle!.failure?.message).toBe('result of cycle is not plain JSON at $.self: a circular reference (back to $)');
        expect(byName.many!.failure?.errors?.map((e) => e.message)).toEqual(['db down', 'cache down']);

        const plainFlow = linear('plainThrow', [
          task({
            name: 'plain',
            retry: { attempts: 2, backoffMs: 0, jitter: 0 },
            execute: () => {
              throw { code: 'E_BUSY', retryIn: 5 };
            },
          }),
        ]);
        const plain = await runFlow([plainFlow], 'plainThrow');
        expect(plain.byName.plain!.failure).toMatchObject({
          type: 'NonError',
          message: '{"code":"E_BUSY","retryIn":5}',
          code: 'E_BUSY',
          details: { code: 'E_BUSY', retryIn: 5 },
        });
        // the final failure event carries data, as the retry_scheduled event before it does
        const kinds = Object.fromEntries(plain.events.filter((e) => e.atom === 0).map((e) => [e.kind, e.data]));
        expect(kinds['atom.retry_scheduled']).toEqual({
          attempt: 2,
          failure: '{"code":"E_BUSY","retryIn":5}',
          type: 'NonError',
          code: 'E_BUSY',
          delayMs: 0,
        });
        expect(kinds['atom.failure']).toEqual({ attempt: 2, failure: '{"code":"E_BUSY","retryIn":5}', type: 'NonError', code: 'E_BUSY' });
      },
    );

    dbIt('an engine without the flow hands the atom back; one with the flow runs it', async () => {
      const flow = linear('known', [task({ name: 'k', provides: 'v', execute: () => 'done' })]);
      const withFlow = new FlowRegistry();
      withFlow.register(flow);
      const stranger = new Engine({ store, flows: new FlowRegistry(), pollMs: 30 });
      await stranger.start();
      const client = new Engine({ store, flows: withFlow });
      const { run } = await client.startRun('known', {});
      await waitUntil(async () => (await store.listEvents({ runId: run.id })).some((e) => e.kind === 'atom.released'));
      const owner = new Engine({ store, flows: withFlow, pollMs: 30 });
      await owner.start();
      const done = await owner.waitForRun(run.id, { timeoutMs: 10_000 });
      await Promise.all([stranger.stop(), owner.stop()]);
      expect(done.status).toBe('SUCCESS');
      expect(done.result).toEqual({ v: 'done' });
      const [atom] = await store.getAtoms(run.id);
      expect(atom!.execution).toBe(1);
    });

    dbIt('starts idempotently by key, rejects other arguments, supersedes on request', async () => {
      const registry = new FlowRegistry();
      registry.register(linear('keyed', [task({ name: 'wait', requires: ['n'], execute: async (_in, ctx) => ctx.waitForSignal('go') })]));
      const engine = new Engine({ store, flows: registry, pollMs: 50 });
      const first = await engine.startRun('keyed', { n: 1 }, { key: 'order-7' });
      const again = await engine.startRun('keyed', { n: 1 }, { key: 'order-7' });
      expect(again.created).toBe(false);
      expect(again.run.id).toBe(first.run.id);
      await expect(engine.startRun('keyed', { n: 2 }, { key: 'order-7' })).rejects.toMatchObject({ code: 'STOKER_RUN_KEY_CONFLICT' });
      const newer = await engine.startRun('keyed', { n: 2 }, { key: 'order-7', supersede: true });
      expect(newer.created).toBe(true);
      expect(newer.superseded).toBe(first.run.id);
      expect((await store.getRun(first.run.id))!.status).toBe('SUPERSEDED');
      await expect(engine.startRun('keyed', {}, { key: 'k2' })).rejects.toMatchObject({ code: 'STOKER_RUN_MISSING_ARGUMENT' });
      expect(await store.listRuns({ key: 'k2' })).toEqual([]);
      await engine.cancel(newer.run.id);
    });

    dbIt('a drain that outlasts the lease keeps renewing it: nothing is taken over, the task records once', async () => {
      const registry = new FlowRegistry();
      let executions = 0;
      registry.register(
        linear('slowdrain', [
          task({
            name: 'slow',
            execute: async () => {
              executions += 1;
              await new Promise((r) => setTimeout(r, 2000));
              return 'done';
            },
          }),
        ]),
      );
      // the lease is 600 ms: the drain below lasts more than three leases
      const draining = new Engine({ store, flows: registry, concurrency: 1, pollMs: 50, leaseMs: 600 });
      const other = new Engine({ store, flows: registry, concurrency: 1, pollMs: 50, leaseMs: 600, reapMs: 100 });
      await draining.start();
      const { run } = await draining.startRun('slowdrain', {});
      await waitUntil(async () => (await store.getAtoms(run.id))[0]?.state === 'RUNNING');
      await other.start();
      try {
        await draining.stop({ timeoutMs: 10_000 });
        const atom = (await store.getAtoms(run.id))[0]!;
        expect(atom).toMatchObject({ state: 'SUCCESS', result: 'done', execution: 1 });
        expect(executions).toBe(1);
        expect(draining.stats.fencedWrites).toBe(0);
        const claims = (await store.listEvents({ runId: run.id })).filter((e) => e.kind === 'atom.claimed');
        expect(claims).toHaveLength(1);
      } finally {
        await other.stop();
      }
    });

    dbIt('starts many runs at once (all or none) and drains them', async () => {
      const registry = new FlowRegistry();
      registry.register(
        linear('bulk', [task({ name: 'double', requires: ['n'], provides: 'twice', execute: ({ n }) => (n as number) * 2 })]),
      );
      registry.register(
        graph('bulkg', [
          task({ name: 'a', provides: 'x', execute: () => 1 }),
          task({ name: 'b', requires: ['x'], provides: 'y', execute: ({ x }) => (x as number) + 1 }),
        ]),
      );
      const engine = new Engine({ store, flows: registry, concurrency: 8, pollMs: 50, leaseMs: 5000 });
      const rows = await engine.startRuns(
        'bulk',
        Array.from({ length: 40 }, (_, n) => ({ n })),
      );
      expect(rows).toHaveLength(40);
      expect(rows.every((r) => r.status === 'PENDING' && r.flow === 'bulk')).toBe(true);
      expect(new Set(rows.map((r) => r.id)).size).toBe(40);
      const two = await engine.startRuns('bulkg', [{}, {}]);
      // a bad element anywhere rejects the whole call before anything is written
      const before = (await store.listRuns({ flow: 'bulk', limit: 1000 })).length;
      await expect(engine.startRuns('bulk', [{ n: 1 }, {}])).rejects.toMatchObject({ code: 'STOKER_RUN_MISSING_ARGUMENT' });
      await expect(engine.startRuns('nope', [{}])).rejects.toMatchObject({ code: 'STOKER_FLOW_NOT_FOUND' });
      expect((await store.listRuns({ flow: 'bulk', limit: 1000 })).length).toBe(before);
      // the store writes all or none: a duplicate id fails the whole batch
      const dup = { ...rows[0]!, key: null };
      await expect(
        store.startRuns([
          {
            id: `fresh-${dialect}-${Date.now()}`,
            flow: 'bulk',
            version: rows[0]!.version,
            key: null,
            args: { n: 1 },
            graph: registry.get('bulk').graph,
          },
          { id: dup.id, flow: 'bulk', version: rows[0]!.version, key: null, args: { n: 1 }, graph: registry.get('bulk').graph },
        ]),
      ).rejects.toThrow();
      expect((await store.listRuns({ flow: 'bulk', limit: 1000 })).length).toBe(before);
      await engine.start();
      try {
        for (const r of [...rows, ...two]) {
          const done = await engine.waitForRun(r.id, { timeoutMs: 15_000 });
          expect(done.status).toBe('SUCCESS');
        }
        const results = await Promise.all(rows.map(async (r) => (await store.getRun(r.id))!.result));
        expect(results).toEqual(rows.map((_, n) => ({ twice: n * 2 })));
        expect((await store.getRun(two[0]!.id))!.result).toEqual({ x: 1, y: 2 });
      } finally {
        await engine.stop();
      }
    });
  });
}

async function waitUntil(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met in time');
}
