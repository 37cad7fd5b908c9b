/**
 * Flow graphs are stored once per content, not once per run: `{p}graphs` is keyed by the
 * SHA-256 of the graph's JSON text and a run row holds only that `graph_hash`.
 *
 * Why: a graph can be megabytes (10,000 atoms) and is the same for every run of a flow
 * version. Kept in the run row, it was written with every start and, on SQLite, rewritten
 * with every update of the row (SQLite rewrites a whole record), so a long flow paid for
 * its own size on every atom. Graph rows are immutable and never deleted while a run
 * refers to them, which makes two caches safe:
 * - {@link GraphDigests} remembers the text and hash of each graph object (the registry
 *   hands out one object per flow version), so a start does not serialise it again;
 * - {@link KnownGraphs} remembers which hashes this store has seen committed, so a start
 *   sends the graph text only the first time, and reads of a run's graph are served
 *   from memory after the first.
 */
import { createHash } from 'node:crypto';
import type { FlowGraph } from '../flow/graph.js';

export interface GraphDigest {
  hash: string;
  text: string;
}

const digests = new WeakMap<FlowGraph, GraphDigest>();

/** The JSON text and content hash of a graph (computed once per graph object). */
export function graphDigest(graph: FlowGraph): GraphDigest {
  let d = digests.get(graph);
  if (!d) {
    const text = JSON.stringify(graph);
    d = { hash: createHash('sha256').update(text).digest('hex'), text };
    digests.set(graph, d);
  }
  return d;
}

/** Graphs one store knows to be committed, with the parsed graph when it has read one. */
export class KnownGraphs {
  private readonly committed = new Set<string>();
  private readonly parsed = new Map<string, FlowGraph>();

  constructor(private readonly maxParsed = 256) {}

  /** true when the graph row is known to exist: the start may omit the text */
  has(hash: string): boolean {
    return this.committed.has(hash);
  }

  /** Call only after the transaction that inserted (or found) the graph committed. */
  committedHash(hash: string): void {
    this.committed.add(hash);
  }

  get(hash: string): FlowGraph | undefined {
    return this.parsed.get(hash);
  }

  remember(hash: string, graph: FlowGraph): void {
    this.committed.add(hash);
    if (this.parsed.size >= this.maxParsed) {
      // drop the oldest entry: a store serves few flow versions at a time
      const oldest = this.parsed.keys().next().value;
      if (oldest !== undefined) this.parsed.delete(oldest);
    }
    this.parsed.set(hash, graph);
  }
}
