/**
 * Names of resources, parameters, outputs and conditions. Heat (and the acceptance corpus,
 * case 067) accept any Unicode name, so docs/security.md S5's ASCII pattern cannot apply to
 * template-level names; what S5 is after still holds: no control characters, no bidi
 * overrides that make a name display as another, a bounded length. Resource names also may
 * not contain `/`, which separates nested resource paths (`parent/child`).
 */
import { templateError } from './template-error.js';

const MAX_NAME_LENGTH = 255;
// C0/C1 controls, bidi embeddings/overrides/isolates, and the zero-width marks used to spoof
// eslint-disable-next-line no-control-regex
const BAD_CHARACTER = /[\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]/;

/**
 * Throws STOKER_TEMPLATE_INVALID when `name` cannot name a `what` in `section`.
 *
 * @example
 * ```ts
 * checkName('web server', 'resources', 'resource'); // fine
 * checkName('a/b', 'resources', 'resource'); // throws
 * ```
 */
export function checkName(name: string, section: string, what: string): void {
  const fail = (why: string): never => {
    throw templateError('STOKER_TEMPLATE_INVALID', section, `Invalid ${what} name "${name.slice(0, 80)}": ${why}`, {
      name: name.slice(0, 255),
    });
  };
  if (name.length === 0) fail('names must not be empty');
  if (name.length > MAX_NAME_LENGTH) fail(`names are limited to ${MAX_NAME_LENGTH} characters`);
  const bad = BAD_CHARACTER.exec(name);
  if (bad) fail(`it contains the control or formatting character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`);
  if (what === 'resource' && name.includes('/')) fail('resource names may not contain "/"');
}
