/**
 * SimWorld(seed): the real Engine (src/engine/engine.ts), unchanged, against the SimStore,
 * on virtual time, with a seeded workload and a seeded nemesis (docs/reliability.md, "The simulation").
 *
 * One world = one seed:
 * 1. a SimStore (DB clock = virtual time; store profile drawn per seed: with or without
 *    session locks, fast path and NOTIFY) and a client session that submits N runs of mixed
 *    shapes over the first `submitWindowMs` (the submission log = acknowledged starts) and
 *    cancels about 10 % of them while they run;
 * 2. `engines` real Engines, each its own simulated process (SimProc + SimClock + store
 *    session), with a seeded Rng, deterministic ids, an optional wall-clock skew, and a short
 *    lease (3000 ms), heartbeat (1000 ms) and poll (200 ms);
 * 3. during `faultWindowMs` a nemesis (see {@link ALL_FAULTS}): crash an engine (its timers
 *    and pending calls are discarded, its open transaction rolls back; a NEW engine with a new
 *    id starts later), pause an engine for 2–5 × lease (the zombie case; its open transaction
 *    is rolled back by the idle-in-transaction timeout), crash or pause an engine at one of its
 *    fault points, restart the store, bursts of rejected and ambiguous statements; plus
 *    background faults (delays, rejects, ambiguous commits, serialization retries);
 * 4. heal: resume every paused engine, stop every fault, and run to quiescence (every run
 *    terminal, nothing held or claimable) or `maxVirtualMs`; then the checker.
 *
 * A supervisor stands in for a process manager: it replaces an engine whose `start()` failed
 * (the Engine object cannot be started again) and keeps `engines` engines alive after
 * healing. With `supervisor: true` it also replaces, after healing, an engine whose row the
 * store marked dead (off by default: the engine re-registers under a new id by itself).
 */
import { createHash } from 'node:crypto';
import { seededRng, type Rng } from '../../src/core/clock.js';
import { Engine } from '../../src/engine/engine.js';
import { TERMINAL_RUN_STATUSES } from '../../src/store/states.js';
import type { CompiledFlow } from '../../src/flow/index.js';
import { check, type CheckResult, type Submission } from './checker.js';
import { Scheduler, SimClock, SimProc } from './sim-clock.js';
import { NO_FAULTS, SimStore, type SimConnection, type SimFaults, type SimMutants } from './sim-store.js';
import { FLOW_NAMES, SideEffectSink, buildRegistry, expectedOutcome, makePlan, type FlowName, type RunPlan } from './workload.js';

export type FaultKind = 'crash' | 'pause' | 'restart' | 'reject' | 'ambiguous' | 'delay' | 'txRetry' | 'skew' | 'point';
/**
 * crash / pause: an engine process at a random moment; point: crash or pause an engine the
 * next time it reaches one of the engine's `faultPoint` sites (docs/reliability.md C1 targeted kills,
 * C2 variants: after-claim-commit, before-execute, after-side-effect-before-result,
 * inside-fenced-tx); restart: the store drops every session; reject / ambiguous: bursts of
 * refused statements / of applied-then-failed statements; delay, txRetry: background
 * latency and serialization failures; skew: engine wall clocks off by up to an hour.
 */
export const ALL_FAULTS: readonly FaultKind[] = ['crash', 'pause', 'restart', 'reject', 'ambiguous', 'delay', 'txRetry', 'skew', 'point'];
const FAULT_POINTS = ['after-claim-commit', 'before-execute', 'after-side-effect-before-result', 'inside-fenced-tx'] as const;

/** A scripted fault, for reproductions (the random nemesis is driven by `faults`). */
export type ScriptedFault =
  | { at: number; kind: 'crash'; engine: number; restartAfterMs?: number }
  | { at: number; kind: 'pause'; engine: number; forMs: number }
  | { at: number; kind: 'restart'; downMs: number }
  /** store faults for a while (only the statements in `faults.ops` when set) */
  | { at: number; kind: 'faults'; faults: Partial<SimFaults>; forMs: number };

export interface WorldOptions {
  seed: number;
  /** workflows submitted (default 40) */
  runs?: number;
  engines?: number;
  concurrency?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  pollMs?: number;
  submitWindowMs?: number;
  /** nemesis active from 0 to this virtual time (default 180 s) */
  faultWindowMs?: number;
  /** hard cap on virtual time (default 30 min) */
  maxVirtualMs?: number;
  /** enabled fault kinds (default all) */
  faults?: readonly FaultKind[];
  mutants?: SimMutants;
  /** after healing, also replace engines whose row the store marked dead (default false: the engine re-registers by itself) */
  supervisor?: boolean;
  /** print a line per nemesis action */
  trace?: boolean;
  /** a client cancels about 10 % of the runs while they run (default true) */
  cancels?: boolean;
  /** replaces the random workload: runs submitted at fixed times with fixed plans */
  workload?: readonly { at: number; flow: FlowName; plan: RunPlan }[];
  /** scripted faults, on top of the random ones of `faults` (pass `faults: []` for a script only) */
  script?: readonly ScriptedFault[];
  /** the store profile (default: drawn from the seed) */
  profile?: { sessionLocks: boolean; fastPath: boolean; listenNotify: boolean };
}

export interface EngineSlot {
  id: string;
  engine: Engine;
  proc: SimProc;
  conn: SimConnection;
  startFailed: boolean;
  errors: number;
  replaced: boolean;
  /** a one-shot fault armed at a faultPoint site */
  armed: { point: string; action: 'crash' | 'pause'; ms: number } | null;
}

export interface WorldResult {
  seed: number;
  check: CheckResult;
  /** sha256 of the committed history and the sink: equal for equal seeds */
  hash: string;
  virtualMs: number;
  quiescent: boolean;
  nemesis: string[];
  stats: {
    runs: number;
    engines: number;
    fencedWrites: number;
    engineErrors: number;
    supervisorRestarts: number;
    timersFired: number;
    store: SimStore['counters'];
  };
}

/** Mixes a seed and a stream number into a 32-bit seed. */
function mix(seed: number, stream: number): number {
  let h = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)]!;
const between = (rng: Rng, lo: number, hi: number): number => Math.round(lo + rng.next() * (hi - lo));

export class SimWorld {
  readonly o: Required<Omit<WorldOptions, 'mutants' | 'trace' | 'workload' | 'script' | 'profile'>> &
    Pick<WorldOptions, 'workload' | 'script' | 'profile'> & { mutants: SimMutants; trace: boolean };
  readonly sched = new Scheduler();
  readonly store: SimStore;
  readonly sink: SideEffectSink;
  readonly slots: EngineSlot[] = [];
  readonly submitted: Submission[] = [];
  readonly nemesisLog: string[] = [];
  private readonly nemRng: Rng;
  private readonly wlRng: Rng;
  private readonly client: SimConnection;
  private readonly models: Map<string, CompiledFlow>;
  private readonly canceller: Engine;
  private readonly baseFaults: SimFaults;
  private engineCount = 0;
  private supervisorRestarts = 0;
  private healed = false;

  constructor(options: WorldOptions) {
    this.o = {
      runs: 40,
      engines: 3,
      concurrency: 4,
      leaseMs: 3000,
      heartbeatMs: 1000,
      pollMs: 200,
      submitWindowMs: 150_000,
      faultWindowMs: 180_000,
      maxVirtualMs: 30 * 60_000,
      faults: ALL_FAULTS,
      supervisor: false,
      cancels: true,
      ...options,
      mutants: options.mutants ?? {},
      trace: options.trace ?? false,
    };
    const seed = this.o.seed;
    this.nemRng = seededRng(mix(seed, 1));
    this.wlRng = seededRng(mix(seed, 3));
    const has = (k: FaultKind): boolean => this.o.faults.includes(k);
    this.baseFaults = {
      rejectP: has('reject') ? 0.005 : 0,
      delayP: has('delay') ? 0.25 : 0,
      delayMaxMs: 40,
      ambiguousP: has('ambiguous') ? 0.004 : 0,
      txRetryP: has('txRetry') ? 0.02 : 0,
    };
    this.store = new SimStore({
      sched: this.sched,
      rng: seededRng(mix(seed, 2)),
      faults: this.baseFaults,
      mutants: this.o.mutants,
      idleTxTimeoutMs: this.o.leaseMs / 2,
      // dialect profiles: PostgreSQL-like (session locks, fast path, NOTIFY) or lease-only, mixed per seed
      ...this.drawProfile(),
    });
    this.client = this.store.connect('client', null, { faulty: false });
    this.sink = new SideEffectSink(this.sched);
    // the model's copy of the flows (tasks never run from it)
    const modelProc = new SimProc('model', this.sched);
    const modelClock = new SimClock(this.sched, modelProc);
    const reg = buildRegistry({ proc: 'model', engineId: () => 'model', clock: modelClock, sink: this.sink });
    this.models = new Map(reg.list().map((f) => [f.name, f]));
    // the client's Engine object is never started: it only cancels runs (through the client session)
    this.canceller = new Engine({
      store: this.client,
      watchPeers: false,
      flows: reg,
      engineId: 'client',
      clock: modelClock,
      rng: seededRng(mix(seed, 4)),
      ids: () => 'client-id',
      host: 'sim',
      pid: 1,
      version: 'sim',
    });
  }

  private drawProfile(): { sessionLocks: boolean; fastPath: boolean; listenNotify: boolean; visibleClaims: boolean } {
    const drawn = { sessionLocks: this.nemRng.next() < 0.5, fastPath: this.nemRng.next() < 0.5, listenNotify: this.nemRng.next() < 0.5 };
    const profile = this.o.profile ?? drawn;
    // MySQL/MariaDB-like (completion procedures, no NOTIFY): claims seen before their reply;
    // derived, not drawn, so that every seed keeps the draws it had
    return { ...profile, visibleClaims: profile.fastPath && !profile.listenNotify };
  }

  private log(msg: string): void {
    const line = `t=${this.sched.now} ${msg}`;
    this.nemesisLog.push(line);
    if (this.o.trace) console.log(line);
  }

  // ---------------------------------------------------------------- engines

  private startEngine(): EngineSlot {
    const n = ++this.engineCount;
    const id = `e${n}`;
    const proc = new SimProc(id, this.sched);
    let skew = { offsetMs: 0, rate: 1 };
    if (this.o.faults.includes('skew') && this.nemRng.next() < 0.4) {
      skew = { offsetMs: pick(this.nemRng, [-3_600_000, -60_000, 60_000, 3_600_000]), rate: pick(this.nemRng, [0.9, 1, 1.1]) };
    }
    const clock = new SimClock(this.sched, proc, skew);
    const conn = this.store.connect(id, proc, { clockOffsetMs: skew.offsetMs });
    let idn = 0;
    const current = { engine: null as Engine | null, slot: null as EngineSlot | null };
    const engine = new Engine({
      store: conn,
      // the peer watch is not modelled (SimConnection.watchEngine): reapers find crashes
      watchPeers: false,
      flows: buildRegistry({ proc: id, engineId: () => current.engine?.id ?? id, clock, sink: this.sink }),
      concurrency: this.o.concurrency,
      pollMs: this.o.pollMs,
      leaseMs: this.o.leaseMs,
      heartbeatMs: this.o.heartbeatMs,
      engineId: id,
      clock,
      rng: seededRng(mix(this.o.seed, 100 + n)),
      // child run ids and the ids the engine registers under after fencing itself
      ids: () => `${id}-${++idn}`,
      host: 'sim',
      pid: 1000 + n,
      version: 'sim',
      faultPoint: (name) => {
        const slot = current.slot;
        if (slot?.armed && slot.armed.point === name && slot.proc.state === 'running') this.fire(slot);
      },
    });
    current.engine = engine;
    const slot: EngineSlot = { id, engine, proc, conn, startFailed: false, errors: 0, replaced: false, armed: null };
    current.slot = slot;
    engine.on('error', () => void (slot.errors += 1));
    this.slots.push(slot);
    if (skew.offsetMs !== 0 || skew.rate !== 1) this.log(`${id} starts with clock skew ${skew.offsetMs} ms, rate ${skew.rate}`);
    engine.start().catch(() => {
      slot.startFailed = true;
      this.log(`${id} failed to start`);
      // a process manager restarts a process whose start failed
      this.sched.after(1000, () => this.replace(slot, 'start failed'));
    });
    return slot;
  }

  /** Kills a slot's process (if alive) and starts a fresh engine in its place. */
  private replace(slot: EngineSlot, why: string): void {
    if (slot.replaced) return;
    slot.replaced = true;
    if (slot.proc.state !== 'crashed') {
      slot.proc.crash();
      this.store.crashSession(slot.conn.session);
    }
    const fresh = this.startEngine();
    this.log(`supervisor: ${slot.id} replaced by ${fresh.id} (${why})`);
  }

  private liveSlots(): EngineSlot[] {
    return this.slots.filter((s) => !s.replaced && s.proc.state !== 'crashed');
  }

  // ---------------------------------------------------------------- workload

  private scheduleWorkload(): void {
    if (this.o.workload) {
      this.o.workload.forEach((w, i) => this.submit(w.at, `r${String(i + 1).padStart(3, '0')}-${w.flow}`, w.flow, w.plan));
      return;
    }
    const times = Array.from({ length: this.o.runs }, () => between(this.wlRng, 0, this.o.submitWindowMs)).sort((a, b) => a - b);
    times.forEach((t, i) => {
      const flow: FlowName = FLOW_NAMES[Math.floor(this.wlRng.next() * FLOW_NAMES.length)]!;
      const cfg = makePlan(flow, Math.floor(this.wlRng.next() * 1e9), () => this.wlRng.next());
      const runId = `r${String(i + 1).padStart(3, '0')}-${flow}`;
      this.submit(t, runId, flow, cfg);
      // some runs are cancelled by a client while they run (races with their completions)
      if (this.o.cancels && this.wlRng.next() < 0.1) this.cancelAt(t + between(this.wlRng, 100, 8000), runId);
    });
  }

  private cancelAt(at: number, runId: string): void {
    this.sched.at(at, () => {
      const sub = this.submitted.find((x) => x.runId === runId);
      if (!sub) return;
      sub.cancelRequested = true;
      this.log(`client cancels ${runId}`);
      void this.canceller.cancel(runId, 'cancelled by the simulation').catch(() => undefined);
    });
  }

  private submit(at: number, runId: string, flow: FlowName, cfg: RunPlan): void {
    const compiled = this.models.get(flow)!;
    this.sched.at(at, () => {
      void this.client
        .startRun({ id: runId, flow, version: compiled.version, key: null, args: { cfg }, graph: compiled.graph })
        .then(() => this.submitted.push({ runId, flow, expected: expectedOutcome(this.models, flow, cfg) }));
    });
  }

  private scheduleScript(): void {
    for (const f of this.o.script ?? []) {
      this.sched.at(f.at, () => {
        const slot = (n: number): EngineSlot | undefined => this.slots[n];
        switch (f.kind) {
          case 'crash': {
            const s = slot(f.engine);
            if (!s || s.proc.state === 'crashed') return;
            s.proc.crash();
            this.store.crashSession(s.conn.session);
            s.replaced = true;
            this.log(`script: crash ${s.id}`);
            if (f.restartAfterMs !== undefined)
              this.sched.after(f.restartAfterMs, () => this.log(`script: ${this.startEngine().id} replaces ${s.id}`));
            return;
          }
          case 'pause': {
            const s = slot(f.engine);
            if (!s || s.proc.state !== 'running') return;
            s.proc.pause();
            this.store.sessionPaused(s.conn.session);
            this.log(`script: pause ${s.id} for ${f.forMs} ms`);
            this.sched.after(f.forMs, () => s.proc.resume());
            return;
          }
          case 'restart':
            this.store.restart(f.downMs);
            this.log(`script: store restart, down ${f.downMs} ms`);
            return;
          case 'faults':
            this.store.faults = { ...NO_FAULTS, ...f.faults };
            this.log(`script: store faults ${JSON.stringify(f.faults)} for ${f.forMs} ms`);
            this.sched.after(f.forMs, () => (this.store.faults = this.healed ? NO_FAULTS : this.baseFaults));
            return;
        }
      });
    }
  }

  // ---------------------------------------------------------------- nemesis

  private scheduleNemesis(): void {
    const kinds = (['crash', 'pause', 'restart', 'reject', 'ambiguous', 'point'] as const).filter((k) => this.o.faults.includes(k));
    if (kinds.length === 0) return;
    let t = between(this.nemRng, 1000, 5000);
    while (t < this.o.faultWindowMs) {
      const kind = pick(this.nemRng, kinds);
      const a = this.nemRng.next();
      const b = this.nemRng.next();
      this.sched.at(t, () => this.act(kind, a, b));
      t += between(this.nemRng, 2000, 9000);
    }
  }

  private act(kind: 'crash' | 'pause' | 'restart' | 'reject' | 'ambiguous' | 'point', a: number, b: number): void {
    if (this.healed) return;
    const L = this.o.leaseMs;
    switch (kind) {
      case 'point': {
        const live = this.liveSlots().filter((s) => s.proc.state === 'running' && s.armed === null);
        if (live.length === 0) return;
        const s = live[Math.floor(a * live.length)]!;
        const point = FAULT_POINTS[Math.floor(b * FAULT_POINTS.length)]!;
        const crash = (a * 7919) % 1 < 0.5;
        s.armed = {
          point,
          action: crash ? 'crash' : 'pause',
          ms: crash ? Math.round(300 + b * 2700) : Math.round((2 + ((b * 7919) % 1) * 3) * L),
        };
        this.log(`arm ${s.id}: ${s.armed.action} at ${point}`);
        return;
      }
      case 'crash': {
        const live = this.liveSlots();
        if (live.length === 0) return;
        const s = live[Math.floor(a * live.length)]!;
        s.proc.crash();
        this.store.crashSession(s.conn.session);
        s.replaced = true;
        const restartIn = Math.round(300 + b * 2700);
        this.log(`crash ${s.id} (restart in ${restartIn} ms)`);
        this.sched.after(restartIn, () => {
          const fresh = this.startEngine();
          this.log(`restart: ${fresh.id} replaces ${s.id}`);
        });
        return;
      }
      case 'pause': {
        const live = this.liveSlots().filter((s) => s.proc.state === 'running');
        if (live.length === 0) return;
        const s = live[Math.floor(a * live.length)]!;
        const d = Math.round((2 + b * 3) * L);
        s.proc.pause();
        this.store.sessionPaused(s.conn.session);
        this.log(`pause ${s.id} for ${d} ms`);
        this.sched.after(d, () => {
          if (s.proc.state === 'paused') {
            s.proc.resume();
            this.log(`resume ${s.id}`);
          }
        });
        return;
      }
      case 'restart': {
        const d = Math.round(300 + a * 3700);
        this.store.restart(d);
        this.log(`store restart, down ${d} ms`);
        return;
      }
      case 'reject':
      case 'ambiguous': {
        const d = Math.round(500 + a * 2500);
        const p = 0.1 + b * 0.2;
        this.store.faults = kind === 'reject' ? { ...this.baseFaults, rejectP: p } : { ...this.baseFaults, ambiguousP: p };
        this.log(`${kind} burst p=${p.toFixed(2)} for ${d} ms`);
        this.sched.after(d, () => {
          if (!this.healed) this.store.faults = this.baseFaults;
        });
        return;
      }
    }
  }

  /** An armed fault point was reached: crash or pause the engine right there (synchronously, inside its code). */
  private fire(slot: EngineSlot): void {
    const a = slot.armed!;
    slot.armed = null;
    if (this.healed) return;
    if (a.action === 'crash') {
      slot.proc.crash();
      this.store.crashSession(slot.conn.session);
      slot.replaced = true;
      this.log(`crash ${slot.id} at ${a.point} (restart in ${a.ms} ms)`);
      this.sched.after(a.ms, () => this.log(`restart: ${this.startEngine().id} replaces ${slot.id}`));
    } else {
      slot.proc.pause();
      this.store.sessionPaused(slot.conn.session);
      this.log(`pause ${slot.id} at ${a.point} for ${a.ms} ms`);
      this.sched.after(a.ms, () => {
        if (slot.proc.state === 'paused') {
          slot.proc.resume();
          this.log(`resume ${slot.id}`);
        }
      });
    }
  }

  private heal(): void {
    this.healed = true;
    this.store.faults = NO_FAULTS;
    for (const s of this.slots) if (s.proc.state === 'paused') s.proc.resume();
    this.log('heal: faults off, paused engines resumed');
    while (this.liveSlots().length < this.o.engines) this.startEngine();
    if (this.o.supervisor) this.superviseLoop();
  }

  /** After healing: an engine the store marked dead never claims again; replace it (a process manager's health check). */
  private superviseLoop(): void {
    const engines = new Map(this.store.listEngines().map((e) => [e.id, e]));
    for (const s of this.liveSlots()) {
      const row = engines.get(s.engine.id);
      if (
        s.proc.state === 'running' &&
        !s.startFailed &&
        row !== undefined &&
        row.state === 'dead' &&
        this.sched.now - row.heartbeatAt.getTime() > 0
      ) {
        this.supervisorRestarts += 1;
        this.replace(s, 'its engine row is dead and it no longer claims');
      }
    }
    this.sched.after(this.o.leaseMs, () => this.superviseLoop());
  }

  // ---------------------------------------------------------------- running

  private quiescent(): boolean {
    if (this.submitted.length < (this.o.workload?.length ?? this.o.runs)) return false;
    const snap = this.store.listRuns({ limit: 1_000_000 });
    if (snap.some((r) => !TERMINAL_RUN_STATUSES.includes(r.status))) return false;
    return this.noAtomsInFlight();
  }

  private noAtomsInFlight(): boolean {
    for (const r of this.store.listRuns({ limit: 1_000_000 })) {
      for (const a of this.store.getAtoms(r.id)) {
        if (['RUNNING', 'REVERTING', 'READY', 'REVERT_READY'].includes(a.state) || a.claimedBy !== null) return false;
      }
    }
    return true;
  }

  async run(): Promise<WorldResult> {
    for (let i = 0; i < this.o.engines; i++) this.startEngine();
    this.scheduleWorkload();
    this.scheduleNemesis();
    this.scheduleScript();
    this.sched.at(this.o.faultWindowMs, () => this.heal());
    await this.sched.runUntil(this.o.faultWindowMs);
    // to quiescence, checking every virtual second
    let quiescent = false;
    while (this.sched.now < this.o.maxVirtualMs) {
      if (this.quiescent()) {
        quiescent = true;
        break;
      }
      await this.sched.runUntil(Math.min(this.o.maxVirtualMs, this.sched.now + 1000));
    }
    // let late writes (zombies, flushes) land, then judge
    await this.sched.runUntil(this.sched.now + 2 * this.o.leaseMs);
    const snap = this.store.snapshot();
    const result = check({
      history: this.store.history,
      runs: snap.runs,
      atoms: snap.atoms,
      events: snap.events,
      sink: this.sink.records,
      submitted: this.submitted,
      notes: this.store.notes,
      sessionLocks: this.store.sessionLocks,
      openTransactions: this.store.openTransactions(),
    });
    const hash = createHash('sha256').update(JSON.stringify(this.store.history)).update(JSON.stringify(this.sink.records)).digest('hex');
    return {
      seed: this.o.seed,
      check: result,
      hash,
      virtualMs: this.sched.now,
      quiescent,
      nemesis: this.nemesisLog,
      stats: {
        runs: snap.runs.length,
        engines: this.slots.length,
        fencedWrites: this.slots.reduce((n, s) => n + s.engine.stats.fencedWrites, 0),
        engineErrors: this.slots.reduce((n, s) => n + s.errors, 0),
        supervisorRestarts: this.supervisorRestarts,
        timersFired: this.sched.fired,
        store: { ...this.store.counters },
      },
    };
  }
}

export async function runSeed(seed: number, options: Omit<WorldOptions, 'seed'> = {}): Promise<WorldResult> {
  return new SimWorld({ ...options, seed }).run();
}
