/**
 * What an engine remembers about the runs it works on, and nothing it could not read again:
 * each run's immutable graph with the code that executes it (its registered flow, when this
 * engine has it), and the results of atoms this engine completed (inputs of their
 * successors, which it often executes next). A run is forgotten when it ends; anything
 * missing is read from the store, so a cold engine behaves like a warm one, only slower.
 */
import type { JsonValue } from '../core/json.js';
import { NotFoundError } from '../errors.js';
import type { InputSource } from '../flow/graph.js';
import type { CompiledFlow } from '../flow/types.js';
import { graphDigest } from '../store/graphs.js';
import type { RunQueries, RunRow } from '../store/store.js';
import { resolveInput, type RunContext } from './transitions.js';

/**
 * A run as the engine's parts see it. `finalAtom`: the graph's only sink, or null; every
 * other atom is its ancestor, so without deciders its success ends the run.
 */
export type EngineRunContext = RunContext & { flow: CompiledFlow | null; hasDeciders: boolean; finalAtom: number | null };

/** Where the engine finds flows by name (a FlowRegistry). */
export interface FlowLookup {
  get(name: string, version?: string): CompiledFlow;
}

/** An atom's inputs by name, and the names that have no value. */
export interface AtomInputs {
  values: Record<string, JsonValue>;
  missing: string[];
}

const NO_RESULTS: ReadonlyMap<number, JsonValue | null> = new Map();

function resolveInputs(run: RunContext, sources: Record<string, InputSource>, results: ReadonlyMap<number, JsonValue | null>): AtomInputs {
  const values: Record<string, JsonValue> = {};
  const missing: string[] = [];
  for (const name in sources) {
    const v = resolveInput(sources[name]!, run.graph, run.args, results);
    if (v === undefined) missing.push(name);
    else values[name] = v;
  }
  return { values, missing };
}

export class RunCache {
  private readonly runs = new Map<string, EngineRunContext>();
  private readonly loading = new Map<string, Promise<EngineRunContext>>();
  private readonly results = new Map<string, Map<number, JsonValue | null>>();
  private rowBatch: { ids: Set<string>; rows: Promise<Map<string, RunRow>> } | null = null;

  constructor(
    private readonly store: RunQueries,
    private readonly flows: FlowLookup | null,
  ) {}

  /** `row`: the run's row when the caller has it already (a claim that read it), else it is read. */
  async context(runId: string, row?: RunRow): Promise<EngineRunContext> {
    const cached = this.runs.get(runId);
    if (cached) return cached;
    // many atoms of one run claimed together share one load of its (possibly large) graph
    let loading = this.loading.get(runId);
    if (!loading) {
      loading = this.load(runId, row).finally(() => this.loading.delete(runId));
      this.loading.set(runId, loading);
    }
    return loading;
  }

  /** the run as held in memory, or undefined: {@link context} then reads it */
  cached(runId: string): EngineRunContext | undefined {
    return this.runs.get(runId);
  }

  /** drops what is known of a run: it ended, or this engine cannot execute it and may learn later */
  forget(runId: string): void {
    this.runs.delete(runId);
    this.results.delete(runId);
  }

  /** drops the graph but keeps results (a run this engine handed back) */
  forgetGraph(runId: string): void {
    this.runs.delete(runId);
  }

  /** a result this engine is about to record, for its successors' inputs */
  remember(runId: string, index: number, result: JsonValue | null): void {
    let m = this.results.get(runId);
    if (!m) this.results.set(runId, (m = new Map()));
    m.set(index, result);
  }

  /** drops a result that may not have been recorded (its commit failed or its outcome is unknown) */
  unremember(runId: string, index: number): void {
    this.results.get(runId)?.delete(index);
  }

  /** the results this engine holds for a run (a copy) */
  heldResults(runId: string): Map<number, JsonValue | null> {
    return new Map(this.results.get(runId) ?? []);
  }

  /** Resolves an atom's inputs from run arguments, held results and, when needed, the store. */
  async inputs(run: RunContext, sources: Record<string, InputSource>): Promise<AtomInputs> {
    const cache = this.results.get(run.id) ?? new Map<number, JsonValue | null>();
    const need = [...new Set(Object.values(sources).flatMap((s) => (s.from === 'atom' && !cache.has(s.atom) ? [s.atom] : [])))];
    if (need.length > 0) {
      for (const [i, v] of await this.store.getAtomResults(run.id, need)) cache.set(i, v);
      this.results.set(run.id, cache);
    }
    return resolveInputs(run, sources, cache);
  }

  /**
   * The same as {@link inputs}, at once, when every result the inputs need is held here;
   * null when one must be read from the store.
   */
  heldInputs(run: RunContext, sources: Record<string, InputSource>): AtomInputs | null {
    const cache = this.results.get(run.id);
    for (const name in sources) {
      const s = sources[name]!;
      if (s.from === 'atom' && !cache?.has(s.atom)) return null;
    }
    return resolveInputs(run, sources, cache ?? NO_RESULTS);
  }

  /**
   * Run rows asked for in the same tick (a claim batch preparing its atoms, a commit
   * loading its runs) are read together, in one round trip.
   */
  private readRunRow(runId: string): Promise<RunRow | null> {
    let batch = this.rowBatch;
    if (!batch) {
      const ids = new Set<string>();
      const rows = Promise.resolve().then(async () => {
        this.rowBatch = null;
        return new Map((await this.store.getRuns([...ids])).map((r) => [r.id, r]));
      });
      batch = this.rowBatch = { ids, rows };
    }
    batch.ids.add(runId);
    return batch.rows.then((m) => m.get(runId) ?? null);
  }

  private async load(runId: string, known?: RunRow): Promise<EngineRunContext> {
    const row = known ?? (await this.readRunRow(runId));
    if (!row) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
    let flow: CompiledFlow | null = null;
    if (this.flows) {
      try {
        flow = this.flows.get(row.flow, row.version);
      } catch {
        flow = null;
      }
    }
    // The run keeps the graph it started with. When this engine's code compiles to the same
    // graph (same content hash) there is nothing to read; otherwise the stored one rules.
    const graph = flow && graphDigest(flow.graph).hash === row.graphHash ? flow.graph : await this.store.getRunGraph(runId);
    if (!graph) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no graph for run ${runId}`, { details: { runId } });
    const hasDeciders = graph.atoms.some((a) => a.deciders !== undefined && Object.keys(a.deciders).length > 0);
    const sinks = graph.atoms.filter((a) => a.successors.length === 0);
    const finalAtom = sinks.length === 1 ? sinks[0]!.index : null;
    const ctx = {
      id: runId,
      graph,
      args: row.args,
      parentRunId: row.parentRunId,
      parentAtom: row.parentAtom,
      deciders: flow?.deciders ?? null,
      flow,
      hasDeciders,
      finalAtom,
    };
    this.runs.set(runId, ctx);
    return ctx;
  }
}
