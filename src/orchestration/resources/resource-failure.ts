/**
 * A resource operation's failure with Heat's wording. Heat records a failed resource with the
 * reason `<ExceptionClass>: resources.<name>: <message>` (its ResourceFailure); a type throws a
 * {@link ResourceFailure} naming the class Heat would have raised (`ValueError` for
 * OS::Heat::TestResource's `fail`, `NotSupported` for an immutable property), and the engine
 * turns any error into the status reason with {@link resourceStatusReason}.
 */
import { StokerError, ValidationError } from '../../errors.js';

/**
 * A resource operation failed.
 *
 * @example
 * ```ts
 * throw new ResourceFailure('ValueError', 'Test Resource failed test1');
 * ```
 */
export class ResourceFailure extends StokerError {
  /** the Python exception class Heat would show (`ValueError`, `NotSupported`, `Error`, …) */
  readonly errorType: string;

  constructor(errorType: string, message: string, options: { cause?: unknown } = {}) {
    super('STOKER_RESOURCE_FAILED', message, { ...options, details: { errorType } });
    this.errorType = errorType;
  }
}

/**
 * The status reason of a resource whose operation threw `error`, as Heat words it. `path` is
 * the resource's path (`resources.test1`; a nested stack's resource has a longer one). A
 * validation error is Heat's `StackValidationFailed` (properties validated again at create
 * time: pass `''` as validateProperties' path then, for Heat's `Property error:
 * properties.length: …`); any other error shows its own name. Aborts (stack cancel, timeout)
 * are the engine's to word and are not special here.
 *
 * @example
 * ```ts
 * resourceStatusReason(new ResourceFailure('ValueError', 'Test Resource failed test1'), 'resources.test1');
 * // 'ValueError: resources.test1: Test Resource failed test1'
 * ```
 */
export function resourceStatusReason(error: unknown, path: string): string {
  let type: string;
  let message: string;
  if (error instanceof ResourceFailure) {
    type = error.errorType;
    message = error.message;
  } else if (error instanceof ValidationError) {
    type = 'StackValidationFailed';
    message = error.message;
  } else if (error instanceof Error) {
    type = error.name;
    message = error.message;
  } else {
    type = 'Error';
    message = String(error);
  }
  return path === '' ? `${type}: ${message}` : `${type}: ${path}: ${message}`;
}
