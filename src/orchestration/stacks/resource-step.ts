/**
 * The step type `stack.resource`: one resource step of a stack action (one atom). It takes
 * the resource row's hold, evaluates the properties against the stored rows of the resources
 * it requires, calls the resource type (or runs the nested stack) with the atom's
 * idempotency key and abort signal, and records what it did with its events, every write
 * conditional on the hold (docs/orchestration.md, "A step").
 *
 * Holds: a row is held by (run, atom, fencing token). A step takes a free row, its own
 * earlier execution's row (same run and atom: a takeover after its engine died), or a row
 * whose holder no longer runs under the recorded epoch. A row held by a live step of an
 * older traversal is waited for (a durable sleep), then read as that step left it.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../core/canonical-json.js';
import type { JsonObject, JsonValue } from '../../core/json.js';
import type { TaskContext } from '../../flow/types.js';
import type { StepType } from '../../flow/step-type.js';
import { Suspension } from '../../engine/failure.js';
import { AtomState } from '../../store/states.js';
import {
  abortableSleep,
  checkDeletionPolicy,
  isReplace,
  needsReplacement,
  referenceId,
  resolveAllAttributes,
  resourceStatusReason,
  validateProperties,
  type OperationContext,
  type ResourceType,
} from '../resources/index.js';
import { resolveResourceType, resourceHooks, restrictedActions, type HookType, type RuntimeContext } from '../template/index.js';
import type { StackLayer } from './layer.js';
import { awaitSignal, convergeNested, deleteNested } from './nested.js';
import { nestedAttribute, rowsRuntime } from './outputs.js';
import type { ResourceRow, StackAction, StackRow } from './stack-store.js';
import { stackLayerKind } from './stack-types.js';
import { instantiateSet, type TemplateSetBody } from './template-set.js';
import { waitCondition } from './wait-condition.js';

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
}

/** A resource step failed: the stack action fails (its reason was recorded before). */
export class ResourceStepFailed extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ResourceStepFailed';
  }
}

/** Another traversal inserted the same generation first: the step starts over (after a short wait). */
class RowConflict extends Error {}

/** The signal that clears a breakpoint on a resource row. */
export const hookSignal = (hook: HookType, rowId: number): string => `hook.${hook}.${rowId}`;

/** The epoch recorded in a fencing token `<run>/<atom>/<epoch>.<attempt>`. */
function tokenEpoch(token: string): number {
  const last = token.slice(token.lastIndexOf('/') + 1);
  return Number(last.slice(0, last.indexOf('.')));
}

export class ResourceSteps {
  readonly step: StepType;

  constructor(private readonly layer: StackLayer) {
    this.step = {
      type: 'stack.resource',
      execute: (params, _inputs, ctx) => this.execute(params as unknown as ResourceStepParams, ctx),
    };
  }

  private async execute(p: ResourceStepParams, ctx: TaskContext): Promise<JsonValue> {
    const { stacks } = this.layer;
    if (p.op === 'converge' && p.stackName !== undefined) {
      for (;;) {
        try {
          return await this.converge(null, p, ctx);
        } catch (e) {
          if (!(e instanceof RowConflict)) throw e;
          await abortableSleep(50, ctx.signal);
        }
      }
    }
    const stack = await stacks.sql.read('read a stack', (s) => stacks.getStack(s, p.stack));
    // a newer action took over: it converges this resource itself
    if (!stack || stack.traversal !== p.traversal) return { superseded: true };
    switch (p.op) {
      case 'converge':
        return this.converge(stack, p, ctx);
      case 'delete':
        return this.deleteStep(stack, p, ctx);
      default:
        return this.lifecycle(stack, p, ctx);
    }
  }

  // ------------------------------------------------------------------ holds

  /** Takes the row's hold for this execution, or parks until its live holder lets go. */
  async hold(row: ResourceRow, ctx: TaskContext): Promise<ResourceRow> {
    const { stacks } = this.layer;
    const token = ctx.fencingToken;
    for (let tries = 0; ; tries++) {
      if (row.holdToken === token) return row;
      const own = row.holdRun === ctx.runId && row.holdAtom === ctx.atomName;
      if (row.holdToken === null || own || !(await this.holderLive(row))) {
        const taken = await stacks.sql.write('hold a resource', (s) =>
          stacks.takeHold(s, row.id, { run: ctx.runId, atom: ctx.atomName, token }, row.holdToken),
        );
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

  private async holderLive(row: ResourceRow): Promise<boolean> {
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
  private async record(
    row: ResourceRow,
    patch: Partial<ResourceRow>,
    event: { status: string; reason: string } | null,
    stackId: string,
  ): Promise<ResourceRow> {
    const { stacks } = this.layer;
    const at = this.layer.now();
    const ok = await stacks.writeResource(
      row.id,
      { ...patch, updatedAt: at },
      row.holdToken ?? undefined,
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
    if (!ok) throw new ResourceStepFailed(`resource ${row.name}: another step took it over`);
    return { ...row, ...patch, updatedAt: at };
  }

  private release(row: ResourceRow, patch: Partial<ResourceRow>, event: { status: string; reason: string } | null, stackId: string) {
    return this.record(row, { ...patch, holdRun: null, holdAtom: null, holdToken: null }, event, stackId);
  }

  /** whether the step's run has received the signal `name` */
  private async signalled(ctx: TaskContext, name: string): Promise<boolean> {
    return (await this.layer.queries.getSignals(ctx.runId)).some((x) => x.name === name);
  }

  // ------------------------------------------------------------------ converge (create, update, rollback)

  private async converge(known: StackRow | null, p: ResourceStepParams, ctx: TaskContext): Promise<JsonValue> {
    const { stacks } = this.layer;
    const body = await this.layer.setBody(p.set!);
    const binding = known ?? { id: p.stack, name: p.stackName!, project: p.project! };
    const instance = instantiateSet(p.set, body, binding, this.layer.limits.template);
    const def = instance.resource(p.name);
    // the stack (is this traversal still current?) and the rows this step reads, in one statement
    const view = await stacks.sql.read('read a resource step', (s) => stacks.stepView(s, p.stack, [p.name, ...def.requires]));
    const stack = view.stack;
    if (!stack || stack.traversal !== p.traversal) return { superseded: true };
    const rows = view.rows.filter((r) => !r.deleted);
    // generations are unique per name, deleted rows included (a name removed and added again continues after them)
    const lastGeneration = Math.max(0, ...view.rows.filter((r) => r.name === p.name).map((r) => r.generation));
    const path = `resources.${p.name}`;
    let row: ResourceRow | undefined = rows.find((r) => r.name === p.name && r.current);
    // a row this step inserted before it parked (a breakpoint) is carried on, not replaced
    // a row never created (planned INIT_COMPLETE, or inserted before a breakpoint) is created, not replaced
    const ownInit = row !== undefined && row.action === 'INIT';
    if (row) row = await this.hold(row, ctx);

    const failHere = async (target: ResourceRow | undefined, action: StackAction, error: unknown): Promise<never> => {
      // a durable wait parks the atom, a conflict starts over: not failures
      if (error instanceof Suspension || error instanceof RowConflict) throw error;
      const reason = error instanceof ResourceStepFailed ? error.reason : resourceStatusReason(error, path);
      if (target)
        await this.release(target, { action, status: 'FAILED', statusReason: reason }, { status: `${action}_FAILED`, reason }, stack.id);
      throw new ResourceStepFailed(reason);
    };

    // a template resource's nested stack sees its facade (resource_facade)
    const runtime = { ...this.runtime(rows, p.name), ...(body.facade ? { resourceFacade: body.facade } : {}) };
    let evaluated;
    let resolved;
    try {
      evaluated = instance.evaluateResource(p.name, runtime);
      resolved = resolveResourceType(body.environment.resourceRegistry, def.type, { resourceName: p.name, files: body.files });
    } catch (e) {
      return failHere(row, row ? 'UPDATE' : 'CREATE', e);
    }
    const layerKind = resolved.kind === 'plugin' ? stackLayerKind(resolved.type) : undefined;
    const plugin = resolved.kind === 'plugin' ? this.layer.registry.find(resolved.type) : undefined;
    if (resolved.kind === 'plugin' && !plugin)
      return failHere(row, row ? 'UPDATE' : 'CREATE', new Error(`Unknown resource Type : ${resolved.type}`));

    // own earlier execution died mid-operation: carry on with the same row
    const resuming = row !== undefined && row.status === 'IN_PROGRESS' && row.holdRun === ctx.runId && row.holdAtom === ctx.atomName;
    let properties = evaluated.properties;
    let validated = false;
    const common = {
      requires: [...def.requires],
      templateSet: p.set,
      metadata: evaluated.metadata,
    };

    const fingerprint = nestedFingerprint(properties, resolved.kind === 'template' ? resolved.content : null, body);
    let mode: 'create' | 'update' | 'replace' | 'none';
    let changed: readonly string[] = [];
    if (!row || ownInit) mode = 'create';
    else if (resuming) mode = row.action === 'CREATE' ? 'create' : 'update';
    // a new type replaces; a renamed alias of the same type does not (Heat compares the types they resolve to)
    else if (plugin ? (await this.pluginName(row)) !== plugin.type : row.type !== def.type) mode = 'replace';
    else if (layerKind !== undefined || resolved.kind === 'template') {
      // a nested stack is left alone when neither its properties nor its template changed
      const same = row.status === 'COMPLETE' && row.data?.['fingerprint'] === fingerprint && row.action !== 'INIT';
      mode = row.status === 'FAILED' && row.action === 'CREATE' ? 'replace' : same ? 'none' : 'update';
    } else {
      try {
        properties = validateProperties(plugin!, properties, '');
        validated = true;
        const decision = needsReplacement(plugin!, row.properties, properties, {
          resourceName: p.name,
          failed: row.status === 'FAILED',
          absent: row.action === 'INIT' || (row.action === 'DELETE' && row.status === 'COMPLETE'),
        });
        mode = decision.action;
        changed = decision.changed;
      } catch (e) {
        return failHere(row, 'UPDATE', e);
      }
      if (mode === 'replace') {
        // a row this one replaced, still there and converged with these very properties: take it back (as Heat
        // restores the previous resource) instead of making another replacement
        const previous = rows
          .filter((r) => r.name === p.name && !r.current && r.id !== row!.id && r.type === def.type && r.status === 'COMPLETE')
          .filter((r) => r.action !== 'DELETE' && r.action !== 'INIT' && canonicalJson(r.properties) === canonicalJson(properties))
          .pop();
        if (previous) {
          const restored = await this.hold(previous, ctx);
          await this.release(row, { current: false }, null, stack.id);
          await this.release(restored, { ...common, current: true, properties }, null, stack.id);
          return { resource: p.name, mode: 'restored' };
        }
      }
    }

    if (mode === 'none') {
      // nothing to apply: the row now belongs to this template set (dependents order after it)
      await this.release(row!, { ...common, properties, type: def.type }, null, stack.id);
      return { resource: p.name, mode };
    }

    const registry = body.environment.resourceRegistry;
    if (row && !ownInit && !resuming && (mode === 'update' || mode === 'replace') && restrictedActions(registry, p.name).includes(mode)) {
      // the environment forbids it (restricted_actions): the resource stays as it is
      const reason = `${mode} is restricted for resource.`;
      await this.release(row, {}, { status: `${row.action}_${row.status}`, reason }, stack.id);
      throw new ResourceStepFailed(reason);
    }
    const hook: HookType | null = mode === 'create' ? 'pre-create' : 'pre-update';
    if (!resuming && resourceHooks(registry, p.name).includes(hook)) {
      // a breakpoint: the step parks until `stack resource signal … {"unset_hook": hook}`
      if (!row) row = await this.insertRow(stack, p.name, def.type, lastGeneration + 1, ctx, common);
      const name = hookSignal(hook, row.id);
      if (!(await this.signalled(ctx, name))) {
        const verb = hook === 'pre-create' ? 'CREATE' : 'UPDATE';
        row = await this.record(
          row,
          {},
          { status: `${row.action}_${row.status}`, reason: `${verb} paused until Hook ${hook} is cleared` },
          stack.id,
        );
      }
      await awaitSignal(this.layer, ctx, name);
    }

    if (mode === 'replace') {
      // create before delete: the replacement is a new row; the old one is deleted by a cleanup step
      const old = row!;
      row = await this.insertRow(stack, p.name, def.type, lastGeneration + 1, ctx, common);
      await stacks.sql.write('replace a resource', (s) =>
        stacks.updateResource(s, old.id, { current: false, holdRun: null, holdAtom: null, holdToken: null }),
      );
    } else if (!row) {
      row = await this.insertRow(stack, p.name, def.type, lastGeneration + 1, ctx, common, true);
    }
    const action: StackAction = mode === 'update' ? 'UPDATE' : 'CREATE';
    if (!(row.action === action && row.status === 'IN_PROGRESS' && (resuming || row.holdToken === ctx.fencingToken))) {
      row = await this.record(
        row,
        { action, status: 'IN_PROGRESS', statusReason: 'state changed', type: def.type },
        { status: `${action}_IN_PROGRESS`, reason: 'state changed' },
        stack.id,
      );
    }

    try {
      if (layerKind === 'stack' || layerKind === 'group' || layerKind === 'chain' || resolved.kind === 'template') {
        if (plugin && !validated) properties = validateProperties(plugin, properties, '');
        const outcome = await convergeNested(this.layer, {
          stack,
          row,
          body,
          instance,
          name: p.name,
          resolved,
          properties,
          evaluated,
          action: p.action,
          ctx,
          layerKind,
        });
        if (outcome.failed) throw new ResourceStepFailed(`${outcome.reason}`);
        await this.release(
          row,
          {
            ...common,
            action,
            status: 'COMPLETE',
            statusReason: 'state changed',
            properties,
            nestedStack: outcome.stackId,
            physicalId: outcome.stackId,
            attributes: outcome.attributes,
            reference: outcome.reference,
            data: { ...outcome.data, fingerprint },
          },
          { status: `${action}_COMPLETE`, reason: 'state changed' },
          stack.id,
        );
        return { resource: p.name, mode };
      }
      if (mode !== 'update') {
        if (!validated) properties = validateProperties(plugin!, properties, '');
        checkDeletionPolicy(plugin!, def.deletionPolicy, path);
      }
      const opCtx = this.operationContext(stack, row, properties, ctx);
      let result;
      if (layerKind === 'wait-condition') result = await waitCondition(this.layer, stack, opCtx, rows);
      else if (layerKind === 'wait-handle') result = { physicalId: row.physicalId ?? `${stack.name}-${p.name}`, data: row.data ?? {} };
      else if (mode === 'update') {
        const out = await plugin!.update({ ...opCtx, previousProperties: row.properties, changed });
        if (isReplace(out)) {
          // the type decided it cannot update in place: replace (create first, delete the old row later)
          const old = row;
          row = await this.insertRow(stack, p.name, def.type, lastGeneration + 1, ctx, common);
          await stacks.sql.write('replace a resource', (s) =>
            stacks.updateResource(s, old.id, {
              current: false,
              action: 'UPDATE',
              status: 'COMPLETE',
              statusReason: 'replaced',
              holdRun: null,
              holdAtom: null,
              holdToken: null,
            }),
          );
          row = await this.record(
            row,
            { action: 'CREATE', status: 'IN_PROGRESS', statusReason: 'state changed' },
            { status: 'CREATE_IN_PROGRESS', reason: 'state changed' },
            stack.id,
          );
          result = await plugin!.create(this.operationContext(stack, row, properties, ctx));
          return this.complete(stack, row, plugin!, result, properties, common, 'CREATE', ctx);
        }
        result = out;
      } else result = await plugin!.create(opCtx);
      return this.complete(stack, row, plugin ?? null, result, properties, common, action, ctx);
    } catch (e) {
      if (e instanceof Suspension) throw e;
      return failHere(row, action, ctx.signal.aborted && !(e instanceof ResourceStepFailed) ? new Error(abortText(ctx)) : e);
    }
  }

  private async complete(
    stack: StackRow,
    row: ResourceRow,
    plugin: ResourceType | null,
    result: { physicalId: string | null; data: JsonObject; attributes?: JsonObject },
    properties: JsonObject,
    common: Partial<ResourceRow>,
    action: StackAction,
    ctx: TaskContext,
  ): Promise<JsonValue> {
    const attrCtx = { ...this.operationContext(stack, row, properties, ctx), physicalId: result.physicalId, data: result.data };
    const attributes = plugin
      ? { ...(await resolveAllAttributes(plugin, attrCtx)), ...(result.attributes ?? {}) }
      : (result.attributes ?? {});
    const reference = plugin
      ? referenceId(plugin, { resourceName: row.name, physicalId: result.physicalId, data: result.data, properties })
      : result.physicalId;
    await this.release(
      row,
      {
        ...common,
        action,
        status: 'COMPLETE',
        statusReason: 'state changed',
        properties,
        physicalId: result.physicalId,
        data: result.data,
        attributes,
        reference,
      },
      { status: `${action}_COMPLETE`, reason: 'state changed' },
      stack.id,
    );
    return { resource: row.name, physicalId: result.physicalId };
  }

  private async insertRow(
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
    const row: Omit<ResourceRow, 'id'> = {
      stackId: stack.id,
      name,
      generation,
      current: true,
      deleted: false,
      type,
      physicalId: null,
      // a first create is inserted in progress, with its event, in one transaction
      action: creating ? 'CREATE' : 'INIT',
      status: creating ? 'IN_PROGRESS' : 'COMPLETE',
      statusReason: creating ? 'state changed' : '',
      properties: {},
      data: {},
      attributes: null,
      reference: null,
      requires: (common.requires as string[]) ?? [],
      metadata: (common.metadata as JsonObject) ?? null,
      templateSet: (common.templateSet as string) ?? null,
      nestedStack: null,
      holdRun: ctx.runId,
      holdAtom: ctx.atomName,
      holdToken: ctx.fencingToken,
      createdAt: at,
      updatedAt: null,
    };
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

  /** get_resource / get_attr over the stored rows this resource requires */
  runtime(rows: readonly ResourceRow[], self: string): RuntimeContext {
    return rowsRuntime(
      rows.filter((r) => r.name !== self),
      nestedAttribute,
    );
  }

  operationContext(stack: StackRow, row: ResourceRow, properties: JsonObject, ctx: TaskContext): OperationContext {
    return {
      stack: { id: stack.id, name: stack.name, project: stack.project },
      resourceName: row.name,
      properties,
      physicalId: row.physicalId,
      data: row.data ?? {},
      idempotencyKey: `${ctx.idempotencyKey}#${row.id}`,
      signal: ctx.signal,
      sleep: (ms) =>
        Number.isFinite(ms)
          ? abortableSleep(ms, ctx.signal)
          : abortableSleep(2 ** 31, ctx.signal).then(() => abortableSleep(Number.MAX_SAFE_INTEGER, ctx.signal)),
    };
  }

  // ------------------------------------------------------------------ delete

  private async deleteStep(stack: StackRow, p: ResourceStepParams, ctx: TaskContext): Promise<JsonValue> {
    const { stacks } = this.layer;
    const found = await stacks.sql.read('read a resource', (s) => stacks.getResource(s, p.row!));
    if (!found || found.deleted) return { resource: p.name, deleted: false };
    if (found.current && p.action !== 'DELETE' && p.set !== null) {
      // the converge step of this traversal took this row back (it had been replaced): it stays
      const instance = instantiateSet(p.set, await this.layer.setBody(p.set), stack, this.layer.limits.template);
      if (instance.resourceNames.includes(found.name)) return { resource: p.name, deleted: false };
    }
    const row = await this.hold(found, ctx);
    if (row.deleted) return { resource: p.name, deleted: false };
    if (row.action === 'INIT') {
      // never created: nothing to delete, no events (as Heat)
      await this.release(row, { deleted: true, current: false }, null, stack.id);
      return { resource: p.name, deleted: true };
    }
    const path = `resources.${row.name}`;
    const policy = ((row.metadata as JsonObject | null)?.['__deletion_policy'] as string | undefined) ?? (await this.deletionPolicy(row));
    let current = row;
    if (!(row.action === 'DELETE' && row.status === 'IN_PROGRESS')) {
      current = await this.record(
        row,
        { action: 'DELETE', status: 'IN_PROGRESS', statusReason: 'state changed' },
        { status: 'DELETE_IN_PROGRESS', reason: 'state changed' },
        stack.id,
      );
    }
    try {
      if (policy !== 'Retain') {
        if (row.nestedStack) {
          const outcome = await deleteNested(this.layer, stack, current, p.action, ctx);
          if (outcome.failed) throw new ResourceStepFailed(outcome.reason);
        } else {
          const plugin = this.layer.registry.find(await this.pluginName(row));
          const kind = stackLayerKind(row.type);
          if (plugin && kind === undefined) {
            const opCtx = this.operationContext(stack, current, row.properties, ctx);
            if (policy === 'Snapshot' && plugin.snapshotDelete) await plugin.snapshotDelete(opCtx);
            else await plugin.delete(opCtx);
          }
        }
      }
    } catch (e) {
      if (e instanceof Suspension) throw e;
      const reason =
        e instanceof ResourceStepFailed ? e.reason : resourceStatusReason(ctx.signal.aborted ? new Error(abortText(ctx)) : e, path);
      await this.release(
        current,
        { action: 'DELETE', status: 'FAILED', statusReason: reason },
        { status: 'DELETE_FAILED', reason },
        stack.id,
      );
      throw new ResourceStepFailed(reason);
    }
    await this.release(
      current,
      { action: 'DELETE', status: 'COMPLETE', statusReason: 'state changed', deleted: true, current: false },
      { status: 'DELETE_COMPLETE', reason: 'state changed' },
      stack.id,
    );
    return { resource: p.name, deleted: true };
  }

  /** the deletion policy the row was last converged with */
  private async deletionPolicy(row: ResourceRow): Promise<string> {
    if (!row.templateSet) return 'Delete';
    try {
      const stack = await this.layer.stacks.sql.read('read a stack', (s) => this.layer.stacks.getStack(s, row.stackId));
      const body = await this.layer.setBody(row.templateSet);
      const instance = instantiateSet(row.templateSet, body, stack!, this.layer.limits.template);
      return instance.resourceNames.includes(row.name) ? instance.resource(row.name).deletionPolicy : 'Delete';
    } catch {
      return 'Delete';
    }
  }

  /** the plugin type a row's written type resolves to, through its template set's registry */
  private async pluginName(row: ResourceRow): Promise<string> {
    if (!row.templateSet) return row.type;
    try {
      const body: TemplateSetBody = await this.layer.setBody(row.templateSet);
      const resolved = resolveResourceType(body.environment.resourceRegistry, row.type, { resourceName: row.name, files: body.files });
      return resolved.kind === 'plugin' ? resolved.type : row.type;
    } catch {
      return row.type;
    }
  }

  // ------------------------------------------------------------------ check, suspend, resume

  private async lifecycle(stack: StackRow, p: ResourceStepParams, ctx: TaskContext): Promise<JsonValue> {
    const { stacks } = this.layer;
    const found = await stacks.sql.read('read a resource', (s) => stacks.getResource(s, p.row!));
    if (!found || found.deleted) return { resource: p.name };
    const row = await this.hold(found, ctx);
    const action = p.action;
    let current = await this.record(
      row,
      { action, status: 'IN_PROGRESS', statusReason: 'state changed' },
      { status: `${action}_IN_PROGRESS`, reason: 'state changed' },
      stack.id,
    );
    let reason = 'state changed';
    try {
      if (row.nestedStack) {
        const outcome = await deleteNested(this.layer, stack, current, action, ctx);
        if (outcome.failed) throw new ResourceStepFailed(outcome.reason);
      } else {
        const plugin = this.layer.registry.find(await this.pluginName(row));
        const opCtx = this.operationContext(stack, current, row.properties, ctx);
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
      await this.release(current, { action, status: 'FAILED', statusReason: why }, { status: `${action}_FAILED`, reason: why }, stack.id);
      throw new ResourceStepFailed(why);
    }
    current = await this.release(
      current,
      { action, status: 'COMPLETE', statusReason: reason },
      { status: `${action}_COMPLETE`, reason },
      stack.id,
    );
    return { resource: current.name };
  }
}

/**
 * What a nested stack resource was last converged with: its properties, its template, and
 * the files and registry its members may resolve through (a provider file changed is a change).
 */
export function nestedFingerprint(properties: JsonObject, template: string | null, body: TemplateSetBody): string {
  const context = { files: body.files, registry: body.environment.resourceRegistry as unknown as JsonValue };
  return createHash('sha256').update(canonicalJson({ properties, template, context })).digest('hex');
}

function abortText(ctx: TaskContext): string {
  const reason: unknown = ctx.signal.reason;
  return reason instanceof Error ? reason.message : 'Operation cancelled';
}
