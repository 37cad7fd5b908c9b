/**
 * The expectation keys of the corpus README ("Expectations"), one small function each. A
 * function gets the expected value and what the step observed, and returns findings: a
 * failure, or an advisory one (the README calls error wording advisory). A key this module
 * does not know is a failure, so that nothing is skipped silently.
 */
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { ConflictError, NotFoundError, ValidationError, isStokerError } from '../../src/errors.js';
import type { PreviewResult, ResourceRow, StackEventRow, StackRow } from '../../src/orchestration/stacks/index.js';
import type { Step } from './cases.js';
import { StackReader, attributeOf, describeStack, isStackEvent, stackState, stateOf } from './observe.js';
import { checkOutput } from './output-checks.js';
import type { Snapshot } from './snapshots.js';
import type { ValidateResult } from './validate.js';
import { jsonEqual, names, show, subsetDifference } from './values.js';

export interface Finding {
  message: string;
  /** wording of an error (README: advisory); not a failure unless --strict-errors */
  advisory?: boolean;
}

/** What a step did and where its stack is now. */
export interface StepObservation {
  index: number;
  step: Step;
  logical: string;
  /** the step's stack after the wait (null: it does not exist) */
  stack: StackRow | null;
  /** the request threw: the error */
  rejected: { error: unknown } | null;
  /** for a rejected request: what it changed anyway (null when nothing) */
  changedByRejected: string | null;
  /** the highest event id of the stack before the step (its events have higher ids) */
  eventsBefore: number;
  preview: PreviewResult | null;
  validate: ValidateResult | null;
}

export interface CheckEnv {
  reader: StackReader;
  /** the stack of a logical name as it is now (null: never created or gone) */
  stackOf(logical: string): Promise<StackRow | null>;
  snapshot(step: number, logical: string): Snapshot | undefined;
}

type Check = (expected: JsonValue, obs: StepObservation, env: CheckEnv) => Promise<Finding[]>;

const fail = (message: string): Finding[] => [{ message }];
const failures = (messages: string[]): Finding[] => messages.map((message) => ({ message }));

function needStack(obs: StepObservation, key: string): StackRow {
  if (obs.stack === null) throw new CheckFailed(`${key}: stack ${obs.logical} does not exist`);
  return obs.stack;
}

class CheckFailed extends Error {}

/** Heat's HTTP status for a rejection, from the error class (as an API would map it). */
function statusOf(error: unknown): number {
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  if (error instanceof ValidationError) return 400;
  return 500;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ------------------------------------------------------------------ request result and stack

const apiError: Check = async (expected, obs) => {
  const e = expected as JsonObject;
  if (obs.rejected === null) {
    return fail(`expected the request to be rejected (HTTP ${String(e['status'])}), it was accepted; stack ${describeStack(obs.stack)}`);
  }
  const error = obs.rejected.error;
  if (obs.validate === null && !isStokerError(error)) return fail(`the request failed with a non-Stoker error: ${errorText(error)}`);
  const out: Finding[] = [];
  const message = errorText(error);
  if (obs.validate === null && typeof e['status'] === 'number' && statusOf(error) !== e['status']) {
    out.push({
      advisory: true,
      message: `rejected as HTTP ${statusOf(error)} (${(error as { code?: string }).code}), Heat says ${e['status']}`,
    });
  }
  const parts = [...(typeof e['contains'] === 'string' ? [e['contains']] : []), ...((e['contains_all'] as string[] | undefined) ?? [])];
  for (const part of parts) {
    if (!message.includes(part))
      out.push({ advisory: true, message: `error ${JSON.stringify(message.slice(0, 300))} lacks Heat's ${JSON.stringify(part)}` });
  }
  if (obs.changedByRejected !== null) out.push({ message: `the rejected request changed the stack: ${obs.changedByRejected}` });
  return out;
};

const stackStatus: Check = async (expected, obs) =>
  stackState(obs.stack) === expected ? [] : fail(`expected stack_status ${String(expected)}, got ${describeStack(obs.stack)}`);

const stackStatusOneOf: Check = async (expected, obs) =>
  (expected as string[]).includes(stackState(obs.stack))
    ? []
    : fail(`expected stack_status one of ${names(expected as string[])}, got ${describeStack(obs.stack)}`);

const stackStatusReason: Check = async (expected, obs) => {
  const stack = needStack(obs, 'stack_status_reason');
  return stack.statusReason === expected
    ? []
    : fail(`expected stack_status_reason ${JSON.stringify(expected)}, got ${JSON.stringify(stack.statusReason)}`);
};

const stackStatusReasonContains: Check = async (expected, obs) => {
  const stack = needStack(obs, 'stack_status_reason_contains');
  return stack.statusReason.includes(String(expected))
    ? []
    : fail(`expected stack_status_reason containing ${JSON.stringify(expected)}, got ${JSON.stringify(stack.statusReason)}`);
};

const parameters: Check = async (expected, obs, env) => {
  const shown = await env.reader.displayParameters(needStack(obs, 'parameters'));
  if (shown === null) return fail('parameters: the stack has no template');
  return failures(
    Object.entries(expected as Record<string, JsonValue>)
      .filter(([k, v]) => shown[k] !== v)
      .map(([k, v]) => `parameter ${k}: expected ${show(v)}, stack show gives ${show(shown[k])}`),
  );
};

const tags: Check = async (expected, obs) => {
  const stack = needStack(obs, 'tags');
  return jsonEqual(stack.tags, expected) ? [] : fail(`expected tags ${show(expected)}, got ${show(stack.tags)}`);
};

const tagsEmpty: Check = async (_expected, obs) => {
  const stack = needStack(obs, 'tags_empty');
  return stack.tags === null || stack.tags.length === 0 ? [] : fail(`expected no tags, got ${show(stack.tags)}`);
};

const templateDescription: Check = async (expected, obs, env) => {
  const description = await env.reader.templateDescription(needStack(obs, 'template_description'));
  return description === expected ? [] : fail(`expected template_description ${show(expected)}, got ${show(description)}`);
};

// ------------------------------------------------------------------ resources

/** Checks of a resource listing: used for the stack and for nested stacks. */
async function checkResourceNames(rows: ResourceRow[], expected: string[], where: string): Promise<string[]> {
  const got = new Set(rows.map((r) => r.name));
  const want = new Set(expected);
  if (got.size === want.size && [...want].every((n) => got.has(n))) return [];
  return [`${where}resource_names: expected ${names(want)}, got ${names(got)}${describeRows(rows.filter((r) => !want.has(r.name)))}`];
}

function describeRows(rows: ResourceRow[]): string {
  return rows.length === 0 ? '' : ` (extra: ${rows.map((r) => `${r.name} ${stateOf(r)}`).join(', ')})`;
}

function describeRow(row: ResourceRow): string {
  return `${stateOf(row)}${row.statusReason ? ` (reason ${JSON.stringify(row.statusReason.slice(0, 300))})` : ''}`;
}

async function checkResources(
  rows: ResourceRow[],
  expected: Record<string, JsonObject>,
  where: string,
  stack: StackRow,
): Promise<string[]> {
  const out: string[] = [];
  for (const [name, spec] of Object.entries(expected)) {
    const row = rows.find((r) => r.name === name);
    if (!row) {
      const state = spec['status'] ?? (spec['status_one_of'] as string[] | undefined)?.join('|');
      out.push(`${where}resource ${name} is not listed${state ? ` (expected ${String(state)})` : ''}`);
      continue;
    }
    for (const [key, value] of Object.entries(spec)) {
      const label = `${where}resource ${name}`;
      switch (key) {
        case 'type':
          if (row.type !== value) out.push(`${label}: expected type ${String(value)}, got ${row.type}`);
          break;
        case 'status':
          if (stateOf(row) !== value) out.push(`${label}: expected ${String(value)}, got ${describeRow(row)}`);
          break;
        case 'status_one_of':
          if (!(value as string[]).includes(stateOf(row)))
            out.push(`${label}: expected one of ${names(value as string[])}, got ${describeRow(row)}`);
          break;
        case 'status_reason':
          if (row.statusReason !== value) out.push(`${label}: expected status_reason ${show(value)}, got ${show(row.statusReason)}`);
          break;
        case 'status_reason_contains':
          if (!row.statusReason.includes(String(value)))
            out.push(`${label}: expected status_reason containing ${show(value)}, got ${show(row.statusReason)}`);
          break;
        case 'required_by': {
          const by = rows.filter((r) => r.requires.includes(name)).map((r) => r.name);
          if (!jsonEqual([...by].sort(), [...(value as string[])].sort()))
            out.push(`${label}: expected required_by ${names(value as string[])}, got ${names(by)}`);
          break;
        }
        case 'parent_resource':
          if (stack.parentResource !== value)
            out.push(`${label}: expected parent_resource ${show(value)}, got ${show(stack.parentResource)}`);
          break;
        default:
          out.push(`${label}: unknown resource expectation "${key}"`);
      }
    }
  }
  return out;
}

function checkAttributes(rows: ResourceRow[], expected: Record<string, JsonObject>, where: string): string[] {
  const out: string[] = [];
  for (const [name, attrs] of Object.entries(expected)) {
    const row = rows.find((r) => r.name === name);
    if (!row) {
      out.push(`${where}attributes: resource ${name} is not listed`);
      continue;
    }
    for (const [attr, value] of Object.entries(attrs)) {
      const got = attributeOf(row, attr);
      if (!jsonEqual(got, value)) out.push(`${where}attribute ${name}.${attr}: expected ${show(value)}, got ${show(got)}`);
    }
  }
  return out;
}

const resourceNames: Check = async (expected, obs, env) => {
  const rows = await env.reader.resources(needStack(obs, 'resource_names'));
  return failures(await checkResourceNames(rows, expected as string[], ''));
};

const absentResources: Check = async (expected, obs, env) => {
  const rows = await env.reader.resources(needStack(obs, 'absent_resources'));
  const present = rows.filter((r) => (expected as string[]).includes(r.name));
  return present.length === 0 ? [] : fail(`expected absent, but listed: ${present.map((r) => `${r.name} ${stateOf(r)}`).join(', ')}`);
};

const noResourceInProgress: Check = async (_expected, obs, env) => {
  const rows = await env.reader.resources(needStack(obs, 'no_resource_in_progress'));
  const busy = rows.filter((r) => r.status === 'IN_PROGRESS');
  return busy.length === 0 ? [] : fail(`resources still in progress: ${busy.map((r) => `${r.name} ${stateOf(r)}`).join(', ')}`);
};

const resources: Check = async (expected, obs, env) => {
  const stack = needStack(obs, 'resources');
  return failures(await checkResources(await env.reader.resources(stack), expected as Record<string, JsonObject>, '', stack));
};

const attributes: Check = async (expected, obs, env) => {
  const rows = await env.reader.resources(needStack(obs, 'attributes'));
  return failures(checkAttributes(rows, expected as Record<string, JsonObject>, ''));
};

const attributesPresent: Check = async (expected, obs, env) => {
  const rows = await env.reader.resources(needStack(obs, 'attributes_present'));
  const out: string[] = [];
  for (const [name, attrs] of Object.entries(expected as Record<string, string[]>)) {
    const row = rows.find((r) => r.name === name);
    if (!row) out.push(`attributes_present: resource ${name} is not listed`);
    else
      for (const a of attrs)
        if (attributeOf(row, a) === undefined || attributeOf(row, a) === null) out.push(`attribute ${name}.${a} is missing or null`);
  }
  return failures(out);
};

function snapshotOrThrow(env: CheckEnv, step: number, logical: string): Snapshot {
  const s = env.snapshot(step, logical);
  if (!s) throw new CheckFailed(`nothing was captured of stack ${logical} at step ${step}`);
  return s;
}

const attributeUnchanged: Check = async (expected, obs, env) => {
  const rows = await env.reader.resources(needStack(obs, 'attribute_unchanged'));
  const out: string[] = [];
  for (const item of expected as JsonObject[]) {
    const since = Number(item['since_step']);
    const name = String(item['resource']);
    const attr = String(item['attribute']);
    const then = snapshotOrThrow(env, since, obs.logical).resources.get(name)?.attributes[attr];
    const row = rows.find((r) => r.name === name);
    const now = row ? attributeOf(row, attr) : undefined;
    if (then === undefined) out.push(`attribute ${name}.${attr} was not there at step ${since}`);
    else if (!jsonEqual(then, now)) out.push(`attribute ${name}.${attr} changed since step ${since}: ${show(then)} → ${show(now)}`);
  }
  return failures(out);
};

function physicalIdCheck(changed: boolean): Check {
  return async (expected, obs, env) => {
    const rows = await env.reader.resources(needStack(obs, changed ? 'physical_id_changed' : 'physical_id_unchanged'));
    const out: string[] = [];
    for (const item of expected as JsonObject[]) {
      const since = Number(item['since_step']);
      const then = snapshotOrThrow(env, since, obs.logical);
      for (const name of item['resources'] as string[]) {
        const before = then.resources.get(name);
        const row = rows.find((r) => r.name === name);
        if (!before) out.push(`resource ${name} was not listed at step ${since}`);
        else if (!row) out.push(`resource ${name} is not listed (it was at step ${since})`);
        else if ((row.physicalId === before.physicalId) === changed) {
          out.push(
            changed
              ? `resource ${name} kept physical id ${show(row.physicalId)} since step ${since} (expected a replacement)`
              : `resource ${name} physical id changed since step ${since}: ${show(before.physicalId)} → ${show(row.physicalId)} (${describeRow(row)})`,
          );
        }
      }
    }
    return failures(out);
  };
}

// ------------------------------------------------------------------ outputs

const outputs: Check = async (expected, obs, env) => {
  const list = await env.reader.outputs(needStack(obs, 'outputs'));
  const want = expected as Record<string, JsonValue>;
  if (Object.keys(want).length === 0) {
    return list.length === 0 ? [] : fail(`expected no outputs, got ${list.map((o) => o.output_key).join(', ')}`);
  }
  const out: string[] = [];
  for (const [key, value] of Object.entries(want)) {
    const o = list.find((x) => x.output_key === key);
    if (!o) out.push(`output ${key} is not listed`);
    else if (o.output_error !== undefined && value !== null)
      out.push(`output ${key}: expected ${show(value)}, got output_error ${show(o.output_error)}`);
    else if (!jsonEqual(o.output_value ?? null, value))
      out.push(`output ${key}: expected ${show(value)}, got ${show(o.output_value ?? null)}`);
  }
  return failures(out);
};

const outputErrors: Check = async (expected, obs, env) => {
  const list = await env.reader.outputs(needStack(obs, 'output_errors'));
  const out: string[] = [];
  for (const [key, part] of Object.entries(expected as Record<string, string>)) {
    const o = list.find((x) => x.output_key === key);
    if (!o) out.push(`output ${key} is not listed`);
    else if (o.output_error === undefined)
      out.push(`output ${key}: expected an output_error containing ${show(part)}, got value ${show(o.output_value)}`);
    else if (!o.output_error.includes(part)) out.push(`output ${key}: output_error ${show(o.output_error, 300)} lacks ${show(part)}`);
  }
  return failures(out);
};

const outputDescriptions: Check = async (expected, obs, env) => {
  const list = await env.reader.outputs(needStack(obs, 'output_descriptions'));
  return failures(
    Object.entries(expected as Record<string, string>).flatMap(([key, text]) => {
      const o = list.find((x) => x.output_key === key);
      if (!o) return [`output ${key} is not listed`];
      return o.description === text ? [] : [`output ${key}: expected description ${show(text)}, got ${show(o.description)}`];
    }),
  );
};

const outputChecks: Check = async (expected, obs, env) => {
  const list = await env.reader.outputs(needStack(obs, 'output_checks'));
  const values = new Map<string, JsonValue>();
  for (const o of list) if (o.output_error === undefined) values.set(o.output_key, o.output_value ?? null);
  const out: string[] = [];
  for (const [key, checks] of Object.entries(expected as Record<string, JsonObject>)) {
    const o = list.find((x) => x.output_key === key);
    if (!o) {
      out.push(`output ${key} is not listed`);
      continue;
    }
    if (o.output_error !== undefined) {
      out.push(`output ${key} has output_error ${show(o.output_error, 300)}`);
      continue;
    }
    const problems = checkOutput(o.output_value ?? null, checks, {
      key,
      outputs: values,
      outputAtStep: (step, k) => env.snapshot(step, obs.logical)?.outputs.get(k),
    });
    out.push(...problems.map((p) => `output ${key} (${show(o.output_value ?? null, 60)}): ${p}`));
  }
  return failures(out);
};

// ------------------------------------------------------------------ events and ordering

function eventMatches(e: StackEventRow, stack: StackRow, resource: string, state?: string, reason?: string): boolean {
  const who = resource === '$stack' ? isStackEvent(e, stack) : e.resourceName === resource && !isStackEvent(e, stack);
  return who && (state === undefined || e.status === state) && (reason === undefined || e.reason === reason);
}

const events: Check = async (expected, obs, env) => {
  const stack = needStack(obs, 'events');
  const all = await env.reader.events(stack);
  const out: string[] = [];
  for (const spec of expected as JsonObject[]) {
    const resource = String(spec['resource']);
    const state = spec['status'] as string | undefined;
    const reason = spec['status_reason'] as string | undefined;
    const pool = spec['scope'] === 'step' ? all.filter((e) => e.id > obs.eventsBefore) : all;
    const matched = pool.filter((e) => eventMatches(e, stack, resource, state, reason));
    const what = `event ${resource}${state ? ` ${state}` : ''}${reason !== undefined ? ` "${reason}"` : ''}${spec['scope'] === 'step' ? ' (this step)' : ''}`;
    const ofResource = pool.filter((e) => eventMatches(e, stack, resource)).map((e) => `${e.status} "${e.reason.slice(0, 120)}"`);
    const seen = ofResource.length > 0 ? `; events of ${resource}: ${ofResource.join(', ')}` : `; no events of ${resource}`;
    if (typeof spec['count'] === 'number') {
      if (matched.length !== spec['count']) out.push(`${what}: expected ${spec['count']}, found ${matched.length}${seen}`);
    } else if (matched.length === 0) out.push(`${what}: not found${seen}`);
  }
  return failures(out);
};

const order: Check = async (expected, obs, env) => {
  const stack = needStack(obs, 'order');
  const step = (await env.reader.events(stack)).filter((e) => e.id > obs.eventsBefore);
  const out: string[] = [];
  for (const spec of expected as JsonObject[]) {
    const [bRes, bState] = spec['before'] as [string, string];
    const [aRes, aState] = spec['after'] as [string, string];
    const before = step.filter((e) => eventMatches(e, stack, bRes, bState));
    const after = step.filter((e) => eventMatches(e, stack, aRes, aState));
    const label = `order ${bRes} ${bState} before ${aRes} ${aState}`;
    if (before.length === 0) out.push(`${label}: no ${bRes} ${bState} event in this step`);
    else if (after.length === 0) out.push(`${label}: no ${aRes} ${aState} event in this step`);
    else if (before[before.length - 1]!.id > after[0]!.id)
      out.push(`${label}: the last ${bRes} ${bState} came after the first ${aRes} ${aState}`);
  }
  return failures(out);
};

// ------------------------------------------------------------------ nested stacks, preview, validate

async function nestedStack(env: CheckEnv, obs: StepObservation, spec: JsonObject): Promise<{ stack: StackRow } | { missing: string }> {
  const logical = typeof spec['stack'] === 'string' ? spec['stack'] : obs.logical;
  const top = logical === obs.logical ? obs.stack : await env.stackOf(logical);
  if (top === null) return { missing: `stack ${logical} does not exist` };
  return env.reader.nested(top, (spec['path'] as string[]).map(String));
}

const nested: Check = async (expected, obs, env) => {
  const out: string[] = [];
  for (const spec of expected as JsonObject[]) {
    const where = `nested ${(spec['path'] as string[]).join('/')}: `;
    const found = await nestedStack(env, obs, spec);
    if ('missing' in found) {
      out.push(`${where}${found.missing}`);
      continue;
    }
    const rows = await env.reader.resources(found.stack);
    for (const [key, value] of Object.entries(spec)) {
      if (key === 'path' || key === 'stack') continue;
      if (key === 'resource_names') out.push(...(await checkResourceNames(rows, value as string[], where)));
      else if (key === 'resources') out.push(...(await checkResources(rows, value as Record<string, JsonObject>, where, found.stack)));
      else if (key === 'attributes') out.push(...checkAttributes(rows, value as Record<string, JsonObject>, where));
      else out.push(`${where}unknown nested expectation "${key}"`);
    }
  }
  return failures(out);
};

const nestedPhysicalIds: Check = async (expected, obs, env) => {
  const out: string[] = [];
  for (const spec of expected as JsonObject[]) {
    const path = (spec['path'] as string[]).map(String);
    const where = `nested_physical_ids ${path.join('/')}: `;
    const since = Number(spec['since_step']);
    const then = snapshotOrThrow(env, since, obs.logical).nested.get(path.join('/'));
    if (!then) {
      out.push(`${where}no nested stack at step ${since}`);
      continue;
    }
    const found = await nestedStack(env, obs, spec);
    if ('missing' in found) {
      out.push(`${where}${found.missing}`);
      continue;
    }
    const now = new Map((await env.reader.resources(found.stack)).map((r) => [r.name, r.physicalId] as const));
    for (const name of (spec['unchanged'] as string[] | undefined) ?? []) {
      if (!then.has(name) || !now.has(name))
        out.push(`${where}member ${name} missing (step ${since}: ${then.has(name)}, now: ${now.has(name)})`);
      else if (then.get(name) !== now.get(name)) out.push(`${where}member ${name} was replaced since step ${since}`);
    }
    for (const name of (spec['changed'] as string[] | undefined) ?? []) {
      if (!then.has(name) || !now.has(name))
        out.push(`${where}member ${name} missing (step ${since}: ${then.has(name)}, now: ${now.has(name)})`);
      else if (then.get(name) === now.get(name))
        out.push(`${where}member ${name} kept its physical id since step ${since} (expected a replacement)`);
    }
    const counts = spec['counts'] as Record<string, number> | undefined;
    if (counts) {
      const old = new Set(then.values());
      const cur = new Set(now.values());
      const got = {
        kept: [...cur].filter((id) => old.has(id)).length,
        new: [...cur].filter((id) => !old.has(id)).length,
        removed: [...old].filter((id) => !cur.has(id)).length,
      };
      if (!jsonEqual(got, { kept: counts['kept'] ?? 0, new: counts['new'] ?? 0, removed: counts['removed'] ?? 0 })) {
        out.push(`${where}expected ${show(counts)} since step ${since}, got ${show(got)}`);
      }
    }
  }
  return failures(out);
};

const preview: Check = async (expected, obs) => {
  if (obs.preview === null) return fail('preview: the step made no preview');
  const got = obs.preview as unknown as Record<string, string[]>;
  const out: string[] = [];
  for (const [key, list] of Object.entries(expected as Record<string, string[]>)) {
    const have = got[key];
    if (have === undefined) out.push(`preview has no "${key}" list`);
    else if (!jsonEqual([...have].sort(), [...list].sort())) out.push(`preview ${key}: expected ${names(list)}, got ${names(have)}`);
  }
  return failures(out);
};

function validateJson(obs: StepObservation): JsonValue {
  if (obs.validate === null) throw new CheckFailed('validate: the step did not validate');
  if (!obs.validate.ok) throw new CheckFailed(`validate: the template was rejected: ${obs.validate.message.slice(0, 400)}`);
  return obs.validate.json;
}

const validate: Check = async (expected, obs) => {
  const json = validateJson(obs);
  if (jsonEqual(json, expected)) return [];
  const d = subsetDifference(expected, json) ?? subsetDifference(json, expected);
  return fail(`validate: the JSON differs${d ? ` at ${d}` : ''}`);
};

const validateSubset: Check = async (expected, obs) => {
  const d = subsetDifference(expected, validateJson(obs));
  return d === null ? [] : fail(`validate_subset: ${d}`);
};

// ------------------------------------------------------------------ the table

const CHECKS: Record<string, Check> = {
  api_error: apiError,
  stack_status: stackStatus,
  stack_status_one_of: stackStatusOneOf,
  stack_status_reason: stackStatusReason,
  stack_status_reason_contains: stackStatusReasonContains,
  parameters,
  tags,
  tags_empty: tagsEmpty,
  template_description: templateDescription,
  resource_names: resourceNames,
  absent_resources: absentResources,
  no_resource_in_progress: noResourceInProgress,
  resources,
  attributes,
  attributes_present: attributesPresent,
  attribute_unchanged: attributeUnchanged,
  physical_id_unchanged: physicalIdCheck(false),
  physical_id_changed: physicalIdCheck(true),
  outputs,
  output_errors: outputErrors,
  output_descriptions: outputDescriptions,
  output_checks: outputChecks,
  events,
  order,
  nested,
  nested_physical_ids: nestedPhysicalIds,
  preview,
  validate,
  validate_subset: validateSubset,
};

/** Every expectation of a step, in the file's key order. */
export async function checkExpectations(expect: JsonObject, obs: StepObservation, env: CheckEnv): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const [key, value] of Object.entries(expect)) {
    const check = CHECKS[key];
    if (!check) {
      out.push({ message: `unknown expectation "${key}"` });
      continue;
    }
    try {
      out.push(...(await check(value, obs, env)));
    } catch (e) {
      out.push({ message: e instanceof CheckFailed ? e.message : `${key}: reading the stack failed: ${errorText(e)}` });
    }
  }
  return out;
}
