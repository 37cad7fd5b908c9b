/**
 * Shared fixtures of the resource tests: a registry of the built-in types over a memory config
 * store, and contexts whose `sleep` records the waits and returns at once (or really waits,
 * honouring the signal, when a test needs time to pass).
 */
import type { JsonObject } from '../../../../src/core/json.js';
import {
  MemoryConfigStore,
  abortableSleep,
  createBuiltinRegistry,
  validateProperties,
  type OperationContext,
  type ResourceType,
  type ResourceTypeRegistry,
  type StackIdentity,
  type UpdateContext,
} from '../../../../src/orchestration/resources/index.js';

export const SECRET = 'test-secret-0123456789abcdef0123456789abcdef';
export const STACK: StackIdentity = { id: 'stack-id-1', name: 'web', project: 'demo' };

export interface Harness {
  registry: ResourceTypeRegistry;
  configs: MemoryConfigStore;
  /** every `sleep(ms)` asked for, in order */
  sleeps: number[];
  type(name: string): ResourceType;
  /** an operation context for `resourceName` of `type`, its properties validated from `raw` */
  ctx(type: ResourceType, raw: JsonObject, over?: Partial<OperationContext>): OperationContext;
  /** an update context from `previous` (as stored) to `raw` */
  updateCtx(type: ResourceType, previous: OperationContext, raw: JsonObject, over?: Partial<UpdateContext>): UpdateContext;
}

/** A harness; `realSleep` makes sleeps wait for real (and honour the signal). */
export function harness(options: { realSleep?: boolean } = {}): Harness {
  const configs = new MemoryConfigStore();
  const registry = createBuiltinRegistry({ secret: SECRET, configs });
  const sleeps: number[] = [];
  const signal = new AbortController().signal;
  const sleeper = (s: AbortSignal) => async (ms: number) => {
    sleeps.push(ms);
    if (options.realSleep) await abortableSleep(ms, s);
  };
  const ctx = (type: ResourceType, raw: JsonObject, over: Partial<OperationContext> = {}): OperationContext => {
    const s = over.signal ?? signal;
    return {
      stack: STACK,
      resourceName: 'r',
      properties: validateProperties(type, raw, `resources.${over.resourceName ?? 'r'}`),
      physicalId: null,
      data: {},
      idempotencyKey: 'run-1/create.r/1',
      signal: s,
      sleep: sleeper(s),
      ...over,
    };
  };
  return {
    registry,
    configs,
    sleeps,
    type: (name) => registry.get(name),
    ctx,
    updateCtx(type, previous, raw, over = {}) {
      const properties = validateProperties(type, raw, `resources.${previous.resourceName}`);
      const changed = Object.keys(properties).filter((k) => JSON.stringify(properties[k]) !== JSON.stringify(previous.properties[k]));
      return {
        ...previous,
        idempotencyKey: 'run-2/update.r/1',
        properties,
        previousProperties: previous.properties,
        changed,
        ...over,
      };
    },
  };
}
