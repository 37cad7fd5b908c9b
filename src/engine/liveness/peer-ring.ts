/**
 * The peer ring of protocol 4's immediate half (EngineOptions.watchPeers, peer-watch.ts). The ring runs
 * over processes, not engines, since the engines of one process die together: in each
 * process (host and pid) the engine with the lowest id watches the session lock of the
 * next process's lowest id, in id order, the last one the first's. So each process is
 * watched by exactly one other and spends one connection on it, whatever `--engines`.
 */

/**
 * How long one wait for a peer's lock lasts before the ring is looked at again (ms): an
 * engine that joins between two others is watched within about this long. A look is one
 * read of the engines table; the wait's connection is kept between looks.
 */
export const WATCH_WAIT_MS = 2_000;

/**
 * The engine after `self` among `ids` in id order, wrapping around; null when there is no
 * other. `self` need not be in `ids` (it may not have been listed yet).
 *
 * @example ringSuccessor('b', ['a', 'b', 'c']) === 'c'; ringSuccessor('c', ['a', 'b', 'c']) === 'a'
 */
export function ringSuccessor(self: string, ids: readonly string[]): string | null {
  let next: string | null = null;
  let first: string | null = null;
  for (const id of ids) {
    if (id === self) continue;
    if (first === null || id < first) first = id;
    if (id > self && (next === null || id < next)) next = id;
  }
  return next ?? first;
}

/** What the ring needs to know of an engine (an EngineRow has it). */
export interface RingMember {
  id: string;
  host: string;
  pid: number;
}

/** What an engine does in the ring: watch `peer`, leave it to another engine of its process, or nothing (alone). */
export type WatchRole = { role: 'watch'; peer: string } | { role: 'follower' } | { role: 'alone' };

/**
 * The role of `self` among the live `engines`. Engines of different hosts that share a
 * host name and a pid (containers with a fixed host name) count as one process: they are
 * left to the reapers.
 */
export function watchTarget(self: RingMember, engines: readonly RingMember[]): WatchRole {
  const leaders = new Map<string, string>();
  const processOf = (e: RingMember): string => `${e.host}\u0000${e.pid}`;
  for (const e of [...engines, self]) {
    const p = processOf(e);
    const lowest = leaders.get(p);
    if (lowest === undefined || e.id < lowest) leaders.set(p, e.id);
  }
  if (leaders.get(processOf(self)) !== self.id) return { role: 'follower' };
  const peer = ringSuccessor(self.id, [...leaders.values()]);
  return peer === null ? { role: 'alone' } : { role: 'watch', peer };
}
