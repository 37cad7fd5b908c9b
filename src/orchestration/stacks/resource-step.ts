/**
 * The step type `stack.resource`: one resource step of a stack action (one atom). A converge
 * step (create, update, rollback) takes its row's hold (held-rows.ts), evaluates the
 * properties against the stored rows of the resources it requires, decides with Heat's rules
 * between nothing, update in place and replace, calls the resource type (or runs the nested
 * stack) with the atom's idempotency key and abort signal, and records what it did with its
 * events, every write conditional on the hold. Delete, check, suspend and resume steps are in
 * resource-teardown.ts (docs/orchestration.md, "Actions as runs").
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../core/canonical-json.js';
import type { JsonObject, JsonValue } from '../../core/json.js';
import type { TaskContext } from '../../flow/types.js';
import type { StepType } from '../../flow/step-type.js';
import { Suspension } from '../../engine/failure.js';
import {
  abortableSleep,
  checkDeletionPolicy,
  isReplace,
  needsReplacement,
  referenceId,
  resolveAllAttributes,
  resourceStatusReason,
  validateProperties,
  type ResourceType,
} from '../resources/index.js';
import { resolveResourceType, resourceHooks, restrictedActions, type HookType, type RuntimeContext } from '../template/index.js';
import { HeldRows, ResourceStepFailed, RowConflict, abortText, hookSignal, type ResourceStepParams } from './held-rows.js';
import type { StackLayer } from './layer.js';
import { awaitSignal, convergeNested } from './nested.js';
import { nestedAttribute, rowsRuntime } from './outputs.js';
import type { ResourceRow, StackAction, StackRow } from './stack-store.js';
import { stackLayerKind } from './stack-types.js';
import { instantiateSet, type TemplateSetBody } from './template-set.js';
import { deleteResource, lifecycleResource } from './resource-teardown.js';
import { updateAtOnce } from './update-at-once.js';
import { waitCondition } from './wait-condition.js';

export { ResourceStepFailed, hookSignal, type ResourceStepParams } from './held-rows.js';

export class ResourceSteps extends HeldRows {
  readonly step: StepType;

  constructor(layer: StackLayer) {
    super(layer);
    this.step = {
      type: 'stack.resource',
      execute: (params, _inputs, ctx) => this.execute(params as unknown as ResourceStepParams, ctx),
    };
  }

  private async execute(p: ResourceStepParams, ctx: TaskContext): Promise<JsonValue> {
    // a row taken by another step between this step's read and its first write: start over
    for (;;) {
      try {
        return await this.dispatch(p, ctx);
      } catch (e) {
        if (!(e instanceof RowConflict)) throw e;
        await abortableSleep(50, ctx.signal);
      }
    }
  }

  private async dispatch(p: ResourceStepParams, ctx: TaskContext): Promise<JsonValue> {
    const { stacks } = this.layer;
    if (p.op === 'converge' && p.stackName !== undefined) return this.converge(null, p, ctx);
    if (p.op === 'converge') {
      const stack = await stacks.sql.read('read a stack', (s) => stacks.getStack(s, p.stack));
      // a newer action took over: it converges this resource itself
      if (!stack || stack.traversal !== p.traversal) return { superseded: true };
      return this.converge(stack, p, ctx);
    }
    if (p.op === 'delete' && p.action === 'DELETE') {
      // a stack delete: the step's first write (DELETE_IN_PROGRESS, its hold) reads the stack and the row too
      const started = await stacks.startStep({
        action: 'DELETE',
        stackId: p.stack,
        traversal: p.traversal,
        name: p.name,
        rowId: p.row!,
        run: ctx.runId,
        atom: ctx.atomName,
        token: ctx.fencingToken,
        at: this.layer.now(),
      });
      if (started) return deleteResource(this, started.stack, started.row, p, ctx);
    }
    const view = await stacks.sql.read('read a resource step', (s) => stacks.rowView(s, p.stack, p.row!));
    if (!view.stack || view.stack.traversal !== p.traversal) return { superseded: true };
    return p.op === 'delete' ? deleteResource(this, view.stack, view.row, p, ctx) : lifecycleResource(this, view.stack, view.row, p, ctx);
  }

  // ------------------------------------------------------------------ converge (create, update, rollback)

  private async converge(known: StackRow | null, p: ResourceStepParams, ctx: TaskContext): Promise<JsonValue> {
    const { stacks } = this.layer;
    const body = await this.layer.setBody(p.set!);
    const binding = known ?? { id: p.stack, name: p.stackName!, project: p.project! };
    const instance = instantiateSet(p.set, body, binding, this.layer.limits.template);
    const def = instance.resource(p.name);
    // a create of a planned row whose properties need no other row: its first write reads what the step needs
    const early = known === null && p.planned === true ? await this.startPlanned(p, body, instance, ctx) : null;
    if (early && 'done' in early) return early.done;
    // else the stack (is this traversal still current?) and the rows this step reads, in one statement
    const view =
      early?.view ?? (await stacks.sql.read('read a resource step', (s) => stacks.stepView(s, p.stack, [p.name, ...def.requires])));
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
    // an update in place that ends at once: one write, before the row is taken (update-at-once.ts)
    if (row && !ownInit && early === null) {
      const done = await updateAtOnce(this, { p, stack, body, instance, row, runtime: () => this.runtime(rows, p.name), ctx });
      if (done !== null) return done;
    }
    if (row) row = await this.claim(row, ctx);

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
      evaluated = early?.evaluated ?? instance.evaluateResource(p.name, runtime);
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

    const nested = layerKind !== undefined || resolved.kind === 'template';
    const fingerprint = nested ? nestedFingerprint(properties, resolved.kind === 'template' ? resolved.content : null, body) : '';
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
      const old = await this.record(row!, {}, null, stack.id);
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

  /**
   * The first write of a create whose row the action planned (INIT_COMPLETE), when nothing
   * stands in the way of Heat's order (no breakpoint, a plain resource type) and its
   * properties evaluate without reading another row: the row is taken and set
   * CREATE_IN_PROGRESS in the statement that reads it (StackStore.startStep). The step then
   * goes on as an execution resuming its own create. null: read and decide as usual.
   */
  private async startPlanned(
    p: ResourceStepParams,
    body: TemplateSetBody,
    instance: ReturnType<typeof instantiateSet>,
    ctx: TaskContext,
  ): Promise<
    | { view: { stack: StackRow | null; rows: ResourceRow[] }; evaluated: ReturnType<typeof instance.evaluateResource> }
    | { done: JsonValue }
    | null
  > {
    const def = instance.resource(p.name);
    const registry = body.environment.resourceRegistry;
    let evaluated;
    let plugin: ResourceType | undefined;
    try {
      const resolved = resolveResourceType(registry, def.type, { resourceName: p.name, files: body.files });
      plugin = resolved.kind === 'plugin' ? this.layer.registry.find(resolved.type) : undefined;
      if (resolved.kind !== 'plugin' || stackLayerKind(resolved.type) !== undefined || !plugin) return null;
      if (resourceHooks(registry, p.name).includes('pre-create')) return null;
      const noRows = (): never => {
        throw new Error('reads another resource');
      };
      evaluated = instance.evaluateResource(p.name, {
        getResource: noRows,
        getAttr: noRows,
        ...(body.facade ? { resourceFacade: body.facade } : {}),
      });
    } catch {
      return null;
    }
    if (plugin.createsAtOnce && this.layer.stacks.sql.dialect === 'postgres') {
      const done = await this.createAtOnce(p, def, plugin, evaluated, ctx);
      if (done !== null) return { done };
    }
    const started = await this.layer.stacks.startStep({
      action: 'CREATE',
      stackId: p.stack,
      traversal: p.traversal,
      name: p.name,
      type: def.type,
      run: ctx.runId,
      atom: ctx.atomName,
      token: ctx.fencingToken,
      at: this.layer.now(),
    });
    return started ? { view: { stack: started.stack, rows: [started.row] }, evaluated } : null;
  }

  /**
   * A create that ends at once ({@link ResourceType.createsAtOnce}) of a planned row, in one
   * write: the create runs before the row is taken (it changes nothing elsewhere, so running
   * it for nothing costs nothing), then the row goes from INIT_COMPLETE to CREATE_COMPLETE
   * with both events, while the traversal is current and the row free
   * (StackStore.createPlanned). Its idempotency key names the resource instead of the row it
   * has not read. null: anything else (an invalid property, a row taken, a newer traversal):
   * the step goes the usual way, which records what happens.
   */
  private async createAtOnce(
    p: ResourceStepParams,
    def: ReturnType<ReturnType<typeof instantiateSet>['resource']>,
    plugin: ResourceType,
    evaluated: { properties: JsonObject; metadata: JsonObject | null },
    ctx: TaskContext,
  ): Promise<JsonValue> {
    let patch: Partial<ResourceRow>;
    let physicalId: string | null;
    const at = this.layer.now();
    try {
      const properties = validateProperties(plugin, evaluated.properties, '');
      if (!plugin.createsAtOnce!(properties)) return null;
      checkDeletionPolicy(plugin, def.deletionPolicy, `resources.${p.name}`);
      // a planned row: no physical id nor data yet; its id is not read, the key names the resource (`@name`, never a row id)
      const opCtx = this.operationContext(
        { id: p.stack, name: p.stackName!, project: p.project! },
        { id: 0, name: p.name, physicalId: null, data: {} },
        properties,
        ctx,
        `@${p.name}`,
      );
      const result = await plugin.create(opCtx);
      physicalId = result.physicalId;
      const attrCtx = { ...opCtx, physicalId, data: result.data };
      const attributes = { ...(await resolveAllAttributes(plugin, attrCtx)), ...(result.attributes ?? {}) };
      patch = {
        requires: [...def.requires],
        templateSet: p.set,
        metadata: evaluated.metadata,
        type: def.type,
        action: 'CREATE',
        status: 'COMPLETE',
        statusReason: 'state changed',
        properties,
        physicalId,
        data: result.data,
        attributes,
        reference: referenceId(plugin, { resourceName: p.name, physicalId, data: result.data, properties }),
        holdRun: null,
        holdAtom: null,
        holdToken: null,
        updatedAt: at,
      };
    } catch {
      return null;
    }
    const done = await this.layer.stacks.createPlanned({
      stackId: p.stack,
      traversal: p.traversal,
      name: p.name,
      run: ctx.runId,
      atom: ctx.atomName,
      type: def.type,
      physicalId,
      at,
      patch,
    });
    return done ? { resource: p.name, physicalId } : null;
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

  /** get_resource / get_attr over the stored rows this resource requires */
  runtime(rows: readonly ResourceRow[], self: string): RuntimeContext {
    return rowsRuntime(
      rows.filter((r) => r.name !== self),
      nestedAttribute,
    );
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
