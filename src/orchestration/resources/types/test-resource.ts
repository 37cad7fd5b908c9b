/**
 * OS::Heat::TestResource: stores a string and can be told to wait, fail or be replaced, for
 * testing stacks. Behaves as Heat's: the value is stored (attribute `output`) and the physical
 * id is the resource's physical name, unless `fail` is set, in which case nothing is stored,
 * the resource waits and then fails with `ValueError: … Test Resource failed <name>` (create
 * and update; a delete never fails). Waits are `action_wait_secs[action]`, else `wait_secs`
 * (negative: until cancelled). An update stores a changed non-empty `value` and waits only
 * then; a changed `value` with `update_replace: true` replaces the resource, as does a change
 * of `update_replace_value`. Resolving `output` waits `attr_wait_secs`.
 *
 * Differs from Heat: `client_name`/`entity_name` (a cloud client to poll while waiting) are
 * accepted and ignored; `constraint_prop_secs` does not delay validation (its custom
 * constraint `test_constr` sleeps in Heat).
 */
import type { JsonObject, JsonValue } from '../../../core/json.js';
import { isMapping, pyTruthy } from '../../template/python-values.js';
import { physicalResourceName } from '../physical-ids.js';
import { supported } from '../property-schema.js';
import { ResourceFailure } from '../resource-failure.js';
import type { AttributeContext, OperationContext, ResourceResult, ResourceType } from '../resource-type.js';

type Action = 'create' | 'update' | 'delete';

const seconds = (description: string) => ({ type: 'number' as const, description, updateAllowed: true });

/** The time the properties give for `action` (negative: until aborted). */
function waitSeconds(properties: JsonObject, action: Action): number {
  const perAction = properties['action_wait_secs'];
  let secs: JsonValue | undefined = isMapping(perAction) && pyTruthy(perAction) ? perAction[action] : null;
  if (secs === null || secs === undefined) secs = properties['wait_secs'] ?? 0;
  return typeof secs === 'number' ? secs : 0;
}

/** Waits the time the properties give for `action` (negative: until aborted). */
async function wait(ctx: AttributeContext, properties: JsonObject, action: Action): Promise<void> {
  await sleepSeconds(ctx, waitSeconds(properties, action));
}

/** Whether `action` (and resolving the attributes after it) ends at once: no wait, no failure. */
function endsAtOnce(properties: JsonObject, action: Action): boolean {
  const attrWait = properties['attr_wait_secs'];
  return properties['fail'] !== true && waitSeconds(properties, action) === 0 && !(typeof attrWait === 'number' && attrWait > 0);
}

async function sleepSeconds(ctx: AttributeContext, secs: number): Promise<void> {
  if (secs < 0) await ctx.sleep(Infinity);
  else if (secs > 0) await ctx.sleep(secs * 1000);
}

const failure = (ctx: OperationContext): ResourceFailure => new ResourceFailure('ValueError', `Test Resource failed ${ctx.resourceName}`);

/**
 * The OS::Heat::TestResource type.
 *
 * @example
 * ```ts
 * const result = await testResource.create(ctx); // { physicalId: 'web-test1-…', data: { value: 'test_string' } }
 * ```
 */
export const testResource: ResourceType = {
  type: 'OS::Heat::TestResource',
  description: 'A resource that stores the string it is given, with knobs to make it wait, fail or be replaced. For testing only.',
  supportStatus: supported('5.0.0'),
  properties: {
    constraint_prop_secs: {
      type: 'number',
      description: 'A number whose custom constraint delays validation (not in Stoker).',
      default: 0,
      updateAllowed: true,
      constraints: [{ custom_constraint: 'test_constr' }],
      supportStatus: supported('6.0.0'),
    },
    attr_wait_secs: {
      type: 'number',
      description: 'Seconds to wait while resolving an attribute.',
      default: 0,
      updateAllowed: true,
      supportStatus: supported('6.0.0'),
    },
    value: { type: 'string', description: 'The string to store.', default: 'test_string', updateAllowed: true },
    update_replace_value: {
      type: 'string',
      description: 'A string that can be stored but not updated: changing it replaces the resource.',
      supportStatus: supported('7.0.0'),
    },
    fail: { type: 'boolean', description: 'Make the operation fail, after its wait.', default: false, updateAllowed: true },
    update_replace: {
      type: 'boolean',
      description: 'Replace the resource instead of updating it when the value changes.',
      default: false,
      updateAllowed: true,
    },
    wait_secs: { type: 'number', description: 'Seconds to wait in each action (negative: for ever).', default: 0, updateAllowed: true },
    action_wait_secs: {
      type: 'map',
      description: 'Seconds to wait, per action; wait_secs applies to those not given.',
      updateAllowed: true,
      schema: {
        create: seconds('Seconds to wait in a create.'),
        update: seconds('Seconds to wait in an update.'),
        delete: seconds('Seconds to wait in a delete.'),
      },
    },
    client_name: { type: 'string', description: 'A client to poll while waiting (ignored by Stoker).', default: '', updateAllowed: true },
    entity_name: {
      type: 'string',
      description: 'The entity of that client to poll (ignored by Stoker).',
      default: '',
      updateAllowed: true,
    },
  },
  attributes: {
    output: { description: 'The stored string; get_resource gives the physical id.' },
  },
  needsReplace(changed, after) {
    return changed.has('value') && pyTruthy(after['update_replace']);
  },
  async create(ctx) {
    const fail = ctx.properties['fail'] === true;
    const result: ResourceResult = fail
      ? { physicalId: null, data: {} }
      : {
          physicalId: physicalResourceName(ctx.stack.name, ctx.resourceName, ctx.idempotencyKey),
          data: { value: ctx.properties['value'] ?? null },
        };
    await wait(ctx, ctx.properties, 'create');
    if (fail) throw failure(ctx);
    return result;
  },
  createsAtOnce(properties) {
    return endsAtOnce(properties, 'create');
  },
  async update(ctx) {
    const data: JsonObject = { ...ctx.data };
    const value = ctx.changed.includes('value') ? ctx.properties['value'] : undefined;
    const fail = ctx.properties['fail'] === true;
    // Heat stores and waits only for a changed, non-empty value; otherwise it completes at once
    if (pyTruthy(value)) {
      if (!fail) data['value'] = value ?? null;
      await wait(ctx, ctx.properties, 'update');
    }
    if (fail) throw failure(ctx);
    return { physicalId: ctx.physicalId, data };
  },
  updatesAtOnce(properties) {
    return endsAtOnce(properties, 'update');
  },
  async delete(ctx) {
    await wait(ctx, ctx.properties, 'delete');
  },
  async attribute(name, ctx) {
    const secs = ctx.properties['attr_wait_secs'];
    // a negative time does not wait here (Heat's eventlet.sleep returns at once)
    if (typeof secs === 'number' && secs > 0) await ctx.sleep(secs * 1000);
    return name === 'output' ? (ctx.data['value'] ?? null) : null;
  },
};
