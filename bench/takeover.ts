/**
 * `npm run bench:takeover`: how fast another engine takes over, with real processes.
 *
 *   node --import tsx bench/takeover.ts [--dialects sqlite,postgres,mysql] [--kills 20] [--stops 3] [--idle 200] [--quick]
 *
 * Per dialect:
 * - kill -9 (≥ 20 samples): engine process A holds an atom (a task that sleeps 60 s);
 *   engine process B is running (it was SIGSTOPped for the moment A claimed, so that A and
 *   not B holds the atom). A is SIGKILLed. Measured: kill → `atom.requeued` (the DB's event
 *   time against the kill's wall-clock time, corrected by the DB clock offset measured
 *   with `now()`), and kill → the atom shows claimed by B (polled every 2 ms from this
 *   process, performance.now()).
 * - SIGSTOP (a few samples): the same, but A is frozen instead (lease 1.5 s): the takeover
 *   must come within lease + poll + 1 s.
 * - idle latency: from `startRun` in this process to the task starting to execute on an
 *   idle engine process (poll interval 1 s, the engine default, so wake-ups show): the
 *   task's own start line in the side-effect log (wall clock to a fraction of a ms, same host). 200 starts on
 *   PostgreSQL (LISTEN/NOTIFY) and SQLite (the wake file), fewer on MySQL (polling), with random pauses between
 *   starts so they fall at random points of the poll cycle. On PostgreSQL the same is
 *   measured for graphile-worker in the same run, its starts interleaved with Stoker's
 *   (bench/peers/; `--no-peers` leaves it out): the reference for this machine's state.
 *
 * Results: bench/results/takeover-latest.json and .md; a table on stdout.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WATCH_WAIT_MS } from '../src/engine/liveness/peer-ring.js';
import type { Store } from '../src/store/store.js';
import { EngineProc, client, percentile, sleep } from '../test/chaos/harness.js';
import type { EffectLine } from '../test/fixtures/chaos-flows.js';
import { createTestStore, type Dialect } from '../test/helpers/databases.js';
import { ensurePeers, GraphileWorkerPeer } from './peers/peers.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes('--quick');
const dialects = (opt('--dialects') ?? 'sqlite,postgres,mysql').split(',') as Dialect[];
const KILLS = Number(opt('--kills') ?? (quick ? 5 : 20));
const STOPS = Number(opt('--stops') ?? (quick ? 1 : 3));
const IDLE_PG = Number(opt('--idle') ?? (quick ? 30 : 200));
const IDLE_OTHER = quick ? 10 : 30;
const PEERS = !args.includes('--no-peers');

const HOLD_LEASE_MS = 6000; // the lease T of docs/reliability.md, "Failure scenarios": a kill is found by the session lock / pid, not the lease
const STOP_LEASE_MS = 1500;
const POLL_MS = 100;

interface Stat {
  n: number;
  median: number;
  p99: number;
  max: number;
}
interface DialectResult {
  dialect: string;
  killRequeueMs: Stat;
  killClaimMs: Stat;
  stopClaimMs: Stat;
  stopBoundMs: number;
  idleMs: Stat;
  idleNote: string;
  /** graphile-worker's idle latency, measured interleaved with Stoker's (PostgreSQL) */
  peerIdleMs?: Stat;
  dbClockOffsetMs: number;
}

function stat(xs: number[]): Stat {
  return { n: xs.length, median: round(percentile(xs, 50)), p99: round(percentile(xs, 99)), max: round(xs.length ? Math.max(...xs) : NaN) };
}
const round = (x: number) => Math.round(x * 10) / 10;
/** Wall-clock ms with a fraction, comparable across processes on this host (the tasks' `hr`). */
const wallMs = (): number => performance.timeOrigin + performance.now();
const progress = (msg: string) => process.stderr.write(`[takeover ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** DB clock − wall clock (ms), from a few `now()` round trips. */
async function clockOffset(store: Store): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const a = Date.now();
    const db = (await store.now()).getTime();
    const b = Date.now();
    xs.push(db - (a + b) / 2);
  }
  return percentile(xs, 50);
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 2): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Follows a JSONL file, returning lines appended since the last call. */
class Tail<Line = EffectLine> {
  private offset = 0;
  private partial = '';
  constructor(private readonly path: string) {}
  read(): Line[] {
    let size = 0;
    try {
      size = statSync(this.path).size;
    } catch {
      return [];
    }
    if (size <= this.offset) return [];
    const fd = openSync(this.path, 'r');
    const buf = Buffer.alloc(size - this.offset);
    readSync(fd, buf, 0, buf.length, this.offset);
    closeSync(fd);
    this.offset = size;
    const parts = (this.partial + buf.toString()).split('\n');
    this.partial = parts.pop() ?? '';
    return parts.filter((l) => l.trim()).map((l) => JSON.parse(l) as Line);
  }
}

async function benchDialect(dialect: Dialect): Promise<DialectResult | null> {
  const db = await createTestStore(dialect);
  if (!db) return null;
  const dir = mkdtempSync(join(tmpdir(), 'stoker-takeover-'));
  const log = join(dir, 'effects.jsonl');
  const procs: EngineProc[] = [];
  const spawn = (leaseMs: number, extra: Record<string, string> = {}, concurrency = 1) => {
    const p = new EngineProc(db.url, { leaseMs, concurrency, env: { ENGINE_POLL_MS: String(POLL_MS), ...extra } });
    procs.push(p);
    return p;
  };
  try {
    const store = db.store;
    const c = client(store);
    const offset = await clockOffset(store);

    // ---------------------------------------------------------------- kill -9 and SIGSTOP
    const b = spawn(HOLD_LEASE_MS, {}, 64);
    await b.ready;
    const killRequeue: number[] = [];
    const killClaim: number[] = [];
    const stopClaim: number[] = [];
    const total = KILLS + STOPS;
    for (let i = 0; i < total; i++) {
      const freeze = i >= KILLS;
      // one victim at a time: B is the only other engine, so B is the one that takes over
      const a = spawn(freeze ? STOP_LEASE_MS : HOLD_LEASE_MS);
      await a.ready;
      // B must not take the atom first: freeze it while A claims (if B was frozen inside an
      // SQLite write and A cannot claim, let B go and try again with a new run)
      let run: { id: string } | null = null;
      for (let attempt = 0; run === null; attempt++) {
        if (attempt >= 5) throw new Error(`${dialect}: engine A never claimed the hold atom`);
        b.signal('SIGSTOP');
        let started: { id: string } | null = null;
        let mine = false;
        try {
          started = (await c.startRun('chaosHold', { log, holdMs: 60_000 })).run;
          const id = started.id;
          mine = await until(
            async () => (a.ids.includes((await store.getAtoms(id))[0]?.claimedBy ?? '') ? true : undefined),
            3000,
            'A to claim',
          ).catch(() => false);
        } catch {
          // the store was busy (SQLite: B frozen inside a write): try again
        } finally {
          b.signal('SIGCONT');
        }
        if (mine) run = started;
        else if (started) await c.cancel(started.id).catch(() => undefined);
      }
      const epoch = (await store.getAtoms(run.id))[0]!.epoch;
      await sleep(300); // B is back to normal (its timers caught up)
      // where engines watch a peer's session lock (a ring, looked at every 2 s), let B see A
      // join first: a victim that has run for a few seconds, not one killed as it starts
      await sleep(WATCH_WAIT_MS + 500);
      const wall = Date.now();
      const t0 = performance.now();
      a.signal(freeze ? 'SIGSTOP' : 'SIGKILL');
      await until(
        async () => {
          const atom = (await store.getAtoms(run.id))[0];
          return atom && atom.epoch > epoch && atom.state === 'RUNNING' && b.ids.includes(atom.claimedBy ?? '') ? true : undefined;
        },
        30_000,
        'B to claim',
      ).catch(async (e: unknown) => {
        const atom = (await store.getAtoms(run.id))[0];
        progress(
          `${dialect}: no takeover; atom ${JSON.stringify({ state: atom?.state, epoch: atom?.epoch, claimedBy: atom?.claimedBy })}, A ${a.ids.join(',')} exit ${JSON.stringify(a.exit)}, B ${b.ids.join(',')}`,
        );
        progress(`engines: ${JSON.stringify(await store.listEngines())}`);
        progress(`B stderr: ${b.stderr.slice(-3000)}`);
        throw e;
      });
      const claimMs = performance.now() - t0;
      const requeued = (await store.listEvents({ runId: run.id })).find((e) => e.kind === 'atom.requeued');
      if (freeze) {
        stopClaim.push(claimMs);
        a.signal('SIGKILL');
      } else {
        killClaim.push(claimMs);
        if (requeued) killRequeue.push(requeued.at.getTime() - (wall + offset));
      }
      await a.exited;
      await c.cancel(run.id).catch(() => undefined); // B's heartbeat aborts the held task
      progress(`${dialect}: ${freeze ? 'SIGSTOP' : 'kill -9'} #${i + 1}: claimed by the survivor after ${claimMs.toFixed(1)} ms`);
    }
    b.signal('SIGKILL');
    await b.exited;

    // ---------------------------------------------------------------- idle latency
    const idleN = store.wakeups ? IDLE_PG : IDLE_OTHER;
    const idle = spawn(HOLD_LEASE_MS, { ENGINE_POLL_MS: '1000' }, 4);
    await idle.ready;
    await sleep(1500); // idle: nothing to do, waiting for a wake-up or its poll
    const tail = new Tail(log);
    tail.read();
    const idleMs: number[] = [];
    const listen = store.wakeups !== null;
    // the same run's reference: graphile-worker, idle too, its starts between ours
    const peerLog = join(dir, 'graphile.jsonl');
    const peer = dialect === 'postgres' && PEERS && ensurePeers(progress) ? await GraphileWorkerPeer.start(db.url, peerLog) : null;
    const peerTail = new Tail<{ id: string; t: number; hr: number }>(peerLog);
    const peerMs: number[] = [];
    if (peer) await sleep(1500);
    for (let i = 0; i < idleN; i++) {
      const t0 = wallMs();
      const { run } = await c.startRun('chaosHold', { log, holdMs: 0 });
      const line = await until(
        async () => tail.read().find((l) => l.run === run.id && l.phase === 'start'),
        10_000,
        'the task to start',
        1,
      );
      idleMs.push(line.hr - t0);
      // a random pause, so that starts fall at random points of the engine's poll cycle
      // (right after finishing a run the engine sleeps a whole poll interval)
      await sleep(listen ? 20 + Math.random() * 80 : 50 + Math.random() * 1200);
      if (!peer) continue;
      const p0 = wallMs();
      await peer.addJob(String(i));
      const done = await until(async () => peerTail.read().find((l) => l.id === String(i)), 10_000, 'the graphile-worker job to start', 1);
      peerMs.push(done.hr - p0);
      await sleep(20 + Math.random() * 80);
    }
    await peer?.stop();
    return {
      dialect,
      killRequeueMs: stat(killRequeue),
      killClaimMs: stat(killClaim),
      stopClaimMs: stat(stopClaim),
      stopBoundMs: STOP_LEASE_MS + POLL_MS + 1000,
      idleMs: stat(idleMs),
      idleNote: !listen
        ? 'polling only (poll 1 s ± 20 %)'
        : dialect === 'sqlite'
          ? 'wake-file wake-up (poll 1 s)'
          : 'LISTEN/NOTIFY wake-up (poll 1 s)',
      ...(peer ? { peerIdleMs: stat(peerMs) } : {}),
      dbClockOffsetMs: round(offset),
    };
  } finally {
    for (const p of procs) p.signal('SIGCONT');
    for (const p of procs) p.signal('SIGKILL');
    await Promise.all(procs.map((p) => Promise.race([p.exited, sleep(5000)])));
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: DialectResult[] = [];
for (const d of dialects) {
  progress(`${d}: ${KILLS} kills, ${STOPS} stops, idle starts`);
  const r = await benchDialect(d);
  if (r) results.push(r);
  else progress(`SKIP ${d}: server unavailable`);
}

const fmt = (s: Stat) => (s.n === 0 ? '–' : `${s.median} / ${s.p99} / ${s.max} (n=${s.n})`);
const md = [
  '# Takeover latency (real processes, this machine)',
  '',
  `Engine lease ${HOLD_LEASE_MS} ms for the kill -9 samples (found by session lock / pid, not by the lease), ${STOP_LEASE_MS} ms for the SIGSTOP samples; poll ${POLL_MS} ms; reaper 500 ms. Values: median / p99 / max in ms.`,
  '',
  '| dialect | kill -9 → requeue (DB time) | kill -9 → claimed by survivor | SIGSTOP → claimed (bound) | idle startRun → task executing | idle mode |',
  '|---|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.dialect} | ${fmt(r.killRequeueMs)} | ${fmt(r.killClaimMs)} | ${fmt(r.stopClaimMs)} (≤ ${r.stopBoundMs}) | ${fmt(r.idleMs)} | ${r.idleNote} |`,
  ),
  ...results.flatMap((r) =>
    r.peerIdleMs
      ? [
          '',
          `Same run, ${r.dialect}, reference: graphile-worker 0.16.6 idle add_job → task executing ${fmt(r.peerIdleMs)} (its starts interleaved with Stoker's, same pauses); ` +
            `Stoker ÷ graphile-worker, median ${(r.idleMs.median / r.peerIdleMs.median).toFixed(2)}, p99 ${(r.idleMs.p99 / r.peerIdleMs.p99).toFixed(2)}.`,
        ]
      : [],
  ),
  '',
  `DB clock − wall clock offsets (ms): ${results.map((r) => `${r.dialect} ${r.dbClockOffsetMs}`).join(', ')}. Recorded ${new Date().toISOString()}.`,
].join('\n');
const out = join(process.cwd(), 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'takeover-latest.json'),
  JSON.stringify({ at: new Date().toISOString(), kills: KILLS, stops: STOPS, results }, null, 2) + '\n',
);
writeFileSync(join(out, 'takeover-latest.md'), md + '\n');
console.log(md);
process.exit(0);
