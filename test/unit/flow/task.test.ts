import { describe, it, expect } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import { checkedTask, task } from '../../../src/flow/task.js';
import type { TaskOptions } from '../../../src/flow/types.js';
import { expectError } from './helpers.js';

const execute = () => 'done';
const make = (options: Record<string, unknown>) => () => task({ name: 'a', execute, ...options } as TaskOptions);

describe('task()', () => {
  it('normalises a minimal task', () => {
    const a = task({ name: 'a', execute });
    expect(a).toEqual({
      type: 'task',
      name: 'a',
      execute,
      revert: undefined,
      requires: [],
      provides: [],
      rebind: {},
      inject: {},
      retry: undefined,
      timeoutMs: undefined,
      remote: false,
    });
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.requires)).toBe(true);
  });

  it('marks a task remote, and rejects a remote flag that is not a boolean', () => {
    expect(task({ name: 'r', execute, remote: true }).remote).toBe(true);
    expect(task({ name: 'r', execute, remote: true }).remoteQueue).toBeUndefined();
    expect(() => task({ name: 'r', execute, remote: 'yes' as unknown as boolean })).toThrow(
      "Invalid remote of task 'r': must be true, false or { queue: '<name>' }, got 'yes'.",
    );
  });

  it('puts a remote task on a shared queue, checked like a task name', () => {
    const shared = task({ name: 'r', execute, remote: { queue: 'noop-pool' } });
    expect([shared.remote, shared.remoteQueue]).toEqual([true, 'noop-pool']);
    // a definition made by hand is checked and kept as task() makes it
    expect(checkedTask({ ...shared }).remoteQueue).toBe('noop-pool');
    const bad = (remote: unknown) => () => task({ name: 'r', execute, remote: remote as { queue: string } });
    const rule = 'must be a letter followed by at most 127 letters, digits, "_", "." or "-"';
    expect(bad({ queue: '' })).toThrow(`Invalid remote.queue of task 'r': ${rule}, got ''.`);
    expect(bad({ queue: 5 })).toThrow(`Invalid remote.queue of task 'r': ${rule}, got a number (5).`);
    expect(bad({})).toThrow(`Invalid remote.queue of task 'r': ${rule}, got undefined.`);
    expect(bad({ queue: 'x'.repeat(129) })).toThrow(`Invalid remote.queue of task 'r'`);
    expect(bad({ queue: 'pool', priority: 1 })).toThrow("Unknown option 'priority' in remote of task 'r' (known: queue).");
    expect(bad(['pool'])).toThrow("Invalid remote of task 'r': must be true, false or { queue: '<name>' }");
    const thrown = (() => {
      try {
        bad({ queue: 'a b' })();
      } catch (e) {
        return e;
      }
    })();
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).details).toEqual({ task: 'r', field: 'remote.queue' });
  });

  it('keeps every option, normalised', () => {
    const revert = () => undefined;
    const a = task({
      name: 'resize.v2',
      execute,
      revert,
      requires: ['image', 'size', 'image'],
      provides: 'thumb',
      rebind: { image: 'uploaded' },
      inject: { quality: 90 },
      retry: { attempts: 5, backoffMs: 250 },
      timeoutMs: 1000,
    });
    expect(a.requires).toEqual(['image', 'size']);
    expect(a.provides).toEqual(['thumb']);
    expect(a.rebind).toEqual({ image: 'uploaded' });
    expect(a.inject).toEqual({ quality: 90 });
    expect(a.revert).toBe(revert);
    expect(a.retry).toEqual({ attempts: 5, backoffMs: 250, factor: 2, maxBackoffMs: 30000, jitter: 0.2 });
    expect(a.timeoutMs).toBe(1000);
  });

  it('turns a number of attempts into a full policy', () => {
    expect(task({ name: 'a', execute, retry: 1 }).retry).toEqual({
      attempts: 1,
      backoffMs: 100,
      factor: 2,
      maxBackoffMs: 30000,
      jitter: 0.2,
    });
    expect(task({ name: 'a', execute, retry: {} }).retry?.attempts).toBe(3);
  });

  it('accepts names at the edges of the rule', () => {
    expect(task({ name: 'A', execute }).name).toBe('A');
    expect(task({ name: `a${'b'.repeat(127)}`, execute }).name).toHaveLength(128);
    expect(task({ name: 'a-b_c.d9', execute }).name).toBe('a-b_c.d9');
  });

  it.each([
    ['', "Invalid task name '': must be"],
    ['9lives', "Invalid task name '9lives'"],
    ['has space', "Invalid task name 'has space'"],
    [`a${'b'.repeat(128)}`, 'Invalid task name'],
    ['bad\u0000null', "'bad\\u{0}null'"],
    ['new\nline', "'new\\u{a}line'"],
    ['evil\u202Eeman', "'evil\\u{202e}eman'"],
    ['ünï', "'\\u{fc}n\\u{ef}'"],
  ])('rejects the name %j', (name, message) => {
    const error = expectError(() => task({ name, execute }), 'STOKER_FLOW_INVALID');
    expect(error.message).toContain(message);
    // Messages never carry the raw control or bidi characters.
    const raw = [...error.message].filter((c) => c < ' ' || (c >= '\u202a' && c <= '\u202e'));
    expect(raw).toEqual([]);
  });

  it('rejects a non-string name and a missing options object', () => {
    expect(expectError(() => task({ name: 42, execute } as unknown as TaskOptions), 'STOKER_FLOW_INVALID').message).toBe(
      'Invalid task name a number (42): must be a letter followed by at most 127 letters, digits, "_", "." or "-".',
    );
    expect(expectError(() => task(undefined as unknown as TaskOptions), 'STOKER_FLOW_INVALID').message).toBe(
      'Task options must be a plain object.',
    );
  });

  it('rejects unknown options, naming them', () => {
    const error = expectError(make({ provide: 'x' }), 'STOKER_FLOW_INVALID');
    expect(error.message).toBe(
      "Unknown option 'provide' in task options (known: name, execute, revert, requires, provides, rebind, inject, retry, timeoutMs, remote).",
    );
  });

  it('rejects execute and revert that are not functions', () => {
    expect(expectError(make({ execute: 'run' }), 'STOKER_FLOW_INVALID').message).toBe("Invalid execute of task 'a': must be a function.");
    expect(expectError(make({ revert: {} }), 'STOKER_FLOW_INVALID').message).toContain("Invalid revert of task 'a'");
  });

  it('rejects bad requires and provides', () => {
    expect(expectError(make({ requires: 'x' }), 'STOKER_FLOW_INVALID').message).toBe(
      "Invalid requires of task 'a': must be an array of value names.",
    );
    expect(expectError(make({ requires: ['ok', '__proto__'] }), 'STOKER_FLOW_INVALID').message).toContain(
      "value name in requires of task 'a' '__proto__'",
    );
    expect(expectError(make({ provides: ['x', 'x'] }), 'STOKER_FLOW_INVALID').message).toBe(
      "Invalid provides of task 'a': 'x' is listed twice.",
    );
    expectError(make({ provides: 7 }), 'STOKER_FLOW_INVALID');
  });

  it('rejects rebind of an argument the task does not require, and rebind plus inject', () => {
    expect(expectError(make({ requires: ['x'], rebind: { y: 'z' } }), 'STOKER_FLOW_INVALID').message).toBe(
      "Invalid rebind of task 'a': 'y' is not in requires (x).",
    );
    expect(expectError(make({ requires: ['x'], rebind: { x: 'z' }, inject: { x: 1 } }), 'STOKER_FLOW_INVALID').message).toBe(
      "Invalid inject of task 'a': 'x' is both injected and rebound; choose one.",
    );
    expectError(make({ requires: ['x'], rebind: { x: 5 } }), 'STOKER_FLOW_INVALID');
  });

  it('copies injected constants and rejects what is not JSON', () => {
    const config = { sizes: [1, 2] };
    const a = task({ name: 'a', execute, inject: { config } });
    config.sizes.push(3);
    expect(a.inject).toEqual({ config: { sizes: [1, 2] } });
    expect(Object.isFrozen((a.inject.config as { sizes: number[] }).sizes)).toBe(true);

    expect(expectError(make({ inject: { when: new Date(0) } }), 'STOKER_FLOW_INVALID').message).toBe(
      "inject.when of task 'a' is a Date, which is not JSON.",
    );
    expect(expectError(make({ inject: { n: { deep: [1, Number.NaN] } } }), 'STOKER_FLOW_INVALID').message).toBe(
      "inject.n of task 'a' at .deep[1] is NaN, which JSON cannot hold.",
    );
    expectError(make({ inject: { f: () => 1 } }), 'STOKER_FLOW_INVALID');
    expectError(make({ inject: { u: undefined } }), 'STOKER_FLOW_INVALID');
    expectError(make({ inject: JSON.parse('{"x":{"__proto__":{"polluted":true}}}') as object }), 'STOKER_FLOW_INVALID');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(expectError(make({ inject: { cyclic } }), 'STOKER_FLOW_INVALID').message).toContain('nests deeper than 64 levels');
  });

  it.each([
    [0, 'attempts must be an integer >= 1, got a number (0)'],
    [1.5, 'attempts must be an integer >= 1'],
    [{ attempts: -1 }, 'attempts must be an integer >= 1'],
    [{ factor: 0.5 }, "Invalid retry.factor of task 'a': must be a finite number >= 1"],
    [{ jitter: 2 }, "Invalid retry.jitter of task 'a': must be a finite number between 0 and 1"],
    [{ backoffMs: Infinity }, 'retry.backoffMs'],
    [{ maxBackoffMs: -5 }, 'retry.maxBackoffMs'],
    [{ attempt: 3 }, "Unknown option 'attempt' in retry of task 'a'"],
    ['3', "Retry of task 'a' must be a plain object."],
  ])('rejects retry %j', (retry, message) => {
    expect(expectError(make({ retry }), 'STOKER_FLOW_INVALID').message).toContain(message);
  });

  it.each([0, -1, 1.5, 2 ** 31, Number.NaN, '100'])('rejects timeoutMs %j', (timeoutMs) => {
    expect(expectError(make({ timeoutMs }), 'STOKER_FLOW_INVALID').message).toContain(
      "Invalid timeoutMs of task 'a': must be an integer between 1 and 2147483647",
    );
  });
});
