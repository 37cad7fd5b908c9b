/**
 * Process harness for the chaos scenarios (docs/reliability.md): engine processes started from
 * test/fixtures/engine-process.ts and stopped by their pids, a workload of chaos-flows.ts
 * runs, waiting for quiescence, takeover latency from the database's event history, and
 * cleanup that never leaves a child behind (stopped ones are continued, then killed).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/engine/engine.js';
import { isTerminalRun } from '../../src/store/states.js';
import { FlowRegistry } from '../../src/flow/index.js';
import type { EventRow, Store } from '../../src/store/store.js';
import chaosFlows, { WORKLOAD, type EffectLine } from '../fixtures/chaos-flows.js';
import crashFlows from '../fixtures/crash-flows.js';

export const FIXTURE = join(import.meta.dirname, '../fixtures/engine-process.ts');

/** `CHAOS_LONG=1` raises fault counts and durations (nightly profile). */
export const LONG = process.env.CHAOS_LONG === '1';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const randInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

export interface EngineOptions {
  concurrency?: number;
  leaseMs?: number;
  env?: Record<string, string>;
  /** a label for logs */
  name?: string;
  /** the process to run instead of test/fixtures/engine-process.ts (same arguments and output lines) */
  script?: string;
}

/** One engine process and what it printed. */
export class EngineProc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly name: string;
  readonly ids: string[] = [];
  readonly lines: string[] = [];
  readonly fenced: { runId: string; atom: number; epoch: number }[] = [];
  stats: Record<string, number | string> | null = null;
  stderr = '';
  /** set by the harness when it stops (SIGSTOP) the process, or the process stopped itself */
  stoppedAt: number | null = null;
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | null = null;
  /** when it printed `ready` (wall clock, ms): from then on it claims and sweeps */
  readyAt: number | null = null;
  readonly ready: Promise<string>;
  readonly exited: Promise<void>;
  private readonly listeners = new Set<() => void>();
  private partial = '';

  constructor(url: string, opts: EngineOptions = {}) {
    this.name = opts.name ?? 'engine';
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', opts.script ?? FIXTURE, url, String(opts.concurrency ?? 4), String(opts.leaseMs ?? 3000)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...opts.env },
      },
    );
    this.pid = this.child.pid!;
    this.child.stderr!.on('data', (d: Buffer) => {
      // keep the tail only: an engine under chaos logs many connection errors
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    this.child.stdout!.on('data', (d: Buffer) => {
      const parts = (this.partial + d.toString()).split('\n');
      this.partial = parts.pop() ?? '';
      for (const line of parts) this.onLine(line);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        this.notify();
        resolve();
      });
    });
    this.ready = this.waitForLine((l) => l.startsWith('ready '), 30_000).then((l) => l.split(' ')[1]!);
    // a rejected ready promise nobody awaits (the process was killed early) is not an error
    this.ready.catch(() => undefined);
  }

  private onLine(line: string): void {
    this.lines.push(line);
    const [kind, ...rest] = line.split(' ');
    if (kind === 'ready' || kind === 'id') this.ids.push(rest[0]!);
    if (kind === 'ready' && this.readyAt === null) this.readyAt = Date.now();
    if (kind === 'fenced') this.fenced.push({ runId: rest[0]!, atom: Number(rest[1]), epoch: Number(rest[2]) });
    if (kind === 'stats') this.stats = JSON.parse(rest.join(' ')) as Record<string, number | string>;
    if (kind === 'stop') this.stoppedAt = Number(rest[4]);
    this.notify();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  get alive(): boolean {
    return this.exit === null;
  }

  /** Resolves with the first line (already printed or future) matching `pred`. */
  waitForLine(pred: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.lines.find(pred);
        if (hit !== undefined) {
          done();
          resolve(hit);
          return true;
        }
        if (this.exit) {
          done();
          reject(
            new Error(
              `${this.name} (pid ${this.pid}) exited (${this.exit.code ?? this.exit.signal}) before the expected line; stderr: ${this.stderr.slice(-2000)}`,
            ),
          );
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${this.name} (pid ${this.pid}): no matching line within ${timeoutMs} ms; stdout: ${this.lines.slice(-20).join(' | ')}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      const listener = () => void check();
      if (!check()) this.listeners.add(listener);
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.alive) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGKILL; resolves when the process has exited (and been reaped). Returns the kill time. */
  async kill9(): Promise<number> {
    const at = Date.now();
    this.signal('SIGKILL');
    await this.exited;
    return at;
  }

  /** SIGTERM and wait for the graceful exit (its `stats` line). */
  async terminate(timeoutMs = 30_000): Promise<void> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Process state letter from /proc (R running, S sleeping, T stopped, Z zombie), or null. */
  procState(): string | null {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return null;
    }
  }
}

/** All engine processes of one scenario; `cleanup()` leaves none behind. */
export class Fleet {
  readonly all: EngineProc[] = [];
  constructor(private readonly url: string) {}

  async start(opts: EngineOptions = {}): Promise<EngineProc> {
    const p = this.spawn(opts);
    await p.ready;
    return p;
  }

  spawn(opts: EngineOptions = {}): EngineProc {
    const p = new EngineProc(this.url, { ...opts, name: `${opts.name ?? 'engine'}#${this.all.length}` });
    this.all.push(p);
    return p;
  }

  get alive(): EngineProc[] {
    return this.all.filter((p) => p.alive);
  }

  /** SIGTERM every live engine (continuing stopped ones first) and wait for them. */
  async terminateAll(timeoutMs = 30_000): Promise<void> {
    for (const p of this.alive) p.signal('SIGCONT');
    await Promise.all(this.alive.map((p) => p.terminate(timeoutMs)));
  }

  /** SIGCONT (stopped ones cannot die of SIGTERM), then SIGKILL every straggler. */
  async cleanup(): Promise<void> {
    for (const p of this.alive) p.signal('SIGCONT');
    for (const p of this.alive) p.signal('SIGKILL');
    await Promise.all(this.all.map((p) => Promise.race([p.exited, sleep(5000)])));
  }

  /** engine id → pid, from every `ready`/`id`/`crash`/`stop` line printed so far */
  idsByPid(): Map<string, number> {
    const m = new Map<string, number>();
    for (const p of this.all) {
      for (const id of p.ids) m.set(id, p.pid);
      for (const l of p.lines) {
        const [kind, , id] = l.split(' ');
        if ((kind === 'crash' || kind === 'stop') && id && id !== '?') m.set(id, p.pid);
      }
    }
    return m;
  }

  fencedTotal(): number {
    return this.all.reduce((n, p) => n + p.fenced.length, 0);
  }
}

/** A client (not started) that can start runs of the chaos and crash flows. */
export function client(store: Store): Engine {
  const registry = new FlowRegistry();
  for (const f of [...crashFlows, ...chaosFlows]) registry.register(f);
  return new Engine({ store, flows: registry });
}

export interface Submitted {
  id: string;
  flow: string;
}

/** Starts `count` runs of the mixed workload; returns their ids (the submission log). */
export async function submitRuns(
  store: Store,
  count: number,
  opts: { log: string; stepMs: number; flows?: readonly string[] },
): Promise<Submitted[]> {
  const c = client(store);
  const shapes = opts.flows ?? WORKLOAD;
  const out: Submitted[] = [];
  for (let i = 0; i < count; i++) {
    const flow = shapes[i % shapes.length]!;
    const { run } = await c.startRun(flow, { log: opts.log, stepMs: opts.stepMs });
    out.push({ id: run.id, flow });
  }
  return out;
}

/** Waits until every run is terminal; returns the ids still active at the timeout. */
export async function waitTerminal(store: Store, ids: readonly string[], timeoutMs: number): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let statuses: Map<string, string>;
    try {
      statuses = await store.getRunStatuses(ids);
    } catch {
      await sleep(200);
      continue;
    }
    const open = ids.filter((id) => {
      const s = statuses.get(id);
      return s === undefined || !isTerminalRun(s as Parameters<typeof isTerminalRun>[0]);
    });
    if (open.length === 0 || Date.now() > until) return open;
    await sleep(100);
  }
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export function readEffects(path: string): EffectLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as EffectLine];
      } catch {
        return []; // a line cut by kill -9 mid-write
      }
    });
}

// ------------------------------------------------------------------ takeover latency

/** A fault on one engine process at a wall-clock time (ms). */
export interface Fault {
  kind: string;
  pid: number;
  at: number;
}

export interface TakeoverSample {
  fault: Fault;
  runId: string;
  atom: number;
  /**
   * fault → `atom.requeued` of an atom the engine held (DB clock − wall clock, same host);
   * given the fleet, counted from the first moment after the fault at which another engine
   * process was ready ({@link survivorSince})
   */
  requeueMs: number;
  /** the same start → the next `atom.claimed` of that atom, or null if it was never claimed again */
  claimMs: number | null;
  /** how long after the fault the first survivor was ready (0 when one already was) */
  noSurvivorMs: number;
}

/**
 * The first moment at or after `fault` at which an engine process other than the faulted
 * one was ready and not yet exited: a takeover needs a live engine to make it (I5,
 * docs/reliability.md). When every other engine is itself a replacement still starting (a
 * random kill right after another, on a machine whose CPU is taken by other work), the
 * bound runs from the moment the first of them is ready. `fault.at` when none ever was.
 */
export function survivorSince(fault: Fault, fleet: readonly EngineProc[]): number {
  let first = Infinity;
  for (const p of fleet) {
    if (p.pid === fault.pid || p.readyAt === null) continue;
    const from = Math.max(fault.at, p.readyAt);
    if (p.exit !== null && p.exit.at <= from) continue;
    first = Math.min(first, from);
  }
  return Number.isFinite(first) ? first : fault.at;
}

/**
 * For each fault: every atom requeued away from one of that process's engine ids at or
 * after the fault, with the time to its requeue and to its next claim, counted from the
 * fault or, given the `fleet`, from {@link survivorSince}. Uses DB event timestamps; the
 * database runs on this host, so its clock is the harness's clock.
 */
export function takeoverSamples(
  faults: readonly Fault[],
  events: readonly EventRow[],
  idsByPid: Map<string, number>,
  slackMs = 50,
  fleet?: readonly EngineProc[],
): TakeoverSample[] {
  const out: TakeoverSample[] = [];
  const byAtom = new Map<string, EventRow[]>();
  for (const e of events) {
    if (e.atom === null) continue;
    const k = `${e.runId}/${e.atom}`;
    let list = byAtom.get(k);
    if (!list) byAtom.set(k, (list = []));
    list.push(e);
  }
  const sorted = [...faults].sort((a, b) => a.at - b.at);
  for (const list of byAtom.values()) {
    list.sort((a, b) => a.id - b.id);
    list.forEach((e, i) => {
      if (e.kind !== 'atom.requeued' || e.engineId === null) return;
      const pid = idsByPid.get(e.engineId);
      if (pid === undefined) return;
      const at = e.at.getTime();
      // the latest fault of that process at or before the requeue
      const fault = sorted.filter((f) => f.pid === pid && f.at <= at + slackMs).at(-1);
      if (!fault) return;
      const next = list.slice(i + 1).find((x) => x.kind === 'atom.claimed');
      const since = fleet ? survivorSince(fault, fleet) : fault.at;
      out.push({
        fault,
        runId: e.runId,
        atom: e.atom!,
        requeueMs: at - since,
        claimMs: next ? next.at.getTime() - since : null,
        noSurvivorMs: since - fault.at,
      });
    });
  }
  return out;
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function describeLatency(xs: readonly number[]): string {
  if (xs.length === 0) return 'no samples';
  return `n=${xs.length} p50=${Math.round(percentile(xs, 50))} ms p95=${Math.round(percentile(xs, 95))} ms max=${Math.round(Math.max(...xs))} ms`;
}

// ------------------------------------------------------------------ server-side connection kills

/** Local TCP port → pid of every socket connected to `port` (from `ss -tnpH`). */
export function clientPortsToPids(serverPort: number): Map<number, number> {
  const out = new Map<number, number>();
  let text = '';
  try {
    text = execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${serverPort} )`], { encoding: 'utf8' });
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    // ESTAB 0 0 127.0.0.1:41234 127.0.0.1:3306 users:(("node",pid=123,fd=20))
    const m = /\s(\S+):(\d+)\s+\S+:\d+\s+users:\(\("[^"]*",pid=(\d+)/.exec(line);
    if (m) out.set(Number(m[2]), Number(m[3]));
  }
  return out;
}
