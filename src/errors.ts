/**
 * Stoker's error type and its code registry.
 *
 * Every error Stoker raises is a {@link StokerError} with a string `code` from
 * {@link ErrorCodes}. `docs/errors.md` lists the same codes; a unit test keeps the two
 * in step. A user task's own failure is *data* (see `FailureRecord`), never one of
 * these classes.
 *
 * @example
 * ```ts
 * try { await engine.startRun('order', args); }
 * catch (e) { if (isStokerError(e) && e.code === 'STOKER_FLOW_NOT_FOUND') … }
 * ```
 */
import type { JsonValue } from './core/json.js';

/** The registry: code → one-line meaning (also the source of docs/errors.md). */
export const ErrorCodes = {
  STOKER_CONFIG_INVALID: 'An option or flag has a value Stoker cannot use.',
  STOKER_INPUT_INVALID_JSON: 'A JSON argument could not be parsed.',
  STOKER_INPUT_TOO_LARGE: 'An input, result or payload is larger than the configured limit.',
  STOKER_INPUT_TOO_DEEP: 'An input nests deeper than the configured limit.',
  STOKER_INPUT_FORBIDDEN_KEY: 'An input object uses a forbidden key such as __proto__.',
  STOKER_INPUT_UNSTORABLE_TEXT:
    'A string (or key) in an input, result or payload holds a NUL character or a lone UTF-16 surrogate, which not every database can store.',
  STOKER_INPUT_NOT_JSON:
    'An input, result or payload is not plain JSON: a function, BigInt, Date, Map, Set, class instance, NaN or a circular reference.',
  STOKER_FLOW_INVALID: 'A flow definition is malformed (bad name, bad option, wrong child).',
  STOKER_FLOW_CYCLE: 'A flow graph contains a dependency cycle.',
  STOKER_FLOW_DUPLICATE_NAME: 'Two atoms or flows in one flow share a name.',
  STOKER_FLOW_MISSING_REQUIREMENT:
    'An atom requires a value whose only provider cannot run before it (a later linear step, an unordered sibling).',
  STOKER_FLOW_DUPLICATE_PROVIDER: 'Two atoms provide the same value name.',
  STOKER_FLOW_TOO_LARGE: 'A flow has more atoms or dependency edges, or nests deeper, than the flow limits allow.',
  STOKER_FLOW_NOT_FOUND: 'No flow with that name (and version) is registered.',
  STOKER_FLOW_ALREADY_REGISTERED: 'A different flow is already registered under that name and version.',
  STOKER_FLOWS_MODULE_INVALID: 'A flows module could not be loaded or does not default-export an array of flows.',
  STOKER_PLUGINS_MODULE_INVALID: 'A plugins module could not be loaded or does not default-export an array of resource types.',
  STOKER_RUN_NOT_FOUND: 'No run with that id exists.',
  STOKER_RUN_KEY_CONFLICT: 'An active run with that key exists with different arguments.',
  STOKER_RUN_NOT_ACTIVE: 'The run has already finished.',
  STOKER_RUN_MISSING_ARGUMENT: 'A run was started without an argument its flow requires.',
  STOKER_RUN_WAIT_TIMEOUT: 'Waiting for a run (waitForRun, stoker run --wait) gave up after its timeout; the run itself goes on.',
  STOKER_STORE_URL_INVALID: 'A store URL is malformed or names an unknown scheme.',
  STOKER_STORE_UNREACHABLE: 'The database could not be reached or refused the credentials.',
  STOKER_STORE_QUERY_FAILED: 'A database statement failed.',
  STOKER_STORE_MIGRATION_CHECKSUM: 'An applied migration differs from the one shipped with this version.',
  STOKER_STORE_SCHEMA_TOO_NEW: 'The database was migrated by a newer Stoker version.',
  STOKER_STORE_NOT_MIGRATED:
    'The database has no Stoker tables, or lacks migrations this version needs; only stoker migrate and stoker engine create or upgrade them.',
  STOKER_STORE_CLOSED: 'The store was used after it was closed.',
  STOKER_AMQP_URL_INVALID: 'An AMQP URL (--amqp, STOKER_AMQP) is malformed or does not use the amqp: or amqps: scheme.',
  STOKER_AMQP_UNREACHABLE: 'The AMQP broker could not be reached in time, or the virtual host does not exist or is not allowed.',
  STOKER_AMQP_AUTH_FAILED: 'The AMQP broker refused the credentials.',
  STOKER_AMQP_KEY_INVALID: 'Remote tasks need a shared signing key (--amqp-key, STOKER_AMQP_KEY) of at least 16 characters.',
  STOKER_REMOTE_WAIT_UNSUPPORTED: 'A remote task called ctx.sleep, ctx.waitForSignal or ctx.runChild, which need the database.',
  STOKER_REMOTE_UNAVAILABLE: 'A remote task could not be sent: the AMQP connection is closed.',
  STOKER_ENGINE_FENCED: 'A write was rejected because the claim it was made under is no longer current.',
  STOKER_ENGINE_STOPPED: 'The engine was used after it was stopped.',
  STOKER_LOCK_NAME_INVALID: 'A lock name is empty, too long, or uses characters outside [A-Za-z0-9_.:/@-].',
  STOKER_LOCK_HOLDER_INVALID: 'A lock holder is empty, too long, or contains control characters.',
  STOKER_LOCK_TTL_INVALID: 'A lock duration (ttlMs, waitMs, renewMs) is not a whole number of milliseconds in its allowed range.',
  STOKER_LOCK_TOKEN_INVALID: 'A lock token is not a positive integer.',
  STOKER_LOCK_HELD: 'The lock is held (its lease has not run out) and did not become free in time.',
  STOKER_LOCK_LOST: 'The lock is no longer held under this token: its lease ran out, it was released, or it was acquired again.',
  STOKER_SIGNAL_NO_WAITER: 'No atom of the run waits for that signal name (it is stored for later waiters).',
  STOKER_TASK_TIMEOUT: 'A task ran longer than its timeoutMs.',
  STOKER_TASK_NOT_FOUND: 'A stored run references a task the registered flow no longer has.',
  STOKER_STEP_TYPE_NOT_FOUND: 'No step type with that name is registered.',
  STOKER_STEP_TYPE_CONFLICT: 'Another step type is already registered under that name.',
  STOKER_TEMPLATE_INVALID:
    'An orchestration template is malformed: bad YAML, an unknown section or key, a bad function argument or reference.',
  STOKER_TEMPLATE_TOO_LARGE: 'An orchestration template exceeds a limit: size, node count, aliases, resources or an evaluation budget.',
  STOKER_TEMPLATE_FUNCTION_UNKNOWN: "An intrinsic function is not available in the template's heat_template_version.",
  STOKER_TEMPLATE_EVALUATION_FAILED: 'An intrinsic function failed while evaluating a template value.',
  STOKER_TEMPLATE_CYCLE: 'The resources (or conditions) of a template depend on each other in a cycle.',
  STOKER_PARAMETER_INVALID: 'A stack parameter value is missing, unknown, of the wrong type, or breaks a constraint.',
  STOKER_ENVIRONMENT_INVALID: 'A stack environment is malformed: bad YAML, an unknown section, a bad registry entry.',
  STOKER_RESOURCE_TYPE_INVALID: 'A resource type plugin is malformed: a bad property or attribute schema.',
  STOKER_RESOURCE_TYPE_NOT_FOUND: 'No resource type with that name is registered.',
  STOKER_RESOURCE_TYPE_CONFLICT: 'Another resource type is already registered under that name.',
  STOKER_RESOURCE_PROPERTIES_INVALID:
    "A resource's properties do not fit its type: an unknown or missing property, a wrong type, a broken constraint.",
  STOKER_RESOURCE_ATTRIBUTE_INVALID: 'A resource type has no attribute of that name.',
  STOKER_RESOURCE_FAILED: 'A resource operation (create, update, delete, …) failed; the message is the reason Heat would show.',
  STOKER_STACK_NOT_FOUND: 'No stack with that name or id exists in the project.',
  STOKER_STACK_EXISTS: 'A stack with that name already exists in the project.',
  STOKER_STACK_ACTION_INVALID:
    'The stack is not in a state that allows this action (cancel with nothing in progress, update of a failed delete …).',
  STOKER_STACK_LIMIT: 'A stack limit was reached: stacks per project, resources per stack or nesting depth.',
  STOKER_RESOURCE_NOT_FOUND: 'The stack has no resource of that name.',
  STOKER_CLI_USAGE: 'The command line is malformed.',
  STOKER_UNEXPECTED:
    "The CLI's code for an error that is not one of Stoker's own (a bug, or a failure of the environment); it is shown with its stack.",
  STOKER_INTERNAL_INVARIANT: 'Stoker found its own state in a shape its rules exclude (a bug: please report it with the message).',
} as const;

/** One of the registered error codes. */
export type ErrorCode = keyof typeof ErrorCodes;

const brand = Symbol.for('stoker.error');

/** Base class of every error Stoker raises. `details` is always JSON-safe. */
export class StokerError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, JsonValue>;
  readonly [brand] = true;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, JsonValue> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, JsonValue> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Bad input: a definition, an argument, a flag. */
export class ValidationError extends StokerError {}
/** Something named does not exist. */
export class NotFoundError extends StokerError {}
/** The request contradicts stored state (key conflict, finished run, fenced write). */
export class ConflictError extends StokerError {}
/** The database failed or could not be reached. */
export class StoreError extends StokerError {}
/** A wake-up or remote-task transport (AMQP) failed. */
export class TransportError extends StokerError {}

/** True for any StokerError, even one from another copy of the package. */
export function isStokerError(value: unknown): value is StokerError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}
