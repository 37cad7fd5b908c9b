/**
 * One way to raise errors in the template layer: a ValidationError whose message starts with
 * the path of the offending value (`resources.server.properties.name: …`) and whose details
 * carry the same path, so an API can point at it.
 *
 * Messages end up in terminals, logs and API responses, and the names, keys and file names in
 * them are written by the template's author (docs/security.md S5). So user-written text goes
 * into a message through {@link showText} or {@link quoteText}, which escape what could reshape
 * the line or make text display as other text (control characters, line separators, bidi and
 * zero-width marks, unpaired surrogates) as `\u{…}`, the way `quoteName` in src/flow/names.ts
 * does, and shorten long text; and {@link templateError} escapes those characters in whatever
 * message it is given, as a backstop. Printable Unicode stays readable: template names may be
 * in any script.
 */
import { ValidationError, type ErrorCode } from '../../errors.js';
import type { JsonValue } from '../../core/json.js';

/**
 * Builds the error. `path` may be empty (a problem with the whole document).
 *
 * @example
 * ```ts
 * throw templateError('STOKER_TEMPLATE_INVALID', 'resources.a', '"typo" is not a valid keyword');
 * // message: 'resources.a: "typo" is not a valid keyword'
 * ```
 */
export function templateError(code: ErrorCode, path: string, message: string, details: Record<string, JsonValue> = {}): ValidationError {
  const text = path === '' ? neutralize(message) : `${clipText(path, MAX_PATH_LENGTH)}: ${neutralize(message)}`;
  return new ValidationError(code, text, { details: { path, ...details } });
}

/**
 * A character that must not reach a message or a name as it is: C0 and C1 control characters and
 * DEL, the line and paragraph separators, bidi marks, embeddings, overrides and isolates, the
 * zero-width marks used to spoof, BOM, and unpaired surrogates (names.ts refuses them in names).
 *
 * @example
 * ```ts
 * UNSAFE_CHARACTER.test('a\u202Eb'); // true
 * ```
 */
export const UNSAFE_CHARACTER =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001F\u007F-\u009F\u061C\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNSAFE = new RegExp(UNSAFE_CHARACTER.source, 'g');
/** Code points of a name, key or file name shown in a message. */
export const MAX_SHOWN_LENGTH = 80;
/** Code points of a value (or a path) shown in a message. */
export const MAX_VALUE_LENGTH = 200;
const MAX_PATH_LENGTH = 200;

/**
 * `text` with every unsafe character written as `\u{…}`; everything else as it is.
 *
 * @example
 * ```ts
 * neutralize('a\u202Eb\n'); // 'a\\u{202e}b\\u{a}'
 * ```
 */
export function neutralize(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}

/** The first `max` code points of `text`, then `…` when it was longer. */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  // 2 × max + 2 code units hold at least max + 1 code points
  const points = Array.from(text.slice(0, 2 * max + 2));
  return points.length <= max ? text : `${points.slice(0, max).join('')}…`;
}

/**
 * User-written text (a name, a key, a file name) for a message: unsafe characters escaped, at
 * most `max` code points (then `…`).
 *
 * @example
 * ```ts
 * showText('web\r\nserver'); // 'web\\u{d}\\u{a}server'
 * showText('x'.repeat(100)).length; // 81
 * ```
 */
export function showText(text: string, max = MAX_SHOWN_LENGTH): string {
  return neutralize(clip(text, max));
}

/**
 * {@link showText} in double quotes.
 *
 * @example
 * ```ts
 * quoteText('a\u202Eb'); // '"a\\u{202e}b"'
 * ```
 */
export function quoteText(text: string, max = MAX_SHOWN_LENGTH): string {
  return `"${showText(text, max)}"`;
}

/**
 * A longer piece of user text (a non-hidden value, a path) for a message: like
 * {@link showText} with room for {@link MAX_VALUE_LENGTH} code points.
 *
 * @example
 * ```ts
 * clipText('a'.repeat(500)).length; // 201
 * ```
 */
export function clipText(text: string, max = MAX_VALUE_LENGTH): string {
  return neutralize(clip(text, max));
}

/**
 * Any value for a message, without ever throwing (objects without a prototype have no
 * `toString`): strings as {@link showText}, the rest as bounded JSON.
 *
 * @example
 * ```ts
 * showValue({ a: 1 }); // '{"a":1}'
 * ```
 */
export function showValue(value: unknown, max = MAX_SHOWN_LENGTH): string {
  if (typeof value === 'string') return showText(value, max);
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? typeof value;
  } catch {
    text = typeof value;
  }
  return showText(text, max);
}

/**
 * The forms in which {@link templateError} and the helpers above may show `secret` in a message
 * (escaped, and cut after {@link MAX_SHOWN_LENGTH} or {@link MAX_VALUE_LENGTH} code points), so
 * that masking by value finds it in every form.
 *
 * @example
 * ```ts
 * shownForms('p\u202Ew'); // ['p\u202Ew', 'p\\u{202e}w']
 * ```
 */
export function shownForms(secret: string): string[] {
  const forms = new Set([secret, neutralize(secret)]);
  for (const max of [MAX_SHOWN_LENGTH, MAX_VALUE_LENGTH]) {
    const cut = clip(secret, max);
    if (cut !== secret) forms.add(neutralize(cut.slice(0, -1)));
  }
  return [...forms];
}

/**
 * Appends one segment to a dotted path, the way Heat prints paths (`resources.a.properties`).
 *
 * @example
 * ```ts
 * joinPath('resources', 'web'); // 'resources.web'
 * joinPath('outputs.o.value', 0); // 'outputs.o.value[0]'
 * ```
 */
export function joinPath(path: string, segment: string | number): string {
  if (typeof segment === 'number') return `${path}[${segment}]`;
  return path === '' ? segment : `${path}.${segment}`;
}
