/**
 * What the runner reads back from the stack layer after a step, the way `stack show`,
 * `resource list/show`, `output list/show` and `event list` would show it: the stack by id
 * (a deleted one too), its current resources with their state, nested stacks reached through
 * resource names, outputs and events.
 */
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { isStokerError } from '../../src/errors.js';
import { nestedAttribute } from '../../src/orchestration/stacks/outputs.js';
import type { Orchestrator, ResourceRow, StackEventRow, StackOutput, StackRow } from '../../src/orchestration/stacks/index.js';
import { DEFAULT_PROJECT } from '../../src/orchestration/stacks/index.js';
import { displayParameters } from '../../src/orchestration/template/index.js';

/** `<ACTION>_<STATUS>` of a stack or resource row. */
export function stateOf(row: { action: string; status: string }): string {
  return `${row.action}_${row.status}`;
}

/** A stack's state as a client sees it: a stack that is gone is DELETE_COMPLETE. */
export function stackState(stack: StackRow | null): string {
  return stack === null ? 'DELETE_COMPLETE' : stateOf(stack);
}

/** `UPDATE_FAILED (reason "…")`, for messages. */
export function describeStack(stack: StackRow | null): string {
  if (stack === null) return 'not found';
  return `${stateOf(stack)}${stack.statusReason ? ` (reason ${JSON.stringify(stack.statusReason)})` : ''}`;
}

export class StackReader {
  constructor(
    readonly orchestrator: Orchestrator,
    readonly project = DEFAULT_PROJECT,
  ) {}

  /** The stack with that id, deleted or not; null when it does not exist. */
  async stack(id: string): Promise<StackRow | null> {
    try {
      return await this.orchestrator.get(id, this.project, { deleted: true });
    } catch (e) {
      if (isStokerError(e) && e.code === 'STOKER_STACK_NOT_FOUND') return null;
      throw e;
    }
  }

  /** The live stack of that name, or null. */
  async stackNamed(name: string): Promise<StackRow | null> {
    try {
      return await this.orchestrator.get(name, this.project);
    } catch (e) {
      if (isStokerError(e) && e.code === 'STOKER_STACK_NOT_FOUND') return null;
      throw e;
    }
  }

  /** The stack's current resources (top level), in id order. */
  async resources(stack: StackRow): Promise<ResourceRow[]> {
    return (await this.orchestrator.resources(stack, 0)).map((r) => r.row);
  }

  /**
   * A resource row by name for `resource show`: the current row, or else the last row of
   * that name that was deleted (a resource waited for until DELETE_COMPLETE is shown so in
   * Heat while its stack is still deleting).
   */
  async resourceShown(stack: StackRow, name: string): Promise<ResourceRow | null> {
    const current = (await this.resources(stack)).find((r) => r.name === name);
    if (current) return current;
    const stacks = this.orchestrator.stacks;
    const all = await stacks.sql.read('list resources', (s) => stacks.resources(s, stack.id, { includeDeleted: true }));
    return all.filter((r) => r.name === name).pop() ?? null;
  }

  /** The nested stack reached through resource names, or why there is none. */
  async nested(stack: StackRow, path: readonly string[]): Promise<{ stack: StackRow } | { missing: string }> {
    let at = stack;
    for (let i = 0; i < path.length; i++) {
      const name = path[i]!;
      const row = (await this.resources(at)).find((r) => r.name === name);
      const where = path.slice(0, i + 1).join('/');
      if (!row) return { missing: `no resource ${where}` };
      if (!row.nestedStack) return { missing: `resource ${where} (${row.type}) has no nested stack` };
      const child = await this.stack(row.nestedStack);
      if (!child || child.deletedAt !== null) return { missing: `the nested stack of ${where} is gone` };
      at = child;
    }
    return { stack: at };
  }

  /** Every live stack below `stackId` (nested stacks at any depth). */
  async descendants(stackId: string): Promise<StackRow[]> {
    const all = await this.orchestrator.list(this.project, { nested: true });
    const children = new Map<string, StackRow[]>();
    for (const s of all) if (s.parentId !== null) children.set(s.parentId, [...(children.get(s.parentId) ?? []), s]);
    const out: StackRow[] = [];
    const walk = (id: string) => {
      for (const c of children.get(id) ?? []) {
        out.push(c);
        walk(c.id);
      }
    };
    walk(stackId);
    return out;
  }

  outputs(stack: StackRow): Promise<StackOutput[]> {
    return this.orchestrator.outputs(stack);
  }

  events(stack: StackRow): Promise<StackEventRow[]> {
    return this.orchestrator.events(stack);
  }

  async lastEventId(stack: StackRow | null): Promise<number> {
    if (stack === null) return 0;
    const events = await this.events(stack);
    return events.reduce((max, e) => Math.max(max, e.id), 0);
  }

  /** The parameters as `stack show` prints them (hidden ones as `******`). */
  async displayParameters(stack: StackRow): Promise<Record<string, string> | null> {
    const instance = await this.orchestrator.instance(stack);
    return instance ? displayParameters(instance.parameters) : null;
  }

  async templateDescription(stack: StackRow): Promise<string | null> {
    const instance = await this.orchestrator.instance(stack);
    return instance?.template.description ?? null;
  }
}

/**
 * A resource's attribute as `resource show` gives it: stored, or computed from the members
 * of a nested stack (groups, chains, template resources); undefined when it has none.
 */
export function attributeOf(row: ResourceRow, name: string): JsonValue | undefined {
  const stored: JsonObject | null = row.attributes;
  if (stored && Object.hasOwn(stored, name)) return stored[name];
  return nestedAttribute(row, name, []);
}

/** Events of the stack itself (not of a resource). */
export function isStackEvent(e: StackEventRow, stack: StackRow): boolean {
  return e.resourceType === null && e.physicalId === stack.id;
}
