/**
 * Engine processes for the case that kills one (`kill_engine`, case 032): each runs
 * scripts/corpus-engine.ts on the case's database, and the runner (with no engine of its own)
 * SIGKILLs the one that executes the stack's work, found through the store: a RUNNING atom
 * of the stack's current run, the engine that claimed it, that engine's pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Store } from '../../src/store/store.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface EngineProcess {
  engineId: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Starts `count` engine processes and waits until each prints `ready`. */
export async function startEngineProcesses(url: string, count: number, logDir: string): Promise<EngineProcess[]> {
  const started: Promise<EngineProcess>[] = [];
  for (let i = 0; i < count; i++) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'scripts/corpus-engine.ts'), url, join(logDir, `engine-${i}.log`)],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    started.push(
      new Promise<EngineProcess>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`engine process ${i} did not start in 60 s: ${stderr.slice(-500)}`)), 60_000);
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /^ready (\S+) (\d+)$/m.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve({ engineId: m[1]!, pid: Number(m[2]), child, exited });
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`engine process ${i} exited (${code}) before it was ready: ${stderr.slice(-500)}`));
        });
      }),
    );
  }
  const results = await Promise.allSettled(started);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    for (const r of results) if (r.status === 'fulfilled') r.value.child.kill('SIGKILL');
    throw (failed as PromiseRejectedResult).reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<EngineProcess>).value);
}

/**
 * SIGKILLs the engine process holding a RUNNING atom of `runId`; returns a description of
 * what it killed, or throws when none of ours holds one.
 */
export async function killEngineOfRun(store: Store, runId: string, engines: EngineProcess[]): Promise<string> {
  const atoms = await store.getAtoms(runId);
  const running = atoms.filter((a) => a.state === 'RUNNING' && a.claimedBy !== null);
  const rows = await store.listEngines();
  for (const atom of running) {
    const row = rows.find((e) => e.id === atom.claimedBy);
    const proc = engines.find((e) => e.engineId === atom.claimedBy || (row !== undefined && e.pid === row.pid));
    if (!proc || proc.child.exitCode !== null) continue;
    proc.child.kill('SIGKILL');
    await proc.exited;
    return `killed engine ${proc.engineId} (pid ${proc.pid}) holding atom ${atom.name} of run ${runId}`;
  }
  const states = atoms.map((a) => `${a.name}:${a.state}${a.claimedBy ? `@${a.claimedBy}` : ''}`).join(', ');
  throw new Error(`no engine process of the runner holds a RUNNING atom of run ${runId} (atoms: ${states || 'none'})`);
}

/** Stops the engine processes still running (SIGTERM, then SIGKILL after 10 s). */
export async function stopEngineProcesses(engines: EngineProcess[]): Promise<void> {
  await Promise.all(
    engines.map(async (e) => {
      if (e.child.exitCode !== null || e.child.signalCode !== null) return;
      e.child.kill('SIGTERM');
      const timer = setTimeout(() => e.child.kill('SIGKILL'), 10_000);
      await e.exited;
      clearTimeout(timer);
    }),
  );
}
