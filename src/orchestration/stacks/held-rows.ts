/**
 * The rows a resource step holds (docs/orchestration.md, "A converge step"): a row is held by
 * (run, atom, fencing token), and every write of it is conditional on that hold. A step takes
 * a free row, its own earlier execution's row (same run and atom: a takeover after its engine
 * died), or a row whose holder no longer runs under the recorded epoch. A row held by a live
 * step of an older traversal is waited for, then read as that step left it.
 */
import type { JsonObject } from '../../core/json.js';
import type { TaskContext } from '../../flow/types.js';
import { AtomState } from '../../store/states.js';
import { abortableSleep, type OperationContext } from '../resources/index.js';
import { resolveResourceType, type HookType } from '../template/index.js';
import type { StackLayer } from './layer.js';
import { newResourceRow, type ResourceRow, type StackAction, type StackRow } from './stack-store.js';
import type { TemplateSetBody } from './template-set.js';

/** What a `stack.resource` atom is given. */
export interface ResourceStepParams {
  stack: string;
  /** the action's traversal id (the stack's `traversal` while it is current) */
  traversal: string;
  action: StackAction;
  op: 'converge' | 'delete' | 'check' | 'suspend' | 'resume';
  set: string | null;
  name: string;
  /** the stack's name and project (fixed for its life): the template binds to them */
  stackName?: string;
  project?: string;
  /** a delete of one particular row (a replaced or removed resource) */
  row?: number;
  /** a converge step whose row the action planned INIT_COMPLETE (a create: its first write can read too) */
  planned?: boolean;
}

/** A resource step failed: the stack action fails (its reason was recorded before). */
export class ResourceStepFailed extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ResourceStepFailed';
  }
}

/** Another traversal inserted the same generation first: the step starts over (after a short wait). */
export class RowConflict extends Error {}

/** The signal that clears a breakpoint on a resource row. */
export const hookSignal = (hook: HookType, rowId: number): string => `hook.${hook}.${rowId}`;

/** The epoch recorded in a fencing token `<run>/<atom>/<epoch>.<attempt>`. */
function tokenEpoch(token: string): number {
  const last = token.slice(token.lastIndexOf('/') + 1);
  return Number(last.slice(0, last.indexOf('.')));
}

export class HeldRows {
  constructor(readonly layer: StackLayer) {}

  // ------------------------------------------------------------------ holds

  /**
   * Takes the row's hold for this execution. A free row (or this atom's own, from an earlier
   * attempt) is taken by the step's next write of it, in the same statement ({@link record}:
   * a compare-and-set on the hold seen); a row held by another step goes through {@link hold}.
   */
  async claim(row: ResourceRow, ctx: TaskContext): Promise<ResourceRow> {
    const token = ctx.fencingToken;
    if (row.holdToken === token) return row;
    const own = row.holdRun === ctx.runId && row.holdAtom === ctx.atomName;
    if (row.holdToken !== null && !own) return this.hold(row, ctx);
    const claimed = { ...row, holdRun: ctx.runId, holdAtom: ctx.atomName, holdToken: token };
    this.pending.set(claimed, row.holdToken);
    return claimed;
  }

  /** rows claimed but not written yet, with the hold they had when read */
  private readonly pending = new WeakMap<ResourceRow, string | null>();

  /** Takes the row's hold for this execution, or parks until its live holder lets go. */
  async hold(row: ResourceRow, ctx: TaskContext): Promise<ResourceRow> {
    const { stacks } = this.layer;
    const token = ctx.fencingToken;
    for (let tries = 0; ; tries++) {
      if (row.holdToken === token) return row;
      const own = row.holdRun === ctx.runId && row.holdAtom === ctx.atomName;
      if (row.holdToken === null || own || !(await this.holderLive(row))) {
        const taken = await stacks.takeHold(row.id, { run: ctx.runId, atom: ctx.atomName, token }, row.holdToken);
        if (taken) return { ...row, holdRun: ctx.runId, holdAtom: ctx.atomName, holdToken: token };
      } else {
        // a live step of another traversal works on it: wait for it to record and let go (a
        // short wait in memory: durable waits must come in the same order in every execution)
        await abortableSleep(tries < 20 ? 50 : 250, ctx.signal);
      }
      const again = await stacks.sql.read('read a resource', (s) => stacks.getResource(s, row.id));
      if (!again) throw new ResourceStepFailed(`resource ${row.name} vanished`);
      row = again;
    }
  }

  async holderLive(row: ResourceRow): Promise<boolean> {
    if (row.holdRun === null || row.holdToken === null) return false;
    const atoms = await this.layer.queries.getAtoms(row.holdRun);
    const atom = atoms.find((a) => a.name === row.holdAtom);
    return (
      atom !== undefined &&
      (atom.state === AtomState.RUNNING || atom.state === AtomState.REVERTING) &&
      atom.epoch === tokenEpoch(row.holdToken)
    );
  }

  /** Writes a row (and events) while this execution holds it; a lost hold stops the step. */
  async record(
    row: ResourceRow,
    patch: Partial<ResourceRow>,
    event: { status: string; reason: string } | null,
    stackId: string,
  ): Promise<ResourceRow> {
    const { stacks } = this.layer;
    const at = this.layer.now();
    // a claimed row is taken by this write: its hold columns go with the patch, on the hold seen
    const taking = this.pending.has(row);
    const ok = await stacks.writeResource(
      row.id,
      taking
        ? { holdRun: row.holdRun, holdAtom: row.holdAtom, holdToken: row.holdToken, ...patch, updatedAt: at }
        : { ...patch, updatedAt: at },
      taking ? (this.pending.get(row) ?? null) : (row.holdToken ?? undefined),
      event
        ? {
            stackId,
            resourceName: row.name,
            resourceType: patch.type ?? row.type,
            physicalId: patch.physicalId !== undefined ? patch.physicalId : row.physicalId,
            status: event.status,
            reason: event.reason,
            createdAt: at,
          }
        : null,
    );
    if (!ok && taking) throw new RowConflict(`resource ${row.name} was taken by another step`);
    if (!ok) throw new ResourceStepFailed(`resource ${row.name}: another step took it over`);
    return { ...row, ...patch, updatedAt: at };
  }

  release(row: ResourceRow, patch: Partial<ResourceRow>, event: { status: string; reason: string } | null, stackId: string) {
    return this.record(row, { ...patch, holdRun: null, holdAtom: null, holdToken: null }, event, stackId);
  }

  /** whether the step's run has received the signal `name` */
  async signalled(ctx: TaskContext, name: string): Promise<boolean> {
    return (await this.layer.queries.getSignals(ctx.runId)).some((x) => x.name === name);
  }

  async insertRow(
    stack: StackRow,
    name: string,
    type: string,
    generation: number,
    ctx: TaskContext,
    common: Partial<ResourceRow>,
    creating = false,
  ): Promise<ResourceRow> {
    const { stacks } = this.layer;
    const at = this.layer.now();
    const row = newResourceRow(
      {
        stackId: stack.id,
        name,
        generation,
        type,
        requires: (common.requires as string[]) ?? [],
        metadata: (common.metadata as JsonObject) ?? null,
        templateSet: (common.templateSet as string) ?? null,
        createdAt: at,
      },
      {
        // a first create is inserted in progress, with its event, in one transaction
        ...(creating ? { action: 'CREATE', status: 'IN_PROGRESS', statusReason: 'state changed' } : {}),
        holdRun: ctx.runId,
        holdAtom: ctx.atomName,
        holdToken: ctx.fencingToken,
      },
    );
    try {
      const id = await stacks.createResource(
        row,
        creating
          ? {
              stackId: stack.id,
              resourceName: name,
              resourceType: type,
              physicalId: null,
              status: 'CREATE_IN_PROGRESS',
              reason: 'state changed',
              createdAt: at,
            }
          : null,
      );
      return { ...row, id };
    } catch (e) {
      // another traversal inserted this generation first: read it and wait for it like any hold
      const rows = await stacks.sql.read('read resources', (s) => stacks.resourcesNamed(s, stack.id, [name]));
      const other = rows.find((r) => r.generation === generation);
      if (!other) throw e;
      if (other.holdRun === ctx.runId && other.holdAtom === ctx.atomName) return this.hold(other, ctx);
      throw new RowConflict(`resource ${name} generation ${generation} exists`);
    }
  }

  /** what an operation on `row` sees; its idempotency key names the row (`key`: another suffix) */
  operationContext(
    stack: Pick<StackRow, 'id' | 'name' | 'project'>,
    row: Pick<ResourceRow, 'id' | 'name' | 'physicalId' | 'data'>,
    properties: JsonObject,
    ctx: TaskContext,
    key: string | number = row.id,
  ): OperationContext {
    return {
      stack: { id: stack.id, name: stack.name, project: stack.project },
      resourceName: row.name,
      properties,
      physicalId: row.physicalId,
      data: row.data ?? {},
      idempotencyKey: `${ctx.idempotencyKey}#${key}`,
      signal: ctx.signal,
      sleep: (ms) =>
        Number.isFinite(ms)
          ? abortableSleep(ms, ctx.signal)
          : abortableSleep(2 ** 31, ctx.signal).then(() => abortableSleep(Number.MAX_SAFE_INTEGER, ctx.signal)),
    };
  }

  /** the plugin type a row's written type resolves to, through its template set's registry */
  async pluginName(row: ResourceRow): Promise<string> {
    if (!row.templateSet) return row.type;
    try {
      const body: TemplateSetBody = await this.layer.setBody(row.templateSet);
      const resolved = resolveResourceType(body.environment.resourceRegistry, row.type, { resourceName: row.name, files: body.files });
      return resolved.kind === 'plugin' ? resolved.type : row.type;
    } catch {
      return row.type;
    }
  }
}

export function abortText(ctx: TaskContext): string {
  const reason: unknown = ctx.signal.reason;
  return reason instanceof Error ? reason.message : 'Operation cancelled';
}
