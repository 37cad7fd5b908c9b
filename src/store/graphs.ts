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
 *   from memory after the first. A graph this store has just started is one of them: the
 *   engine in the same process claims its first atoms next, and reading back and parsing
 *   what it has just written cost a stack of 10,000 resources about 100 ms before its
 *   first step (docs/orchestration.md, "Performance").
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

/**
 * Graphs one store knows to be committed, with the parsed graph when it has one: at most
 * `maxParsed` graphs and `maxBytes` of their JSON text (a graph of 10,000 atoms is about
 * 5 MB), the oldest dropped first.
 */
export class KnownGraphs {
  private readonly committed = new Set<string>();
  private readonly parsed = new Map<string, { graph: FlowGraph; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly maxParsed = 256,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  /** true when the graph row is known to exist: the start may omit the text */
  has(hash: string): boolean {
    return this.committed.has(hash);
  }

  /** Call only after the transaction that inserted (or found) the graph committed. */
  committedHash(hash: string): void {
    this.committed.add(hash);
  }

  get(hash: string): FlowGraph | undefined {
    return this.parsed.get(hash)?.graph;
  }

  /** A committed graph and the length of its JSON text (call only after its commit, as {@link committedHash}). */
  remember(hash: string, graph: FlowGraph, bytes: number): void {
    this.committed.add(hash);
    if (this.parsed.has(hash) || bytes > this.maxBytes) return;
    // drop the oldest entries: a store serves few flow versions at a time
    for (const [oldest, entry] of this.parsed) {
      if (this.parsed.size < this.maxParsed && this.bytes + bytes <= this.maxBytes) break;
      this.parsed.delete(oldest);
      this.bytes -= entry.bytes;
    }
    this.parsed.set(hash, { graph, bytes });
    this.bytes += bytes;
  }
}
