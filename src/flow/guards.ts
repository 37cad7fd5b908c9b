/**
 * Shape checks for definitions that may come from plain JavaScript (a flows module) or
 * from another copy of this package, where `instanceof` and private brands do not work.
 * They check the discriminant and the fields compilation relies on, nothing more.
 */
import type { CompiledFlow, FlowDefinition, RetryController, TaskDefinition } from './types.js';

/**
 * Whether `value` looks like a {@link TaskDefinition} made by `task()`.
 *
 * @example
 * ```ts
 * isTaskDefinition(task({ name: 'a', execute: () => 1 })); // true
 * ```
 */
export function isTaskDefinition(value: unknown): value is TaskDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof TaskDefinition, unknown>>;
  return (
    v.type === 'task' &&
    typeof v.name === 'string' &&
    typeof v.execute === 'function' &&
    Array.isArray(v.requires) &&
    Array.isArray(v.provides) &&
    typeof v.rebind === 'object' &&
    v.rebind !== null &&
    typeof v.inject === 'object' &&
    v.inject !== null
  );
}

/**
 * Whether `value` looks like a {@link FlowDefinition} made by `linear`, `unordered` or
 * `graph`.
 *
 * @example
 * ```ts
 * isFlowDefinition(linear('f', [a])); // true
 * ```
 */
export function isFlowDefinition(value: unknown): value is FlowDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof FlowDefinition, unknown>>;
  return (
    v.type === 'flow' &&
    typeof v.name === 'string' &&
    typeof v.version === 'string' &&
    (v.pattern === 'linear' || v.pattern === 'unordered' || v.pattern === 'graph') &&
    Array.isArray(v.children) &&
    Array.isArray(v.links) &&
    (v.retry === undefined || isRetryController(v.retry))
  );
}

/**
 * Whether `value` looks like a {@link RetryController} made by `times`, `forEach`, …
 *
 * @example
 * ```ts
 * isRetryController(times(3)); // true
 * ```
 */
export function isRetryController(value: unknown): value is RetryController {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof RetryController, unknown>>;
  return (
    v.type === 'retry' && typeof v.spec === 'object' && v.spec !== null && (v.provides === undefined || typeof v.provides === 'string')
  );
}

/**
 * Whether `value` looks like a {@link CompiledFlow} (the result of `compileFlow`).
 *
 * @example
 * ```ts
 * isCompiledFlow(compileFlow(linear('f', [a]))); // true
 * ```
 */
export function isCompiledFlow(value: unknown): value is CompiledFlow {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof CompiledFlow, unknown>>;
  return (
    typeof v.name === 'string' &&
    typeof v.version === 'string' &&
    typeof v.graph === 'object' &&
    v.graph !== null &&
    v.tasks instanceof Map &&
    v.deciders instanceof Map
  );
}
