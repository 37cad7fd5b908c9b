/**
 * The acceptance corpus as the runner needs it: the cases of the template-layer test helper
 * (templates, environments, file sets, steps) with what the scenario file adds for the
 * runner (priority, slow) and the full step shape of /work/shared/heat-corpus/README.md.
 */
import { readFileSync } from 'node:fs';
import type { JsonObject, JsonValue } from '../../src/core/json.js';
import { CORPUS_DIR, loadCorpus } from '../../test/unit/orchestration/template/corpus-runner.js';

/** How a step waits after its request (README, "Steps"). */
export type StepWait =
  | 'complete'
  | 'none'
  | { resource: string; status: string }
  | { nested_resource: string[]; status: string }
  | { event: { resource: string; status_reason: string } };

/** One step of a scenario, with every request field the corpus uses. */
export interface Step {
  op: string;
  stack?: string;
  template?: string;
  environment?: string;
  environment_files?: string[];
  file_set?: string;
  parameters?: Record<string, JsonValue>;
  existing?: boolean;
  disable_rollback?: boolean;
  timeout_mins?: number;
  tags?: string;
  wait?: StepWait;
  /** the wait's limit, seconds */
  timeout?: number;
  resource?: string;
  status?: string;
  seconds?: number;
  data?: JsonValue;
  rollback?: boolean;
  show_nested?: boolean;
  reason?: string;
  expect?: JsonObject;
}

export interface Case {
  /** e.g. `004-update-replace` */
  name: string;
  priority: 'core' | 'extended';
  slow: boolean;
  templates: Record<string, string>;
  environments: Record<string, string>;
  fileSets: Record<string, Record<string, string>>;
  steps: Step[];
}

/** Every case of the corpus in name order; throws when the corpus is not found. */
export function loadCases(): Case[] {
  if (CORPUS_DIR === null) {
    throw new Error('the Heat corpus was not found: set STOKER_HEAT_CORPUS or put it at ../shared/heat-corpus next to the checkout');
  }
  const dir = CORPUS_DIR;
  return loadCorpus().map((c) => {
    const scenario = JSON.parse(readFileSync(`${dir}${c.name}.expect.json`, 'utf8')) as {
      priority?: string;
      slow?: boolean;
      steps: Step[];
    };
    return {
      name: c.name,
      priority: scenario.priority === 'extended' ? 'extended' : 'core',
      slow: scenario.slow === true,
      templates: c.templates,
      environments: c.environments,
      fileSets: c.fileSets,
      steps: scenario.steps,
    };
  });
}
