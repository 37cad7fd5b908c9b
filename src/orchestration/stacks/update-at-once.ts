/**
 * An update in place that ends at once, in one write (docs/orchestration.md, "A converge
 * step"): when the step has read its row and Heat's rules decide an update in place of a
 * plain resource type that says this update ends at once ({@link ResourceType.updatesAtOnce}),
 * the step runs the update and resolves the attributes before it takes the row, then one
 * statement sets the row UPDATE_COMPLETE with both events (StackStore.updateInPlace). Anything
 * else, or a write that matches nothing, leaves the step to go the usual way.
 */
import type { JsonValue } from '../../core/json.js';
import type { TaskContext } from '../../flow/types.js';
import {
  isReplace,
  needsReplacement,
  referenceId,
  resolveAllAttributes,
  validateProperties,
  type ResourceType,
} from '../resources/index.js';
import { resolveResourceType, resourceHooks, restrictedActions, type RuntimeContext } from '../template/index.js';
import type { HeldRows, ResourceStepParams } from './held-rows.js';
import type { ResourceRow, StackRow } from './stack-store.js';
import { stackLayerKind } from './stack-types.js';
import type { instantiateSet, TemplateSetBody } from './template-set.js';

/** What the converge step has read and evaluated when it tries an update at once. */
export interface InPlaceStep {
  p: ResourceStepParams;
  stack: StackRow;
  body: TemplateSetBody;
  instance: ReturnType<typeof instantiateSet>;
  /** the current row as read: free, completed, not this atom's own */
  row: ResourceRow;
  /** get_resource / get_attr over the rows the step read */
  runtime: () => RuntimeContext;
  ctx: TaskContext;
}

/**
 * The whole update in one write, or null: not such an update (a breakpoint, a restricted
 * update, a nested stack or a wait condition, a replace, a failure, an update that does not
 * end at once), or a write that found the row taken, changed since the read, or the
 * traversal superseded. The update's result is then thrown away; the usual path runs the
 * update again (same idempotency key: the row's) and records what happens. The resource
 * never shows UPDATE_IN_PROGRESS in a listing meanwhile; its events are Heat's.
 */
export async function updateAtOnce(held: HeldRows, step: InPlaceStep): Promise<JsonValue | null> {
  const { p, stack, body, instance, row, ctx } = step;
  const { stacks } = held.layer;
  if (stacks.sql.dialect !== 'postgres' || row.holdToken !== null || row.status !== 'COMPLETE' || row.action === 'INIT') return null;
  const def = instance.resource(p.name);
  const registry = body.environment.resourceRegistry;
  if (resourceHooks(registry, p.name).includes('pre-update') || restrictedActions(registry, p.name).includes('update')) return null;
  const at = held.layer.now();
  let patch: Partial<ResourceRow>;
  let result;
  try {
    const resolved = resolveResourceType(registry, def.type, { resourceName: p.name, files: body.files });
    if (resolved.kind !== 'plugin' || stackLayerKind(resolved.type) !== undefined) return null;
    const plugin: ResourceType | undefined = held.layer.registry.find(resolved.type);
    if (!plugin?.updatesAtOnce || (await held.pluginName(row)) !== plugin.type) return null;
    const evaluated = instance.evaluateResource(p.name, {
      ...step.runtime(),
      ...(body.facade ? { resourceFacade: body.facade } : {}),
    });
    const properties = validateProperties(plugin, evaluated.properties, '');
    const decision = needsReplacement(plugin, row.properties, properties, { resourceName: p.name });
    if (decision.action !== 'update' || !plugin.updatesAtOnce(properties)) return null;
    // the row's key, as the usual path's update would have
    const opCtx = held.operationContext(stack, row, properties, ctx);
    const out = await plugin.update({ ...opCtx, previousProperties: row.properties, changed: decision.changed });
    if (isReplace(out)) return null;
    result = out;
    const attrCtx = { ...opCtx, physicalId: out.physicalId, data: out.data };
    patch = {
      requires: [...def.requires],
      templateSet: p.set,
      metadata: evaluated.metadata,
      type: def.type,
      action: 'UPDATE',
      status: 'COMPLETE',
      statusReason: 'state changed',
      properties,
      physicalId: out.physicalId,
      data: out.data,
      attributes: { ...(await resolveAllAttributes(plugin, attrCtx)), ...(out.attributes ?? {}) },
      reference: referenceId(plugin, { resourceName: p.name, physicalId: out.physicalId, data: out.data, properties }),
      updatedAt: at,
    };
  } catch {
    return null;
  }
  const done = await stacks.updateInPlace({
    stackId: stack.id,
    traversal: p.traversal,
    row,
    type: def.type,
    physicalId: result.physicalId,
    at,
    patch,
  });
  return done ? { resource: p.name, physicalId: result.physicalId } : null;
}
