/**
 * The stack layer's front: stack actions (create, update with preview, delete, cancel,
 * check, suspend, resume, rollback), resource signals, and the queries the CLI and the API
 * show. Every action validates in full first (nothing is stored when the request is bad),
 * stores the template set, points the stack at a new traversal, and starts a run of the
 * action's graph keyed by the stack with supersede: a newer action wins through stored
 * state (protocol 7, ARCHITECTURE.md), never through a lock (docs/orchestration.md).
 */
import { randomUUID } from 'node:crypto';
import type { JsonObject, JsonValue } from '../../core/json.js';
import { Suspension } from '../../engine/failure.js';
import type { RunClient } from '../../engine/run-client.js';
import { ConflictError, NotFoundError, ValidationError, isStokerError } from '../../errors.js';
import { buildGraph } from '../../flow/build-graph.js';
import type { FlowGraph } from '../../flow/graph.js';
import type { StepType } from '../../flow/step-type.js';
import type { TaskContext } from '../../flow/types.js';
import type { ModuleSql, RunQueries } from '../../store/ports.js';
import type { ResourceTypeRegistry } from '../resources/index.js';
import {
  checkImmutableParameters,
  checkNestedTemplates,
  mergeEnvironments,
  parseEnvironment,
  parseTemplate,
  resolveResourceType,
  type TemplateInstance,
} from '../template/index.js';
import { DEFAULT_STACK_LIMITS, type ActionOptions, type StackLayer, type StackLimits } from './layer.js';
import { nestedSignal, parseOwner } from './nested.js';
import { nestedAttribute, rowsRuntime, stackOutputs } from './outputs.js';
import { ResourceStepFailed, ResourceSteps, hookSignal, type ResourceStepParams } from './resource-step.js';
import { StackStore, type ResourceRow, type StackAction, type StackRow } from './stack-store.js';
import { stackLayerTypes } from './stack-types.js';
import { emptySet, instantiateSet, rememberSet, type TemplateSetBody } from './template-set.js';
import { validateStack } from './validate-stack.js';
import { planAction } from './action-plan.js';
import { previewStack, type PreviewResult } from './preview.js';
import { handleSignal, handleSignals } from './wait-condition.js';

export const DEFAULT_PROJECT = 'default';

export interface OrchestratorOptions {
  sql: ModuleSql;
  queries: RunQueries;
  client: RunClient;
  registry: ResourceTypeRegistry;
  limits?: Partial<StackLimits>;
}

/** What a create or update sends (the `openstack stack` client's request). */
export interface StackRequest {
  template?: string;
  files?: Record<string, string>;
  /** environment files, merged in order (later wins) */
  environments?: { label?: string; text: string }[];
  parameters?: Record<string, JsonValue>;
  timeoutMins?: number | null;
  disableRollback?: boolean;
  tags?: string[];
  /** update: reuse the stored template, environment, files and parameters (PATCH) */
  existing?: boolean;
  /** update: parameters to reset to their defaults (with existing) */
  clearParameters?: string[];
  /** preview: list the resources of nested stacks too */
  showNested?: boolean;
}

const IN_PROGRESS = 'IN_PROGRESS';

export class Orchestrator implements StackLayer {
  readonly stacks: StackStore;
  readonly queries: RunQueries;
  readonly client: RunClient;
  readonly registry: ResourceTypeRegistry;
  readonly limits: StackLimits;
  private readonly resourceSteps: ResourceSteps;
  private readonly bodies = new Map<string, TemplateSetBody>();
  /** reads of template sets in progress, shared by the steps that want the same set meanwhile */
  private readonly reading = new Map<string, Promise<TemplateSetBody>>();

  constructor(options: OrchestratorOptions) {
    this.stacks = new StackStore(options.sql);
    this.queries = options.queries;
    this.client = options.client;
    this.registry = options.registry;
    const limits = { ...DEFAULT_STACK_LIMITS, ...(options.limits ?? {}) };
    // the template layer counts resources too: it follows the stack limit unless told otherwise
    this.limits = { ...limits, template: { maxResources: limits.maxResourcesPerStack, ...(limits.template ?? {}) } };
    for (const { type } of Object.values(stackLayerTypes)) if (!this.registry.find(type.type)) this.registry.register(type);
    this.resourceSteps = new ResourceSteps(this);
  }

  /** The step types every engine running stacks registers. */
  stepTypes(): StepType[] {
    const resource = this.resourceSteps.step;
    return [
      {
        type: resource.type,
        execute: async (params, inputs, ctx) => {
          try {
            return await resource.execute(params, inputs, ctx);
          } catch (e) {
            if (e instanceof Suspension) throw e;
            // any other error (the database, a bug) fails the action too, so the stack never stays IN_PROGRESS
            const reason =
              e instanceof ResourceStepFailed
                ? e.reason
                : `${e instanceof Error ? e.name : 'Error'}: ${e instanceof Error ? e.message : String(e)}`;
            await this.failAction(params as unknown as ResourceStepParams, reason);
            throw e;
          }
        },
      },
      { type: 'stack.finish', execute: (params, _inputs, ctx) => this.finish(params as unknown as FinishParams, ctx) },
      {
        type: 'stack.timeout',
        execute: (params, _inputs, ctx) => this.timeout(params as unknown as FinishParams & { timeoutMs: number }, ctx),
      },
    ];
  }

  now(): number {
    return Date.now();
  }

  newId(): string {
    return randomUUID();
  }

  /** A set just stored from a request: its body and the instance it was validated with (no second read or parse). */
  private remember(setId: string, stackId: string, body: TemplateSetBody, instance: TemplateInstance): void {
    this.rememberBody(setId, body);
    rememberSet(setId, stackId, instance);
  }

  /**
   * A set this process has just stored (a nested stack's, stored by its parent's step): the
   * child's action and its steps in this process take the body from here. The nested
   * action's start read back the set its parent's step had just written: a generated group
   * of 10,000 members, a few megabytes sent back and parsed once more.
   */
  rememberBody(setId: string, body: TemplateSetBody): void {
    if (this.bodies.size > 512) this.bodies.delete(this.bodies.keys().next().value!);
    this.bodies.set(setId, body);
  }

  /**
   * A stored template set's body, read once per process: the steps of a set this process
   * has not seen yet (a nested stack another engine process created: the first claim batch
   * of each other engine) share one read while it is in progress. Each used to read and parse
   * it, and each then bound it (`instantiateSet`) before any had cached it: a group of 1,000
   * created by two engine processes read its generated set (1,000 members) 13 times per
   * create, 4 times with this (bench/claim-probe.ts, `--statements`).
   */
  setBody(id: string): Promise<TemplateSetBody> {
    const body = this.bodies.get(id);
    if (body) return Promise.resolve(body);
    let reading = this.reading.get(id);
    if (!reading) {
      reading = this.readSetBody(id).finally(() => this.reading.delete(id));
      this.reading.set(id, reading);
    }
    return reading;
  }

  private async readSetBody(id: string): Promise<TemplateSetBody> {
    const raw = await this.stacks.sql.read('read a template set', (s) => this.stacks.getTemplateSet(s, id));
    if (!raw) throw new NotFoundError('STOKER_STACK_NOT_FOUND', `template set ${id} is gone`);
    const body = raw as unknown as TemplateSetBody;
    this.rememberBody(id, body);
    return body;
  }

  // ------------------------------------------------------------------ requests

  /** Parses and validates a request in full; throws the first problem. */
  prepare(
    request: StackRequest,
    stack: { id: string; name: string; project: string },
    previous?: { body: TemplateSetBody; instance: TemplateInstance | null; rows: readonly ResourceRow[] },
  ): { body: TemplateSetBody; instance: TemplateInstance } {
    const files = { ...(request.existing && previous ? previous.body.files : {}), ...(request.files ?? {}) };
    const templateText = request.template ?? (request.existing && previous ? previous.body.template : undefined);
    if (templateText === undefined) throw new ValidationError('STOKER_TEMPLATE_INVALID', 'a template is required (-t FILE)');
    const template = parseTemplate(templateText, { files, ...(this.limits.template ? { limits: this.limits.template } : {}) });
    const parsed = (request.environments ?? []).map((e) => parseEnvironment(e.text, { label: e.label ?? 'environment' }).environment);
    let environment =
      parsed.length > 0
        ? mergeEnvironments(request.existing && previous ? [previous.body.environment, ...parsed] : parsed)
        : request.existing && previous
          ? previous.body.environment
          : mergeEnvironments([]);
    if (request.existing && previous) {
      // PATCH keeps the stored environment's parameters only where the new template still has them (Heat's update_stack)
      const kept = Object.entries(environment.parameters).filter(([k]) => k in template.parameters);
      environment = { ...environment, parameters: Object.fromEntries(kept) };
    }
    let parameters: Record<string, JsonValue> = { ...(request.parameters ?? {}) };
    if (request.existing && previous) {
      const kept = { ...previous.body.parameters };
      for (const k of request.clearParameters ?? []) delete kept[k];
      parameters = Object.fromEntries(Object.entries({ ...kept, ...parameters }).filter(([k]) => k in template.parameters));
    }
    const body: TemplateSetBody = {
      template: templateText,
      files,
      environment,
      parameters,
      environmentTexts: [
        ...(request.existing && previous ? (previous.body.environmentTexts ?? []) : []),
        ...(request.environments ?? []).map((e) => e.text),
      ],
    };
    const instance = instantiateSet(null, body, stack, this.limits.template, template);
    if (previous?.instance) checkImmutableParameters(previous.instance.parameters, instance.parameters);
    checkNestedTemplates(template, { files, registry: environment.resourceRegistry });
    const existing = new Set((previous?.rows ?? []).filter((r) => r.current).map((r) => r.name));
    validateStack(instance, environment, {
      registry: this.registry,
      limits: this.limits,
      files,
      existing,
      runtime: rowsRuntime(previous?.rows ?? [], nestedAttribute),
    });
    return { body, instance };
  }

  async create(name: string, request: StackRequest, project = DEFAULT_PROJECT): Promise<StackRow> {
    if (!/^[A-Za-z][A-Za-z0-9_.-]{0,254}$/.test(name)) {
      throw new ValidationError(
        'STOKER_CONFIG_INVALID',
        `Invalid stack name ${JSON.stringify(name)}: it must start with a letter and contain only letters, digits, "_", "-" and "."`,
      );
    }
    const existing = await this.stacks.sql.read('find a stack', (s) => this.stacks.findStack(s, project, name));
    if (existing) throw new ConflictError('STOKER_STACK_EXISTS', `The Stack (${name}) already exists.`, { details: { name } });
    const live = await this.stacks.sql.read('list stacks', (s) => this.stacks.listStacks(s, project));
    if (live.length >= this.limits.maxStacksPerProject) {
      throw new ValidationError(
        'STOKER_STACK_LIMIT',
        `You have reached the maximum stacks per tenant, ${this.limits.maxStacksPerProject}. Please delete some stacks.`,
      );
    }
    const id = this.newId();
    const { body, instance } = this.prepare(request, { id, name, project });
    const setId = this.newId();
    const at = this.now();
    const stack: StackRow = {
      id,
      project,
      name,
      parentId: null,
      parentResource: null,
      action: 'INIT',
      status: 'COMPLETE',
      statusReason: '',
      tags: request.tags ?? [],
      timeoutMins: request.timeoutMins ?? null,
      disableRollback: request.disableRollback ?? false,
      traversal: null,
      traversalOwner: null,
      runId: null,
      templateSet: setId,
      previousSet: null,
      createdAt: at,
      updatedAt: null,
      deletedAt: null,
    };
    try {
      await this.stacks.sql.transaction('create a stack', async (s) => {
        await this.stacks.insertStack(s, stack);
        await this.stacks.insertTemplateSet(s, setId, id, body as unknown as JsonObject, at);
      });
    } catch (e) {
      if (await this.stacks.sql.read('find a stack', (s) => this.stacks.findStack(s, project, name))) {
        throw new ConflictError('STOKER_STACK_EXISTS', `The Stack (${name}) already exists.`, { details: { name } });
      }
      throw e;
    }
    this.remember(setId, id, body, instance);
    await this.startAction(stack, 'CREATE', setId, { fresh: true });
    return this.get(id, project);
  }

  async update(nameOrId: string, request: StackRequest, project = DEFAULT_PROJECT): Promise<StackRow> {
    const stack = await this.get(nameOrId, project);
    if (stack.action === 'DELETE' && stack.status !== 'FAILED') {
      throw new ConflictError('STOKER_STACK_ACTION_INVALID', `Updating a stack when it is deleting is not supported.`);
    }
    const { body, instance } = await this.prepareUpdate(stack, request);
    const setId = this.newId();
    await this.stacks.sql.transaction('store a template set', async (s) => {
      await this.stacks.insertTemplateSet(s, setId, stack.id, body as unknown as JsonObject, this.now());
      await this.stacks.updateStack(s, stack.id, {
        disableRollback: request.disableRollback ?? true,
        ...(request.timeoutMins !== undefined ? { timeoutMins: request.timeoutMins } : {}),
        // a full update (PUT) sets the tags it is given, none when none; a patch keeps them unless given
        ...(request.tags !== undefined ? { tags: request.tags } : request.existing ? {} : { tags: [] }),
      });
    });
    this.remember(setId, stack.id, body, instance);
    await this.startAction({ ...stack, disableRollback: request.disableRollback ?? true }, 'UPDATE', setId);
    return this.get(stack.id, project);
  }

  private async prepareUpdate(stack: StackRow, request: StackRequest) {
    const previousBody = stack.templateSet ? await this.setBody(stack.templateSet) : null;
    const rows = await this.stacks.sql.read('list resources', (s) => this.stacks.resources(s, stack.id));
    const previousInstance = previousBody ? instantiateSet(stack.templateSet, previousBody, stack, this.limits.template) : null;
    return this.prepare(request, stack, previousBody ? { body: previousBody, instance: previousInstance, rows } : undefined);
  }

  /** `update --dry-run`: what the update would add, update, replace, delete or leave unchanged (preview.ts). */
  async preview(nameOrId: string, request: StackRequest, project = DEFAULT_PROJECT): Promise<PreviewResult> {
    const stack = await this.get(nameOrId, project);
    const { body, instance } = await this.prepareUpdate(stack, request);
    return previewStack(this, stack, body, instance, { showNested: request.showNested === true });
  }

  async delete(nameOrId: string, project = DEFAULT_PROJECT): Promise<StackRow> {
    const stack = await this.get(nameOrId, project);
    await this.startAction(stack, 'DELETE', null);
    return this.get(stack.id, project, { deleted: true });
  }

  /** `stack cancel`: an update (or create) in progress is rolled back, or only stopped with `rollback: false`. */
  async cancel(nameOrId: string, options: { rollback?: boolean } = {}, project = DEFAULT_PROJECT): Promise<StackRow> {
    const stack = await this.get(nameOrId, project);
    if (stack.status !== IN_PROGRESS || (stack.action !== 'UPDATE' && stack.action !== 'CREATE')) {
      throw new ConflictError(
        'STOKER_STACK_ACTION_INVALID',
        `Cancelling update when stack is ${stack.action}_${stack.status} is not supported.`,
      );
    }
    const reason = `Stack ${stack.action} cancelled`;
    // as Heat: the steps in flight finish and record what they did (no abort); nothing new starts, and the
    // rollback (unless --no-rollback) converges back from there
    await this.failTraversal(stack, stack.traversal!, stack.action, reason, { rollback: options.rollback !== false, cancelRun: false });
    return this.get(stack.id, project);
  }

  async lifecycle(nameOrId: string, action: 'CHECK' | 'SUSPEND' | 'RESUME', project = DEFAULT_PROJECT): Promise<StackRow> {
    const stack = await this.get(nameOrId, project);
    if (stack.status === IN_PROGRESS) {
      throw new ConflictError(
        'STOKER_STACK_ACTION_INVALID',
        `Stack ${stack.name} is ${stack.action}_${stack.status}: wait for it to end first.`,
      );
    }
    if (action === 'RESUME' && !(stack.action === 'SUSPEND' && stack.status === 'COMPLETE')) {
      throw new ConflictError('STOKER_STACK_ACTION_INVALID', `Stack ${stack.name} is not suspended (${stack.action}_${stack.status}).`);
    }
    await this.startAction(stack, action, stack.templateSet);
    return this.get(stack.id, project);
  }

  private async emptySetFor(stack: StackRow): Promise<string> {
    const body = emptySet(
      stack.templateSet ? parseTemplate((await this.setBody(stack.templateSet)).template, {}).versionText : '2013-05-23',
    );
    const id = this.newId();
    await this.stacks.sql.transaction('store a template set', (s) =>
      this.stacks.insertTemplateSet(s, id, stack.id, body as unknown as JsonObject, this.now()),
    );
    return id;
  }

  // ------------------------------------------------------------------ traversals

  async startAction(stack: StackRow, action: StackAction, setId: string | null, options: ActionOptions = {}): Promise<void> {
    const traversal = options.traversal ?? this.newId();
    if (stack.parentId !== null && stack.runId !== null && stack.status === 'IN_PROGRESS') {
      // a nested stack's work in flight is cancelled when its parent moves on (as Heat): its steps see the
      // abort, record what they did and let go, so the newer action need not wait for them
      await this.client.cancel(stack.runId, 'superseded by a newer action of the parent stack').catch(() => undefined);
    }
    const all = options.fresh ? [] : await this.stacks.sql.read('list resources', (s) => this.stacks.resourcesToPlan(s, stack.id));
    const body = action === 'CREATE' || action === 'UPDATE' || action === 'ROLLBACK' ? await this.setBody(setId!) : null;
    const instance = body ? instantiateSet(setId, body, stack, this.limits.template) : null;
    const plan = planAction({ stack, action, setId, rows: all, traversal, instance, now: this.now() });
    const converges = action === 'CREATE' || action === 'UPDATE' || action === 'ROLLBACK';
    const reason = options.reason ?? `Stack ${action} started`;
    let graph: FlowGraph | undefined;
    await this.stacks.sql.transaction('start a stack action', async (s) => {
      for (const [id, current] of plan.swaps) await this.stacks.updateResource(s, id, { current });
      // every resource the template adds is listed at once, INIT_COMPLETE, as Heat shows them
      const listed = this.stacks.insertResourcesIfAbsent(s, plan.inits);
      // the action's graph is built and hashed while the database writes those rows (on
      // PostgreSQL one statement, already sent): for a group of 10,000, 300 ms of CPU that
      // no longer adds up
      if (!graph) {
        graph = buildGraph({ name: `stack-${action.toLowerCase()}`, steps: plan.steps });
        this.client.prepareGraph(graph);
      }
      await listed;
      await this.stacks.updateStack(s, stack.id, {
        action,
        status: 'IN_PROGRESS',
        statusReason: reason,
        traversal,
        traversalOwner: options.owner ? JSON.stringify(options.owner) : null,
        ...(converges ? { templateSet: setId } : {}),
        updatedAt: action === 'CREATE' ? null : this.now(),
      });
      await this.stackEvent(s, stack, `${action}_IN_PROGRESS`, reason);
    });
    const timeoutMins = stack.timeoutMins ?? (stack.parentId === null ? this.limits.defaultTimeoutMins : null);
    // the timer run is independent of the action's run (its own key): both start at once
    const timer =
      timeoutMins !== null && stack.parentId === null && action !== 'DELETE'
        ? this.client.startGraph(
            buildGraph({
              name: 'stack-timeout',
              steps: [
                {
                  name: 'timeout',
                  type: 'stack.timeout',
                  params: { stack: stack.id, traversal, action, set: setId, timeoutMs: timeoutMins * 60_000 },
                },
              ],
            }),
            { stack: stack.id, traversal },
            { key: `stack-timeout:${stack.id}`, supersede: true },
          )
        : null;
    const [started, timed] = await Promise.allSettled([
      this.client.startGraph(graph!, { stack: stack.id, traversal }, { key: `stack:${stack.id}`, supersede: true }),
      timer,
    ]);
    if (started.status === 'rejected') throw started.reason;
    await this.stacks.sql.write('record the traversal run', (s) =>
      this.stacks.updateStack(s, stack.id, { runId: started.value.run.id }, traversal),
    );
    if (timed.status === 'rejected') throw timed.reason;
  }

  private async finish(p: FinishParams, ctx: TaskContext): Promise<JsonValue> {
    const converges = p.action === 'CREATE' || p.action === 'UPDATE' || p.action === 'ROLLBACK';
    const reason = `Stack ${p.action} completed successfully`;
    const patchAt = (at: number): Partial<StackRow> => ({
      status: 'COMPLETE',
      statusReason: reason,
      updatedAt: p.action === 'CREATE' ? null : at,
      ...(converges ? { previousSet: p.set } : {}),
      ...(p.action === 'DELETE' ? { deletedAt: at } : {}),
    });
    // PostgreSQL: when no replaced row is left to delete (the common case), one statement ends the action
    const at0 = this.now();
    const ended = await this.stacks.finishTraversal(
      p.stack,
      p.traversal,
      patchAt(at0),
      { status: `${p.action}_COMPLETE`, reason, at: at0 },
      converges,
    );
    if (ended) {
      await this.notifyOwner(ended, { status: 'COMPLETE', reason });
      return { stack: ended.id, status: `${p.action}_COMPLETE` };
    }
    const stack = await this.stacks.sql.read('read a stack', (s) => this.stacks.getStack(s, p.stack));
    if (!stack || stack.traversal !== p.traversal) return { superseded: true };
    if (converges) {
      // rows replaced during this traversal (after its plan was made): deleted now that every dependent moved
      const rows = await this.stacks.sql.read('list resources', (s) => this.stacks.resources(s, stack.id));
      const step = this.stepTypes()[0]!;
      for (const r of rows.filter((x) => !x.current).reverse()) {
        await step.execute({ ...p, op: 'delete', name: r.name, row: r.id } as unknown as JsonValue, {}, ctx);
      }
    }
    const ok = await this.stacks.sql.transaction('finish a stack action', async (s) => {
      const matched = await this.stacks.updateStack(s, stack.id, patchAt(this.now()), p.traversal);
      if (matched) await this.stackEvent(s, stack, `${p.action}_COMPLETE`, reason);
      return matched;
    });
    if (ok) await this.notifyOwner(stack, { status: 'COMPLETE', reason });
    return { stack: stack.id, status: `${p.action}_COMPLETE` };
  }

  /** A resource step failed: the action fails, and rolls back when the stack asks for it. */
  private async failAction(p: ResourceStepParams, resourceReason: string): Promise<void> {
    const stack = await this.stacks.sql.read('read a stack', (s) => this.stacks.getStack(s, p.stack));
    if (!stack || stack.traversal !== p.traversal) return;
    const reason = `Resource ${p.action === 'ROLLBACK' ? (p.op === 'delete' ? 'DELETE' : 'UPDATE') : p.op === 'delete' && p.action !== 'DELETE' ? 'DELETE' : p.action} failed: ${resourceReason}`;
    const rollback = !stack.disableRollback && stack.parentId === null && (p.action === 'CREATE' || p.action === 'UPDATE');
    await this.failTraversal(stack, p.traversal, p.action, reason, { rollback, cancelRun: false });
  }

  /**
   * Ends a traversal as failed, once (a conditional write on the traversal): the stack shows
   * `<ACTION>_FAILED` with `reason`, or, when it rolls back, goes straight on to
   * `ROLLBACK_IN_PROGRESS` (the failure stays in the events), so that no reader sees a
   * failed stack that is about to roll back. With `cancelRun` the traversal's run is
   * cancelled: its steps in flight see their abort signal, as Heat stops its workers.
   */
  private async failTraversal(
    stack: StackRow,
    traversal: string,
    action: StackAction,
    reason: string,
    options: { rollback: boolean; cancelRun: boolean },
  ): Promise<boolean> {
    const next = this.newId();
    const patch: Partial<StackRow> = options.rollback
      ? { statusReason: reason, traversal: next }
      : { status: 'FAILED', statusReason: reason, traversal: next, updatedAt: this.now() };
    const ok = await this.stacks.sql.transaction('fail a stack action', async (s) => {
      const matched = await this.stacks.updateStack(s, stack.id, patch, traversal);
      if (matched) await this.stackEvent(s, stack, `${action}_FAILED`, reason);
      return matched;
    });
    if (!ok) return false;
    if (options.cancelRun && stack.runId) await this.client.cancel(stack.runId, reason).catch(() => undefined);
    if (options.rollback) {
      await this.startAction(stack, 'ROLLBACK', stack.previousSet ?? (await this.emptySetFor(stack)), { traversal: next });
    } else await this.notifyOwner(stack, { status: 'FAILED', reason });
    return true;
  }

  private async timeout(p: FinishParams & { timeoutMs: number }, ctx: TaskContext): Promise<JsonValue> {
    await ctx.sleep(p.timeoutMs);
    const stack = await this.stacks.sql.read('read a stack', (s) => this.stacks.getStack(s, p.stack));
    if (!stack || stack.traversal !== p.traversal || stack.status !== IN_PROGRESS) return { timedOut: false };
    const rollback = !stack.disableRollback && stack.parentId === null && (p.action === 'CREATE' || p.action === 'UPDATE');
    return { timedOut: await this.failTraversal(stack, p.traversal, p.action, 'Timed out', { rollback, cancelRun: true }) };
  }

  async notifyOwner(stack: StackRow, payload: JsonValue): Promise<void> {
    const owner = parseOwner(stack.traversalOwner);
    if (!owner) return;
    try {
      await this.client.signal(owner.run, nestedSignal(stack.id), payload);
    } catch (e) {
      // the parent's traversal ended meanwhile (superseded, cancelled): a newer one reads the state
      if (!isStokerError(e)) throw e;
    }
  }

  private stackEvent(s: Parameters<StackStore['insertEvent']>[0], stack: StackRow, status: string, reason: string) {
    return this.stacks.insertEvent(s, {
      stackId: stack.id,
      resourceName: stack.name,
      resourceType: null,
      physicalId: stack.id,
      status,
      reason,
      createdAt: this.now(),
    });
  }

  // ------------------------------------------------------------------ signals

  /** `stack resource signal`: a WaitConditionHandle stores it; other types refuse. */
  async signal(nameOrId: string, resource: string, data: JsonValue, project = DEFAULT_PROJECT): Promise<void> {
    const stack = await this.get(nameOrId, project);
    const row = await this.resourceRow(stack, resource);
    const unset = data !== null && typeof data === 'object' && !Array.isArray(data) ? data['unset_hook'] : undefined;
    if (unset !== undefined) {
      // clears a breakpoint: the step parked on it goes on
      if ((unset !== 'pre-create' && unset !== 'pre-update') || !stack.runId) {
        throw new ValidationError('STOKER_STACK_ACTION_INVALID', `Invalid hook type ${JSON.stringify(unset)} for resource ${resource}`);
      }
      await this.client.signal(stack.runId, hookSignal(unset, row.id), null);
      await this.stacks.sql.transaction('clear a hook', (s) =>
        this.stacks.insertEvent(s, {
          stackId: stack.id,
          resourceName: resource,
          resourceType: row.type,
          physicalId: row.physicalId,
          status: `${row.action}_${row.status}`,
          reason: `Hook ${unset} is cleared`,
          createdAt: this.now(),
        }),
      );
      return;
    }
    if (row.type !== 'OS::Heat::WaitConditionHandle' && (await this.pluginOf(row)) !== 'OS::Heat::WaitConditionHandle') {
      throw new ValidationError('STOKER_STACK_ACTION_INVALID', `Resource ${resource} (${row.type}) does not accept signals.`);
    }
    await this.stacks.sql.transaction('signal a resource', async (s) => {
      const fresh = (await this.stacks.getResource(s, row.id))!;
      const signals = handleSignal(handleSignals(fresh), data);
      await this.stacks.updateResource(s, row.id, { data: { ...(fresh.data ?? {}), signals } });
      await this.stacks.insertEvent(s, {
        stackId: stack.id,
        resourceName: resource,
        resourceType: row.type,
        physicalId: row.physicalId,
        status: `${row.action}_${row.status}`,
        reason: 'Signal: status:SUCCESS reason:Signal 1 received',
        createdAt: this.now(),
      });
    });
  }

  /** `mark_unhealthy`: the resource is CHECK_FAILED, so that the next update replaces it. */
  async markUnhealthy(nameOrId: string, resource: string, reason: string, project = DEFAULT_PROJECT): Promise<void> {
    const stack = await this.get(nameOrId, project);
    const row = await this.resourceRow(stack, resource);
    await this.stacks.sql.transaction('mark a resource unhealthy', async (s) => {
      await this.stacks.updateResource(s, row.id, { action: 'CHECK', status: 'FAILED', statusReason: reason });
      await this.stacks.insertEvent(s, {
        stackId: stack.id,
        resourceName: resource,
        resourceType: row.type,
        physicalId: row.physicalId,
        status: 'CHECK_FAILED',
        reason,
        createdAt: this.now(),
      });
    });
  }

  private async pluginOf(row: ResourceRow): Promise<string> {
    if (!row.templateSet) return row.type;
    const body = await this.setBody(row.templateSet);
    const r = resolveResourceType(body.environment.resourceRegistry, row.type, { resourceName: row.name, files: body.files });
    return r.kind === 'plugin' ? r.type : row.type;
  }

  // ------------------------------------------------------------------ queries

  /** A stack by name or id (live ones; with `deleted`, also a deleted one by id). */
  async get(nameOrId: string, project = DEFAULT_PROJECT, options: { deleted?: boolean } = {}): Promise<StackRow> {
    const found = await this.stacks.sql.read('find a stack', async (s) => {
      const { byName, byId } = await this.stacks.findStackOrId(s, project, nameOrId);
      if (byName) return byName;
      return byId && byId.project === project && (byId.deletedAt === null || options.deleted) ? byId : null;
    });
    if (!found)
      throw new NotFoundError('STOKER_STACK_NOT_FOUND', `The Stack (${nameOrId}) could not be found.`, { details: { stack: nameOrId } });
    return found;
  }

  list(project = DEFAULT_PROJECT, options: { nested?: boolean } = {}): Promise<StackRow[]> {
    return this.stacks.sql.read('list stacks', (s) => this.stacks.listStacks(s, project, options));
  }

  outputs(stack: StackRow): Promise<ReturnType<typeof stackOutputs> extends Promise<infer T> ? T : never> {
    return stackOutputs(this, stack);
  }

  async instance(stack: StackRow): Promise<TemplateInstance | null> {
    return stack.templateSet ? instantiateSet(stack.templateSet, await this.setBody(stack.templateSet), stack, this.limits.template) : null;
  }

  /** current resources, with those of nested stacks down to `nestedDepth` (their `stack` is the nested stack's name) */
  async resources(stack: StackRow, nestedDepth = 0): Promise<{ stack: StackRow; row: ResourceRow }[]> {
    const rows = (await this.stacks.sql.read('list resources', (s) => this.stacks.resources(s, stack.id))).filter((r) => r.current);
    const out = rows.map((row) => ({ stack, row }));
    if (nestedDepth > 0) {
      for (const r of rows) {
        if (!r.nestedStack) continue;
        const child = await this.stacks.sql.read('read a stack', (s) => this.stacks.getStack(s, r.nestedStack!));
        if (child && child.deletedAt === null) out.push(...(await this.resources(child, nestedDepth - 1)));
      }
    }
    return out;
  }

  async resourceRow(stack: StackRow, name: string): Promise<ResourceRow> {
    const rows = await this.stacks.sql.read('read resources', (s) => this.stacks.resourcesNamed(s, stack.id, [name]));
    const row = rows.find((r) => r.current);
    if (!row)
      throw new NotFoundError('STOKER_RESOURCE_NOT_FOUND', `The Resource (${name}) could not be found in Stack ${stack.name}.`, {
        details: { resource: name },
      });
    return row;
  }

  events(stack: StackRow, options: { resource?: string } = {}) {
    return this.stacks.sql.read('list stack events', (s) => this.stacks.events(s, stack.id, options));
  }
}

interface FinishParams {
  stack: string;
  traversal: string;
  action: StackAction;
  set: string | null;
}
