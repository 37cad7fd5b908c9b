/**
 * Showing parameters without showing secrets (docs/security.md S9): Heat prints a hidden parameter
 * as `******` (`heat/engine/parameters.py`), and a value masker keeps the secret out of text
 * built elsewhere (error messages of resources, events, logs).
 */
import type { JsonValue } from '../../core/json.js';
import type { ResolvedParameters } from './parameter-values.js';
import { pyJsonDumps, pyStr } from './python-values.js';
import { MAX_VALUE_LENGTH, shownForms } from './template-error.js';

/**
 * What Heat shows in place of a hidden value.
 *
 * @example
 * ```ts
 * displayParameters(resolved)['db_password'] === HIDDEN_VALUE; // true when hidden
 * ```
 */
export const HIDDEN_VALUE = '******';
/** Shorter secrets are not masked by value: masking `1` would mask every `1` in the text. */
const MIN_MASKED_LENGTH = 3;

/**
 * The parameters as display strings, the way `stack show` prints them: hidden ones as
 * `******`, lists joined with `,`, json as JSON text, booleans as `True`/`False`.
 *
 * @example
 * ```ts
 * displayParameters(resolved); // { db_password: '******', count: '3', 'OS::stack_name': 'web', … }
 * ```
 */
export function displayParameters(resolved: ResolvedParameters): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(resolved.values)) {
    const schema = resolved.schemas[name];
    out[name] = schema?.hidden ? HIDDEN_VALUE : displayValue(schema?.type, value);
  }
  return out;
}

function displayValue(type: string | undefined, value: JsonValue): string {
  if (type === 'comma_delimited_list' && Array.isArray(value)) return value.map((v) => pyStr(v)).join(',');
  if (type === 'json') return pyJsonDumps(value);
  return pyStr(value);
}

/**
 * Replaces every occurrence of a hidden parameter's value in `text` with `******` (values
 * shorter than three characters are left alone). Messages show user text escaped and cut short
 * (template-error.ts), so each value is also looked for in those forms, and where a message cut
 * a text short (`…`), a beginning of a hidden value just before the cut is masked too.
 *
 * @example
 * ```ts
 * maskHiddenValues('login failed for s3cret!', resolved); // 'login failed for ******!'
 * ```
 */
export function maskHiddenValues(text: string, resolved: ResolvedParameters): string {
  const secrets = new Set<string>();
  for (const [name, schema] of Object.entries(resolved.schemas)) {
    if (!schema.hidden || !Object.hasOwn(resolved.values, name)) continue;
    const value = resolved.values[name]!;
    secrets.add(displayValue(schema.type, value));
    secrets.add(pyStr(value));
    if (Array.isArray(value)) for (const item of value) secrets.add(pyStr(item));
  }
  const forms = [...new Set([...secrets].flatMap(shownForms))]
    .filter((s) => s.length >= MIN_MASKED_LENGTH)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const secret of forms) out = out.split(secret).join(HIDDEN_VALUE);
  // text cut short in the middle of a hidden value: mask the part before the cut
  for (let cut = out.indexOf('…'); cut !== -1; cut = out.indexOf('…', cut + 1)) {
    for (const secret of forms) {
      // what is cut short is at most MAX_VALUE_LENGTH code points, each at most 8 characters once escaped
      let k = Math.min(secret.length - 1, cut, MAX_VALUE_LENGTH * 8);
      while (k >= MIN_MASKED_LENGTH && !out.startsWith(secret.slice(0, k), cut - k)) k--;
      if (k >= MIN_MASKED_LENGTH) {
        out = out.slice(0, cut - k) + HIDDEN_VALUE + out.slice(cut);
        cut += HIDDEN_VALUE.length - k;
        break;
      }
    }
  }
  return out;
}
