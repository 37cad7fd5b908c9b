/**
 * Names of resources, parameters, outputs and conditions. Heat (and the acceptance corpus,
 * case 067) accept any Unicode name, so docs/security.md S5's ASCII pattern cannot apply to
 * template-level names; what S5 is after still holds: no control characters, no line
 * separators, no bidi marks or overrides that make a name display as another, no unpaired
 * surrogates, a bounded length. Resource names also may not contain `/`, which separates
 * nested resource paths (`parent/child`). A rejected name is shown escaped (template-error.ts).
 */
import { UNSAFE_CHARACTER, quoteText, templateError } from './template-error.js';

const MAX_NAME_LENGTH = 255;

/**
 * Throws STOKER_TEMPLATE_INVALID when `name` cannot name a `what` in `section`.
 *
 * @example
 * ```ts
 * checkName('web server', 'resources', 'resource'); // fine
 * checkName('a/b', 'resources', 'resource'); // throws
 * checkName('a\r\nb', 'resources', 'resource'); // throws: Invalid resource name "a\u{d}\u{a}b": …
 * ```
 */
export function checkName(name: string, section: string, what: string): void {
  const fail = (why: string): never => {
    throw templateError('STOKER_TEMPLATE_INVALID', section, `Invalid ${what} name ${quoteText(name)}: ${why}`, {
      name: name.slice(0, MAX_NAME_LENGTH),
    });
  };
  if (name.length === 0) fail('names must not be empty');
  if (name.length > MAX_NAME_LENGTH) fail(`names are limited to ${MAX_NAME_LENGTH} characters`);
  const bad = UNSAFE_CHARACTER.exec(name);
  if (bad) {
    const code = `U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    fail(
      /[\uD800-\uDFFF]/.test(bad[0])
        ? `it contains the unpaired surrogate ${code}`
        : `it contains the control or formatting character ${code}`,
    );
  }
  if (what === 'resource' && name.includes('/')) fail('resource names may not contain "/"');
}
