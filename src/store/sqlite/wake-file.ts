/**
 * Cross-process wake-ups on SQLite (protocol 6, ARCHITECTURE.md "Wake-ups"), which has no LISTEN/NOTIFY.
 *
 * A wake file sits next to the database, as SQLite's own `-wal` and `-shm` files do:
 * `<database>-<prefix>wake`, empty. After a commit that made atoms claimable, a store
 * touches it (sets its modification time); the engines of other processes watch it
 * (`fs.watch`: inotify on Linux) and claim at once instead of at their next poll. SQLite is
 * one host, so a file event reaches every engine of the deployment.
 *
 * Nothing depends on it: a touch that fails or an event that is lost costs the poll
 * interval, as a lost NOTIFY does on PostgreSQL, and engines keep polling. A watch that
 * ends (the file was removed or replaced) is set up again on a fresh file.
 */
import { closeSync, openSync, utimesSync, watch, type FSWatcher } from 'node:fs';
import { StoreError } from '../../errors.js';

/** the least time between two attempts to set a watch up again after it ended (ms) */
const REARM_MS = 1_000;

export class WakeFile {
  constructor(readonly path: string) {}

  /** Creates the file when missing. Throws a StoreError naming the file when it cannot. */
  ensure(): void {
    try {
      closeSync(openSync(this.path, 'a'));
    } catch (cause) {
      throw new StoreError('STOKER_STORE_UNREACHABLE', `cannot create the SQLite wake file ${this.path}: ${(cause as Error).message}`, {
        cause,
        details: { path: this.path },
      });
    }
  }

  /** Announces claimable work. Never throws: a lost wake-up costs a poll interval. */
  touch(): void {
    const now = new Date();
    try {
      utimesSync(this.path, now, now);
    } catch {
      try {
        this.ensure();
        utimesSync(this.path, now, now);
      } catch {
        /* engines poll */
      }
    }
  }

  /**
   * Calls `onWake` on every touch, from any process, this one's included. Throws when the
   * file cannot be created or watched. Returns the function that stops watching.
   */
  subscribe(onWake: () => void): () => void {
    let watcher: FSWatcher | null = null;
    let stopped = false;
    let rearm: NodeJS.Timeout | null = null;
    const arm = (): void => {
      this.ensure();
      const w = watch(this.path, { persistent: false }, (event) => {
        // 'change': a touch; 'rename': the file was removed or replaced, so this watch is
        // on an inode nobody touches any more
        if (event === 'rename') restart();
        onWake();
      });
      w.on('error', restart);
      watcher = w;
    };
    const restart = (): void => {
      watcher?.close();
      watcher = null;
      if (stopped || rearm) return;
      rearm = setTimeout(() => {
        rearm = null;
        if (stopped) return;
        try {
          arm();
          onWake(); // touches may have been missed meanwhile
        } catch {
          restart();
        }
      }, REARM_MS);
      rearm.unref();
    };
    arm();
    return () => {
      stopped = true;
      if (rearm) clearTimeout(rearm);
      watcher?.close();
    };
  }
}
