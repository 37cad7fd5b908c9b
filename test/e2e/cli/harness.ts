/**
 * Runs the built `stoker` CLI as a child process, the way users run it.
 *
 * The package is built (tsc) into a folder under node_modules/.cache so that a developer's
 * own `dist/` is never used nor seen half-written; packages still resolve from the project's
 * node_modules. Under vitest, {@link buildCliAsync} builds once per run in the folder that
 * test/global-setup.ts provides, shared by every file (each build costs ~13 s of CPU);
 * elsewhere (the bench scripts) each call builds into a folder of its own.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface Built {
  /** the built dist folder */
  dist: string;
  /** dist/cli/main.js */
  main: string;
  /** file URL of dist/flow/index.js, for flows modules written by tests */
  flowIndexUrl: string;
  remove(): void;
}

/**
 * Compiles src/ with tsconfig.build.json, without blocking the test worker (a long synchronous
 * build makes vitest miss its heartbeats). Type errors in other folders (work in progress
 * elsewhere) do not stop the emit and are not this suite's concern; errors in the CLI and
 * runtime folders fail the build.
 *
 * Under vitest, the run's files share one build: the first caller compiles into the run's
 * folder and the others wait for it; `remove()` then leaves the folder to the global setup,
 * which deletes it when the run ends.
 */
export async function buildCliAsync(): Promise<Built> {
  const shared = await sharedBuildFolder();
  if (shared) return sharedBuild(shared);
  const dist = newDist();
  return checkBuild(dist, await compile(dist));
}

function compile(dist: string): Promise<string> {
  return new Promise<string>((resolveBuild) => {
    execFile(process.execPath, tscArgs(dist), { cwd: ROOT, encoding: 'utf8' }, (_error, stdout) => resolveBuild(stdout));
  });
}

/** The folder test/global-setup.ts provides to this run, or undefined outside vitest. */
async function sharedBuildFolder(): Promise<string | undefined> {
  // 'vitest' cannot be imported outside a vitest worker (the bench scripts use this file)
  if (!process.env['VITEST']) return undefined;
  const { inject } = await import('vitest');
  return inject('stokerSharedBuild') || undefined;
}

async function sharedBuild(folder: string): Promise<Built> {
  const dist = join(folder, 'dist');
  const done = join(folder, 'build-output.json');
  let builder = true;
  try {
    mkdirSync(join(folder, 'building')); // atomic: exactly one file of the run builds
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    builder = false;
  }
  if (builder) {
    const output = await compile(dist);
    writeFileSync(`${done}.tmp`, JSON.stringify({ output }));
    renameSync(`${done}.tmp`, done);
  } else {
    await waitUntil(() => existsSync(done), 240_000, 'the shared CLI build of another test file');
  }
  const { output } = JSON.parse(readFileSync(done, 'utf8')) as { output: string };
  return { ...checkBuild(dist, output), remove: () => {} };
}

function newDist(): string {
  const base = join(ROOT, 'node_modules', '.cache', 'stoker-e2e');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, 'dist-'));
}

function tscArgs(dist: string): string[] {
  return [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', dist];
}

function checkBuild(dist: string, output: string): Built {
  const ours = output.split('\n').filter((l) => /^src\/(cli|runtime)\//.test(l));
  if (ours.length > 0) throw new Error(`the CLI does not compile:\n${ours.join('\n')}`);
  const main = join(dist, 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`tsc did not emit ${main}:\n${output}`);
  return {
    dist,
    main,
    flowIndexUrl: pathToFileURL(join(dist, 'flow', 'index.js')).href,
    remove: () => rmSync(dist, { recursive: true, force: true }),
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** Environment for the child: the parent's minus any STOKER_* a developer may have set. */
function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('STOKER_')) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts the CLI and returns the child (for long-running commands such as `engine`). */
export function startCli(
  built: Built,
  args: readonly string[],
  options: CliOptions,
): ChildProcess & { output: { stdout: string; stderr: string }; exited: Promise<CliResult> } {
  const child = spawn(process.execPath, [built.main, ...args], {
    cwd: options.cwd,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output.stderr += d));
  const exited = new Promise<CliResult>((resolveExit) => {
    child.on('close', (code, signal) => resolveExit({ code, signal, ...output }));
  });
  return Object.assign(child, { output, exited });
}

/** Runs the CLI to completion (killed after `timeoutMs`, default 30 s). */
export async function runCli(built: Built, args: readonly string[], options: CliOptions): Promise<CliResult> {
  const child = startCli(built, args, options);
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `predicate(output)` holds, polling every 25 ms; rejects after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Migrates the store at `url` in this process (what `stoker migrate` does, without starting
 * a process): commands other than migrate, engine and demo refuse an unmigrated store.
 */
export async function migrateStore(url: string): Promise<string> {
  const { openStore } = await import('../../../src/store/open-store.js');
  const store = await openStore(url);
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
  return url;
}

/** A fresh temporary directory (removed by the returned function). */
export function tempDir(prefix = 'stoker-cli-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Writes a file (creating folders) and returns its path. */
export function writeFile(dir: string, name: string, content: string): string {
  const file = join(dir, name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

/** Parses stdout as JSON, with the output in the error when it is not. */
export function json<T = unknown>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

/** The fields of a run the tests read. */
export interface RunJson {
  id: string;
  flow: string;
  version: string;
  key: string | null;
  status: string;
  args: Record<string, unknown>;
  result: unknown;
  failure: { type: string; message: string } | null;
  createdAt: string;
  finishedAt: string | null;
  atoms?: {
    index: number;
    name: string;
    state: string;
    attempt: number;
    execution: number;
    result: unknown;
    failure: { message: string } | null;
  }[];
  events?: { kind: string; atom: number | null; atomName?: string; fromState: string | null; toState: string | null }[];
}
