/**
 * Drives the template layer through the acceptance corpus (../shared/heat-corpus): parses every
 * template, environment and file, then replays each create/update/validate step as far as the
 * template layer goes (parameters, conditions, dependencies, registry, function evaluation),
 * with a tiny fake of the resources the expectations can be checked against without a real
 * engine: OS::Heat::Value and OS::Heat::TestResource (their `value` / `output` attribute is
 * their `value` property) and template resources (a nested instance whose outputs are the
 * attributes).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYamlText } from 'yaml';
import type { JsonObject, JsonValue } from '../../../../src/core/json.js';
import {
  checkImmutableParameters,
  childRegistry,
  instantiateTemplate,
  mergeEnvironments,
  parseEnvironment,
  parseTemplate,
  resolveResourceType,
  selectFromAttribute,
  type Environment,
  type ResourceFacadeData,
  type Template,
  type TemplateInstance,
} from '../../../../src/orchestration/template/index.js';

/**
 * The acceptance corpus lives outside the repository (it is Heat's, with what Heat showed):
 * `STOKER_HEAT_CORPUS`, or `../shared/heat-corpus` next to the checkout. Null when neither
 * exists: the corpus tests then say so and skip (the template layer's own tests still run).
 */
export const CORPUS_DIR: string | null = (() => {
  const given = process.env.STOKER_HEAT_CORPUS;
  const dir = given
    ? given.endsWith('/')
      ? given
      : `${given}/`
    : fileURLToPath(new URL('../../../../../shared/heat-corpus/', import.meta.url));
  return existsSync(dir) ? dir : null;
})();

export interface CorpusStep {
  op: string;
  stack?: string;
  template?: string;
  environment?: string;
  environment_files?: string[];
  file_set?: string;
  parameters?: Record<string, JsonValue>;
  existing?: boolean;
  expect?: {
    api_error?: { status: number; contains?: string; contains_all?: string[] };
    outputs?: Record<string, JsonValue>;
    stack_status?: string;
    [key: string]: unknown;
  };
}

export interface CorpusCase {
  name: string;
  templates: Record<string, string>;
  environments: Record<string, string>;
  fileSets: Record<string, Record<string, string>>;
  steps: CorpusStep[];
}

export function loadCorpus(): CorpusCase[] {
  if (CORPUS_DIR === null) return [];
  const dir = CORPUS_DIR;
  const names = readdirSync(dir)
    .filter((f) => /^\d{3}-.*\.yaml$/.test(f))
    .sort();
  return names.map((file) => {
    const name = file.replace(/\.yaml$/, '');
    const data = parseYamlText(readFileSync(dir + file, 'utf8')) as {
      templates?: Record<string, string>;
      environments?: Record<string, string>;
      file_sets?: Record<string, Record<string, string>>;
    };
    const expect = JSON.parse(readFileSync(`${dir}${name}.expect.json`, 'utf8')) as { steps: CorpusStep[] };
    return {
      name,
      templates: data.templates ?? {},
      environments: data.environments ?? {},
      fileSets: data.file_sets ?? {},
      steps: expect.steps,
    };
  });
}

/** A file of a file set is a template when it has a heat_template_version key. */
export function isTemplateFile(text: string): boolean {
  const parsed = parseYamlText(text, { schema: 'core' }) as unknown;
  return typeof parsed === 'object' && parsed !== null && 'heat_template_version' in parsed;
}

interface StackState {
  template: Template;
  parameters: Record<string, JsonValue>;
  environment: Environment;
  files: Record<string, string>;
  instance: TemplateInstance;
}

export interface StepResult {
  instance: TemplateInstance;
  outputs: Record<string, { value?: JsonValue; error?: string; fromValuesOnly: boolean }>;
}

/** Replays the steps of one case; calls `onStep` with the result or the error of each. */
export function replaySteps(c: CorpusCase, onStep: (index: number, step: CorpusStep, result: StepResult | Error) => void): void {
  const stacks = new Map<string, StackState>();
  c.steps.forEach((step, index) => {
    if (!['create', 'update', 'preview_update'].includes(step.op)) return;
    const stackName = step.stack ?? 'main';
    const previous = stacks.get(stackName);
    try {
      const result = runStep(c, step, previous, (state) => {
        if (step.op !== 'preview_update') stacks.set(stackName, state);
      });
      onStep(index, step, result);
    } catch (e) {
      onStep(index, step, e as Error);
    }
  });
}

function runStep(c: CorpusCase, step: CorpusStep, previous: StackState | undefined, commit: (s: StackState) => void): StepResult {
  const files = step.file_set ? c.fileSets[step.file_set]! : step.existing && previous ? previous.files : {};
  const template = step.template ? parseTemplate(c.templates[step.template]!, { files }) : previous!.template;
  let environment: Environment;
  if (step.environment_files)
    environment = mergeEnvironments(step.environment_files.map((f) => parseEnvironment(files[f]!, { label: f }).environment));
  else if (step.environment) environment = parseEnvironment(c.environments[step.environment]!).environment;
  else environment = step.existing && previous ? previous.environment : parseEnvironment('').environment;
  let parameters = step.parameters ?? {};
  if (step.existing && previous) {
    // PATCH: earlier values stay unless the new template no longer has the parameter
    parameters = Object.fromEntries(Object.entries({ ...previous.parameters, ...parameters }).filter(([k]) => k in template.parameters));
  }
  const instance = instantiateTemplate(template, {
    parameters,
    environment,
    files,
    pseudo: { stackName: step.stack ?? 'main', stackId: 'id-1', projectId: 'p' },
  });
  if (previous && step.op === 'update') {
    // applying it is the stack layer's job; the check itself lives in the template layer
    checkImmutableParameters(previous.instance.parameters, instance.parameters);
  }
  const outputs = runFakeStack(instance, environment, files, 0);
  commit({ template, parameters, environment, files, instance });
  return { instance, outputs };
}

/**
 * Evaluates every resource in order and every output, with fake resources. Returns the outputs,
 * marking those whose value depends only on OS::Heat::Value resources (comparable to Heat's).
 */
function runFakeStack(
  instance: TemplateInstance,
  environment: Environment,
  files: Record<string, string>,
  depth: number,
  facade?: ResourceFacadeData,
): StepResult['outputs'] {
  const attributes = new Map<string, (attr: string | null, path: JsonValue[]) => JsonValue>();
  const exact = new Set<string>();
  const runtime = {
    getResource: (name: string) => `${name}-physical-id`,
    getAttr: (name: string, attr: string | null, path: JsonValue[]) => attributes.get(name)?.(attr, path) ?? null,
    ...(facade ? { resourceFacade: facade } : {}),
  };
  for (const name of instance.order) {
    const definition = instance.template.resources[name]!;
    const resolved = resolveResourceType(environment.resourceRegistry, definition.type, { resourceName: name, files });
    const evaluated = instance.evaluateResource(name, runtime);
    const meta = instance.resource(name);
    if (resolved.kind === 'plugin' && (resolved.type === 'OS::Heat::Value' || resolved.type === 'OS::Heat::TestResource')) {
      // Value's `value` and TestResource's `output` attribute are their `value` property
      const value = evaluated.properties['value'] ?? null;
      const attribute = resolved.type === 'OS::Heat::Value' ? 'value' : 'output';
      attributes.set(name, (attr, path) => (attr === attribute ? selectFromAttribute(value, path) : null));
      exact.add(name);
    } else if (resolved.kind === 'template' && depth < 5) {
      const nested = parseTemplate(resolved.content, { files, label: resolved.file });
      const childEnv: Environment = {
        ...environment,
        parameters: {},
        resourceRegistry: childRegistry(environment.resourceRegistry, { resourceName: name, removeType: definition.type }),
      };
      const params = Object.fromEntries(Object.entries(evaluated.properties).filter(([k]) => k in nested.parameters));
      const child = instantiateTemplate(nested, {
        parameters: params as JsonObject,
        environment: childEnv,
        files,
        pseudo: { stackName: `nested-${name}` },
      });
      const childFacade: ResourceFacadeData = {
        metadata: evaluated.metadata,
        deletion_policy: meta.deletionPolicy,
        update_policy: evaluated.updatePolicy,
      };
      const outputs = runFakeStack(child, childEnv, files, depth + 1, childFacade);
      attributes.set(name, (attr, path) => (attr === null ? null : selectFromAttribute(outputs[attr]?.value ?? null, path)));
      if (Object.values(outputs).every((o) => o.fromValuesOnly)) exact.add(name);
    }
  }
  const out: StepResult['outputs'] = {};
  for (const name of instance.outputNames) {
    const o = instance.evaluateOutput(name, runtime);
    const deps = instance.outputDependencies(name);
    out[name] = { ...('error' in o ? { error: o.error } : { value: o.value }), fromValuesOnly: deps.every((d) => exact.has(d)) };
  }
  return out;
}
