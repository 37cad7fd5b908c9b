/**
 * Retention in batches (ARCHITECTURE.md "Retention"): calls {@link Store.pruneRuns} until a batch
 * comes back short, and adds up what was deleted. Shared by the engine's retention timer
 * and `stoker runs prune`.
 */
import type { PruneResult, Store } from './store.js';

export interface PruneBatchesOptions {
  olderThanMs: number;
  /** runs per batch (one transaction each) */
  batch: number;
  /** stop after this many batches even if more is left (default: none) */
  maxBatches?: number;
  /** asked before each batch after the first: false stops */
  keepGoing?: () => boolean;
  /** after each batch that deleted runs, with the totals so far */
  onBatch?: (batch: number, deleted: PruneResult, total: PruneResult) => void;
}

export async function pruneInBatches(store: Store, o: PruneBatchesOptions): Promise<PruneResult> {
  const total: PruneResult = { runs: 0, atoms: 0, events: 0, signals: 0, engines: 0 };
  for (let batch = 1; batch <= (o.maxBatches ?? Number.POSITIVE_INFINITY); batch++) {
    if (batch > 1 && o.keepGoing && !o.keepGoing()) break;
    const r = await store.pruneRuns({ olderThanMs: o.olderThanMs, limit: o.batch });
    for (const k of Object.keys(total) as (keyof PruneResult)[]) total[k] += r[k];
    if (r.runs > 0) o.onBatch?.(batch, r, total);
    if (r.runs < o.batch) break;
  }
  return total;
}
