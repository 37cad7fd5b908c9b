/**
 * Crash recovery with real processes (issue 2): an engine process is killed with SIGKILL
 * while a run is mid-way (once on the forward path, once while reverting); a new engine
 * process finishes the run. Succeeded tasks are not executed again; the interrupted one
 * is executed again with the same idempotency key and `ctx.execution === 2`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { isTerminalRun } from '../../src/store/states.js';
import { FlowRegistry } from '../../src/flow/index.js';
import type { Store } from '../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../helpers/databases.js';
import flows, { type LogLine } from '../fixtures/crash-flows.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/engine-process.ts');
const LEASE_MS = 1500;

function startEngine(url: string): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, url, '4', String(LEASE_MS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`engine exited early (${String(code)}): ${stderr}`)));
  });
  return { child, ready };
}

function readLog(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as LogLine);
}

async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const dialect of testDialects()) {
  describe(`crash recovery on ${dialect}`, () => {
    let db: TestStore | null = null;
    let store: Store;
    let dir: string;
    const children: ChildProcess[] = [];

    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (db) store = db.store;
      dir = mkdtempSync(join(tmpdir(), 'stoker-crash-'));
    });
    afterAll(async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await db?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    async function crashAndRecover(flow: string, killWhen: (log: LogLine[]) => boolean, log: string) {
      const registry = new FlowRegistry();
      for (const f of flows) registry.register(f);
      const client = new Engine({ store, flows: registry });
      const { run } = await client.startRun(flow, { log, stepMs: 60 });

      const first = startEngine(db!.url);
      children.push(first.child);
      await first.ready;
      await waitFor(() => killWhen(readLog(log)), 30_000, 'the kill point');
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      const atKill = readLog(log);

      const second = startEngine(db!.url);
      children.push(second.child);
      await second.ready;
      const done = await waitFor(
        async () => {
          const r = await store.getRun(run.id);
          return r && isTerminalRun(r.status) ? r : undefined;
        },
        60_000,
        'the run to finish',
      );
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
      return { done, atKill, lines: readLog(log), firstPid: first.child.pid!, secondPid: second.child.pid! };
    }

    it('finishes a 20-task run after kill -9 mid-way; only the interrupted task runs twice', async (ctx) => {
      if (!db) return ctx.skip();
      const log = join(dir, `forward-${dialect}.log`);
      const { done, atKill, lines, firstPid, secondPid } = await crashAndRecover(
        'twenty',
        (l) => l.some((x) => x.phase === 'start' && x.name === 't08'),
        log,
      );
      expect(done.status).toBe('SUCCESS');
      // the task that was in flight at the kill: started, not ended, by the first engine
      const ended = new Set(atKill.filter((x) => x.phase === 'end').map((x) => x.name));
      const interrupted = atKill.filter((x) => x.phase === 'start' && !ended.has(x.name));
      expect(interrupted).toHaveLength(1);
      const victim = interrupted[0]!;
      const starts = lines.filter((x) => x.phase === 'start');
      for (let i = 1; i <= 20; i++) {
        const name = `t${String(i).padStart(2, '0')}`;
        const mine = starts.filter((x) => x.name === name);
        if (name === victim.name) {
          expect(mine).toHaveLength(2);
          expect(mine[0]!.key).toBe(mine[1]!.key);
          expect(mine.map((m) => m.execution)).toEqual([1, 2]);
          expect(mine.map((m) => m.pid)).toEqual([firstPid, secondPid]);
        } else {
          expect(mine, `${name} ran exactly once`).toHaveLength(1);
        }
      }
      const atoms = await store.getAtoms(done.id);
      expect(atoms.every((a) => a.state === 'SUCCESS')).toBe(true);
    });

    it('finishes reverting after kill -9 in the middle of the revert path', async (ctx) => {
      if (!db) return ctx.skip();
      const log = join(dir, `revert-${dialect}.log`);
      const { done, atKill, lines } = await crashAndRecover(
        'revertTen',
        (l) => l.some((x) => x.phase === 'revert-start' && x.name === 'r06'),
        log,
      );
      expect(done.status).toBe('REVERTED');
      expect(atKill.some((x) => x.phase === 'revert-start')).toBe(true);
      // forward steps ran once each; every step was reverted, in reverse order
      for (let i = 1; i <= 10; i++) {
        const name = `r${String(i).padStart(2, '0')}`;
        expect(lines.filter((x) => x.phase === 'start' && x.name === name)).toHaveLength(1);
        expect(lines.filter((x) => x.phase === 'revert-end' && x.name === name).length).toBeGreaterThanOrEqual(1);
      }
      const revertOrder = lines.filter((x) => x.phase === 'revert-end').map((x) => x.name);
      const firstSeen = [...new Set(revertOrder)];
      expect(firstSeen).toEqual(['r10', 'r09', 'r08', 'r07', 'r06', 'r05', 'r04', 'r03', 'r02', 'r01']);
      const atoms = await store.getAtoms(done.id);
      expect(atoms.filter((a) => a.name.startsWith('r')).every((a) => a.state === 'REVERTED')).toBe(true);
    });
  });
}
