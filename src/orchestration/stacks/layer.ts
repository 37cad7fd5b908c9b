/**
 * What the parts of the stack layer share: the statements, the run client and queries, the
 * resource types, limits, and the action starter (orchestrator.ts), so that a step can start
 * a rollback or a nested stack's action.
 */
import type { JsonValue } from '../../core/json.js';
import type { RunClient } from '../../engine/run-client.js';
import type { RunQueries } from '../../store/ports.js';
import type { ResourceTypeRegistry } from '../resources/index.js';
import type { TemplateLimits } from '../template/index.js';
import type { StackAction, StackRow, StackStore } from './stack-store.js';
import type { TemplateSetBody } from './template-set.js';

/** Limits of the stack layer (Heat's defaults; configurable). */
export interface StackLimits {
  /** resources in one stack, nested stacks' counted separately (Heat: max_resources_per_stack 1000) */
  maxResourcesPerStack: number;
  /** nesting depth (Heat: max_nested_stack_depth 5) */
  maxNestedDepth: number;
  /** live top-level stacks per project (Heat: max_stacks_per_tenant 512) */
  maxStacksPerProject: number;
  /** a stack action's timeout when none is given, minutes (Heat: stack_action_timeout 3600 s) */
  defaultTimeoutMins: number;
  template?: Partial<TemplateLimits>;
}

export const DEFAULT_STACK_LIMITS: StackLimits = {
  maxResourcesPerStack: 1000,
  maxNestedDepth: 5,
  maxStacksPerProject: 512,
  defaultTimeoutMins: 60,
};

/** Who started a nested stack's traversal: the parent's step, which waits for its signal. */
export interface TraversalOwner {
  run: string;
  atom: string;
  key: string;
}

export interface ActionOptions {
  owner?: TraversalOwner | null;
  /** the traversal id to use (already written by whoever decided on this action) */
  traversal?: string;
  /** the reason of the stack's IN_PROGRESS state and event (Heat: "Stack CREATE started") */
  reason?: string;
  /** a stack just inserted, whose rows need no read: it has none */
  fresh?: boolean;
}

export interface StackLayer {
  readonly stacks: StackStore;
  readonly queries: RunQueries;
  readonly client: RunClient;
  readonly registry: ResourceTypeRegistry;
  readonly limits: StackLimits;
  now(): number;
  newId(): string;
  setBody(id: string): Promise<TemplateSetBody>;
  /** a set this process has just stored: {@link setBody} returns it without a read */
  rememberBody(setId: string, body: TemplateSetBody): void;
  /** starts an action's traversal on a stack (superseding the one in progress) */
  startAction(stack: StackRow, action: StackAction, setId: string | null, options?: ActionOptions): Promise<void>;
  /** tells the parent step waiting for a nested stack that its traversal ended */
  notifyOwner(stack: StackRow, payload: JsonValue): Promise<void>;
}
