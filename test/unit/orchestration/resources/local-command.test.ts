/**
 * Stoker::Local::Command with real processes (this Node binary running `-e` scripts): refused
 * unless allowed, no shell, its environment, exit codes, and a timeout or an abort killing the
 * command and what it started before the operation ends.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../../../src/core/json.js';
import {
  MemoryConfigStore,
  ResourceFailure,
  createBuiltinRegistry,
  deterministicUuid,
  isReplace,
  needsReplacement,
  resolveAllAttributes,
  resourceStatusReason,
  type OperationContext,
} from '../../../../src/orchestration/resources/index.js';
import { SECRET, harness, type Harness } from './helpers.js';

const TYPE = 'Stoker::Local::Command';
const NODE = process.execPath;
const dir = mkdtempSync(join(tmpdir(), 'stoker-local-command-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A command running `script` in this Node binary. */
const node = (script: string, ...args: string[]): string[] => [NODE, '-e', script, ...args];

/** Prints the STOKER_* variables and a few others as JSON. */
const PRINT_ENV = `const pick = (k) => process.env[k] ?? null;
console.log(JSON.stringify(Object.fromEntries(
  ['STOKER_ACTION', 'STOKER_IDEMPOTENCY_KEY', 'STOKER_PHYSICAL_ID', 'STOKER_RESOURCE_NAME', 'STOKER_STACK_NAME', 'STOKER_STACK_ID',
   'BASE_ONLY', 'OVERRIDDEN', 'OWN', 'HOME'].map((k) => [k, pick(k)]))));`;

/** A harness whose registry runs local commands, over a small base environment. */
function enabled(): Harness {
  const h = harness();
  const registry = createBuiltinRegistry({
    secret: SECRET,
    configs: new MemoryConfigStore(),
    allowLocalCommands: true,
    localCommandEnv: { BASE_ONLY: 'base', OVERRIDDEN: 'base', UNSET: undefined },
  });
  return { ...h, registry, type: (name) => registry.get(name) };
}

async function failure(p: Promise<unknown>): Promise<ResourceFailure> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ResourceFailure) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

/** Whether `pid` is a live process (a zombie, exited but not reaped by its new parent, is not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true;
  }
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts a grandchild that runs for a minute, writes both pids to `file`, then waits (ignoring SIGTERM when told to). */
const PARENT_AND_CHILD = (file: string, ignoreTerm: boolean): string => `
const { spawn } = require('node:child_process');
const { writeFileSync } = require('node:fs');
${ignoreTerm ? "process.on('SIGTERM', () => {});" : ''}
const child = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setTimeout(() => {}, 60000)"], { stdio: 'ignore' });
writeFileSync(${JSON.stringify(file)}, JSON.stringify([process.pid, child.pid]));
setTimeout(() => {}, 60000);`;

describe('Stoker::Local::Command', () => {
  it('is registered but refuses to run anything unless allowed, naming --allow-local-commands', async () => {
    const h = harness();
    const type = h.type(TYPE);
    expect(h.registry.show(TYPE).properties['create']).toMatchObject({ type: 'list', required: true });
    const marker = join(dir, 'must-not-exist');
    const raw = {
      create: node(`require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`),
      update: node('1'),
      delete: node('1'),
      env: { A: '1' },
    };
    const ctx = h.ctx(type, raw, { resourceName: 'cmd' });
    const e = await failure(type.create(ctx));
    expect(e.errorType).toBe('Forbidden');
    expect(e.message).toBe(
      'Local commands are disabled: cmd (Stoker::Local::Command) cannot run its create command. Start the engine with --allow-local-commands (the allowLocalCommands option) to let templates run programs on its machine.',
    );
    expect(resourceStatusReason(e, 'resources.cmd')).toMatch(/^Forbidden: resources\.cmd: Local commands are disabled/);
    expect(existsSync(marker)).toBe(false);

    const stored = { ...ctx, physicalId: 'some-id', data: { stdout: '' } };
    expect((await failure(type.update(h.updateCtx(type, stored, { ...raw, env: { A: '2' } })))).message).toContain(
      'cannot run its update command',
    );
    expect((await failure(type.delete(stored))).message).toContain('cannot run its delete command');
    // a resource whose create was refused has nothing to undo: its delete (a rollback) completes
    await expect(type.delete({ ...ctx, physicalId: null })).resolves.toBeUndefined();
    // an update that runs nothing completes too
    expect(await type.update(h.updateCtx(type, stored, { ...raw, timeout: 10 }))).toEqual({ physicalId: 'some-id', data: { stdout: '' } });
  });

  it('create runs the argv without a shell, with the STOKER_* variables over the base env and env; stdout is the attribute', async () => {
    const h = enabled();
    const type = h.type(TYPE);
    const ctx = h.ctx(type, { create: node(PRINT_ENV), env: { OVERRIDDEN: 'own', OWN: 42 } }, { resourceName: 'cmd' });
    const result = await type.create(ctx);
    const id = deterministicUuid(ctx.idempotencyKey, TYPE);
    expect(result.physicalId).toBe(id);
    expect(JSON.parse(result.data['stdout'] as string)).toEqual({
      STOKER_ACTION: 'CREATE',
      STOKER_IDEMPOTENCY_KEY: 'run-1/create.r/1',
      STOKER_PHYSICAL_ID: id,
      STOKER_RESOURCE_NAME: 'cmd',
      STOKER_STACK_NAME: 'web',
      STOKER_STACK_ID: 'stack-id-1',
      BASE_ONLY: 'base',
      OVERRIDDEN: 'own',
      OWN: '42',
      HOME: null, // the engine's own environment is not passed on
    });
    expect(await type.create(ctx)).toEqual(result); // executed again: the same id and output

    const literal = h.ctx(type, { create: node('console.log(JSON.stringify(process.argv.slice(1)))', '$HOME; echo hi', '*', '"q"') });
    const echoed = await type.create(literal);
    expect(JSON.parse(echoed.data['stdout'] as string)).toEqual(['$HOME; echo hi', '*', '"q"']);
    expect(await resolveAllAttributes(type, { ...literal, ...echoed })).toEqual({ stdout: echoed.data['stdout'] });

    const cwd = h.ctx(type, { create: node('process.stdout.write("  " + process.cwd() + "\\n\\n")'), cwd: dir });
    expect((await type.create(cwd)).data).toEqual({ stdout: dir });
  });

  it('a non-zero exit, a signal or a missing program fails the operation with the code and the end of stderr', async () => {
    const h = enabled();
    const type = h.type(TYPE);
    const exit3 = h.ctx(type, { create: node('console.error("first line"); console.error("boom: disk full"); process.exit(3)') });
    const e = await failure(type.create(exit3));
    expect(e.errorType).toBe('CommandError');
    expect(e.message).toBe(`create command ${NODE} exited with code 3; stderr: first line boom: disk full`);

    const noisy = h.ctx(type, { create: node('process.stderr.write("x".repeat(100000) + "THE END"); process.exit(1)') });
    const tail = (await failure(type.create(noisy))).message;
    expect(tail).toMatch(/; stderr: …x+THE END$/);
    expect(tail.length).toBeLessThan(700);

    const killed = h.ctx(type, { create: node('process.kill(process.pid, "SIGKILL")') });
    expect((await failure(type.create(killed))).message).toBe(`create command ${NODE} was killed by SIGKILL`);

    const missing = h.ctx(type, { create: [join(dir, 'no-such-program'), 'x'] });
    const m = await failure(type.create(missing));
    expect(m.errorType).toBe('CommandError');
    expect(m.message).toContain('create command');
    expect(m.message).toContain('could not be started: spawn');
    expect(m.message).toContain('ENOENT');
  });

  it('update runs the update command when update, env or cwd changed; without one such a change replaces the resource', async () => {
    const h = enabled();
    const type = h.type(TYPE);
    const raw = { create: node('console.log("created")'), update: node(PRINT_ENV), env: { OWN: 'v1' } };
    const ctx = h.ctx(type, raw);
    const stored = { ...ctx, ...(await type.create(ctx)) };
    expect(stored.data).toEqual({ stdout: 'created' });

    const update = h.updateCtx(type, stored, { ...raw, env: { OWN: 'v2' } });
    expect(needsReplacement(type, stored.properties, update.properties)).toEqual({ action: 'update', changed: ['env'] });
    const updated = await type.update(update);
    expect(isReplace(updated)).toBe(false);
    const seen = JSON.parse((updated as { data: JsonObject }).data['stdout'] as string) as JsonObject;
    expect(seen).toMatchObject({
      STOKER_ACTION: 'UPDATE',
      STOKER_PHYSICAL_ID: stored.physicalId,
      OWN: 'v2',
      STOKER_IDEMPOTENCY_KEY: 'run-2/update.r/1',
    });

    // only the timeout changed: nothing runs
    expect(await type.update(h.updateCtx(type, stored, { ...raw, timeout: 60 }))).toEqual({
      physicalId: stored.physicalId,
      data: stored.data,
    });

    const noUpdate = { create: raw.create, env: { OWN: 'v1' } };
    const plain = { ...h.ctx(type, noUpdate), physicalId: 'p', data: {} };
    const changedEnv = h.updateCtx(type, plain, { ...noUpdate, env: { OWN: 'v2' } });
    expect(needsReplacement(type, plain.properties, changedEnv.properties).action).toBe('replace');
    expect(isReplace(await type.update(changedEnv))).toBe(true);
    const changedCreate = h.updateCtx(type, stored, { ...raw, create: node('console.log("other")') });
    expect(needsReplacement(type, stored.properties, changedCreate.properties).action).toBe('replace');
    expect(isReplace(await type.update(changedCreate))).toBe(true);
  });

  it('delete runs the delete command with the physical id; without one it runs nothing', async () => {
    const h = enabled();
    const type = h.type(TYPE);
    const out = join(dir, 'deleted');
    const raw = {
      create: node('1'),
      delete: node(
        `require('node:fs').writeFileSync(${JSON.stringify(out)}, process.env.STOKER_ACTION + ' ' + process.env.STOKER_PHYSICAL_ID)`,
      ),
    };
    const ctx = h.ctx(type, raw);
    const stored = { ...ctx, ...(await type.create(ctx)) };
    await type.delete({ ...stored, idempotencyKey: 'run-3/delete.r/1' });
    expect(readFileSync(out, 'utf8')).toBe(`DELETE ${stored.physicalId}`);
    await expect(type.delete({ ...h.ctx(type, { create: node('1') }), physicalId: 'p' })).resolves.toBeUndefined();
  });

  it('a timeout kills the command and everything it started, then fails', async () => {
    const h = enabled();
    const type = h.type(TYPE);
    const pids = join(dir, 'timeout-pids');
    const ctx = h.ctx(type, { create: node(PARENT_AND_CHILD(pids, false)), timeout: 2 });
    const e = await failure(type.create(ctx));
    expect(e.errorType).toBe('Timeout');
    expect(e.message).toBe(`create command ${NODE} timed out after 2 s`);
    const [parent, child] = JSON.parse(readFileSync(pids, 'utf8')) as number[];
    expect(alive(parent!)).toBe(false);
    // the grandchild ignored SIGTERM: it got SIGKILL when its parent exited
    await until(() => !alive(child!), 2000);
  });

  it('an abort kills the command (SIGKILL after the grace when it ignores SIGTERM) and rejects with the abort reason', async () => {
    const h = enabled();
    const type = h.type(TYPE);
    const pids = join(dir, 'abort-pids');
    const controller = new AbortController();
    const ctx: OperationContext = h.ctx(type, { create: node(PARENT_AND_CHILD(pids, true)) }, { signal: controller.signal });
    const pending = type.create(ctx);
    await until(() => existsSync(pids));
    const [parent, child] = JSON.parse(readFileSync(pids, 'utf8')) as number[];
    expect(alive(parent!) && alive(child!)).toBe(true);
    const reason = new Error('stack cancelled');
    const started = Date.now();
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900); // it ignored SIGTERM: SIGKILL came after the grace
    expect(alive(parent!)).toBe(false);
    await until(() => !alive(child!), 2000);
    // already aborted: nothing starts
    const marker = join(dir, 'after-abort');
    await expect(
      type.create({
        ...ctx,
        properties: { ...ctx.properties, create: node(`require('node:fs').writeFileSync(${JSON.stringify(marker)}, '')`) },
      }),
    ).rejects.toBe(reason);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses at validation an empty program, NUL characters, Stoker’s own variables and non-text env values', () => {
    const h = harness();
    const type = h.type(TYPE);
    const props = (raw: JsonObject) => () => h.ctx(type, raw);
    expect(props({})).toThrow('Property create not assigned');
    expect(props({ create: [] })).toThrow('properties.create');
    expect(props({ create: [''] })).toThrow('resources.r.properties.create: the program (the first item) must not be empty');
    expect(props({ create: ['x', 'a\0b'] })).toThrow('must not contain NUL characters');
    expect(props({ create: ['x'], env: { STOKER_PHYSICAL_ID: 'x' } })).toThrow(
      'properties.env.STOKER_PHYSICAL_ID: Stoker sets STOKER_PHYSICAL_ID itself',
    );
    expect(props({ create: ['x'], env: { 'A=B': 'x' } })).toThrow('"A=B" is not a valid variable name');
    expect(props({ create: ['x'], env: { A: ['list'] } })).toThrow('properties.env.A: the value must be a string');
    expect(props({ create: ['x'], timeout: 0 })).toThrow('properties.timeout');
    expect(h.ctx(type, { create: ['/bin/true', 3] }).properties).toEqual({
      create: ['/bin/true', '3'],
      update: null,
      delete: null,
      env: null,
      cwd: null,
      timeout: 300,
    });
  });
});
