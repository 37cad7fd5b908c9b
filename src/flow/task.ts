/**
 * `task()`: the smallest unit of a flow. Everything about a task is checked here, when the
 * module defining it is loaded, so a typo fails before any run starts.
 */
import type { JsonValue } from '../core/json.js';
import { ValidationError } from '../errors.js';
import { checkKnownKeys, isPlainObject } from './check-options.js';
import { copyJsonValue } from './copy-json.js';
import type { TaskRetrySpec } from './graph.js';
import { checkName, isValidName, NAME_RULE, quoteName } from './names.js';
import type { TaskDefinition, TaskFn, TaskOptions } from './types.js';

/** Defaults of a task retry policy given as an object. */
export const TASK_RETRY_DEFAULTS: Readonly<TaskRetrySpec> = Object.freeze({
  attempts: 3,
  backoffMs: 100,
  factor: 2,
  maxBackoffMs: 30_000,
  jitter: 0.2,
});

/**
 * Longest accepted `timeoutMs`: Node's timers overflow above 2^31-1 ms (about 24.8 days)
 * and then fire at once, which would turn a long timeout into an immediate one.
 */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** Definitions made by {@link task} in this copy of the module, so already checked. */
const checked = new WeakSet<TaskDefinition>();

const TASK_OPTIONS = ['name', 'execute', 'revert', 'requires', 'provides', 'rebind', 'inject', 'retry', 'timeoutMs', 'remote'];
const RETRY_OPTIONS = ['attempts', 'backoffMs', 'factor', 'maxBackoffMs', 'jitter'];
const REMOTE_OPTIONS = ['queue'];

/**
 * Defines a task. Inputs are the names in `requires` (each read from the value of the same
 * name, or from `rebind[name]`) plus the keys of `inject` (constants). The result is
 * published under `provides`: one name for the whole result, several for the fields of an
 * object result or the elements of an array result.
 *
 * `retry` is a number of attempts (1 = no retry) or a policy object whose missing fields
 * take {@link TASK_RETRY_DEFAULTS} (3 attempts, 100 ms doubling up to 30 s, 20 % jitter).
 *
 * Throws a `STOKER_FLOW_INVALID` ValidationError naming the task for any malformed option.
 *
 * @example
 * ```ts
 * const resize = task({
 *   name: 'resize',
 *   requires: ['image', 'size'],
 *   rebind: { image: 'uploadedImage' },
 *   inject: { quality: 90 },
 *   provides: 'thumbnail',
 *   retry: { attempts: 5, backoffMs: 500 },
 *   timeoutMs: 30_000,
 *   execute: async ({ image, size, quality }) => makeThumbnail(image, size, quality),
 * });
 * ```
 */
export function task<const Requires extends string = string, const Injects extends string = never>(
  options: TaskOptions<Requires, Injects>,
): TaskDefinition {
  const raw = checkKnownKeys(options, TASK_OPTIONS, 'task options');
  const name = checkName(raw.name, 'task name');
  const where = `task ${quoteName(name)}`;
  const fail: Fail = (field, problem) => {
    throw new ValidationError('STOKER_FLOW_INVALID', `Invalid ${field} of ${where}: ${problem}.`, {
      details: { task: name, field },
    });
  };

  if (typeof raw.execute !== 'function') fail('execute', 'must be a function');
  if (raw.revert !== undefined && typeof raw.revert !== 'function') fail('revert', 'must be a function when given');
  const remoteQueue = normalizeRemote(raw.remote, fail, where);

  const requires = nameList(raw.requires, `value name in requires of ${where}`, fail, 'requires');
  // Listing a requirement twice is harmless; a value published twice is not (see below).
  const uniqueRequires = [...new Set(requires)];

  const providesList = typeof raw.provides === 'string' ? [raw.provides] : raw.provides;
  const provides = nameList(providesList, `value name in provides of ${where}`, fail, 'provides');
  const repeated = provides.find((p, i) => provides.indexOf(p) !== i);
  if (repeated !== undefined) fail('provides', `${quoteName(repeated)} is listed twice`);

  const rebind: Record<string, string> = {};
  if (raw.rebind !== undefined) {
    if (!isPlainObject(raw.rebind)) fail('rebind', 'must be an object mapping argument names to value names');
    for (const [argument, source] of Object.entries(raw.rebind as Record<string, unknown>)) {
      checkName(argument, `argument name in rebind of ${where}`);
      const from = checkName(source, `value name in rebind of ${where}`);
      // A rebind of an argument the task does not require is almost always a typo.
      if (!uniqueRequires.includes(argument)) {
        fail('rebind', `${quoteName(argument)} is not in requires (${uniqueRequires.join(', ') || 'empty'})`);
      }
      rebind[argument] = from;
    }
  }

  const inject: Record<string, JsonValue> = {};
  if (raw.inject !== undefined) {
    if (!isPlainObject(raw.inject)) fail('inject', 'must be an object mapping argument names to JSON constants');
    for (const [argument, value] of Object.entries(raw.inject as Record<string, unknown>)) {
      checkName(argument, `argument name in inject of ${where}`);
      if (Object.hasOwn(rebind, argument)) {
        fail('inject', `${quoteName(argument)} is both injected and rebound; choose one`);
      }
      inject[argument] = copyJsonValue(value, `inject.${argument} of ${where}`);
    }
  }

  const definition: TaskDefinition = {
    type: 'task',
    name,
    execute: raw.execute as TaskFn,
    revert: raw.revert as TaskFn | undefined,
    requires: Object.freeze(uniqueRequires),
    provides: Object.freeze(provides),
    rebind: Object.freeze(rebind),
    inject: Object.freeze(inject),
    retry: normalizeRetry(raw.retry, fail, where),
    timeoutMs: normalizeTimeout(raw.timeoutMs, fail),
    remote: raw.remote === true || remoteQueue !== undefined,
    ...(remoteQueue !== undefined ? { remoteQueue } : {}),
  };
  Object.freeze(definition);
  checked.add(definition);
  return definition;
}

/**
 * Returns `definition` if {@link task} made it, else checks it as `task()` would and
 * returns the normalised copy. Compilation calls this for every task, because a flows
 * module may build definitions by hand or with another copy of this package.
 *
 * @example
 * ```ts
 * checkedTask(task({ name: 'a', execute })); // the same object
 * checkedTask({ type: 'task', name: 'bad name', … }); // throws STOKER_FLOW_INVALID
 * ```
 */
export function checkedTask(definition: TaskDefinition): TaskDefinition {
  if (checked.has(definition)) return definition;
  const { name, execute, revert, requires, provides, rebind, inject, retry, timeoutMs, remote, remoteQueue } = definition;
  return task({
    name,
    execute,
    revert,
    requires: [...requires],
    provides: [...provides],
    rebind: { ...rebind },
    inject: { ...inject },
    retry: retry === undefined ? undefined : { ...retry },
    timeoutMs,
    ...(remoteQueue !== undefined ? { remote: { queue: remoteQueue } } : remote === true ? { remote } : {}),
  });
}

export type Fail = (field: string, problem: string) => never;

/**
 * The shared queue of `remote: { queue }`, undefined for `true`, `false` or no `remote`
 * (a remote task then has the queue named after it: docs/amqp.md, "Remote tasks").
 */
function normalizeRemote(value: unknown, fail: Fail, where: string): string | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  if (!isPlainObject(value)) return fail('remote', `must be true, false or { queue: '<name>' }, got ${quoteName(value)}`);
  const given = checkKnownKeys(value, REMOTE_OPTIONS, `remote of ${where}`);
  if (!isValidName(given.queue)) return fail('remote.queue', `must be ${NAME_RULE}, got ${quoteName(given.queue)}`);
  return given.queue;
}

function nameList(value: unknown, what: string, fail: Fail, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return fail(field, 'must be an array of value names');
  return value.map((item) => checkName(item, what));
}

export function normalizeRetry(value: unknown, fail: Fail, where: string): TaskRetrySpec | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') {
    checkAttempts(value, fail);
    return Object.freeze({ ...TASK_RETRY_DEFAULTS, attempts: value });
  }
  const given = checkKnownKeys(value, RETRY_OPTIONS, `retry of ${where}`);
  const spec: TaskRetrySpec = { ...TASK_RETRY_DEFAULTS };
  if (given.attempts !== undefined) spec.attempts = checkAttempts(given.attempts, fail);
  if (given.backoffMs !== undefined) {
    spec.backoffMs = checkNumber(given.backoffMs, 'retry.backoffMs', 0, Infinity, fail);
  }
  if (given.factor !== undefined) spec.factor = checkNumber(given.factor, 'retry.factor', 1, Infinity, fail);
  if (given.maxBackoffMs !== undefined) {
    spec.maxBackoffMs = checkNumber(given.maxBackoffMs, 'retry.maxBackoffMs', 0, Infinity, fail);
  }
  if (given.jitter !== undefined) spec.jitter = checkNumber(given.jitter, 'retry.jitter', 0, 1, fail);
  return Object.freeze(spec);
}

function checkAttempts(value: unknown, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    return fail('retry', `attempts must be an integer >= 1, got ${quoteName(value)}`);
  }
  return value;
}

function checkNumber(value: unknown, field: string, min: number, max: number, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `between ${min} and ${max}`;
    return fail(field, `must be a finite number ${range}, got ${quoteName(value)}`);
  }
  return value;
}

export function normalizeTimeout(value: unknown, fail: Fail): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_TIMEOUT_MS) {
    return fail('timeoutMs', `must be an integer between 1 and ${MAX_TIMEOUT_MS}, got ${quoteName(value)}`);
  }
  return value;
}
