/**
 * Engine.run() (issue 11, item 9): an in-process engine keeps its Node process alive until
 * SIGTERM/SIGINT, then drains its in-flight atoms, removes its row and lets run() resolve,
 * as `stoker engine` does. A real process and real signals, on SQLite.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../../src/store/open-store.js';

const dir = mkdtempSync(join(tmpdir(), 'stoker-engine-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startApp(url: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve('test/fixtures/engine-run.ts'), url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const started = new Promise<{ engineId: string; runId: string }>((r, reject) => {
    const look = (): void => {
      const m = /^started (\S+) (\S+)$/m.exec(out);
      if (m) r({ engineId: m[1]!, runId: m[2]! });
    };
    child.stdout.on('data', look);
    void exited.then((code) => reject(new Error(`the app exited (${code}) before it started:\n${out}\n${err}`)));
  });
  return { child, exited, started, output: () => ({ out, err }) };
}

describe('Engine.run()', () => {
  it('keeps the process alive until SIGTERM, then drains the running task, deregisters and resolves', async () => {
    const url = `sqlite:${join(dir, 'run.db')}`;
    const app = startApp(url);
    const { runId } = await app.started;
    const store = await openStore(url);
    try {
      // SIGTERM while the task runs: it drains (finishes and is recorded), nothing is handed back
      for (;;) {
        const [atom] = await store.getAtoms(runId);
        if (atom?.state === 'RUNNING') break;
        expect(app.child.exitCode).toBeNull();
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(await store.listEngines()).toHaveLength(1);
      app.child.kill('SIGTERM');
      expect(await app.exited).toBe(0);
      expect(app.output().out).toMatch(/^stopped$/m);
      expect((await store.getRun(runId))!.status).toBe('SUCCESS');
      // the row of the stopped engine is gone (it no longer shows alive for a dead pid)
      expect(await store.listEngines()).toEqual([]);
    } finally {
      if (app.child.exitCode === null) app.child.kill('SIGKILL');
      await store.close();
    }
  });
});
