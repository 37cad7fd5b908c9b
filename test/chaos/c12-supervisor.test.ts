/**
 * C12, the local supervisor's choices (docs/reliability.md R12): whom it SIGKILLs, and when. Real
 * child processes (`sleep`), registered as engines in a real SQLite file, and the real
 * /proc inspection and kill that `openStore` wires.
 *
 * (1) Selection (`SqliteStore.superviseLocalEngines`): of engines whose lease ran out long
 *     ago, it kills only one that is stopped, on this host, registered when that process
 *     was already running (not a reused pid), neither the caller's id nor its process, and
 *     whose lease is over by more than X. A running process is never touched.
 * (2) The trigger (`Engine`): an in-process engine kills a stopped, long-expired engine only
 *     once it has itself been unable to write for longer than X = 2 × lease (the test holds
 *     SQLite's write lock from another connection); while it can write, it kills nothing.
 */
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/logger.js';
import { Engine } from '../../src/engine/engine.js';
import { FlowRegistry } from '../../src/flow/index.js';
import { isPidAlive, isStoppedProcess } from '../../src/store/open-store.js';
import { SqliteStore, type LocalProcesses } from '../../src/store/sqlite/sqlite-store.js';
import { testDialects } from '../helpers/databases.js';
import { sleep, waitFor } from './harness.js';

const sqlite = testDialects().includes('sqlite');
const linux = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();
if (sqlite && !linux) console.log('SKIP C12 supervisor: no /proc (the supervisor needs Linux to tell a stopped process)');

/** the real host, as open-store.ts wires it */
const realProcesses = (selfPid = process.pid): LocalProcesses => ({
  host: () => hostname(),
  selfPid,
  isStopped: isStoppedProcess,
  kill: (pid) => process.kill(pid, 'SIGKILL'),
});

interface Child {
  proc: ChildProcess;
  pid: number;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  exited: Promise<void>;
}

function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

describe.skipIf(!sqlite || !linux)('C12 SQLite: the local supervisor', () => {
  const children: Child[] = [];
  const cleanup: (() => Promise<void> | void)[] = [];
  const dirs: string[] = [];

  afterEach(async () => {
    for (const c of children) {
      if (c.exit) continue;
      try {
        process.kill(c.pid, 'SIGCONT');
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await Promise.all(children.map((c) => Promise.race([c.exited, sleep(5000)])));
    children.length = 0;
    for (const f of cleanup.splice(0).reverse()) await f();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function child(): Child {
    const proc = spawn('sleep', ['120'], { stdio: 'ignore' });
    const c: Child = {
      proc,
      pid: proc.pid!,
      exit: null,
      exited: new Promise((resolve) =>
        proc.once('exit', (code, signal) => {
          c.exit = { code, signal };
          resolve();
        }),
      ),
    };
    children.push(c);
    return c;
  }

  async function stop(c: Child): Promise<void> {
    process.kill(c.pid, 'SIGSTOP');
    await waitFor(() => procState(c.pid) === 'T', 2000, `pid ${c.pid} to be stopped`);
  }

  /** a store on a fresh file, and a raw connection to tamper with rows and hold the write lock */
  async function database(opts: { busyTimeoutMs?: number; selfPid?: number } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'stoker-c12-supervisor-'));
    dirs.push(dir);
    const path = join(dir, 'stoker.db');
    const store = new SqliteStore({
      path,
      isPidAlive,
      localProcesses: realProcesses(opts.selfPid),
      ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}),
    });
    await store.migrate();
    const raw = new Database(path);
    raw.pragma('busy_timeout = 5000');
    cleanup.push(async () => {
      if (raw.inTransaction) raw.exec('ROLLBACK');
      raw.close();
      await store.close();
    });
    /** registers `pid` as engine `id` (lease already over), then sets columns by SQL */
    const register = async (id: string, pid: number, set: { host?: string; startedAgoMs?: number; leaseOverAgoMs?: number } = {}) => {
      await store.registerEngine({ id, host: hostname(), pid, version: 'test', leaseMs: 1 });
      const now = Date.now();
      raw
        .prepare('UPDATE stoker_engines SET host = ?, started_at = ?, lease_expires_at = ? WHERE id = ?')
        .run(
          set.host ?? hostname(),
          set.startedAgoMs === undefined ? now : now - set.startedAgoMs,
          now - (set.leaseOverAgoMs ?? 60_000),
          id,
        );
    };
    return { store, raw, register };
  }

  it('kills only a stopped engine process of this host, registered by that very process, whose lease is over by more than X', async () => {
    const { store, register } = await database();
    const X = 5000;
    const target = child();
    const running = child();
    const reused = child();
    const elsewhere = child();
    const recent = child();
    const caller = child();
    for (const c of [target, running, reused, elsewhere, recent, caller]) expect(procState(c.pid)).toMatch(/^[RS]$/);
    await register('target', target.pid);
    await register('running', running.pid);
    // registered a minute before this process started: the pid was reused by another process
    await register('reused', reused.pid, { startedAgoMs: 60_000 });
    await register('elsewhere', elsewhere.pid, { host: `not-${hostname()}` });
    await register('recent', recent.pid, { leaseOverAgoMs: 1000 });
    await register('caller', caller.pid);

    // nothing is stopped yet: nobody is killed
    expect(await store.superviseLocalEngines({ selfId: 'caller', staleMs: X })).toEqual([]);
    await sleep(300);
    for (const c of children) expect(c.exit, `pid ${c.pid}`).toBeNull();

    for (const c of [target, reused, elsewhere, recent, caller]) await stop(c);
    const kills = await store.superviseLocalEngines({ selfId: 'caller', staleMs: X });
    expect(kills.map((k) => ({ engineId: k.engineId, pid: k.pid }))).toEqual([{ engineId: 'target', pid: target.pid }]);
    expect(kills[0]!.overdueMs).toBeGreaterThan(X);
    await Promise.race([target.exited, sleep(5000)]);
    expect(target.exit).toEqual({ code: null, signal: 'SIGKILL' });
    // the others are untouched: one still running, four still stopped
    await sleep(300);
    expect(procState(running.pid)).toMatch(/^[RS]$/);
    for (const c of [reused, elsewhere, recent, caller]) expect(procState(c.pid), `pid ${c.pid}`).toBe('T');
    for (const c of [running, reused, elsewhere, recent, caller]) expect(c.exit).toBeNull();

    // the caller's own process is never a target, whatever id its row has
    const other = await database({ selfPid: caller.pid });
    await other.register('caller-under-another-id', caller.pid);
    expect(await other.store.superviseLocalEngines({ selfId: 'someone-else', staleMs: X })).toEqual([]);
    // …while a store in any other process would kill it
    expect((await store.superviseLocalEngines({ selfId: 'target', staleMs: X })).map((k) => k.pid)).toEqual([caller.pid]);
    await Promise.race([caller.exited, sleep(5000)]);
    expect(caller.exit?.signal).toBe('SIGKILL');
  });

  it('an engine kills a stopped engine only once it has been unable to write for longer than X = 2 × lease', async () => {
    const { store, raw, register } = await database({ busyTimeoutMs: 100 });
    const leaseMs = 500;
    const X = 2 * leaseMs;
    const stopped = child();
    const running = child();
    await register('stopped', stopped.pid);
    await register('running', running.pid);
    await stop(stopped);

    const warnings: { obj: object; msg: string | undefined }[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn: (obj, msg) => void warnings.push({ obj, msg }),
      error() {},
      child: () => logger,
    };
    const engine = new Engine({ store, flows: new FlowRegistry(), leaseMs, reapMs: 50, pollMs: 50, logger });
    engine.on('error', () => undefined); // "database is locked" while the test holds the lock
    const killedEvents: { engineId: string; pid: number }[] = [];
    engine.on('supervisor.killed', (k) => killedEvents.push(k));
    await engine.start();
    cleanup.push(() => engine.stop({ drain: false }));

    // the database is writable: however long the others' leases have been over, nobody is killed
    await sleep(3 * X);
    expect(engine.stats.supervisorKills).toBe(0);
    expect(procState(stopped.pid)).toBe('T');

    // hold SQLite's write lock (as a stopped engine would): the engine can write no more
    raw.exec('BEGIN IMMEDIATE');
    const lockedAt = Date.now();
    await waitFor(() => stopped.exit !== null, 10 * X, 'the supervisor to kill the stopped engine');
    const killedAfterMs = Date.now() - lockedAt;
    raw.exec('ROLLBACK');
    console.log(`C12 supervisor: write lock held by another connection, stopped engine killed ${killedAfterMs} ms later (X = ${X} ms)`);

    expect(stopped.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(killedAfterMs).toBeGreaterThanOrEqual(X);
    expect(engine.stats.supervisorKills).toBe(1);
    expect(killedEvents).toMatchObject([{ engineId: 'stopped', pid: stopped.pid }]);
    const warning = warnings.find((w) => w.msg?.includes('local supervisor'));
    expect(warning?.msg).toContain(`engine stopped (pid ${stopped.pid})`);
    expect(warning?.obj).toMatchObject({ killedEngineId: 'stopped', pid: stopped.pid });
    // the running one survived the stall
    expect(running.exit).toBeNull();
    expect(procState(running.pid)).toMatch(/^[RS]$/);
    // and the engine writes again: it registered under a new id (it fenced itself meanwhile)
    await waitFor(
      async () => (await store.listEngines()).some((e) => e.id === engine.id && e.state === 'alive'),
      5000,
      'the engine to register again',
    );
  });
});
