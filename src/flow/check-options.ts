/**
 * Shape checks shared by the definition functions. Flows are often written in plain
 * JavaScript (a flows module), so the types alone do not protect us: a misspelt option
 * (`provide` for `provides`) must fail loudly at definition time, not silently do nothing.
 */
import { ValidationError } from '../errors.js';
import { quoteName } from './names.js';

/**
 * Whether `value` is a plain object (`{…}` or `Object.create(null)`), not an array,
 * class instance or function.
 *
 * @example
 * ```ts
 * isPlainObject({ a: 1 }); // true
 * isPlainObject([1]);      // false
 * ```
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Throws a `STOKER_FLOW_INVALID` ValidationError unless `value` is a plain object whose
 * keys are all in `allowed`. `where` names the owner for the message.
 *
 * @example
 * ```ts
 * checkKnownKeys({ provide: 'x' }, ['provides'], "options of task 'a'");
 * // throws: Unknown option 'provide' in options of task 'a' (known: provides).
 * ```
 */
export function checkKnownKeys(value: unknown, allowed: readonly string[], where: string): Record<string, unknown> {
  if (!isPlainObject(value)) {
    throw new ValidationError('STOKER_FLOW_INVALID', `${capitalise(where)} must be a plain object.`, {
      details: { where },
    });
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new ValidationError('STOKER_FLOW_INVALID', `Unknown option ${quoteName(key)} in ${where} (known: ${allowed.join(', ')}).`, {
        details: { where, option: key.slice(0, 200) },
      });
    }
  }
  return value;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
