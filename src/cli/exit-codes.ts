/**
 * Exit codes of the `stoker` command, mapped from error codes in this one place (only
 * cli/ knows exit codes). docs/errors.md and `stoker --help` show the same table.
 */
import { ConflictError, NotFoundError, ValidationError, isStokerError, type ErrorCode } from '../errors.js';

export const ExitCode = {
  /** the command did what was asked */
  OK: 0,
  /** anything not listed below (a query failed, an unexpected error) */
  FAILURE: 1,
  /** usage: unknown command or flag, bad flag value, malformed JSON, bad store URL, missing run argument */
  USAGE: 2,
  /** `run --wait`: the run finished but not SUCCESS (REVERTED, FAILED, CANCELLED, SUPERSEDED) */
  RUN_UNSUCCESSFUL: 3,
  /** the database could not be reached or refused the credentials */
  STORE_UNREACHABLE: 4,
  /** no flow with that name (and version) is in the flows module */
  FLOW_NOT_FOUND: 5,
  /** no run with that id */
  RUN_NOT_FOUND: 6,
  /** the --flows module is missing, does not load, or does not default-export an array of flows */
  FLOWS_MODULE_INVALID: 7,
  /** the request contradicts stored state: the run already ended, a key is used with other arguments */
  CONFLICT: 8,
  /** the AMQP broker (--amqp) could not be reached in time or refused the credentials */
  BROKER_UNREACHABLE: 9,
  /** `run --wait --timeout-ms`: gave up waiting (the run goes on) */
  TIMEOUT: 124,
  /** `run --wait` interrupted by SIGINT/SIGTERM (the run goes on); a second signal during a graceful stop exits with 128 + its number */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Error codes whose exit code is not the one of their error class. */
const BY_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  STOKER_CLI_USAGE: ExitCode.USAGE,
  STOKER_RUN_WAIT_TIMEOUT: ExitCode.TIMEOUT,
  STOKER_CONFIG_INVALID: ExitCode.USAGE,
  STOKER_INPUT_INVALID_JSON: ExitCode.USAGE,
  STOKER_INPUT_TOO_LARGE: ExitCode.USAGE,
  STOKER_INPUT_TOO_DEEP: ExitCode.USAGE,
  STOKER_INPUT_FORBIDDEN_KEY: ExitCode.USAGE,
  STOKER_INPUT_NOT_JSON: ExitCode.USAGE,
  STOKER_INPUT_UNSTORABLE_TEXT: ExitCode.USAGE,
  STOKER_RUN_MISSING_ARGUMENT: ExitCode.USAGE,
  STOKER_STORE_URL_INVALID: ExitCode.USAGE,
  STOKER_STORE_UNREACHABLE: ExitCode.STORE_UNREACHABLE,
  STOKER_AMQP_URL_INVALID: ExitCode.USAGE,
  STOKER_AMQP_UNREACHABLE: ExitCode.BROKER_UNREACHABLE,
  STOKER_AMQP_AUTH_FAILED: ExitCode.BROKER_UNREACHABLE,
  STOKER_FLOW_NOT_FOUND: ExitCode.FLOW_NOT_FOUND,
  STOKER_STEP_TYPE_NOT_FOUND: ExitCode.FLOW_NOT_FOUND,
  STOKER_RUN_NOT_FOUND: ExitCode.RUN_NOT_FOUND,
  STOKER_FLOWS_MODULE_INVALID: ExitCode.FLOWS_MODULE_INVALID,
  STOKER_PLUGINS_MODULE_INVALID: ExitCode.FLOWS_MODULE_INVALID,
  STOKER_RUN_NOT_ACTIVE: ExitCode.CONFLICT,
  STOKER_RUN_KEY_CONFLICT: ExitCode.CONFLICT,
};

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): ExitCode {
  if (!isStokerError(error)) return ExitCode.FAILURE;
  const byCode = BY_CODE[error.code];
  if (byCode !== undefined) return byCode;
  if (error instanceof ValidationError) return ExitCode.USAGE;
  if (error instanceof NotFoundError) return ExitCode.FAILURE;
  if (error instanceof ConflictError) return ExitCode.CONFLICT;
  return ExitCode.FAILURE;
}

/** The table for `stoker --help` and docs. */
export const EXIT_CODE_HELP = `Exit codes:
  0    success
  1    other failure
  2    usage: bad command, flag or flag value, malformed JSON, bad store URL, missing run argument
  3    run --wait: the run ended REVERTED, FAILED, CANCELLED or SUPERSEDED
  4    database unreachable or credentials refused
  5    unknown flow or step type
  6    run not found
  7    flows module missing, not loadable, or not an array of flows
  8    conflict with stored state (run already ended, key used with other arguments)
  9    AMQP broker (--amqp) unreachable, virtual host missing, or credentials refused
  124  run --wait --timeout-ms: gave up waiting (the run goes on)
  130  run --wait interrupted (the run goes on), or a second SIGINT during a graceful
       stop (128 + signal number: 143 for a second SIGTERM)`;
