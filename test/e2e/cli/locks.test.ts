/**
 * `stoker locks list|release` end to end: the built CLI against a SQLite file whose locks
 * were taken through the library (createLocks), as an application would.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocks } from '../../../src/engine/locks.js';
import { openStore } from '../../../src/store/open-store.js';
import type { Store } from '../../../src/store/store.js';
import { buildCliAsync, json, runCli, tempDir, type Built } from './harness.js';

let built: Built;
let dir: { path: string; remove(): void };
let store: Store;
let url: string;

beforeAll(async () => {
  built = await buildCliAsync();
  dir = tempDir();
  url = `sqlite:${join(dir.path, 'locks.db')}`;
  store = await openStore(url);
  await store.migrate();
});

afterAll(async () => {
  await store?.close();
  built?.remove();
  dir?.remove();
});

const cli = (args: string[]) => runCli(built, [...args, '--store', url], { cwd: dir.path });

interface LockJson {
  name: string;
  holder: string;
  token: number;
  state: string;
  remainingMs: number;
  releasedAt: string | null;
}

describe('stoker locks', () => {
  it('lists locks with their holder, token and state, and releases one only with its current token', async () => {
    const locks = createLocks(store);
    const held = await locks.acquire('reports/nightly', { ttlMs: 60_000, holder: 'worker-a' });
    const done = await locks.acquire('billing:run', { ttlMs: 60_000, holder: 'worker-b' });
    await locks.release('billing:run', done!.token);
    await locks.acquire('device/7', { ttlMs: 100, holder: 'worker-c' });
    await new Promise((r) => setTimeout(r, 150));

    const listed = await cli(['locks', 'list', '-f', 'json']);
    expect(listed.code).toBe(0);
    const rows = json<LockJson[]>(listed);
    expect(rows.map((l) => [l.name, l.holder, l.token, l.state])).toEqual([
      ['billing:run', 'worker-b', 1, 'released'],
      ['device/7', 'worker-c', 1, 'expired'],
      ['reports/nightly', 'worker-a', 1, 'held'],
    ]);
    expect(rows[2]!.remainingMs).toBeGreaterThan(50_000);

    const table = await cli(['locks', 'list']);
    expect(table.stdout).toMatch(/^NAME\s+HOLDER\s+TOKEN\s+STATE\s+EXPIRES\s+ACQUIRED$/m);
    expect(table.stdout).toMatch(/^reports\/nightly\s+worker-a\s+1\s+held\s+in \d/m);
    expect(json<LockJson[]>(await cli(['locks', 'list', '--held', '-f', 'json'])).map((l) => l.name)).toEqual(['reports/nightly']);

    // a token that is not the current one is refused: exit 8, the lock stays held
    const stale = await cli(['locks', 'release', 'reports/nightly', '--token', '2']);
    expect(stale.code).toBe(8);
    expect(stale.stderr).toContain('STOKER_LOCK_LOST');
    expect(stale.stderr).toContain('its token is 1');
    expect(await store.getLock('reports/nightly')).toMatchObject({ held: true, token: held!.token });

    const released = await cli(['locks', 'release', 'reports/nightly', '--token', String(held!.token), '-f', 'json']);
    expect(released.code).toBe(0);
    expect(json(released)).toEqual({ name: 'reports/nightly', token: 1, released: true });
    expect(await store.getLock('reports/nightly')).toMatchObject({ held: false, token: 1 });
    expect((await cli(['locks', 'release', 'reports/nightly', '--token', '1'])).code).toBe(8);
  });

  it('bad names and tokens are usage errors (exit 2)', async () => {
    const badName = await cli(['locks', 'release', 'no spaces', '--token', '1']);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('STOKER_LOCK_NAME_INVALID');
    expect((await cli(['locks', 'release', 'reports/nightly', '--token', '0'])).code).toBe(2);
    expect((await cli(['locks', 'release', 'reports/nightly'])).code).toBe(2);
  });
});
