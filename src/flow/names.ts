/**
 * The one naming rule for everything a flow names: tasks, flows, value names (requires,
 * provides, rebind, inject) and retry-controller values.
 *
 * Names end up in SQL rows, log lines, the dashboard and error messages, so they are kept
 * to a small ASCII alphabet: no control characters, no bidirectional overrides (which
 * can make a listing lie about what it shows), no `__proto__`-style keys (names become
 * object keys in inputs and outputs).
 */
import { ValidationError } from '../errors.js';

/** Letters, digits, `_`, `.` and `-`, starting with a letter, at most 128 characters. */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

/** The rule in words, for error messages. */
export const NAME_RULE = 'a letter followed by at most 127 letters, digits, "_", "." or "-"';

/**
 * Whether `value` is a valid task, flow or value name.
 *
 * @example
 * ```ts
 * isValidName('resize-image'); // true
 * isValidName('2fast');        // false: must start with a letter
 * ```
 */
export function isValidName(value: unknown): value is string {
  return typeof value === 'string' && NAME_PATTERN.test(value);
}

/**
 * Quotes a name (or any value) for an error message. Invalid names may hold control or
 * bidi characters, so everything outside printable ASCII is shown as `\u{…}` and long
 * values are cut: a message must never reshape the terminal or log it is printed on.
 *
 * @example
 * ```ts
 * quoteName('a\u202Eb'); // "'a\\u{202e}b'"
 * quoteName(42);         // 'a number (42)'
 * ```
 */
export function quoteName(value: unknown): string {
  if (typeof value !== 'string') return describeValue(value);
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  const escaped = shown.replace(/[^\x20-\x7e…]|['\\]/g, (c) =>
    c === "'" || c === '\\' ? `\\${c}` : `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`,
  );
  return `'${escaped}'`;
}

/**
 * Throws a `STOKER_FLOW_INVALID` ValidationError unless `value` is a valid name.
 * `what` says which name it is, for the message ("task name", "value name in requires of
 * task 'a'").
 *
 * @example
 * ```ts
 * checkName('order', 'flow name'); // returns 'order'
 * checkName('',      'flow name'); // throws: Invalid flow name '': must be …
 * ```
 */
export function checkName(value: unknown, what: string): string {
  if (isValidName(value)) return value;
  throw new ValidationError('STOKER_FLOW_INVALID', `Invalid ${what} ${quoteName(value)}: must be ${NAME_RULE}.`, {
    details: { what, name: typeof value === 'string' ? value.slice(0, 200) : null },
  });
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'number':
    case 'boolean':
      return `a ${typeof value} (${String(value)})`;
    case 'function':
      return 'a function';
    default:
      return `a value of type ${typeof value}`;
  }
}

/** Flow versions: `1`, `2.1.0`, `2024-05-01`, `1.0.0-rc.1`: at most 64 characters. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/;

/**
 * Throws a `STOKER_FLOW_INVALID` ValidationError unless `value` is a valid flow version.
 *
 * @example
 * ```ts
 * checkVersion('2.1.0', "flow 'order'"); // returns '2.1.0'
 * checkVersion('', "flow 'order'");      // throws
 * ```
 */
export function checkVersion(value: unknown, owner: string): string {
  if (typeof value === 'string' && VERSION_PATTERN.test(value)) return value;
  throw new ValidationError(
    'STOKER_FLOW_INVALID',
    `Invalid version ${quoteName(value)} of ${owner}: must be a letter or digit followed by at most 63 letters, digits, "_", ".", "+" or "-".`,
    { details: { owner } },
  );
}
