/**
 * Grouping helpers for the transports' per-queue and per-engine batches.
 *
 * @example
 * ```ts
 * const byQueue = new Map<string, string[]>();
 * appendTo(byQueue, 'pool', 'call-1');
 * ```
 */

/** Appends `value` to the list of `key` in `map`, starting the list when there is none. */
export function appendTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
