import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { Engine } from '../../../src/engine/engine.js';
import { FlowRegistry, task, linear, unordered, graph, times } from '../../../src/flow/index.js';

describe('smoke', () => {
  it('runs a linear flow', async () => {
    const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'stk-')), 'db.sqlite') });
    await store.migrate();
    const reg = new FlowRegistry();
    const log: string[] = [];
    reg.register(linear('lin', [
      task({ name: 'a', provides: 'x', execute: () => { log.push('a'); return 1; } }),
      task({ name: 'b', requires: ['x'], provides: 'y', execute: ({ x }) => { log.push('b'); return (x as number) + 1; } }),
      task({ name: 'c', requires: ['y', 'z'], provides: 'w', execute: ({ y, z }) => { log.push('c'); return (y as number) * (z as number); } }),
    ]));
    let fails = 0;
    reg.register(linear('rev', [
      task({ name: 'r1', execute: () => { log.push('r1'); }, revert: () => { log.push('undo r1'); } }),
      linear('inner', [
        task({ name: 'r2', execute: () => { log.push('r2'); }, revert: () => { log.push('undo r2'); } }),
        task({ name: 'r3', execute: () => { fails++; log.push('r3'); if (fails < 3) throw new Error('boom'); return 'ok'; }, revert: () => { log.push('undo r3'); } }),
      ], { retry: times(3) }),
    ]));
    const engine = new Engine({ store, flows: reg, concurrency: 4, pollMs: 50 });
    await engine.start();
    const { run } = await engine.startRun('lin', { z: 5 });
    const done = await engine.waitForRun(run.id, { timeoutMs: 5000 });
    expect(done.status).toBe('SUCCESS');
    expect(done.result).toEqual({ x: 1, y: 2, w: 10 });
    const r2 = await engine.startRun('rev', {});
    const d2 = await engine.waitForRun(r2.run.id, { timeoutMs: 5000 });
    console.log(log, d2.status);
    const atoms = await store.getAtoms(r2.run.id);
    console.log(atoms.map(a => [a.name, a.state, a.attempt]));
    const ev = await store.listEvents(r2.run.id);
    console.log(ev.map(e => `${e.atom} ${e.kind} ${e.fromState}->${e.toState}`).join('\n'));
    expect(d2.status).toBe('SUCCESS');
    await engine.stop();
    await store.close();
  });
});
