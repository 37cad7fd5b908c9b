/**
 * Physical ids derived from an operation's idempotency key, so that executing a create again
 * with the same key gives the same id. Heat's are random (a UUID, or a name ending in a short
 * id taken from the resource's UUID); these have the same shapes.
 */
import { createHash } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/**
 * Heat's `physical_resource_name_limit`.
 *
 * @example
 * ```ts
 * physicalResourceName(stack, name, key, PHYSICAL_NAME_LIMIT);
 * ```
 */
export const PHYSICAL_NAME_LIMIT = 255;

const digest = (label: string, key: string): Buffer => createHash('sha256').update(`${label}\0${key}`).digest();

/**
 * Twelve lowercase base32 characters (60 bits) derived from `key`, the shape of Heat's
 * `short_id.get_id`.
 *
 * @example
 * ```ts
 * shortId('run-1/create.test1/1'); // e.g. 'k3xq7m2a9bcd'
 * ```
 */
export function shortId(key: string): string {
  const bytes = digest('short-id', key);
  let bits = 0n;
  for (let i = 0; i < 8; i++) bits = (bits << 8n) | BigInt(bytes[i]!);
  bits >>= 4n; // 60 bits
  let out = '';
  for (let i = 11; i >= 0; i--) out += BASE32[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
}

/**
 * Heat's `physical_resource_name`: `<stack>-<resource>-<short id>`, shortened to `limit` the
 * way Heat does (the first two characters, a hyphen, then the end of the name).
 *
 * @example
 * ```ts
 * physicalResourceName('web', 'test1', key); // 'web-test1-k3xq7m2a9bcd'
 * ```
 */
export function physicalResourceName(stackName: string, resourceName: string, key: string, limit = PHYSICAL_NAME_LIMIT): string {
  const name = [...`${stackName}-${resourceName}-${shortId(key)}`];
  if (name.length <= limit) return name.join('');
  return `${name.slice(0, 2).join('')}-${name.slice(name.length - (limit - 3)).join('')}`;
}

/**
 * A version-4-shaped UUID derived from `key` (and a label separating uses of one key).
 *
 * @example
 * ```ts
 * deterministicUuid('run-1/create.config/1'); // e.g. '3f0c9a4e-1b2d-4c5e-8f60-718293a4b5c6'
 * ```
 */
export function deterministicUuid(key: string, label = 'uuid'): string {
  const b = digest(label, key).subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
