/**
 * Scaffolding of a chaos scenario that needs a PRIVATE database server (test/chaos/
 * private-server.ts: restarts, server-wide settings), as scenario.ts is for the shared ones:
 * the server and one database on it, a harness store, a fleet of engine processes, a temp
 * directory for the side-effect log, and the final check of the history. Everything is
 * stopped and removed after the file's tests. When the server binaries are missing the
 * describe is skipped with a SKIP line (a failure under STOKER_REQUIRE_SERVICES=1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import type { Store } from '../../src/store/store.js';
import type { History, Verdict } from './checker.js';
import { Fleet, type Submitted } from './harness.js';
import { createPrivateServer, privateServerUnavailable, type PrivateServer, type ServerKind } from './private-server.js';
import { checkSubmitted } from './scenario.js';

export interface PrivateScenario {
  readonly kind: ServerKind;
  readonly server: PrivateServer;
  /** the scenario's database on the server */
  readonly db: string;
  /** the harness's own store (superuser) */
  readonly store: Store;
  readonly fleet: Fleet;
  readonly log: string;
}

/**
 * `describe(title)` with a private server of `kind` started before its tests and destroyed
 * after them; `body` registers the tests and gets the scenario. `fleetUrl` picks the URL
 * the engines connect with (default: the superuser's). With `concurrent`, this describe runs
 * at the same time as its concurrent siblings (each with a server of its own); its tests
 * are then concurrent too unless declared with `it.sequential`.
 */
export function describePrivate(
  kind: ServerKind,
  title: string,
  body: (s: PrivateScenario) => void,
  options: { label: string; fleetUrl?: (server: PrivateServer, db: string) => Promise<string>; concurrent?: boolean },
): void {
  if (skippedWithoutServer(kind, title)) return;
  describe(title, options.concurrent ? { concurrent: true } : {}, () => {
    let server: PrivateServer | null = null;
    let store: Store | null = null;
    let fleet: Fleet | null = null;
    let dir = '';
    const db = `stoker_${options.label}`;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `stoker-chaos-${options.label}-`));
      server = createPrivateServer(kind);
      await server.start();
      await server.createDatabase(db);
      store = await openStore(server.url(db), { role: 'harness' });
      await store.migrate();
      fleet = new Fleet(options.fleetUrl ? await options.fleetUrl(server, db) : server.url(db));
    }, 120_000);
    afterAll(async () => {
      // engines first (they would reconnect forever), then the store, then the server
      await fleet?.cleanup();
      await store?.close().catch(() => undefined);
      await server?.destroy();
      if (dir && process.env.CHAOS_KEEP_LOGS !== '1') rmSync(dir, { recursive: true, force: true });
    });
    body({
      kind,
      db,
      get server() {
        return server!;
      },
      get store() {
        return store!;
      },
      get fleet() {
        return fleet!;
      },
      get log() {
        return join(dir, 'effects.jsonl');
      },
    });
  });
}

/**
 * Registers a skipped describe with a SKIP line when a private server of this kind cannot be
 * started here (binaries missing; under STOKER_REQUIRE_SERVICES=1 this throws instead, so
 * CI never skips silently). Returns whether it did.
 */
export function skippedWithoutServer(kind: ServerKind, title: string): boolean {
  const reason = privateServerUnavailable(kind);
  if (reason === null) return false;
  console.warn(`SKIP ${title}: ${reason}`);
  describe.skip(`${title} — SKIP: ${reason}`, () => {
    it('needs the server binaries', () => undefined);
  });
  return true;
}

/** Collects the history of the submitted runs and checks it; prints the verdict. */
export function verifyPrivate(
  s: PrivateScenario,
  submitted: readonly Submitted[],
  label: string,
): Promise<{ verdict: Verdict; history: History }> {
  return checkSubmitted(s.store, s.log, submitted, `${label} on ${s.kind}`);
}
