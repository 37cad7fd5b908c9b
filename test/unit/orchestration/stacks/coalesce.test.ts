/**
 * The coalescer of the stack layer's statements (src/orchestration/stacks/coalesce.ts): a lone
 * item goes at once, items arriving while a statement is in flight go together as the next,
 * equal keys never share a statement, and a failed batch is retried item by item so that one
 * bad item fails alone.
 */
import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../../../src/orchestration/stacks/coalesce.js';

function recorder(fail: (item: number) => boolean = () => false) {
  const batches: number[][] = [];
  let release: (() => void) | null = null;
  const send = async (items: number[]) => {
    batches.push([...items]);
    if (release === null) await new Promise<void>((r) => (release = r));
    if (items.some(fail)) throw new Error(`bad item in ${items.join(',')}`);
    return items.map((i) => i * 10);
  };
  return { batches, send, open: () => release?.() };
}

describe('Coalescer', () => {
  it('sends a lone item at once and the items that queued meanwhile as one statement', async () => {
    const r = recorder();
    const c = new Coalescer(r.send, null);
    const first = c.add(1);
    const rest = [c.add(2), c.add(3), c.add(4)];
    expect(r.batches).toEqual([[1]]);
    r.open();
    expect(await first).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(r.batches).toEqual([[1], [2, 3, 4]]);
  });

  it('never puts two items with the same key in one statement', async () => {
    const r = recorder();
    const c = new Coalescer(r.send, (i: number) => i % 2);
    const all = [c.add(1), c.add(3), c.add(2), c.add(5)];
    r.open();
    expect(await Promise.all(all)).toEqual([10, 30, 20, 50]);
    expect(r.batches).toEqual([[1], [3, 2], [5]]);
  });

  it('retries a failed batch item by item: only the bad item fails', async () => {
    const r = recorder((i) => i === 3);
    const c = new Coalescer(r.send, null);
    const first = c.add(1);
    const queued = [c.add(2), c.add(3), c.add(4)].map((p) => p.then(String, (e: Error) => e.message));
    r.open();
    await first;
    expect(await Promise.all(queued)).toEqual(['20', 'bad item in 3', '40']);
    expect(r.batches).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
  });
});
