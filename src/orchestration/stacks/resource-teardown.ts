/**
 * The steps that act on a stored row rather than on a template's resource: delete (a stack
 * delete, or a replaced or removed row), check, suspend and resume. Each takes the row's
 * hold, records `<ACTION>_IN_PROGRESS`, calls the resource type (or the nested stack) and
 * records how it ended (docs/orchestration.md, "Actions as runs").
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import type { TaskContext } from '../../flow/types.js';
import { Suspension } from '../../engine/failure.js';
import { resourceStatusReason } from '../resources/index.js';
import { abortText, HeldRows, ResourceStepFailed, type ResourceStepParams } from './held-rows.js';
import type { StackLayer } from './layer.js';
import { deleteNested } from './nested.js';
import type { ResourceRow, StackRow } from './stack-store.js';
import { stackLayerKind } from './stack-types.js';
import { instantiateSet } from './template-set.js';

// ------------------------------------------------------------------ delete

export async function deleteResource(
  held: HeldRows,
  stack: StackRow,
  found: ResourceRow | null,
  p: ResourceStepParams,
  ctx: TaskContext,
): Promise<JsonValue> {
  if (!found || found.deleted) return { resource: p.name, deleted: false };
  if (found.current && p.action !== 'DELETE' && p.set !== null) {
    // the converge step of this traversal took this row back (it had been replaced): it stays
    const instance = instantiateSet(p.set, await held.layer.setBody(p.set), stack, held.layer.limits.template);
    if (instance.hasResource(found.name)) return { resource: p.name, deleted: false };
  }
  const row = await held.claim(found, ctx);
  if (row.deleted) return { resource: p.name, deleted: false };
  if (row.action === 'INIT') {
    // never created: nothing to delete, no events (as Heat)
    await held.release(row, { deleted: true, current: false }, null, stack.id);
    return { resource: p.name, deleted: true };
  }
  const path = `resources.${row.name}`;
  const policy =
    ((row.metadata as JsonObject | null)?.['__deletion_policy'] as string | undefined) ?? (await deletionPolicy(held.layer, stack, row));
  let current = row;
  if (!(row.action === 'DELETE' && row.status === 'IN_PROGRESS')) {
    current = await held.record(
      row,
      { action: 'DELETE', status: 'IN_PROGRESS', statusReason: 'state changed' },
      { status: 'DELETE_IN_PROGRESS', reason: 'state changed' },
      stack.id,
    );
  }
  try {
    if (policy !== 'Retain') {
      if (row.nestedStack) {
        const outcome = await deleteNested(held.layer, stack, current, p.action, ctx);
        if (outcome.failed) throw new ResourceStepFailed(outcome.reason);
      } else {
        const plugin = held.layer.registry.find(await held.pluginName(row));
        const kind = stackLayerKind(row.type);
        if (plugin && kind === undefined) {
          const opCtx = held.operationContext(stack, current, row.properties, ctx);
          if (policy === 'Snapshot' && plugin.snapshotDelete) await plugin.snapshotDelete(opCtx);
          else await plugin.delete(opCtx);
        }
      }
    }
  } catch (e) {
    if (e instanceof Suspension) throw e;
    const reason =
      e instanceof ResourceStepFailed ? e.reason : resourceStatusReason(ctx.signal.aborted ? new Error(abortText(ctx)) : e, path);
    await held.release(
      current,
      { action: 'DELETE', status: 'FAILED', statusReason: reason },
      { status: 'DELETE_FAILED', reason },
      stack.id,
    );
    throw new ResourceStepFailed(reason);
  }
  await held.release(
    current,
    { action: 'DELETE', status: 'COMPLETE', statusReason: 'state changed', deleted: true, current: false },
    { status: 'DELETE_COMPLETE', reason: 'state changed' },
    stack.id,
  );
  return { resource: p.name, deleted: true };
}

/** the deletion policy the row was last converged with */
async function deletionPolicy(layer: StackLayer, stack: StackRow, row: ResourceRow): Promise<string> {
  if (!row.templateSet) return 'Delete';
  try {
    const body = await layer.setBody(row.templateSet);
    const instance = instantiateSet(row.templateSet, body, stack, layer.limits.template);
    return instance.hasResource(row.name) ? instance.resource(row.name).deletionPolicy : 'Delete';
  } catch {
    return 'Delete';
  }
}

// ------------------------------------------------------------------ check, suspend, resume

export async function lifecycleResource(
  held: HeldRows,
  stack: StackRow,
  found: ResourceRow | null,
  p: ResourceStepParams,
  ctx: TaskContext,
): Promise<JsonValue> {
  if (!found || found.deleted) return { resource: p.name };
  const row = await held.claim(found, ctx);
  const action = p.action;
  let current = await held.record(
    row,
    { action, status: 'IN_PROGRESS', statusReason: 'state changed' },
    { status: `${action}_IN_PROGRESS`, reason: 'state changed' },
    stack.id,
  );
  let reason = 'state changed';
  try {
    if (row.nestedStack) {
      const outcome = await deleteNested(held.layer, stack, current, action, ctx);
      if (outcome.failed) throw new ResourceStepFailed(outcome.reason);
    } else {
      const plugin = held.layer.registry.find(await held.pluginName(row));
      const opCtx = held.operationContext(stack, current, row.properties, ctx);
      if (plugin && stackLayerKind(row.type) === undefined) {
        if (action === 'CHECK') {
          if (plugin.check) await plugin.check(opCtx);
          else reason = `CHECK not supported for ${row.type}`;
        } else if (action === 'SUSPEND') await plugin.suspend?.(opCtx);
        else if (action === 'RESUME') await plugin.resume?.(opCtx);
      }
    }
  } catch (e) {
    if (e instanceof Suspension) throw e;
    const why = e instanceof ResourceStepFailed ? e.reason : resourceStatusReason(e, `resources.${row.name}`);
    await held.release(current, { action, status: 'FAILED', statusReason: why }, { status: `${action}_FAILED`, reason: why }, stack.id);
    throw new ResourceStepFailed(why);
  }
  current = await held.release(
    current,
    { action, status: 'COMPLETE', statusReason: reason },
    { status: `${action}_COMPLETE`, reason },
    stack.id,
  );
  return { resource: current.name };
}
