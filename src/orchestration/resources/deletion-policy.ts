/**
 * Whether a type allows a resource's deletion policy: Heat refuses `Snapshot` on a type that
 * cannot snapshot (`Resource.validate_deletion_policy`), except on OS::Heat::None, which skips
 * its validation altogether. `Delete` and `Retain` are always allowed; the engine applies
 * `Retain` by not calling `delete`.
 */
import { ValidationError } from '../../errors.js';
import type { ResourceType } from './resource-type.js';

/**
 * Checks `policy` (as the template layer normalised it) for a resource of `type` at `path`.
 *
 * @throws ValidationError STOKER_TEMPLATE_INVALID `resources.t.deletion_policy: "Snapshot" deletion policy not supported`
 * @example
 * ```ts
 * checkDeletionPolicy(registry.get('OS::Heat::TestResource'), 'Snapshot', 'resources.t'); // throws
 * checkDeletionPolicy(registry.get('OS::Heat::None'), 'Snapshot', 'resources.snap'); // accepted
 * ```
 */
export function checkDeletionPolicy(type: ResourceType, policy: 'Delete' | 'Retain' | 'Snapshot', path: string): void {
  if (policy !== 'Snapshot' || type.stub || type.snapshotDelete) return;
  const where = path === '' ? 'deletion_policy' : `${path}.deletion_policy`;
  throw new ValidationError('STOKER_TEMPLATE_INVALID', `${where}: "${policy}" deletion policy not supported`, {
    details: { path: where, resourceType: type.type },
  });
}
