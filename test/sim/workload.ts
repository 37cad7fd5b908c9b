/**
 * The simulation's workload: flows of mixed shapes whose tasks take virtual time on their
 * engine's clock, record every side effect in a {@link SideEffectSink}, and fail by a
 * deterministic plan carried in the run's arguments. Because a task's result depends only on
 * its inputs, the outcome of every run is predictable ({@link expectedOutcome}) whatever the
 * faults did: the checker compares.
 *
 * Shapes: `lin` (linear, a task retry, reverts), `fan` (fan-out with `unordered`, then a
 * join), `scoped` (a nested sub-flow under a `times(3)` retry controller), `sleepy` (a durable
 * timer: the task parks and is executed again), `nest` (a child run the parent waits for).
 */
import { canonicalJson } from '../../src/core/canonical-json.js';
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { FlowRegistry, linear, providedValue, task, times, unordered } from '../../src/flow/index.js';
import type { CompiledFlow, FlowDefinition, TaskContext } from '../../src/flow/index.js';
import type { Scheduler, SimClock } from './sim-clock.js';

// ------------------------------------------------------------------------------ hashing

/** FNV-1a, 32 bits. */
export function h32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform number in [0, 1) from stable parts. */
export function u01(...parts: (string | number)[]): number {
  return h32(parts.join('|')) / 4294967296;
}

// ------------------------------------------------------------------------------ sink

export interface SinkRecord {
  seq: number;
  /** virtual time */
  t: number;
  /** the process (the checker maps engine ids to processes) */
  proc: string;
  /** the engine id at the time (a process re-registers under a new id after fencing itself) */
  engine: string;
  runId: string;
  atom: string;
  kind: 'effect' | 'revert';
  idempotencyKey: string;
  fencingToken: string;
  epoch: number;
  attempt: number;
  execution: number;
}

/** Records every task side effect (docs/reliability.md, "Invariants", mode A: accepts duplicates). */
export class SideEffectSink {
  readonly records: SinkRecord[] = [];
  constructor(private readonly sched: Scheduler) {}

  record(proc: string, engine: string, ctx: TaskContext, kind: SinkRecord['kind']): void {
    // fencingToken = <runId>/<atomName>/<epoch>.<attempt>
    const tail = ctx.fencingToken.slice(ctx.fencingToken.lastIndexOf('/') + 1);
    const epoch = Number(tail.slice(0, tail.indexOf('.')));
    this.records.push({
      seq: this.records.length + 1,
      t: this.sched.now,
      proc,
      engine,
      runId: ctx.runId,
      atom: ctx.atomName,
      kind,
      idempotencyKey: ctx.idempotencyKey,
      fencingToken: ctx.fencingToken,
      epoch,
      attempt: ctx.attempt,
      execution: ctx.execution,
    });
  }
}

// ------------------------------------------------------------------------------ run plans

/** The `cfg` argument every task requires: the run's failure plan. */
export interface RunPlan extends JsonObject {
  /** the run's own seed (durations, values) */
  s: number;
  /** a task that always fails (non-retryable): the run must end REVERTED */
  doom: string | null;
  /** tasks that fail on their first attempt (then succeed) */
  flaky: string[];
  /** a task that runs longer than the lease */
  slow: string | null;
}

export const FLOW_NAMES = ['lin', 'fan', 'scoped', 'sleepy', 'nest'] as const;
export type FlowName = (typeof FLOW_NAMES)[number];

/** Tasks that may be flaky without failing the run: they have a task retry or sit in a retry scope. */
const FLAKY_OK: Record<FlowName, string[]> = {
  lin: ['a2'],
  fan: ['p2'],
  scoped: ['y', 'z'],
  sleepy: [],
  nest: [],
};
const TASKS: Record<FlowName, string[]> = {
  lin: ['a1', 'a2', 'a3', 'a4', 'a5'],
  fan: ['s', 'p1', 'p2', 'p3', 'p4', 'j'],
  scoped: ['x', 'y', 'z', 'w'],
  sleepy: ['q', 'r'],
  nest: ['n1', 'n2'],
};

/** A run plan drawn from `u` (uniform numbers). */
export function makePlan(flow: FlowName, s: number, u: () => number): RunPlan {
  const tasks = TASKS[flow];
  const doom = u() < 0.2 ? tasks[Math.floor(u() * tasks.length)]! : null;
  const flaky = FLAKY_OK[flow].filter(() => u() < 0.5);
  const slow = u() < 0.3 ? tasks[Math.floor(u() * tasks.length)]! : null;
  return { s, doom, flaky, slow };
}

function leafPlan(cfg: RunPlan): RunPlan {
  return { s: cfg.s + 1, doom: null, flaky: [], slow: null };
}

// ------------------------------------------------------------------------------ task values

/** A task's result: a function of its name, its inputs (except `cfg`) and the run seed only. */
export function taskValue(name: string, inputs: Record<string, JsonValue>, cfg: RunPlan): JsonValue {
  const rest: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(inputs)) if (k !== 'cfg') rest[k] = v;
  return `${name}:${h32(`${cfg.s}|${canonicalJson(rest)}`).toString(36)}`;
}

// ------------------------------------------------------------------------------ flows

export interface TaskEnv {
  /** the process name */
  proc: string;
  /** the engine's current id */
  engineId: () => string;
  clock: SimClock;
  sink: SideEffectSink;
}

interface TaskSpec {
  requires: string[];
  provides: string;
  retry?: boolean;
  revert?: boolean;
  /** a durable ctx.sleep between the side effect and the result */
  durableSleep?: boolean;
  /** runs the `leaf` flow as a child run and returns its result */
  child?: boolean;
}

function simTask(env: TaskEnv, name: string, spec: TaskSpec) {
  const durations = (cfg: RunPlan, ctx: TaskContext, what: string): number => {
    const base =
      cfg.slow === name
        ? 2500 + u01(cfg.s, name, ctx.attempt, ctx.execution, what) * 2500
        : 20 + u01(cfg.s, name, ctx.attempt, ctx.execution, what) * 400;
    return Math.round(base);
  };
  return task({
    name,
    requires: spec.requires,
    provides: spec.provides,
    ...(spec.retry ? { retry: { attempts: 3, backoffMs: 100, factor: 2, maxBackoffMs: 1000, jitter: 0.2 } } : {}),
    execute: async (inputs, ctx) => {
      const cfg = inputs.cfg as RunPlan;
      await env.clock.sleep(durations(cfg, ctx, 'before'), ctx.signal);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      env.sink.record(env.proc, env.engineId(), ctx, 'effect');
      if (spec.durableSleep) await ctx.sleep(1000 + Math.round(u01(cfg.s, name, 'sleep') * 8000));
      let child: JsonValue = null;
      if (spec.child) child = await ctx.runChild('leaf', { cfg: leafPlan(cfg) });
      await env.clock.sleep(durations(cfg, ctx, 'after'), ctx.signal);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (cfg.doom === name) throw Object.assign(new Error(`${name} is doomed`), { retryable: false });
      if (cfg.flaky.includes(name) && ctx.attempt === 1)
        throw Object.assign(new Error(`${name} is flaky`), { retryable: spec.retry === true });
      return spec.child ? taskValue(name, { ...inputs, child }, cfg) : taskValue(name, inputs, cfg);
    },
    ...(spec.revert
      ? {
          revert: async (inputs: Record<string, JsonValue>, ctx: TaskContext) => {
            const cfg = inputs.cfg as RunPlan;
            await env.clock.sleep(durations(cfg, ctx, 'revert'), ctx.signal);
            if (ctx.signal.aborted) throw ctx.signal.reason;
            env.sink.record(env.proc, env.engineId(), ctx, 'revert');
          },
        }
      : {}),
  });
}

export function flowDefinitions(env: TaskEnv): FlowDefinition[] {
  const t = (name: string, spec: TaskSpec) => simTask(env, name, spec);
  return [
    linear('lin', [
      t('a1', { requires: ['cfg'], provides: 'v1' }),
      t('a2', { requires: ['cfg', 'v1'], provides: 'v2', retry: true }),
      t('a3', { requires: ['cfg', 'v2'], provides: 'v3', revert: true }),
      t('a4', { requires: ['cfg', 'v3'], provides: 'v4' }),
      t('a5', { requires: ['cfg', 'v4'], provides: 'v5', revert: true }),
    ]),
    linear('fan', [
      t('s', { requires: ['cfg'], provides: 'sv', revert: true }),
      unordered('par', [
        t('p1', { requires: ['cfg', 'sv'], provides: 'pv1' }),
        t('p2', { requires: ['cfg', 'sv'], provides: 'pv2', retry: true }),
        t('p3', { requires: ['cfg', 'sv'], provides: 'pv3', revert: true }),
        t('p4', { requires: ['cfg', 'sv'], provides: 'pv4' }),
      ]),
      t('j', { requires: ['cfg', 'pv1', 'pv2', 'pv3', 'pv4'], provides: 'jv' }),
    ]),
    linear('scoped', [
      t('x', { requires: ['cfg'], provides: 'xv', revert: true }),
      linear(
        'inner',
        [t('y', { requires: ['cfg', 'xv'], provides: 'yv', revert: true }), t('z', { requires: ['cfg', 'yv'], provides: 'zv' })],
        { retry: times(3) },
      ),
      t('w', { requires: ['cfg', 'zv'], provides: 'wv' }),
    ]),
    linear('sleepy', [
      t('q', { requires: ['cfg'], provides: 'qv', durableSleep: true, revert: true }),
      t('r', { requires: ['cfg', 'qv'], provides: 'rv' }),
    ]),
    linear('leaf', [t('l1', { requires: ['cfg'], provides: 'lv1' }), t('l2', { requires: ['cfg', 'lv1'], provides: 'lv2' })]),
    linear('nest', [
      t('n1', { requires: ['cfg'], provides: 'nv1', child: true }),
      t('n2', { requires: ['cfg', 'nv1'], provides: 'nv2', revert: true }),
    ]),
  ];
}

export function buildRegistry(env: TaskEnv): FlowRegistry {
  const reg = new FlowRegistry();
  for (const f of flowDefinitions(env)) reg.register(f);
  return reg;
}

// ------------------------------------------------------------------------------ the model

export interface Expected {
  status: 'SUCCESS' | 'REVERTED';
  /** the run result when SUCCESS */
  result: JsonValue | null;
}

/**
 * What a run must end as, computed from the compiled graph and the plan alone: a doomed task
 * reverts the run (scope retries cannot save it); otherwise every task's value follows from
 * its inputs, whatever attempts and takeovers happened.
 */
export function expectedOutcome(flows: ReadonlyMap<string, CompiledFlow>, flow: string, cfg: RunPlan): Expected {
  if (cfg.doom !== null) return { status: 'REVERTED', result: null };
  const compiled = flows.get(flow)!;
  const g = compiled.graph;
  const results = new Map<number, JsonValue>();
  for (const a of g.atoms) {
    if (a.kind !== 'task') continue;
    const inputs: Record<string, JsonValue> = {};
    for (const [name, src] of Object.entries(a.inputs)) {
      if (src.from === 'arg') inputs[name] = name === 'cfg' ? cfg : null;
      else if (src.from === 'value') inputs[name] = src.value;
      else inputs[name] = providedValue(results.get(src.atom), g.atoms[src.atom]!, src.key) ?? null;
    }
    if (a.name === 'n1') inputs.child = expectedOutcome(flows, 'leaf', leafPlan(cfg)).result;
    results.set(a.index, taskValue(a.name, inputs, cfg));
  }
  const out: Record<string, JsonValue> = {};
  for (const [name, src] of Object.entries(g.outputs)) {
    if (src.from === 'atom') out[name] = providedValue(results.get(src.atom), g.atoms[src.atom]!, src.key) ?? null;
  }
  return { status: 'SUCCESS', result: out };
}
