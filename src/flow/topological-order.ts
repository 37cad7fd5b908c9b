/**
 * Kahn's algorithm with deterministic ties, and a concrete cycle when there is none.
 * Iterative throughout: flows may have 10,000 atoms and chains that long, far deeper than
 * the call stack.
 */

/** Either an order of all nodes, or one cycle `[a, b, …, a]` proving there is none. */
export type TopologicalResult = { ok: true; order: number[] } | { ok: false; cycle: number[] };

/**
 * Orders nodes `0..n-1` so that every edge goes forward. Among the nodes ready at the same
 * time the smallest number comes first, so the order is stable across compilations
 * (numbering nodes in definition order makes ties follow definition order).
 *
 * On a cycle, returns one: a closed path `[v, …, v]` that starts at its smallest node.
 *
 * @example
 * ```ts
 * topologicalOrder([[2], [2], []]);  // { ok: true, order: [0, 1, 2] }
 * topologicalOrder([[1], [0]]);      // { ok: false, cycle: [0, 1, 0] }
 * ```
 */
export function topologicalOrder(successors: readonly Iterable<number>[]): TopologicalResult {
  const n = successors.length;
  const waiting = new Array<number>(n).fill(0);
  for (const targets of successors) for (const t of targets) waiting[t] = (waiting[t] ?? 0) + 1;

  const ready = new MinHeap();
  for (let v = 0; v < n; v++) if (waiting[v] === 0) ready.push(v);
  const order: number[] = [];
  for (let v = ready.pop(); v !== undefined; v = ready.pop()) {
    order.push(v);
    for (const t of successors[v] ?? []) {
      const left = (waiting[t] ?? 0) - 1;
      waiting[t] = left;
      if (left === 0) ready.push(t);
    }
  }
  if (order.length === n) return { ok: true, order };
  return { ok: false, cycle: findCycle(successors, waiting) };
}

/**
 * Every node Kahn could not order still waits for at least one node it could not order,
 * so walking backwards from one of them along such predecessors must repeat a node.
 */
function findCycle(successors: readonly Iterable<number>[], waiting: readonly number[]): number[] {
  const stuck = (v: number): boolean => (waiting[v] ?? 0) > 0;
  const firstPredecessor = new Map<number, number>();
  successors.forEach((targets, from) => {
    if (!stuck(from)) return;
    for (const t of targets) {
      if (!stuck(t)) continue;
      const known = firstPredecessor.get(t);
      if (known === undefined || from < known) firstPredecessor.set(t, from);
    }
  });
  let start = 0;
  while (!stuck(start)) start++;
  const backwards: number[] = [];
  const position = new Map<number, number>();
  let current = start;
  while (!position.has(current)) {
    position.set(current, backwards.length);
    backwards.push(current);
    // Defined: a stuck node always has a stuck predecessor (see above).
    current = firstPredecessor.get(current) ?? current;
  }
  const loop = backwards.slice(position.get(current)).reverse();
  let smallest = 0;
  loop.forEach((v, i) => {
    if (v < (loop[smallest] ?? v)) smallest = i;
  });
  const rotated = [...loop.slice(smallest), ...loop.slice(0, smallest)];
  return [...rotated, rotated[0] ?? current];
}

/** A binary min-heap of numbers. */
class MinHeap {
  private readonly items: number[] = [];

  push(value: number): void {
    const items = this.items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] ?? 0) <= value) break;
      items[i] = items[parent] ?? 0;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && (items[right] ?? 0) < (items[left] ?? 0) ? right : left;
      if ((items[child] ?? 0) >= last) break;
      items[i] = items[child] ?? 0;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
