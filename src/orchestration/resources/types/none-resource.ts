/**
 * OS::Heat::None: stands in for any other type (through the environment's registry) and does
 * nothing. As Heat's: any properties are accepted and none validated (a Snapshot deletion
 * policy neither), an update never updates nor replaces it, every attribute is null, the
 * physical id is a UUID.
 */
import { deterministicUuid } from '../physical-ids.js';
import { supported } from '../property-schema.js';
import type { ResourceType } from '../resource-type.js';

/**
 * The OS::Heat::None type.
 *
 * @example
 * ```ts
 * validateProperties(noneResource, { anything: ['goes', 'here'] }, 'resources.nothing'); // {}
 * ```
 */
export const noneResource: ResourceType = {
  type: 'OS::Heat::None',
  description: 'Does nothing: accepts any properties and gives null for any attribute, to disable a resource through the registry.',
  supportStatus: supported('5.0.0'),
  properties: {},
  attributes: {},
  stub: true,
  async create(ctx) {
    return { physicalId: deterministicUuid(ctx.idempotencyKey, 'OS::Heat::None'), data: {} };
  },
  async update(ctx) {
    return { physicalId: ctx.physicalId, data: ctx.data };
  },
  async delete() {},
  async attribute() {
    return null;
  },
};
