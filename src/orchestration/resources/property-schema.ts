/**
 * The schema language of resource properties and attributes, shaped the way Heat serialises
 * its own (`openstack orchestration resource type show`): constraints are written in their
 * serialised form (`{ range: { min: 1, max: 512 } }`), so showing a schema is copying it.
 */
import type { JsonValue } from '../../core/json.js';

/**
 * The value types of a property. `json` is Stoker's: any JSON value, text being parsed as JSON.
 *
 * @example
 * ```ts
 * const t: PropertyType = 'integer';
 * ```
 */
export type PropertyType = 'string' | 'number' | 'integer' | 'boolean' | 'list' | 'map' | 'json' | 'any';

/**
 * One constraint, as Heat serialises it. `description`, when given, replaces the message.
 *
 * @example
 * ```ts
 * const c: PropertyConstraint = { allowed_values: ['create', 'delete'], description: 'An action name' };
 * ```
 */
export type PropertyConstraint = { description?: string } & (
  | { range: { min?: number; max?: number } }
  | { length: { min?: number; max?: number } }
  | { allowed_values: readonly JsonValue[] }
  | { allowed_pattern: string }
  | { custom_constraint: string }
);

/**
 * Heat's support status of a type, a property or an attribute.
 *
 * @example
 * ```ts
 * const s: SupportStatus = { status: 'SUPPORTED', version: '5.0.0', message: null, previous_status: null };
 * ```
 */
export interface SupportStatus {
  status: 'UNKNOWN' | 'SUPPORTED' | 'DEPRECATED' | 'UNSUPPORTED' | 'HIDDEN';
  version: string | null;
  message: string | null;
  previous_status: SupportStatus | null;
}

interface BaseSchema {
  description?: string;
  /** used when the property is absent or null (Heat's `default`) */
  default?: JsonValue;
  required?: boolean;
  /** a change is applied by `update`; otherwise it replaces the resource */
  updateAllowed?: boolean;
  /** a change is refused (Heat's `immutable`: the update fails, nothing is replaced) */
  immutable?: boolean;
  constraints?: readonly PropertyConstraint[];
  /** HIDDEN properties are accepted but not shown */
  supportStatus?: SupportStatus;
}

/**
 * The schema of one property. A list may describe its items, a map its known keys (the
 * other keys of such a map are refused, as in Heat).
 *
 * @example
 * ```ts
 * const classes: PropertySchema = {
 *   type: 'list',
 *   schema: { type: 'map', schema: { class: { type: 'string', default: 'lettersdigits' }, min: { type: 'integer', default: 1 } } },
 * };
 * ```
 */
export type PropertySchema =
  | (BaseSchema & { type: 'string' | 'number' | 'integer' | 'boolean' | 'json' | 'any' })
  | (BaseSchema & { type: 'list'; schema?: PropertySchema })
  | (BaseSchema & { type: 'map'; schema?: PropertiesSchema });

/**
 * The properties of a type, by name, in the order Heat validates (and shows) them.
 *
 * @example
 * ```ts
 * const props: PropertiesSchema = { value: { type: 'string', default: 'test_string', updateAllowed: true } };
 * ```
 */
export type PropertiesSchema = Readonly<Record<string, PropertySchema>>;

/**
 * One attribute of a type. `type` is informative (Heat's attribute schema type).
 *
 * @example
 * ```ts
 * const value: AttributeSchema = { description: 'The generated string.', type: 'string' };
 * ```
 */
export interface AttributeSchema {
  description: string;
  type?: 'string' | 'number' | 'integer' | 'boolean' | 'list' | 'map';
  supportStatus?: SupportStatus;
}

/**
 * A support status with Heat's defaults (`SUPPORTED`, no message, no previous status).
 *
 * @example
 * ```ts
 * supported('2014.1'); // { status: 'SUPPORTED', version: '2014.1', message: null, previous_status: null }
 * ```
 */
export function supported(version: string | null = null): SupportStatus {
  return { status: 'SUPPORTED', version, message: null, previous_status: null };
}

/**
 * The kind of a constraint (its one key besides `description`).
 *
 * @example
 * ```ts
 * constraintKind({ range: { min: 1 } }); // 'range'
 * ```
 */
export function constraintKind(c: PropertyConstraint): 'range' | 'length' | 'allowed_values' | 'allowed_pattern' | 'custom_constraint' {
  if ('range' in c) return 'range';
  if ('length' in c) return 'length';
  if ('allowed_values' in c) return 'allowed_values';
  if ('allowed_pattern' in c) return 'allowed_pattern';
  return 'custom_constraint';
}
