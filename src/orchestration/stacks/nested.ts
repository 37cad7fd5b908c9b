/**
 * Nested stacks: a template resource, OS::Heat::Stack, ResourceGroup and ResourceChain each
 * own a child stack. Their resource step starts the child's action (a traversal of its own,
 * keyed by the child stack, so a newer parent action supersedes it too) and parks on a
 * durable signal that the child's last step sends (`stack.<child id>`); it then reads what
 * the child did. Starting is idempotent per execution key, so a step executed again after a
 * takeover waits for the same child traversal instead of starting another.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import type { TaskContext } from '../../flow/types.js';
import { nestedFailureReason } from '../resources/index.js';
import { childRegistry, emptyEnvironment, parseTemplate, type ResolvedType, type TemplateInstance } from '../template/index.js';
import type { StackLayer, TraversalOwner } from './layer.js';
import { nestedSummary } from './outputs.js';
import type { ResourceRow, StackAction, StackRow } from './stack-store.js';
import { chainTemplate, groupMemberTemplate, type StackLayerKind } from './stack-types.js';
import type { TemplateSetBody } from './template-set.js';

const GENERATED_VERSION = '2015-04-30';

export interface NestedRequest {
  stack: StackRow;
  row: ResourceRow;
  body: TemplateSetBody;
  instance: TemplateInstance;
  name: string;
  resolved: ResolvedType;
  properties: JsonObject;
  evaluated: { metadata: JsonObject; updatePolicy: JsonObject };
  action: StackAction;
  ctx: TaskContext;
  layerKind: StackLayerKind | undefined;
}

export interface NestedOutcome {
  failed: boolean;
  reason: string;
  stackId: string;
  attributes: JsonObject;
  reference: JsonValue;
  data: JsonObject;
}

/** the signal a child's traversal ends with */
export const nestedSignal = (childId: string): string => `stack.${childId}`;

/** The nested stack's template set for this resource. */
export function childBody(r: NestedRequest): TemplateSetBody {
  const registry = childRegistry(r.body.environment.resourceRegistry, {
    resourceName: r.name,
    removeType: r.instance.resource(r.name).type,
  });
  const environment = {
    ...r.body.environment,
    parameters: {},
    parameterDefaults: r.body.environment.parameterDefaults,
    resourceRegistry: registry,
  };
  if (r.resolved.kind === 'template') {
    const template = parseTemplate(r.resolved.content, { files: r.body.files, label: r.resolved.file });
    const parameters = Object.fromEntries(Object.entries(r.properties).filter(([k]) => k in template.parameters));
    return {
      template: r.resolved.content,
      files: r.body.files,
      environment,
      parameters,
      label: r.resolved.file,
      facade: {
        metadata: r.evaluated.metadata,
        deletion_policy: r.instance.resource(r.name).deletionPolicy,
        update_policy: r.evaluated.updatePolicy,
      },
    };
  }
  if (r.layerKind === 'stack') {
    const template = r.properties['template'];
    return {
      template: typeof template === 'string' ? template : JSON.stringify(template),
      files: r.body.files,
      environment: emptyEnvironment(),
      parameters: (r.properties['parameters'] ?? {}) as Record<string, JsonValue>,
    };
  }
  const removed = ((r.row.data ?? {})['removed'] ?? []) as string[];
  const generated =
    r.layerKind === 'group'
      ? groupMemberTemplate(r.properties, GENERATED_VERSION, removed)
      : chainTemplate(r.properties, GENERATED_VERSION);
  return { template: JSON.stringify(generated), files: r.body.files, environment, parameters: {}, generated: true };
}

/** Removal policies of a group: names listed are removed for good (not reused). */
function removedMembers(r: NestedRequest): string[] {
  const before = ((r.row.data ?? {})['removed'] ?? []) as string[];
  const policies = (r.properties['removal_policies'] ?? []) as JsonObject[];
  const listed = policies.flatMap((p) => ((p['resource_list'] ?? []) as JsonValue[]).map(String));
  return [...new Set([...before, ...listed])];
}

async function depth(layer: StackLayer, stack: StackRow): Promise<number> {
  let d = 0;
  let parent = stack.parentId;
  while (parent !== null && d < 100) {
    const p = await layer.stacks.sql.read('read a stack', (s) => layer.stacks.getStack(s, parent!));
    parent = p?.parentId ?? null;
    d++;
  }
  return d;
}

export async function convergeNested(layer: StackLayer, r: NestedRequest): Promise<NestedOutcome> {
  const { stacks } = layer;
  const ownerKey = r.ctx.idempotencyKey;
  let child = r.row.nestedStack ? await stacks.sql.read('read a stack', (s) => stacks.getStack(s, r.row.nestedStack!)) : null;
  if (!child || child.deletedAt !== null) {
    if ((await depth(layer, r.stack)) + 1 > layer.limits.maxNestedDepth) {
      return failed(`Recursion depth exceeds ${layer.limits.maxNestedDepth}.`, r.row.nestedStack ?? '');
    }
    const id = layer.newId();
    child = {
      id,
      project: r.stack.project,
      name: `${r.stack.name}-${r.name}-${id.slice(0, 12)}`,
      parentId: r.stack.id,
      parentResource: r.name,
      action: 'INIT',
      status: 'COMPLETE',
      statusReason: '',
      tags: [],
      timeoutMins: r.stack.timeoutMins,
      disableRollback: true,
      traversal: null,
      traversalOwner: null,
      runId: null,
      templateSet: null,
      previousSet: null,
      createdAt: layer.now(),
      updatedAt: null,
      deletedAt: null,
    };
    const made = child;
    await stacks.sql.transaction('create a nested stack', async (s) => {
      await stacks.insertStack(s, made);
      await stacks.updateResource(s, r.row.id, { nestedStack: made.id, physicalId: made.id }, r.row.holdToken ?? undefined);
    });
  }
  const data: JsonObject = { kind: r.layerKind ?? 'template' };
  if (r.layerKind === 'group') data['removed'] = removedMembers(r);
  const owner = parseOwner(child.traversalOwner);
  if (owner?.key !== ownerKey) {
    const body = childBody({ ...r, row: { ...r.row, data: { ...(r.row.data ?? {}), ...data } } });
    const setId = layer.newId();
    await stacks.sql.transaction('store a template set', (s) =>
      stacks.insertTemplateSet(s, setId, child!.id, body as unknown as JsonObject, layer.now()),
    );
    layer.rememberBody(setId, body);
    const action: StackAction =
      r.action === 'ROLLBACK'
        ? 'ROLLBACK'
        : child.action === 'INIT' || (child.action === 'CREATE' && child.status === 'FAILED' && !child.previousSet)
          ? 'CREATE'
          : 'UPDATE';
    await layer.startAction(child, action, setId, { owner: { run: r.ctx.runId, atom: r.ctx.atomName, key: ownerKey } });
  }
  const payload = (await awaitSignal(layer, r.ctx, nestedSignal(child.id))) as JsonObject | null;
  const done = (await stacks.sql.read('read a stack', (s) => stacks.getStack(s, child!.id)))!;
  if (payload?.['status'] !== 'COMPLETE') {
    return failed(nestedFailureReason(String(payload?.['reason'] ?? done.statusReason), r.name, done.action), child.id);
  }
  const summary = await nestedSummary(layer, done);
  const attributes: JsonObject = { ...summary.outputs };
  if (r.layerKind === 'stack') {
    attributes['outputs'] = summary.outputs;
    attributes['stack_name'] = done.name;
  }
  // get_resource of a template resource: its nested template's OS::stack_id output, else the nested stack's ARN
  const arn = `arn:openstack:heat::${done.project}:stacks/${done.name}/${done.id}`;
  const reference = r.resolved.kind === 'template' ? (summary.outputs['OS::stack_id'] ?? arn) : child.id;
  return {
    failed: false,
    reason: '',
    stackId: child.id,
    attributes,
    reference,
    data: { ...data, members: summary.members as unknown as JsonValue, outputErrors: summary.outputErrors },
  };
}

/** Deletes (or checks, suspends, resumes) a resource's nested stack and waits for it. */
export async function deleteNested(
  layer: StackLayer,
  stack: StackRow,
  row: ResourceRow,
  action: StackAction,
  ctx: TaskContext,
): Promise<{ failed: boolean; reason: string }> {
  const { stacks } = layer;
  const child = await stacks.sql.read('read a stack', (s) => stacks.getStack(s, row.nestedStack!));
  if (!child || child.deletedAt !== null) return { failed: false, reason: '' };
  const childAction: StackAction = action === 'ROLLBACK' || action === 'UPDATE' || action === 'CREATE' ? 'DELETE' : action;
  if (parseOwner(child.traversalOwner)?.key !== ctx.idempotencyKey) {
    await layer.startAction(child, childAction, null, { owner: { run: ctx.runId, atom: ctx.atomName, key: ctx.idempotencyKey } });
  }
  const payload = (await awaitSignal(layer, ctx, nestedSignal(child.id))) as JsonObject | null;
  if (payload?.['status'] !== 'COMPLETE') {
    return { failed: true, reason: nestedFailureReason(String(payload?.['reason'] ?? 'nested stack failed'), row.name, childAction) };
  }
  void stack;
  return { failed: false, reason: '' };
}

/**
 * Waits, durably, for the signal `name` of this step's run and returns its payload. The
 * engine's journal answers waits by their order in an execution; a step whose earlier
 * waits differ between executions (a delete loop that skips rows deleted meanwhile) would
 * get another wait's answer, so the signal is looked up by name first, and again after any
 * answer the journal gives.
 */
export async function awaitSignal(layer: StackLayer, ctx: TaskContext, name: string): Promise<JsonValue> {
  for (;;) {
    const found = (await layer.queries.getSignals(ctx.runId)).find((s) => s.name === name);
    if (found) return found.payload;
    await ctx.waitForSignal(name);
  }
}

export function parseOwner(text: string | null): TraversalOwner | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as TraversalOwner;
  } catch {
    return null;
  }
}

function failed(reason: string, stackId: string): NestedOutcome {
  return { failed: true, reason, stackId, attributes: {}, reference: null, data: {} };
}
