/**
 * The Heat acceptance corpus (../shared/heat-corpus) through the resource layer: every step is
 * replayed with a small simulator (corpus-sim.ts) that validates and runs the built-in types
 * the way a stack engine would. Every property set the corpus uses must validate, the
 * rejections it expects from resource plugins must come with Heat's words, failures must give
 * Heat's status reasons, and outputs, output checks, attributes and physical ids of the
 * resources this layer implements must be what Heat showed. What is left to the stack engine
 * (rollback, cancel, concurrency, hooks) only makes the simulator stop comparing; the counts
 * of what was compared are asserted, so nothing is skipped silently.
 */
import { describe, expect, it } from 'vitest';
import type { JsonObject, JsonValue } from '../../../../src/core/json.js';
import { isStokerError } from '../../../../src/errors.js';
import {
  checkImmutableParameters,
  instantiateTemplate,
  mergeEnvironments,
  parseEnvironment,
  parseTemplate,
  type Environment,
  type Template,
  type TemplateInstance,
} from '../../../../src/orchestration/template/index.js';
import { CORPUS_DIR, loadCorpus, type CorpusCase, type CorpusStep } from '../template/corpus-runner.js';
import { CorpusSim, type SimOutcome } from './corpus-sim.js';

/** Rejections the corpus expects from resource plugins: `case#step` → the texts the message holds. */
const PLUGIN_REJECTIONS: Record<string, string[]> = {
  '049-resourcegroup-zero-count-skips-validation#1': [
    'resources.random_group<nested_stack>.resources.0<provider.yaml>.resources.random',
    "Value 'BAD' is not an integer",
  ],
  '049-resourcegroup-zero-count-skips-validation#2': ["Value 'BAD' is not an integer"],
  '063-deletion-policy#3': ['"Snapshot" deletion policy not supported'],
  '073-randomstring-properties#2': ['Length property cannot be smaller than combined character class and character sequence minimums'],
};
/** Rejections of the stack layer (template resource facades), which this layer must not make. */
const STACK_LAYER_REJECTIONS = new Set(['044-facade-validation-errors#0', '044-facade-validation-errors#1']);

interface StackState {
  template: Template;
  parameters: Record<string, JsonValue>;
  environment: Environment;
  files: Record<string, string>;
  instance: TemplateInstance;
  /** the simulator no longer knows what Heat's state is (after a failure, a cancel, an engine death) */
  uncertain: boolean;
}

const counted = { steps: 0, pluginRejections: 0, failures: 0, outputs: 0, outputChecks: 0, attributes: 0, physicalIds: 0 };

function bind(c: CorpusCase, step: CorpusStep, previous: StackState | undefined): StackState {
  const files = step.file_set ? c.fileSets[step.file_set]! : step.existing && previous ? previous.files : {};
  const template = step.template ? parseTemplate(c.templates[step.template]!, { files }) : previous!.template;
  let environment: Environment;
  if (step.environment_files)
    environment = mergeEnvironments(step.environment_files.map((f) => parseEnvironment(files[f]!, { label: f }).environment));
  else if (step.environment) environment = parseEnvironment(c.environments[step.environment]!).environment;
  else environment = step.existing && previous ? previous.environment : parseEnvironment('').environment;
  let parameters = step.parameters ?? {};
  if (step.existing && previous) {
    parameters = Object.fromEntries(Object.entries({ ...previous.parameters, ...parameters }).filter(([k]) => k in template.parameters));
  }
  const instance = instantiateTemplate(template, {
    parameters,
    environment,
    files,
    pseudo: { stackName: step.stack ?? 'main', stackId: 'id-1' },
  });
  if (previous && step.op === 'update') checkImmutableParameters(previous.instance.parameters, instance.parameters);
  return { template, parameters, environment, files, instance, uncertain: false };
}

const typeOf = (v: JsonValue | undefined): string =>
  v === null || v === undefined
    ? 'null'
    : Array.isArray(v)
      ? 'list'
      : typeof v === 'object'
        ? 'map'
        : typeof v === 'string'
          ? 'string'
          : typeof v;

/** The output checks of the corpus README that this layer can answer. */
function checkOutput(
  name: string,
  value: JsonValue | undefined,
  check: Record<string, unknown>,
  outputs: Record<string, JsonValue | undefined>,
  history: Map<number, Record<string, JsonValue | undefined>>,
): void {
  const where = `output ${name}`;
  for (const [kind, arg] of Object.entries(check)) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    switch (kind) {
      case 'length':
        expect((value as string | unknown[] | null)?.length, where).toBe(arg);
        break;
      case 'item_length':
        for (const item of Object.values(value as JsonObject)) expect((item as string).length, where).toBe(arg);
        break;
      case 'type':
        expect(typeOf(value), where).toBe(arg);
        break;
      case 'regex':
        expect(text, where).toMatch(new RegExp(arg as string));
        break;
      case 'contains':
        expect(text, where).toContain(arg);
        break;
      case 'not_contains':
        expect(text, where).not.toContain(arg);
        break;
      case 'contains_all':
        for (const piece of arg as string[]) expect(text, where).toContain(piece);
        break;
      case 'not_equal':
        expect(value, where).not.toEqual(arg);
        break;
      case 'same_as_output':
        if (!((arg as string) in outputs)) continue;
        expect(value, where).toEqual(outputs[arg as string]);
        break;
      case 'min_counts':
        for (const [re, n] of arg as [string, number][])
          expect((text.match(new RegExp(re, 'g')) ?? []).length, `${where} ${re}`).toBeGreaterThanOrEqual(n);
        break;
      case 'same_as_step':
      case 'differs_from_step': {
        const { step, output } = arg as { step: number; output?: string };
        const earlier = history.get(step)?.[output ?? name];
        if (kind === 'same_as_step') expect(value, where).toEqual(earlier);
        else expect(value, where).not.toEqual(earlier);
        break;
      }
      default:
        continue; // json_equals, equals_list_of_outputs: not used with these types
    }
    counted.outputChecks++;
  }
}

async function replay(c: CorpusCase): Promise<void> {
  const sim = new CorpusSim();
  const stacks = new Map<string, StackState>();
  const history = new Map<number, Record<string, JsonValue | undefined>>();
  const physicalIds = new Map<number, Map<string, string | null>>();
  for (const [index, step] of c.steps.entries()) {
    const id = `${c.name}#${index}`;
    const stackName = step.stack ?? 'main';
    const expectation = step.expect ?? {};
    const previous = stacks.get(stackName);
    if (step.op === 'delete') {
      await sim.delete(stackName);
      stacks.delete(stackName);
      continue;
    }
    if (step.op === 'mark_unhealthy') sim.markUnhealthy(stackName, (step as { resource?: string }).resource ?? '');
    if (step.op === 'cancel_update' || step.op === 'kill_engine') if (previous) previous.uncertain = true;
    // template validation (which needs no parameter values) is the template layer's
    if (!['create', 'update', 'preview_update'].includes(step.op)) continue;
    counted.steps++;
    let state: StackState;
    let outcome: SimOutcome | null = null;
    try {
      state = bind(c, step, previous);
      if (step.op === 'create' || step.op === 'update') outcome = await sim.run(stackName, state.instance, state.environment, state.files);
      else sim.check(stackName, state.instance, state.environment, state.files);
    } catch (e) {
      const code = isStokerError(e) ? e.code : 'not a StokerError';
      const message = e instanceof Error ? e.message : String(e);
      const mine = code.startsWith('STOKER_RESOURCE_') || message.includes('deletion policy not supported');
      if (PLUGIN_REJECTIONS[id]) {
        expect(mine, `${id}: ${message}`).toBe(true);
        for (const piece of PLUGIN_REJECTIONS[id]) expect(message, id).toContain(piece);
        counted.pluginRejections++;
      } else {
        // anything else must be a rejection the corpus expects, made by the template layer
        expect(expectation.api_error, `${id} was rejected: ${message}`).toBeDefined();
        expect(mine, `${id}: the resource layer rejected what Heat rejects elsewhere: ${message}`).toBe(false);
      }
      continue;
    }
    expect(PLUGIN_REJECTIONS[id], `${id} should have been rejected`).toBeUndefined();
    if (expectation.api_error && !STACK_LAYER_REJECTIONS.has(id)) {
      // rejected by the template layer in Heat: its own corpus test holds it to that
      continue;
    }
    if (step.op !== 'create' && step.op !== 'update') continue;
    const certain = !(previous?.uncertain ?? false);
    stacks.set(stackName, state);
    const status = String(expectation.stack_status ?? '');
    if (outcome!.failure !== null) {
      state.uncertain = true;
      counted.failures++;
      const events = (expectation['events'] ?? []) as { resource: string; status?: string; status_reason?: string }[];
      for (const ev of events.filter((e) => e.status?.endsWith('_FAILED') && e.status_reason))
        expect(outcome!.failure, id).toBe(ev.status_reason);
      const contains = expectation['stack_status_reason_contains'] as string | undefined;
      if (contains?.includes('Test Resource failed')) expect(outcome!.failure, id).toContain(contains);
      const oneOf = (expectation['stack_status_one_of'] ?? []) as string[];
      // a failed step ends FAILED, rolled back, or is still going when the step does not wait
      const settled = [status, ...oneOf].some((s) => /FAILED|ROLLBACK|IN_PROGRESS/.test(s)) || status === '';
      expect(settled, `${id} failed: ${outcome!.failure}`).toBe(true);
      continue;
    }
    // Heat failed where the simulator did not (a stack timeout, a superseded traversal): it no longer knows
    if (!certain || /FAILED|ROLLBACK/.test(status)) {
      state.uncertain = true;
      continue;
    }
    // a step that does not wait is compared by the later step that does
    if (!status.endsWith('_COMPLETE')) continue;
    const values = Object.fromEntries(
      Object.entries(outcome!.outputs)
        .filter(([, o]) => o.exact)
        .map(([k, o]) => [k, o.value]),
    );
    history.set(index, values);
    const top = sim.stacks.get(stackName)!;
    physicalIds.set(index, new Map([...top].map(([n, r]) => [n, r.physicalId])));
    for (const [name, value] of Object.entries((expectation.outputs ?? {}) as Record<string, JsonValue>)) {
      const o = outcome!.outputs[name];
      if (!o?.exact) continue;
      expect(o.value, `${id} output ${name}`).toEqual(value);
      counted.outputs++;
    }
    for (const [name, check] of Object.entries((expectation['output_checks'] ?? {}) as Record<string, Record<string, unknown>>)) {
      if (outcome!.outputs[name]?.exact) checkOutput(name, outcome!.outputs[name]!.value, check, values, history);
    }
    for (const [resource, attrs] of Object.entries((expectation['attributes'] ?? {}) as Record<string, JsonObject>)) {
      for (const [attr, value] of Object.entries(attrs)) {
        const got = await sim.attribute(stackName, resource, attr);
        if (got === undefined) continue;
        expect(got, `${id} ${resource}.${attr}`).toEqual(value);
        counted.attributes++;
      }
    }
    for (const kind of ['physical_id_changed', 'physical_id_unchanged'] as const) {
      for (const { since_step, resources } of (expectation[kind] ?? []) as { since_step: number; resources: string[] }[]) {
        for (const r of resources) {
          const before = physicalIds.get(since_step)?.get(r);
          const now = top.get(r)?.physicalId;
          if (!before || !now || !sim.registry.find(top.get(r)!.kind)) continue;
          if (kind === 'physical_id_changed') expect(now, `${id} ${r}`).not.toBe(before);
          else expect(now, `${id} ${r}`).toBe(before);
          counted.physicalIds++;
        }
      }
    }
  }
}

const corpus = loadCorpus();
if (CORPUS_DIR === null)
  console.warn('SKIP heat corpus (resources): not found (set STOKER_HEAT_CORPUS, or check out next to ../shared/heat-corpus)');

describe.skipIf(CORPUS_DIR === null)('heat corpus through the resource layer', () => {
  for (const c of corpus) it(c.name, async () => replay(c));

  it('compared what it should (nothing skipped silently)', () => {
    console.log('resource corpus:', JSON.stringify(counted));
    expect(counted.pluginRejections).toBe(Object.keys(PLUGIN_REJECTIONS).length);
    expect(counted.steps).toBeGreaterThan(150);
    // the figures of the corpus as it is (73 cases): fewer means comparisons were lost
    expect(counted.failures).toBeGreaterThanOrEqual(12);
    expect(counted.outputs).toBeGreaterThanOrEqual(84);
    expect(counted.outputChecks).toBeGreaterThanOrEqual(51);
    expect(counted.attributes).toBeGreaterThanOrEqual(4);
    expect(counted.physicalIds).toBeGreaterThanOrEqual(10);
  });
});
