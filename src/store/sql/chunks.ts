/** `items` in slices of at most `size` (one slice when `size` is infinite): for IN lists and multi-row INSERTs. */
export function chunks<T>(items: readonly T[], size: number): (readonly T[])[] {
  if (items.length <= size) return [items];
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
