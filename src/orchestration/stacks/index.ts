/**
 * The stack layer of Stoker's Heat-compatible orchestration: stacks whose actions are runs
 * of generated graphs, one atom per resource step, converged by stored state
 * (docs/orchestration.md).
 *
 * @example
 * ```ts
 * const stacks = runtime.stacks!;
 * await stacks.create('web', { template: text, parameters: { count: '3' } });
 * ```
 */
export { DEFAULT_STACK_LIMITS, type StackLimits } from './layer.js';
export { DEFAULT_PROJECT, Orchestrator, type OrchestratorOptions, type StackRequest } from './orchestrator.js';
export type { PreviewResult } from './preview.js';
export type { StackOutput } from './outputs.js';
export { orchestrationSchema } from './schema.js';
export { SqlConfigStore, createStackLayer, orchestrationSecret, type StackLayerOptions } from './stack-layer.js';
export type { ResourceRow, StackAction, StackEventRow, StackRow } from './stack-store.js';
