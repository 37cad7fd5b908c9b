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

/**
 * The status reason of a resource whose nested stack (a template resource, OS::Heat::Stack,
 * a ResourceGroup's or ResourceChain's members) ended failed with `nestedReason`, as Heat
 * words it: the nested stack's `Resource <ACTION> failed: <Error>: <path>: <message>` becomes
 * `<Error>: resources.<name>.<path>: <message>`, numbered members shown as `[n]`, so that the
 * parent stack's reason reads `Resource CREATE failed: ValueError:
 * resources.group1.resources[0].resources.oops: Test Resource failed oops` (never the nested
 * prefix twice). A reason of another shape (`Timed out`) is kept, after the resource's path.
 *
 * @example
 * ```ts
 * nestedFailureReason('Resource CREATE failed: ValueError: resources.oops: Test Resource failed oops', 'group1', 'CREATE');
 * // 'ValueError: resources.group1.resources.oops: Test Resource failed oops'
 * ```
 */
export function nestedFailureReason(nestedReason: string, resourceName: string, nestedAction: string): string {
  let error = '';
  let message = nestedReason;
  let inner: string[] = [];
  if (nestedReason.includes(`Resource ${nestedAction.toUpperCase()} failed: `)) {
    const parts = nestedReason.split(':').map((p) => p.trim());
    if (parts.length >= 4) {
      error = parts[1]!;
      message = parts.slice(3).join(': ');
      inner = parts[2]!.split('.');
    }
  }
  let path = '';
  for (const item of ['resources', resourceName, ...inner]) {
    if (/^\d+$/.test(item)) path += `[${item}]`;
    else path += path === '' ? item : `.${item}`;
  }
  return `${error === '' ? '' : `${error}: `}${path === '' ? '' : `${path}: `}${message}`;
}
