/**
 * Protocol 4, the immediate half (EngineOptions.watchPeers): one engine of each process
 * watches the next live process's engine in id order (peer-ring.ts) through
 * `Store.watchEngine`, which the database answers the moment that engine's session ends
 * (PostgreSQL, MySQL) or its pid is gone (SQLite), and sweeps at once: a `kill -9` is taken
 * over in tens of milliseconds instead of at a reaper's next look. Each wait lasts at most
 * {@link WATCH_WAIT_MS}, so engines that joined or left are seen at the next look. A peer
 * found gone is not watched again (it deregistered, or it died holding nothing and its row
 * stays until its lease ends).
 */
import type { EngineCore } from '../engine-core.js';
import { WATCH_WAIT_MS, watchTarget } from './peer-ring.js';
import type { Reaper } from './reaper.js';

export class PeerWatch {
  private watching: { abort: AbortController; done: Promise<void> } | null = null;

  constructor(
    private readonly core: EngineCore,
    private readonly reaper: Reaper,
  ) {}

  start(): void {
    const abort = new AbortController();
    this.watching = { abort, done: this.loop(abort.signal) };
  }

  /** ends the wait in progress and resolves when the loop has returned */
  async stop(): Promise<void> {
    this.watching?.abort.abort();
    await this.watching?.done;
    this.watching = null;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const core = this.core;
    const freed = new Set<string>();
    const look = Math.max(core.settings.reapMs * 2, WATCH_WAIT_MS);
    let failures = 0;
    while (!signal.aborted) {
      let outcome: 'free' | 'held' | 'aborted' | 'alone' | 'follower' = 'alone';
      try {
        const live = (await core.store.listEngines()).filter((e) => e.state !== 'dead' && !freed.has(e.id));
        for (const id of freed) if (!live.some((e) => e.id === id)) freed.delete(id);
        const self = { id: core.id, host: core.identity.host, pid: core.identity.pid };
        const ring = core.fencedOut ? { role: 'alone' as const } : watchTarget(self, live);
        if (ring.role === 'follower') outcome = 'follower';
        else if (ring.role === 'watch' && !signal.aborted) {
          outcome = await core.store.watchEngine(ring.peer, { maxWaitMs: WATCH_WAIT_MS, signal });
          if (outcome === 'free') {
            freed.add(ring.peer);
            core.log.info({ peer: ring.peer }, 'watched engine session ended: sweeping');
            await this.reaper.sweep();
          }
        }
        failures = 0;
      } catch (e) {
        failures += 1;
        core.emitError(e);
      }
      if (outcome === 'free' || outcome === 'held') continue;
      // alone, or another engine of this process watches (it changes only when that one
      // stops), or a failure: look again later
      await core.pause(signal, Math.min(30_000, (outcome === 'follower' ? 5 * look : look) * 2 ** Math.min(failures, 4)));
    }
  }
}
