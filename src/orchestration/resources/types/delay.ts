/**
 * OS::Heat::Delay: waits during the actions it is told to (`actions`, default CREATE only),
 * `min_wait` seconds plus a random jitter of up to `max_jitter` × `jitter_multiplier` seconds.
 * As Heat's: no physical id, every property updates in place (an update does not wait), and
 * when validation is strict a maximum delay beyond the stack's timeout is refused.
 *
 * Differs from Heat: the jitter is drawn from the operation's idempotency key, so an execution
 * of the same step again waits as long; resuming works (Heat's fails on a missing method); the
 * timeout message names the type (Heat's prints a method object there).
 */
import type { JsonObject } from '../../../core/json.js';
import { pyNumber } from '../../template/python-values.js';
import { KeyedRandom } from '../keyed-random.js';
import { supported, type PropertySchema } from '../property-schema.js';
import type { OperationContext, ResourceType } from '../resource-type.js';

const ACTIONS = ['CREATE', 'DELETE', 'SUSPEND', 'RESUME'] as const;

const atLeastZero = (description: string, defaultValue: number): PropertySchema => ({
  type: 'number',
  description,
  default: defaultValue,
  updateAllowed: true,
  constraints: [{ range: { min: 0 } }],
});

const num = (properties: JsonObject, key: string, fallback: number): number => {
  const v = properties[key];
  return typeof v === 'number' ? v : fallback;
};

/** The longest delay the properties allow, in seconds, and how Python prints that sum. */
function maxWait(properties: JsonObject): { secs: number; shown: string } {
  const multiplier = num(properties, 'jitter_multiplier', 1);
  const secs = num(properties, 'min_wait', 0) + num(properties, 'max_jitter', 0) * multiplier;
  // the multiplier's default is the float 1.0, which makes the sum a float; integers given stay integers
  const float = multiplier === 1 || ![properties['min_wait'], properties['max_jitter'], multiplier].every((v) => Number.isInteger(v));
  return { secs, shown: float && Number.isInteger(secs) ? `${secs}.0` : pyNumber(secs) };
}

async function pause(ctx: OperationContext, action: (typeof ACTIONS)[number]): Promise<void> {
  const actions = ctx.properties['actions'];
  if (!Array.isArray(actions) || !actions.includes(action)) return;
  const jitter = num(ctx.properties, 'max_jitter', 0) * num(ctx.properties, 'jitter_multiplier', 1);
  const secs = num(ctx.properties, 'min_wait', 0) + jitter * KeyedRandom.fromKey('OS::Heat::Delay', ctx.idempotencyKey).float();
  if (secs > 0) await ctx.sleep(secs * 1000);
}

/**
 * The OS::Heat::Delay type.
 *
 * @example
 * ```ts
 * await delayType.create({ …ctx, properties: { min_wait: 5, max_jitter: 0, jitter_multiplier: 1, actions: ['CREATE'] } }); // waits 5 s
 * ```
 */
export const delayType: ResourceType = {
  type: 'OS::Heat::Delay',
  description: 'Waits a configurable time during the chosen actions, to insert a pause between the resources around it.',
  supportStatus: supported('11.0.0'),
  properties: {
    min_wait: atLeastZero('The least number of seconds to wait during the chosen actions.', 0),
    max_jitter: atLeastZero('The most random jitter to add to the wait, in units of jitter_multiplier.', 0),
    jitter_multiplier: atLeastZero('The number of seconds one unit of max_jitter stands for.', 1),
    actions: {
      type: 'list',
      description: 'The actions during which to wait.',
      default: ['CREATE'],
      updateAllowed: true,
      constraints: [{ allowed_values: [...ACTIONS] }],
    },
  },
  attributes: {},
  validate(properties, context) {
    if (!context.strict) return undefined;
    const { secs, shown } = maxWait(properties);
    return secs > context.stackTimeoutSecs ? `OS::Heat::Delay maximum delay ${shown}s exceeds stack timeout.` : undefined;
  },
  async create(ctx) {
    await pause(ctx, 'CREATE');
    return { physicalId: null, data: {} };
  },
  async update(ctx) {
    return { physicalId: ctx.physicalId, data: ctx.data };
  },
  async delete(ctx) {
    await pause(ctx, 'DELETE');
  },
  async suspend(ctx) {
    await pause(ctx, 'SUSPEND');
  },
  async resume(ctx) {
    await pause(ctx, 'RESUME');
  },
  async attribute() {
    return null;
  },
};
