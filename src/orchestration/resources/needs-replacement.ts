/**
 * Whether a change of a resource's properties is applied in place or needs a replacement, as
 * Heat decides (`Resource._needs_update` and `update_template_diff_properties`): a resource
 * left FAILED is replaced; otherwise the properties that differ (Python equality, defaults
 * applied) are collected (one never created, or deleted, is replaced too); a changed `immutable` property fails the update (Heat's
 * NotSupported, nothing is replaced); the type's own rule may ask for a replacement; a changed
 * property that is not `updateAllowed` needs one. OS::Heat::None is never updated.
 */
import type { JsonObject } from '../../core/json.js';
import { pyEquals } from '../template/python-values.js';
import { ResourceFailure } from './resource-failure.js';
import type { ResourceType } from './resource-type.js';

/**
 * The decision: `none` (no property changed: no update is needed for the properties),
 * `update` (update in place with `changed`) or `replace` (create a replacement first, then
 * delete the old resource).
 *
 * @example
 * ```ts
 * const d: UpdateDecision = { action: 'update', changed: ['value'] };
 * ```
 */
export interface UpdateDecision {
  action: 'none' | 'update' | 'replace';
  /** the changed properties, in schema order (Heat's `prop_diff` keys) */
  changed: readonly string[];
}

/**
 * Options of {@link needsReplacement}.
 *
 * @example
 * ```ts
 * const options: ReplacementOptions = { resourceName: 'test1', failed: true };
 * ```
 */
export interface ReplacementOptions {
  /** named in the NotSupported message of an immutable change */
  resourceName?: string;
  /** the resource is in a FAILED state (any action, CHECK_FAILED included): Heat replaces it */
  failed?: boolean;
  /** the resource was never created or is deleted (INIT_COMPLETE, DELETE_COMPLETE): Heat replaces it */
  absent?: boolean;
}

/**
 * Decides how `newProps` are applied to a resource created with `oldProps` (both as
 * {@link validateProperties} returned them).
 *
 * @throws ResourceFailure `NotSupported` when an immutable property changed
 * @example
 * ```ts
 * needsReplacement(testResource, { ...props, value: 'a' }, { ...props, value: 'b' }); // { action: 'update', changed: ['value'] }
 * needsReplacement(randomString, { ...props, salt: 'one' }, { ...props, salt: 'two' }); // { action: 'replace', changed: ['salt'] }
 * ```
 */
export function needsReplacement(
  type: ResourceType,
  oldProps: JsonObject,
  newProps: JsonObject,
  options: ReplacementOptions = {},
): UpdateDecision {
  if (type.stub) return { action: 'none', changed: [] };
  const keys = [...new Set([...Object.keys(type.properties), ...Object.keys(newProps)])];
  const changed = keys.filter((k) => !pyEquals(oldProps[k] ?? null, newProps[k] ?? null));
  if (options.failed || options.absent) return { action: 'replace', changed };
  if (changed.length === 0) return { action: 'none', changed };
  const schema = type.propertiesSchema?.(newProps) ?? type.properties;
  const immutable = changed.filter((k) => schema[k]?.immutable === true).sort();
  if (immutable.length > 0) {
    const who = options.resourceName === undefined ? `(${type.type})` : `${options.resourceName} (${type.type})`;
    throw new ResourceFailure('NotSupported', `Update to properties ${immutable.join(', ')} of ${who} is not supported.`);
  }
  if (type.needsReplace?.(new Set(changed), newProps, oldProps)) return { action: 'replace', changed };
  if (changed.some((k) => schema[k]?.updateAllowed !== true)) return { action: 'replace', changed };
  return { action: 'update', changed };
}
