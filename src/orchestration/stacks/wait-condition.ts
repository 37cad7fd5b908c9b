/**
 * OS::Heat::WaitCondition: waits until its handle (an OS::Heat::WaitConditionHandle of the
 * same stack) has received `count` success signals, fails at the first failure signal, and
 * fails with Heat's WaitConditionTimeout at its `timeout`. Signals are stored on the
 * handle's row by `stack resource signal` (orchestrator.ts), so any engine sees them.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { ResourceFailure, abortableSleep, type OperationContext, type ResourceResult } from '../resources/index.js';
import type { StackLayer } from './layer.js';
import type { ResourceRow, StackRow } from './stack-store.js';

const POLL_MS = 250;

/** The signals a handle holds: `{id: {status, reason, data}}` in arrival order. */
export function handleSignals(row: ResourceRow | undefined): Record<string, JsonObject> {
  return ((row?.data ?? {})['signals'] ?? {}) as Record<string, JsonObject>;
}

/** Normalises a signal body as Heat's handle does: status SUCCESS unless FAILURE, an id by arrival. */
export function handleSignal(existing: Record<string, JsonObject>, body: JsonValue): Record<string, JsonObject> {
  const data = body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {};
  const status = data['status'] === 'FAILURE' ? 'FAILURE' : 'SUCCESS';
  const id = data['id'] !== undefined && data['id'] !== null ? String(data['id']) : String(Object.keys(existing).length + 1);
  return {
    ...existing,
    [id]: {
      status,
      reason: data['reason'] === undefined ? 'Signal 1 received' : (data['reason'] as JsonValue),
      data: data['data'] === undefined ? null : (data['data'] as JsonValue),
    },
  };
}

export async function waitCondition(
  layer: StackLayer,
  stack: StackRow,
  ctx: OperationContext,
  rows: readonly ResourceRow[],
): Promise<ResourceResult> {
  const handleName = rows.find((r) => r.current && (r.reference === ctx.properties['handle'] || r.name === ctx.properties['handle']))?.name;
  const count = Number(ctx.properties['count'] ?? 1);
  const deadline = Date.now() + Number(ctx.properties['timeout']) * 1000;
  for (;;) {
    const handle = handleName
      ? (await layer.stacks.sql.read('read a handle', (s) => layer.stacks.resourcesNamed(s, stack.id, [handleName]))).find((r) => r.current)
      : undefined;
    const signals = handleSignals(handle);
    const failure = Object.values(signals).find((s) => s['status'] === 'FAILURE');
    if (failure) throw new ResourceFailure('WaitConditionFailure', String(failure['reason']));
    const successes = Object.entries(signals).filter(([, s]) => s['status'] === 'SUCCESS');
    if (successes.length >= count) {
      const data = Object.fromEntries(successes.map(([id, s]) => [id, s['data'] ?? null]));
      return { physicalId: `${stack.name}-${ctx.resourceName}`, data: {}, attributes: { data: JSON.stringify(data) } };
    }
    if (Date.now() >= deadline) throw new ResourceFailure('WaitConditionTimeout', `${count - successes.length} of ${count} received`);
    await abortableSleep(POLL_MS, ctx.signal);
  }
}
