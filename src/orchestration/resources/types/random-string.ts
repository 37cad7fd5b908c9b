/**
 * OS::Heat::RandomString: generates a random string once and keeps it. As Heat's: `length`
 * (default 32, 1 to 512) characters drawn so that each of `character_sequences` and
 * `character_classes` (default: one `lettersdigits`) contributes at least its `min`, the rest
 * from the union of all of them, then shuffled; the deprecated hidden `sequence` becomes one
 * more class; minimums adding up to more than `length` are refused with Heat's message. Every
 * property change replaces the resource (a new string; `salt` exists for that). The value is
 * the attribute `value` and what `get_resource` gives; the physical id is the physical name.
 *
 * Differs from Heat: the string is not drawn afresh on each execution but derived from the
 * operation's idempotency key under a server secret, so executing a create again (an engine
 * killed mid-create) yields the same string, while nobody without the secret can compute it.
 */
import type { JsonObject, JsonValue } from '../../../core/json.js';
import { ValidationError } from '../../../errors.js';
import { isMapping } from '../../template/python-values.js';
import { KeyedRandom } from '../keyed-random.js';
import { physicalResourceName } from '../physical-ids.js';
import { supported, type PropertySchema } from '../property-schema.js';
import { ResourceFailure } from '../resource-failure.js';
import { REPLACE, type ResourceType } from '../resource-type.js';

const DIGITS = '0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();

/**
 * The named character classes (Heat's `password_gen`; `hexdigits` has upper-case letters only).
 *
 * @example
 * ```ts
 * CHARACTER_CLASSES['octdigits']; // '01234567'
 * ```
 */
export const CHARACTER_CLASSES: Readonly<Record<string, string>> = {
  lettersdigits: LOWER + UPPER + DIGITS,
  letters: LOWER + UPPER,
  lowercase: LOWER,
  uppercase: UPPER,
  digits: DIGITS,
  hexdigits: `${DIGITS}ABCDEF`,
  octdigits: '01234567',
};

const CLASS_NAMES = Object.keys(CHARACTER_CLASSES);
const minimum = (description: string): PropertySchema => ({
  type: 'integer',
  description,
  default: 1,
  constraints: [{ range: { min: 1, max: 512 } }],
});

/**
 * Options of {@link randomStringType}.
 *
 * @example
 * ```ts
 * const options: RandomStringOptions = { secret: process.env.STOKER_SECRET! };
 * ```
 */
export interface RandomStringOptions {
  /** server-side key material (32 bytes or more); the strings are derived under it */
  secret: string | Uint8Array;
}

/** Draws the string: minimums first, then the rest from the union, then a shuffle. */
function generate(rng: KeyedRandom, length: number, groups: { chars: string[]; min: number }[]): string {
  const out: string[] = [];
  const all = new Set<string>();
  for (const { chars, min } of groups) {
    for (const c of chars) all.add(c);
    for (let i = 0; i < min; i++) out.push(chars[rng.below(chars.length)]!);
  }
  const union = [...all].sort();
  if (union.length === 0 && length > 0) throw new ResourceFailure('IndexError', 'Cannot choose from an empty sequence');
  while (out.length < length) out.push(union[rng.below(union.length)]!);
  return rng.shuffle(out).slice(0, length).join('');
}

/** The sets of characters to draw from, sequences first (Heat's order), each deduplicated. */
function groupsOf(properties: JsonObject): { chars: string[]; min: number }[] {
  const list = (key: string): JsonObject[] => {
    const v = properties[key];
    return Array.isArray(v) ? v.filter(isMapping) : [];
  };
  const distinct = (text: string): string[] => [...new Set(text)].sort();
  return [
    ...list('character_sequences').map((s) => ({ chars: distinct(String(s['sequence'] ?? '')), min: Number(s['min'] ?? 1) })),
    ...list('character_classes').map((c) => ({ chars: distinct(CHARACTER_CLASSES[String(c['class'])] ?? ''), min: Number(c['min'] ?? 1) })),
  ].filter((g) => g.chars.length > 0);
}

/**
 * Builds the OS::Heat::RandomString type.
 *
 * @throws ValidationError STOKER_CONFIG_INVALID when the secret is shorter than 32 bytes
 * @example
 * ```ts
 * const type = randomStringType({ secret });
 * const { data } = await type.create(ctx); // data.value: 32 letters and digits
 * ```
 */
export function randomStringType(options: RandomStringOptions): ResourceType {
  const { secret } = options;
  if ((typeof secret === 'string' ? Buffer.byteLength(secret) : secret.byteLength) < 32)
    throw new ValidationError('STOKER_CONFIG_INVALID', 'The secret of OS::Heat::RandomString must be at least 32 bytes long');
  return {
    type: 'OS::Heat::RandomString',
    description: 'Generates a random string, e.g. a password, that stays the same until the resource is replaced.',
    supportStatus: supported('2014.1'),
    properties: {
      length: {
        type: 'integer',
        description: 'How many characters to generate.',
        default: 32,
        constraints: [{ range: { min: 1, max: 512 } }],
      },
      sequence: {
        type: 'string',
        description: 'The character class to draw from (deprecated: use character_classes).',
        constraints: [{ allowed_values: CLASS_NAMES }],
        supportStatus: {
          status: 'HIDDEN',
          version: '5.0.0',
          message: null,
          previous_status: { status: 'DEPRECATED', version: '2014.2', message: 'Use property character_classes.', previous_status: null },
        },
      },
      character_classes: {
        type: 'list',
        description: 'Named classes of characters to draw from, each with a minimum count.',
        default: [{ class: 'lettersdigits', min: 1 }],
        schema: {
          type: 'map',
          schema: {
            class: {
              type: 'string',
              description: 'A named character class.',
              default: 'lettersdigits',
              constraints: [{ allowed_values: CLASS_NAMES }],
            },
            min: minimum('At least this many characters of the string come from this class.'),
          },
        },
      },
      character_sequences: {
        type: 'list',
        description: 'Sequences of characters to draw from, each with a minimum count.',
        schema: {
          type: 'map',
          schema: {
            sequence: { type: 'string', description: 'The characters to draw from.', required: true },
            min: minimum('At least this many characters of the string come from this sequence.'),
          },
        },
      },
      salt: {
        type: 'string',
        description: 'Changing it replaces the resource, giving a new string; the value itself is not used.',
      },
    },
    attributes: {
      value: { description: 'The generated string; get_resource gives it too.', type: 'string' },
    },
    translate(raw) {
      const sequence = raw['sequence'];
      if (typeof sequence !== 'string' || sequence === '') return raw;
      // Heat's translation rule: the deprecated property becomes one more character class
      const { sequence: _dropped, ...rest } = raw;
      const classes = raw['character_classes'];
      const added: JsonValue = { class: sequence, min: 1 };
      return {
        ...rest,
        character_classes: Array.isArray(classes) ? [...classes, added] : classes === undefined || classes === null ? [added] : classes,
      };
    },
    validate(properties) {
      const sum = (key: string): number => {
        const v = properties[key];
        return Array.isArray(v) ? v.reduce<number>((n, item) => n + (isMapping(item) ? Number(item['min'] ?? 0) : 0), 0) : 0;
      };
      if (sum('character_sequences') + sum('character_classes') > Number(properties['length']))
        return 'Length property cannot be smaller than combined character class and character sequence minimums';
      return undefined;
    },
    async create(ctx) {
      const rng = KeyedRandom.fromKey('OS::Heat::RandomString', ctx.idempotencyKey, secret);
      const value = generate(rng, Number(ctx.properties['length'] ?? 32), groupsOf(ctx.properties));
      return {
        physicalId: physicalResourceName(ctx.stack.name, ctx.resourceName, ctx.idempotencyKey),
        data: { value },
        secretData: ['value'],
      };
    },
    async update(ctx) {
      // no property can be updated in place: only a metadata change comes here without a replacement
      return ctx.changed.length === 0 ? { physicalId: ctx.physicalId, data: ctx.data, secretData: ['value'] } : REPLACE;
    },
    async delete() {},
    async attribute(name, ctx) {
      return name === 'value' ? (ctx.data['value'] ?? null) : null;
    },
    referenceId(ctx) {
      return ctx.physicalId === null ? ctx.resourceName : (ctx.data['value'] ?? null);
    },
  };
}
