/**
 * Retry controllers: what happens when a sub-flow fails after its tasks have used up their
 * own retries. A controller becomes one atom (kind `retry`) at the start of its flow's
 * scope; the engine asks it whether to run the scope again, revert the scope, or revert
 * the whole run. Modelled on TaskFlow's `Times`, `ForEach`, `ParameterizedForEach`,
 * `AlwaysRevert` and `AlwaysRevertAll`.
 */
import type { JsonValue } from '../core/json.js';
import { ValidationError } from '../errors.js';
import { checkKnownKeys } from './check-options.js';
import { copyJsonValue } from './copy-json.js';
import type { RetryControllerSpec } from './graph.js';
import { checkName, quoteName } from './names.js';
import type { RetryController } from './types.js';

/** Options of the controllers that publish a value to the tasks of their scope. */
export interface RetryControllerOptions {
  /**
   * Value name under which the controller publishes its current value (the attempt number
   * for `times`, the current item for the for-each controllers). Visible only to atoms
   * inside the controlled flow.
   */
  provides?: string;
}

/**
 * Runs the scope up to `attempts` times in total (1 = never again), then reverts it.
 *
 * @example
 * ```ts
 * linear('boot', [createServer, waitActive], { retry: times(3, { provides: 'attempt' }) });
 * ```
 */
export function times(attempts: number, options: RetryControllerOptions = {}): RetryController {
  if (typeof attempts !== 'number' || !Number.isSafeInteger(attempts) || attempts < 1) {
    throw new ValidationError('STOKER_FLOW_INVALID', `times() needs an integer number of attempts >= 1, got ${quoteName(attempts)}.`, {
      details: { controller: 'times' },
    });
  }
  return controller({ kind: 'times', attempts }, options, 'times');
}

/**
 * Runs the scope once per value, in order, until one run succeeds; reverts the scope when
 * every value has failed. The current value is published under `provides`.
 *
 * @example
 * ```ts
 * linear('place', [createServer], { retry: forEach(['az-1', 'az-2'], { provides: 'zone' }) });
 * ```
 */
export function forEach(values: readonly JsonValue[], options: RetryControllerOptions = {}): RetryController {
  if (!Array.isArray(values) || values.length === 0) {
    throw new ValidationError('STOKER_FLOW_INVALID', 'forEach() needs a non-empty array of values to try.', {
      details: { controller: 'forEach' },
    });
  }
  const copy = copyJsonValue(values, 'values of forEach()') as JsonValue[];
  return controller({ kind: 'forEach', values: copy }, options, 'forEach');
}

/**
 * Like {@link forEach}, but the values are read at run time from the value named
 * `valuesName`: a run argument, or the result of an atom that runs before the controlled
 * flow. Until compilation resolves it, the spec's `valuesFrom` is `{ from: 'arg', name }`.
 *
 * @example
 * ```ts
 * linear('place', [createServer], {
 *   retry: parameterizedForEach('zones', { provides: 'zone' }),
 * });
 * ```
 */
export function parameterizedForEach(valuesName: string, options: RetryControllerOptions = {}): RetryController {
  const name = checkName(valuesName, 'value name of parameterizedForEach()');
  return controller({ kind: 'parameterizedForEach', valuesFrom: Object.freeze({ from: 'arg', name }) }, options, 'parameterizedForEach');
}

/**
 * Never retries: a failure reverts the scope, and the flow around it decides what next.
 *
 * @example
 * ```ts
 * linear('optional-cache', [warmCache], { retry: alwaysRevert() });
 * ```
 */
export function alwaysRevert(): RetryController {
  return controller({ kind: 'alwaysRevert' }, {}, 'alwaysRevert');
}

/**
 * Never retries: a failure in the scope reverts the whole run.
 *
 * @example
 * ```ts
 * linear('payment', [charge, ship], { retry: revertAll() });
 * ```
 */
export function revertAll(): RetryController {
  return controller({ kind: 'revertAll' }, {}, 'revertAll');
}

/** Controllers made in this copy of the module, so already checked. */
const checked = new WeakSet<RetryController>();

/**
 * Returns `value` if one of the functions above made it, else rebuilds it with them (so it
 * is checked the same way) or throws a `STOKER_FLOW_INVALID` ValidationError. Compilation
 * calls this for every controller, because a flows module may build them by hand.
 *
 * @example
 * ```ts
 * checkedController(times(2)); // the same object
 * checkedController({ type: 'retry', spec: { kind: 'times', attempts: 0 }, provides: undefined }); // throws
 * ```
 */
export function checkedController(value: RetryController, owner: string): RetryController {
  if (checked.has(value)) return value;
  const spec = value.spec;
  const options = value.provides === undefined ? {} : { provides: value.provides };
  switch (spec.kind) {
    case 'times':
      return times(spec.attempts, options);
    case 'forEach':
      return forEach(spec.values, options);
    case 'parameterizedForEach':
      // Before compilation the values are always named as an argument.
      if (spec.valuesFrom.from === 'arg') return parameterizedForEach(spec.valuesFrom.name, options);
      break;
    case 'alwaysRevert':
      return alwaysRevert();
    case 'revertAll':
      return revertAll();
  }
  throw new ValidationError('STOKER_FLOW_INVALID', `The retry controller of ${owner} is malformed.`, {
    details: { owner },
  });
}

function controller(spec: RetryControllerSpec, options: unknown, what: string): RetryController {
  const given = checkKnownKeys(options, ['provides'], `options of ${what}()`);
  const provides = given.provides === undefined ? undefined : checkName(given.provides, `value name in provides of ${what}()`);
  const made: RetryController = Object.freeze({ type: 'retry', spec: Object.freeze(spec), provides });
  checked.add(made);
  return made;
}
