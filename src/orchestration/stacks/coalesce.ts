/**
 * Statements of concurrent resource steps sent together (docs/orchestration.md,
 * "Performance"): while one statement of a kind is in flight, the items that arrive queue
 * and go as the next statement, the way the engine's committer batches atom completions. A
 * lone item (a chain's steps, one after the other) is sent at once, so nothing waits on a
 * timer. Two items with the same key never share a statement (a row is written once per
 * statement). When a batch's statement fails, each of its items is sent again alone, so one
 * bad item fails only its own step.
 */

interface Pending<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (e: unknown) => void;
}

export class Coalescer<I, O> {
  private readonly queue: Pending<I, O>[] = [];
  private inFlight = 0;

  /**
   * @param send one statement for `items`, answering each in order
   * @param key items with equal keys go in different statements (none: any items go together)
   */
  constructor(
    private readonly send: (items: I[]) => Promise<O[]>,
    private readonly key: ((item: I) => string | number) | null,
    private readonly maxBatch = 200,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.inFlight > 0 || this.queue.length === 0) return;
    const batch: Pending<I, O>[] = [];
    const keys = new Set<string | number>();
    for (let i = 0; i < this.queue.length && batch.length < this.maxBatch;) {
      if (this.key) {
        const k = this.key(this.queue[i]!.item);
        if (keys.has(k)) {
          i++;
          continue;
        }
        keys.add(k);
      }
      batch.push(this.queue.splice(i, 1)[0]!);
    }
    this.inFlight++;
    void this.flush(batch).finally(() => {
      this.inFlight--;
      this.pump();
    });
  }

  private async flush(batch: Pending<I, O>[]): Promise<void> {
    try {
      const outs = await this.send(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(outs[i]!));
    } catch (e) {
      if (batch.length === 1) {
        batch[0]!.reject(e);
        return;
      }
      await Promise.all(
        batch.map((b) =>
          this.send([b.item]).then(
            (outs) => b.resolve(outs[0]!),
            (err: unknown) => b.reject(err),
          ),
        ),
      );
    }
  }
}
