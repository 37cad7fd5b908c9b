/**
 * Store-level liveness and wake-ups (protocols 4 and 6 in ARCHITECTURE.md, docs/reliability.md R11 and R12):
 *
 * - an engine process killed with SIGKILL is found dead within milliseconds, by its session
 *   lock (PostgreSQL advisory lock, MySQL GET_LOCK) or its pid (SQLite), although its lease
 *   has a minute left; the kill → requeue latency is measured and printed;
 * - the lease rules still win: a live engine whose lease ran out is requeued, a live engine
 *   with a valid lease and its lock held is not; without `liveCheckAfterMs: 0` the lock is
 *   looked at only once the heartbeat is overdue;
 * - a lost lock session is reported to the engine, fails its heartbeat and frees its atoms;
 * - PostgreSQL LISTEN/NOTIFY wake-ups arrive within milliseconds and survive the listener's
 *   backend being terminated; SQLite's wake-file wake-ups arrive within milliseconds and
 *   survive the file being removed;
 * - dedicated connections carry the R12 session settings.
 *
 * Engine processes are test/helpers/liveness-child.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { describeEachDialect } from '../../helpers/databases.js';
import { newRun } from '../../helpers/graphs.js';

const CHILD = join(import.meta.dirname, '../../helpers/liveness-child.ts');
const KILLS = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(1);
  }
}

function summary(ms: number[]): { median: number; max: number; all: string } {
  const sorted = [...ms].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, max: sorted[sorted.length - 1]!, all: ms.map((m) => m.toFixed(1)).join(' ') };
}

interface Child {
  id: string;
  pid: number;
  process: ChildProcess;
  claims: { runId: string; index: number }[];
  exited: Promise<void>;
}

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts an engine process that registers `id`, claims `claims` atoms and waits. */
function spawnEngine(url: string, prefix: string, id: string, leaseMs: number, claims = 1): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, prefix, id, String(leaseMs), String(claims)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<Child>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      const msg = JSON.parse(line) as { pid: number; claims: { runId: string; index: number }[] };
      resolve({ id, pid: msg.pid, process: child, claims: msg.claims, exited });
    });
    child.once('exit', (code, signal) => reject(new Error(`engine process ${id} exited early (${String(code ?? signal)}): ${stderr}`)));
  });
}

await describeEachDialect('liveness', (ctx) => {
  let prefixSeq = 0;
  /** A migrated store on tables of its own, and their prefix (for engine processes). */
  const fresh = async (): Promise<{ store: Store; prefix: string }> => {
    const prefix = `l${prefixSeq++}_`;
    return { store: await ctx.db.open({ tablePrefix: prefix }), prefix };
  };
  const pid = process.pid;
  const sessionLocks = ctx.dialect !== 'sqlite';

  it(`a SIGKILLed engine process is found dead at once (${KILLS} kills), although its lease has 60 s left`, async () => {
    const { store, prefix } = await fresh();
    for (let i = 0; i < KILLS; i++) await store.startRun(newRun());
    const engines = await Promise.all(Array.from({ length: KILLS }, (_, i) => spawnEngine(ctx.url, prefix, `kid-${i}`, 60_000)));
    expect(new Set(engines.flatMap((e) => e.claims.map((c) => c.runId))).size).toBe(KILLS);

    // all alive, locks held, leases valid: nothing to requeue, even when every lock is checked
    expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([]);

    const latencies: number[] = [];
    for (const e of engines) {
      const t0 = performance.now();
      process.kill(e.pid, 'SIGKILL');
      const requeued = await waitFor(
        async () => {
          const r = await store.requeueExpired({ liveCheckAfterMs: 0 });
          return r.length > 0 ? r : undefined;
        },
        5_000,
        `the atom of ${e.id} to be requeued`,
      );
      latencies.push(performance.now() - t0);
      // only the killed engine's atom: the others are alive
      expect(requeued).toEqual([{ ...e.claims[0]!, engineId: e.id }]);
      const [atom] = await store.getAtoms(e.claims[0]!.runId);
      expect(atom).toMatchObject({ state: 'READY', claimedBy: null, epoch: 1 });
      await e.exited;
    }
    const s = summary(latencies);
    console.log(
      `${ctx.dialect}: kill -> requeue latency over ${KILLS} kills: median ${s.median.toFixed(1)} ms, max ${s.max.toFixed(1)} ms (${s.all})`,
    );
    expect(s.max).toBeLessThan(1_000);
    // marked dead, long before their leases run out
    const listed = await store.listEngines();
    expect(listed.map((e) => [e.id, e.state, e.atomsHeld]).sort()).toEqual(engines.map((e) => [e.id, 'dead', 0]).sort());
    const now = (await store.now()).getTime();
    for (const e of listed) expect(e.leaseExpiresAt.getTime() - now).toBeGreaterThan(50_000);
  });

  it('lease rules win: a live engine whose lease ran out is requeued; one with a valid lease is not', async () => {
    const { store, prefix } = await fresh();
    const engineSide = await ctx.db.open({ tablePrefix: prefix });
    const { run } = await store.startRun(newRun({ predecessors: [[], []] }));
    await engineSide.registerEngine({ id: 'live-long', host: 'h', pid, version: 't', leaseMs: 60_000 });
    await engineSide.registerEngine({ id: 'live-short', host: 'h', pid, version: 't', leaseMs: 300 });
    const [long] = await engineSide.claimAtoms('live-long', 1);
    const [short] = await engineSide.claimAtoms('live-short', 1);
    expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([]);
    await sleep(400);
    // the lock of live-short is still held, but its lease ran out
    expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([{ runId: run.id, index: short!.index, engineId: 'live-short' }]);
    expect(await engineSide.heartbeat('live-short', 300)).toBe(false);
    expect(await engineSide.heartbeat('live-long', 60_000)).toBe(true);
    expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([]);
    const atoms = await store.getAtoms(run.id);
    expect(atoms.find((a) => a.index === long!.index)).toMatchObject({ state: 'RUNNING', claimedBy: 'live-long' });

    await engineSide.deregisterEngine('live-long');
    await engineSide.deregisterEngine('live-short');
    expect((await store.listEngines()).map((e) => e.id)).toEqual([]);
    // deregistered: the atom (not handed back by this test) now has a holder without a row
    expect(await store.requeueExpired()).toEqual([{ runId: run.id, index: long!.index, engineId: 'live-long' }]);
    // each requeue's event names the state the atom left (issue 11: it had none)
    const requeued = (await store.listEvents({ runId: run.id })).filter((e) => e.kind === 'atom.requeued');
    expect(requeued.map((e) => [e.atom, e.fromState, e.toState]).sort()).toEqual(
      [
        [short!.index, 'RUNNING', 'READY'],
        [long!.index, 'RUNNING', 'READY'],
      ].sort(),
    );
  });

  it.runIf(sessionLocks)('an engine id whose session lock is held cannot be registered again, until it is deregistered', async () => {
    const { store, prefix } = await fresh();
    const other = await ctx.db.open({ tablePrefix: prefix });
    await store.registerEngine({ id: 'dup', host: 'h', pid, version: 't', leaseMs: 60_000 });
    await expect(other.registerEngine({ id: 'dup', host: 'h', pid, version: 't', leaseMs: 60_000 })).rejects.toMatchObject({
      code: 'STOKER_STORE_QUERY_FAILED',
      message: expect.stringMatching(/already registered/) as string,
    });
    // the same id in another deployment (table prefix) of the same database is another lock
    const { store: elsewhere } = await fresh();
    await elsewhere.registerEngine({ id: 'dup', host: 'h', pid, version: 't', leaseMs: 60_000 });
    await store.deregisterEngine('dup');
    await other.registerEngine({ id: 'dup', host: 'h', pid, version: 't', leaseMs: 60_000 });
    expect((await other.listEngines()).map((e) => [e.id, e.state])).toEqual([['dup', 'alive']]);
    await other.deregisterEngine('dup');
    await elsewhere.deregisterEngine('dup');
  });

  it.runIf(sessionLocks)(
    'the lock is checked only once the heartbeat is overdue, by default after a third of the lease (R11)',
    async () => {
      const { store, prefix } = await fresh();
      const { run } = await store.startRun(newRun());
      const e = await spawnEngine(ctx.url, prefix, 'kid-overdue', 3_000);
      process.kill(e.pid, 'SIGKILL');
      await e.exited;
      // as if it had renewed just now: lease 3 s, so its lock is looked at after 1 s
      await ctx.db.exec(
        ctx.dialect === 'postgres'
          ? `UPDATE ${prefix}engines SET heartbeat_at = now(), lease_expires_at = now() + interval '3 seconds'`
          : `UPDATE ${prefix}engines SET heartbeat_at = NOW(6), lease_expires_at = DATE_ADD(NOW(6), INTERVAL 3 SECOND)`,
      );
      expect(await store.requeueExpired()).toEqual([]);
      expect(await store.requeueExpired({ liveCheckAfterMs: 800 })).toEqual([]);
      await sleep(1_100);
      expect(await store.requeueExpired({ liveCheckAfterMs: Infinity })).toEqual([]); // lease only
      expect(await store.requeueExpired({ liveCheckAfterMs: 5_000 })).toEqual([]);
      expect(await store.requeueExpired()).toEqual([{ runId: run.id, index: 0, engineId: 'kid-overdue' }]);
      // its lease has not run out, but it was marked dead
      const [row] = await store.listEngines();
      expect(row).toMatchObject({ id: 'kid-overdue', state: 'dead', atomsHeld: 0 });
      expect(row!.leaseExpiresAt.getTime()).toBeGreaterThan((await store.now()).getTime());
    },
  );

  it.runIf(sessionLocks)('a lost session lock is reported, fails the heartbeat and frees the atoms at once', async () => {
    const { store, prefix } = await fresh();
    const engineSide = await ctx.db.open({ tablePrefix: prefix });
    const { run } = await store.startRun(newRun());
    const lost: Error[] = [];
    await engineSide.registerEngine({ id: 'victim', host: 'h', pid, version: 't', leaseMs: 60_000, onSessionLost: (e) => lost.push(e) });
    await engineSide.claimAtoms('victim', 1);
    expect(await engineSide.heartbeat('victim', 60_000)).toBe(true);

    const locks = (
      engineSide as unknown as { sessionLocks: { get(id: string): { conn: { processID?: number; threadId?: number } } | undefined } }
    ).sessionLocks;
    const lock = locks.get('victim')!;
    const t0 = performance.now();
    if (ctx.dialect === 'postgres') await ctx.db.exec(`SELECT pg_terminate_backend(${lock.conn.processID!})`);
    else await ctx.db.exec(`KILL ${lock.conn.threadId!}`);
    await waitFor(() => (lost.length > 0 ? true : undefined), 5_000, 'onSessionLost');
    const noticed = performance.now() - t0;
    // the default check (heartbeat not overdue) would not look at the lock: the store marked it dead
    const requeued = await waitFor(
      async () => {
        const r = await store.requeueExpired();
        return r.length > 0 ? r : undefined;
      },
      5_000,
      'the atom of the engine whose session was lost',
    );
    console.log(
      `${ctx.dialect}: session lost noticed after ${noticed.toFixed(1)} ms, atom requeued after ${(performance.now() - t0).toFixed(1)} ms`,
    );
    expect(requeued).toEqual([{ runId: run.id, index: 0, engineId: 'victim' }]);
    expect(lost).toHaveLength(1);
    expect(await engineSide.heartbeat('victim', 60_000)).toBe(false);
    expect((await store.listEngines())[0]).toMatchObject({ id: 'victim', state: 'dead' });
    // the engine comes back under a new id
    await engineSide.registerEngine({ id: 'victim-2', host: 'h', pid, version: 't', leaseMs: 60_000 });
    expect(await engineSide.heartbeat('victim-2', 60_000)).toBe(true);
    await engineSide.deregisterEngine('victim-2');
    expect(lost).toHaveLength(1);
  });

  it.runIf(sessionLocks)("closing the store ends its engines' lock sessions quietly: others take their atoms over", async () => {
    const { store, prefix } = await fresh();
    const engineSide = await ctx.db.open({ tablePrefix: prefix });
    const { run } = await store.startRun(newRun());
    const lost: Error[] = [];
    await engineSide.registerEngine({ id: 'closer', host: 'h', pid, version: 't', leaseMs: 60_000, onSessionLost: (e) => lost.push(e) });
    await engineSide.claimAtoms('closer', 1);
    expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([]);
    await engineSide.close();
    const requeued = await waitFor(
      async () => {
        const r = await store.requeueExpired({ liveCheckAfterMs: 0 });
        return r.length > 0 ? r : undefined;
      },
      5_000,
      "the atom of the closed store's engine",
    );
    expect(requeued).toEqual([{ runId: run.id, index: 0, engineId: 'closer' }]);
    await sleep(50);
    expect(lost).toEqual([]);
  });

  it('watchEngine: held while the engine lives, free the moment its process is SIGKILLed, aborted on demand', async () => {
    const { store, prefix } = await fresh();
    const { run } = await store.startRun(newRun());
    const e = await spawnEngine(ctx.url, prefix, 'kid-watched', 60_000);
    const never = new AbortController().signal;
    // alive: the wait runs out; the lock is still the engine's (nothing to requeue)
    expect(await store.watchEngine!('kid-watched', { maxWaitMs: 1_000, signal: never })).toBe('held');
    expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([]);
    // an id nobody holds: free at once
    expect(await store.watchEngine!('nobody', { maxWaitMs: 5_000, signal: never })).toBe('free');

    const watching = store.watchEngine!('kid-watched', { maxWaitMs: 20_000, signal: never });
    await sleep(200);
    const t0 = performance.now();
    process.kill(e.pid, 'SIGKILL');
    expect(await watching).toBe('free');
    console.log(`${ctx.dialect}: kill -> watchEngine answered 'free' after ${(performance.now() - t0).toFixed(1)} ms`);
    // the watch let the lock go again: the sweep sees the engine dead
    expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([{ runId: run.id, index: 0, engineId: 'kid-watched' }]);
    await e.exited;

    // aborted by its signal, and by closing the store
    const other = await ctx.db.open({ tablePrefix: prefix });
    await other.registerEngine({ id: 'alive', host: 'h', pid, version: 't', leaseMs: 60_000 });
    const abort = new AbortController();
    const aborted = store.watchEngine!('alive', { maxWaitMs: 20_000, signal: abort.signal });
    await sleep(100);
    abort.abort();
    expect(await aborted).toBe('aborted');
    expect(await store.watchEngine!('alive', { maxWaitMs: 10_000, signal: abort.signal })).toBe('aborted');
    const closing = await ctx.db.open({ tablePrefix: prefix });
    const cut = closing.watchEngine!('alive', { maxWaitMs: 20_000, signal: never });
    await sleep(100);
    await closing.close();
    expect(await cut).toBe('aborted');
    // the engine's lock was never taken from it
    expect(await store.watchEngine!('alive', { maxWaitMs: 1_000, signal: never })).toBe('held');
    await other.deregisterEngine('alive');
    expect(await store.watchEngine!('alive', { maxWaitMs: 5_000, signal: never })).toBe('free');
  });

  it.runIf(sessionLocks)(
    "a watcher left holding a dead engine's lock (frozen right after the grant) does not make it look alive",
    async () => {
      const { store, prefix } = await fresh();
      const { run } = await store.startRun(newRun());
      const e = await spawnEngine(ctx.url, prefix, 'kid-frozen-watch', 60_000);
      // a session that waits for the lock as watchEngine does, and then never lets it go
      let granted: Promise<unknown>;
      let end: () => Promise<void>;
      if (ctx.dialect === 'postgres') {
        const frozen = new pg.Client({ connectionString: ctx.url });
        await frozen.connect();
        granted = frozen.query(
          `SELECT pg_advisory_lock_shared(hashtextextended(('stoker:.${prefix}engine:' || 'kid-frozen-watch') COLLATE "C", 0))`,
        );
        end = () => frozen.end();
      } else {
        const frozen = await mysql.createConnection(ctx.url);
        granted = frozen.query(
          `SELECT GET_LOCK(CONCAT('stoker_engine_', LEFT(SHA2(CONCAT(DATABASE(), '.${prefix}engine:', 'kid-frozen-watch'), 256), 40)), 20) AS ok`,
        );
        end = () => frozen.end();
      }
      try {
        await sleep(100);
        process.kill(e.pid, 'SIGKILL');
        await granted;
        expect(await store.requeueExpired({ liveCheckAfterMs: 0 })).toEqual([{ runId: run.id, index: 0, engineId: 'kid-frozen-watch' }]);
      } finally {
        await end();
      }
      await e.exited;
    },
  );

  it.runIf(ctx.dialect === 'sqlite')('sqlite: a SIGKILLed engine process is found dead by its pid, without a lock check', async () => {
    const { store, prefix } = await fresh();
    const { run } = await store.startRun(newRun());
    const e = await spawnEngine(ctx.url, prefix, 'kid-pid', 60_000);
    expect(await store.requeueExpired()).toEqual([]);
    const t0 = performance.now();
    process.kill(e.pid, 'SIGKILL');
    // the default options: SQLite checks every pid on every call
    const requeued = await waitFor(
      async () => {
        const r = await store.requeueExpired();
        return r.length > 0 ? r : undefined;
      },
      5_000,
      'the atom of the killed process',
    );
    console.log(`sqlite: kill -> requeue by pid: ${(performance.now() - t0).toFixed(1)} ms`);
    expect(requeued).toEqual([{ runId: run.id, index: 0, engineId: 'kid-pid' }]);
  });

  // ------------------------------------------------------------------ wake-ups

  it.runIf(ctx.dialect === 'mysql')(
    'KILL QUERY wake-ups: from notify, starts and signals, per deployment, and they survive a killed listener',
    async () => {
      const { store: listener, prefix } = await fresh();
      const notifier = await ctx.db.open({ tablePrefix: prefix });
      const w = await countWakes(listener);
      const nextWake = w.next;
      const pairOf = (): { waiter: { threadId: number }; holder: { threadId: number }; lock: string } =>
        (
          listener.wakeups as unknown as {
            listener: { pair: { waiter: { threadId: number }; holder: { threadId: number }; lock: string } };
          }
        ).listener.pair;
      const threadOf = (): number => pairOf().waiter.threadId;
      // a wake-up sent before the server runs the waiter's next statement is lost (by design:
      // the poll finds the work), so the checks below first see the waiter waiting
      const waiting = (): Promise<true> =>
        waitFor(
          async () =>
            Number(
              (
                await ctx.db.exec(
                  `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ${threadOf()} AND INFO LIKE '%wake\\_listener'`,
                )
              )[0]!.n,
            ) === 1 || undefined,
          5_000,
          'the listener to wait',
        );
      // the listener waits in its statement, for the lock its holder keeps; no wake-up arrives unasked
      const [held] = await ctx.db.exec(`SELECT IS_USED_LOCK('${pairOf().lock}') AS conn`);
      expect(Number(held!.conn), 'the holder keeps the lock the waiter waits for').toBe(pairOf().holder.threadId);
      await sleep(300);
      const idle = w.count();
      await sleep(300);
      expect(w.count()).toBe(idle);
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        const wake = nextWake(1_000, 'a wake-up');
        await notifier.wakeups!.notify();
        latencies.push(await wake);
        // the listener's next wait is sent before it wakes its subscribers: see it run
        await waiting();
      }
      const s = summary(latencies);
      console.log(`mysql: notify -> onWake: median ${s.median.toFixed(2)} ms, max ${s.max.toFixed(2)} ms`);
      const run = await startsWake(notifier, w);
      await rolledBackStartIsQuiet(notifier, run.id, w);

      // a signal that wakes a waiting atom wakes engines too
      await parkOnSignal(notifier, run.id, 'go');
      await sleep(100);
      const signalWake = nextWake(1_000, 'the wake-up of a signal');
      expect(await notifier.sendSignal(run.id, 'go', {})).toBe(1);
      await signalWake;

      // a listener of the version before migration 9 slept instead (engines not yet upgraded
      // in a rolling upgrade): the same wake-up ends its sleep
      const old = await mysql.createConnection(ctx.url);
      try {
        const t0 = performance.now();
        const sleeping = old.query(`SELECT SLEEP(10) AS ${prefix}wake_listener`).then(
          ([rows]) => `answered ${JSON.stringify(rows)}`,
          (e: { errno?: number }) => `failed ${e.errno}`,
        );
        await waitFor(
          async () =>
            Number(
              (
                await ctx.db.exec(
                  `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ${old.threadId} AND INFO LIKE 'SELECT SLEEP(%'`,
                )
              )[0]!.n,
            ) === 1 || undefined,
          5_000,
          'the old-style listener to sleep',
        );
        await notifier.wakeups!.notify();
        // MariaDB ends a killed SLEEP with error 1317, MySQL with 1
        expect(await sleeping).toMatch(/^(failed 1317|answered \[\{"\w+wake_listener":1\}\])$/);
        expect(performance.now() - t0, 'ended by the wake-up, not by its own 10 s').toBeLessThan(9_000);
      } finally {
        old.destroy();
      }

      // another deployment (table prefix) has listeners of its own
      const { store: elsewhere } = await fresh();
      const before = w.count();
      await elsewhere.wakeups!.notify();
      await sleep(200);
      expect(w.count()).toBe(before);

      // the listener's connection is killed: it connects again and wakes its subscribers once
      const thread = threadOf();
      const reconnectWake = nextWake(5_000, 'the wake-up after reconnecting');
      await ctx.db.exec(`KILL ${thread}`);
      await reconnectWake;
      expect(threadOf()).not.toBe(thread);
      await waiting();
      const again = nextWake(1_000, 'a wake-up after the reconnect');
      await notifier.wakeups!.notify();
      await again;

      // the holder's connection is killed: its lock comes free, the waiter gets it, and the
      // listener replaces both and wakes its subscribers once
      const before2 = pairOf();
      const holderWake = nextWake(5_000, 'the wake-up after the holder was lost');
      await ctx.db.exec(`KILL ${before2.holder.threadId}`);
      await holderWake;
      expect(pairOf().holder.threadId).not.toBe(before2.holder.threadId);
      expect(pairOf().lock).not.toBe(before2.lock);
      await waiting();
      const third = nextWake(1_000, 'a wake-up after the holder was replaced');
      await notifier.wakeups!.notify();
      await third;

      const last = threadOf();
      const lastHolder = pairOf().holder.threadId;
      await w.unsubscribe();
      expect((listener.wakeups as unknown as { listener?: unknown }).listener).toBeUndefined();
      await waitFor(
        async () =>
          Number(
            (await ctx.db.exec(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID IN (${last}, ${lastHolder})`))[0]!.n,
          ) === 0
            ? true
            : undefined,
        // the holder's close frees the lock and ends the waiter's wait (no KILL needed), well
        // before the wait's own 10 s
        5_000,
        'the listener connections to end',
      );
    },
  );

  it.runIf(ctx.dialect === 'postgres')(
    'LISTEN/NOTIFY wake-ups: fast, from starts, coalesced, and they survive a killed listener',
    async () => {
      const { store: listener, prefix } = await fresh();
      const notifier = await ctx.db.open({ tablePrefix: prefix });
      const w = await countWakes(listener);
      const nextWake = w.next;
      await wakeLatencies('postgres', notifier, w);
      const run = await startsWake(notifier, w);

      // a signal that w.count() a waiting atom w.count() engines too
      await parkOnSignal(notifier, run.id, 'go');
      await sleep(100);
      const signalWake = nextWake(1_000, 'the wake-up of a signal');
      expect(await notifier.sendSignal(run.id, 'go', {})).toBe(1);
      await signalWake;

      // another deployment (table prefix) has its own channel
      const { store: elsewhere } = await fresh();
      const before = w.count();
      await elsewhere.wakeups!.notify();
      await sleep(200);
      expect(w.count()).toBe(before);

      // calls while one is in flight share one follow-up NOTIFY
      const burst = w.count();
      await Promise.all(Array.from({ length: 10 }, () => notifier.wakeups!.notify()));
      await sleep(200);
      expect(w.count() - burst).toBeGreaterThanOrEqual(1);
      expect(w.count() - burst).toBeLessThanOrEqual(2);

      // the listener's backend is terminated: it reconnects and w.count() its subscribers once
      const backend = (listener.wakeups as unknown as { listener: { client: { processID: number } } }).listener.client.processID;
      const reconnectWake = nextWake(5_000, 'the wake-up after reconnecting');
      const t0 = performance.now();
      await ctx.db.exec(`SELECT pg_terminate_backend(${backend})`);
      await reconnectWake;
      console.log(`postgres: listener terminated -> reconnected and woke after ${(performance.now() - t0).toFixed(1)} ms`);
      const after = (listener.wakeups as unknown as { listener: { client: { processID: number } } }).listener.client.processID;
      expect(after).not.toBe(backend);
      const again = nextWake(1_000, 'a wake-up after the reconnect');
      await notifier.wakeups!.notify();
      await again;

      await w.unsubscribe();
      expect((listener as unknown as { listener?: unknown }).listener).toBeUndefined();
      const listening = await ctx.db.exec(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${after}`);
      expect(listening[0]!.n).toBe(0);
    },
  );

  it.runIf(ctx.dialect === 'sqlite')(
    'wake-file wake-ups: fast, from starts and signals, per deployment, and they survive a removed file',
    async () => {
      const { store: listener, prefix } = await fresh();
      const notifier = await ctx.db.open({ tablePrefix: prefix });
      const file = `${ctx.url.slice('sqlite:'.length)}-${prefix}wake`;
      const w = await countWakes(listener);
      const nextWake = w.next;
      expect(existsSync(file)).toBe(true);
      // no wake-up arrives unasked
      await sleep(200);
      const idle = w.count();
      await sleep(300);
      expect(w.count()).toBe(idle);
      await wakeLatencies('sqlite', notifier, w);
      const run = await startsWake(notifier, w);
      await rolledBackStartIsQuiet(notifier, run.id, w);

      // a signal that w.count() a waiting atom w.count() engines too; one that w.count() nothing does not
      await parkOnSignal(notifier, run.id, 'go');
      await sleep(100);
      const beforeNoop = w.count();
      expect(await notifier.sendSignal(run.id, 'nobody-waits', {})).toBe(0);
      await sleep(200);
      expect(w.count()).toBe(beforeNoop);
      const signalWake = nextWake(1_000, 'the wake-up of a signal');
      expect(await notifier.sendSignal(run.id, 'go', {})).toBe(1);
      await signalWake;

      // another deployment (table prefix) has its own file
      const { store: elsewhere } = await fresh();
      await sleep(100);
      const before = w.count();
      await elsewhere.wakeups!.notify();
      await sleep(200);
      expect(w.count()).toBe(before);

      // the file is removed: the watch is set up again on a new file, and w.count() once for it
      const rearmed = nextWake(5_000, 'the wake-up after the watch was set up again');
      rmSync(file);
      await rearmed;
      await waitFor(() => (existsSync(file) ? true : undefined), 5_000, 'the wake file to be made again');
      await sleep(1_500);
      const again = nextWake(1_000, 'a wake-up on the new file');
      await notifier.wakeups!.notify();
      await again;

      // unsubscribed: nothing more
      await w.unsubscribe();
      const last = w.count();
      await notifier.wakeups!.notify();
      await sleep(200);
      expect(w.count()).toBe(last);
    },
  );

  // ------------------------------------------------------------------ R12 on dedicated connections

  it.runIf(sessionLocks)('the session lock connection carries the R12 settings', async () => {
    const { store } = await fresh();
    await store.registerEngine({ id: 'hygiene', host: 'h', pid, version: 't', leaseMs: 60_000 });
    try {
      const lock = (store as unknown as { sessionLocks: { get(id: string): { conn: unknown } | undefined } }).sessionLocks.get('hygiene')!;
      if (ctx.dialect === 'postgres') {
        expect(await pgSettings(lock.conn as QueryClient)).toEqual({ ...PG_R12, app: 'stoker-store-lock', ist: '0' });
      } else {
        const [rows] = await (lock.conn as MysqlQueryClient).query(
          `SHOW SESSION VARIABLES WHERE Variable_name IN ('time_zone', 'innodb_lock_wait_timeout', 'tx_isolation', 'transaction_isolation', 'wait_timeout')`,
        );
        const vars = Object.fromEntries(rows.map((r) => [String(r.Variable_name), String(r.Value)]));
        expect(vars).toMatchObject({ time_zone: '+00:00', innodb_lock_wait_timeout: '5', wait_timeout: '31536000' });
        expect(vars.transaction_isolation ?? vars.tx_isolation).toBe('READ-COMMITTED');
      }
    } finally {
      await store.deregisterEngine('hygiene');
    }
  });

  it.runIf(ctx.dialect === 'postgres')(
    "postgres: a watch waits in short statements, so no snapshot of it holds the database's horizon for the whole wait",
    async () => {
      const { store, prefix } = await fresh();
      const other = await ctx.db.open({ tablePrefix: prefix });
      await other.registerEngine({ id: 'alive-long', host: 'h', pid, version: 't', leaseMs: 60_000 });
      const never = new AbortController().signal;
      const watching = store.watchEngine!('alive-long', { maxWaitMs: 1_500, signal: never });
      // the statements of the watch connection seen waiting, by their start
      const starts = new Set<string>();
      let done = false;
      void watching.finally(() => (done = true));
      while (!done) {
        const rows = await ctx.db.exec(
          `SELECT query_start::text AS s FROM pg_stat_activity
           WHERE datname = current_database() AND application_name LIKE '%-watch' AND state = 'active' AND backend_xmin IS NOT NULL`,
        );
        for (const r of rows) starts.add(String(r.s));
        await sleep(20);
      }
      expect(await watching).toBe('held');
      // one statement for the whole wait held one snapshot for 1.5 s (src/store/postgres/sweeps.ts)
      expect(starts.size).toBeGreaterThanOrEqual(3);
      await other.deregisterEngine('alive-long');
    },
  );

  it.runIf(ctx.dialect === 'postgres')(
    'postgres: the slices of a watch end without an error (nothing for the server to log), and it still sees the engine die',
    async () => {
      const { store, prefix } = await fresh();
      const watcher = await ctx.db.open({ tablePrefix: prefix });
      const rollbacks = async (): Promise<number> => {
        await ctx.db.exec('SELECT pg_stat_clear_snapshot()');
        const [row] = await ctx.db.exec('SELECT xact_rollback::int AS n FROM pg_stat_database WHERE datname = current_database()');
        return Number(row!.n);
      };
      await store.registerEngine({ id: 'alive-quiet', host: 'h', pid, version: 't', leaseMs: 60_000 });
      const before = await rollbacks();
      const never = new AbortController().signal;
      // 1.2 s of 100 ms slices against a live engine: each used to end in lock_timeout's error
      expect(await watcher.watchEngine!('alive-quiet', { maxWaitMs: 1_200, signal: never })).toBe('held');
      await watcher.close(); // its sessions report their counters as they end
      let after = before;
      for (let i = 0; i < 20 && after === before; i++) {
        await sleep(50);
        after = await rollbacks();
      }
      expect(after - before, 'statements that failed on the server while the watch waited').toBe(0);
      // and the answer still changes when the engine goes
      const watching = store.watchEngine!('alive-quiet', { maxWaitMs: 5_000, signal: never });
      await sleep(300);
      await store.deregisterEngine('alive-quiet');
      expect(await watching).toBe('free');
    },
  );

  it.runIf(ctx.dialect === 'postgres')('the wake-up listener connection carries the R12 settings', async () => {
    const { store } = await fresh();
    const unsubscribe = await store.wakeups!.subscribe(() => undefined);
    try {
      const client = (store.wakeups as unknown as { listener: { client: QueryClient } }).listener.client;
      expect(await pgSettings(client)).toEqual({ ...PG_R12, app: 'stoker-store-listen', ist: '0' });
    } finally {
      await unsubscribe();
    }
  });
});

type QueryClient = { query(sql: string): Promise<{ rows: Record<string, string>[] }> };
type MysqlQueryClient = { query(sql: string): Promise<[Record<string, unknown>[]]> };

const PG_R12 = { st: '30s', lt: '5s', it: '15s', ki: '10', kint: '5', kc: '3' };

async function pgSettings(client: QueryClient): Promise<Record<string, string>> {
  return (
    await client.query(
      `SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt,
              current_setting('idle_in_transaction_session_timeout') AS it, current_setting('application_name') AS app,
              current_setting('tcp_keepalives_idle') AS ki, current_setting('tcp_keepalives_interval') AS kint,
              current_setting('tcp_keepalives_count') AS kc, current_setting('idle_session_timeout', true) AS ist`,
    )
  ).rows[0]!;
}

/** Counts the wake-ups a store's subscription delivers; `next` resolves (with the ms it took) at the next one. */
async function countWakes(
  store: Store,
): Promise<{ count(): number; next(timeoutMs: number, what: string): Promise<number>; unsubscribe(): Promise<void> }> {
  let wakes = 0;
  const unsubscribe = await store.wakeups!.subscribe(() => (wakes += 1));
  return {
    count: () => wakes,
    next: async (timeoutMs, what) => {
      const before = wakes;
      const t0 = performance.now();
      await waitFor(() => (wakes > before ? true : undefined), timeoutMs, what);
      return performance.now() - t0;
    },
    unsubscribe,
  };
}

/** notifyWakeup → onWake, 20 times: printed, and each under 100 ms. */
async function wakeLatencies(dialect: string, notifier: Store, w: Awaited<ReturnType<typeof countWakes>>): Promise<void> {
  const latencies: number[] = [];
  for (let i = 0; i < 20; i++) {
    const wake = w.next(1_000, 'a wake-up');
    await notifier.wakeups!.notify();
    latencies.push(await wake);
    await sleep(5);
  }
  const s = summary(latencies);
  console.log(`${dialect}: notifyWakeup -> onWake: median ${s.median.toFixed(2)} ms, max ${s.max.toFixed(2)} ms`);
  expect(s.max).toBeLessThan(100);
}

/** A start wakes idle engines by default; `wakeup: false` and a child start in a RunTx do not, unless it asks. Returns the first run. */
async function startsWake(notifier: Store, w: Awaited<ReturnType<typeof countWakes>>): Promise<{ id: string }> {
  const startWake = w.next(1_000, 'the wake-up of a start');
  const { run } = await notifier.startRun(newRun());
  await startWake;
  await sleep(100);
  const quiet = w.count();
  await notifier.startRun({ ...newRun(), wakeup: false });
  await notifier.runTransaction([run.id], (tx) => tx.startRun(newRun()));
  await sleep(200);
  expect(w.count()).toBe(quiet);
  const txWake = w.next(1_000, 'the wake-up of a child start that asks for one');
  await notifier.runTransaction([run.id], (tx) => tx.startRun({ ...newRun(), wakeup: true }));
  await txWake;
  return run;
}

/** A start that asks for a wake-up but is rolled back announces nothing. */
async function rolledBackStartIsQuiet(notifier: Store, runId: string, w: Awaited<ReturnType<typeof countWakes>>): Promise<void> {
  await sleep(100);
  const before = w.count();
  await expect(
    notifier.runTransaction([runId], async (tx) => {
      await tx.startRun({ ...newRun(), wakeup: true });
      throw new Error('rolled back');
    }),
  ).rejects.toThrow('rolled back');
  await sleep(200);
  expect(w.count()).toBe(before);
}

/** Claims the run's first atom and parks it WAITING on the signal `name`. */
async function parkOnSignal(store: Store, runId: string, name: string): Promise<void> {
  const claim = (await store.claimAtoms('e-wait', 10)).find((c) => c.runId === runId)!;
  await store.runTransaction([runId], (tx) =>
    tx.updateAtoms(runId, [
      {
        index: claim.index,
        epoch: claim.epoch,
        expectStates: ['RUNNING'],
        patch: { state: 'WAITING', waitKind: 'signal', waitRef: name, readyAt: null, claimedBy: null },
      },
    ]),
  );
}
