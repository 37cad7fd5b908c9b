/**
 * Stack parameter values: where each comes from, its conversion to the parameter's type, and
 * its checks, as Heat's `Parameters` does it:
 *
 * 1. a value the user gave (request `parameters`, merged over the environment's `parameters`),
 * 2. else the environment's `parameter_defaults`,
 * 3. else the template default;
 *
 * a user value for a parameter the template does not declare is an error (a
 * `parameter_defaults` entry is not: environments are shared between templates). Pseudo
 * parameters (`OS::stack_name`, `OS::stack_id`, `OS::project_id`) come from the caller.
 */
import type { JsonValue } from '../../core/json.js';
import { checkConstraints } from './constraints.js';
import { patternBudget } from './linear-regex.js';
import { resolveTemplateLimits, type TemplateLimits } from './limits.js';
import { convertParameterValue } from './parameter-conversion.js';
import type { ParameterSchema } from './parameter-schema.js';
import { guardJson } from './json-guard.js';
import { pyEquals } from './python-values.js';
import { showText, templateError } from './template-error.js';

/**
 * The pseudo parameters of a stack.
 *
 * @example
 * ```ts
 * const pseudo: PseudoParameters = { stackName: 'web', stackId: 'c0ffee…', projectId: 'tenant-1' };
 * ```
 */
export interface PseudoParameters {
  stackName?: string;
  stackId?: string;
  projectId?: string;
}

/**
 * The pseudo parameter names HOT templates may read with get_param.
 *
 * @example
 * ```ts
 * resolved.values[PSEUDO_PARAMETER_NAMES[0]]; // the stack name
 * ```
 */
export const PSEUDO_PARAMETER_NAMES = ['OS::stack_name', 'OS::stack_id', 'OS::project_id'] as const;

/**
 * What a stack's parameters are resolved from.
 *
 * @example
 * ```ts
 * const input: ParameterInput = { parameters: { count: '3' }, environment: env, pseudo: { stackName: 'web' } };
 * ```
 */
export interface ParameterInput {
  /** values given with the request: strings (as on a command line) or JSON values */
  parameters?: Readonly<Record<string, JsonValue>>;
  environment?: { parameters: Readonly<Record<string, JsonValue>>; parameterDefaults: Readonly<Record<string, JsonValue>> };
  pseudo?: PseudoParameters;
  limits?: Partial<TemplateLimits>;
}

/**
 * Where a parameter's value came from.
 *
 * @example
 * ```ts
 * resolved.sources['length']; // 'parameter_defaults'
 * ```
 */
export type ParameterSource = 'parameters' | 'parameter_defaults' | 'default';

/**
 * The stack's parameters: typed values (pseudo parameters included), their schemas and sources.
 *
 * @example
 * ```ts
 * resolved.values['count']; // 3 (a number, from the string '3')
 * ```
 */
export interface ResolvedParameters {
  values: Readonly<Record<string, JsonValue>>;
  schemas: Readonly<Record<string, ParameterSchema>>;
  sources: Readonly<Record<string, ParameterSource>>;
}

/**
 * Resolves, converts and checks every parameter of a template.
 *
 * @example
 * ```ts
 * const params = resolveParameters(template, { parameters: { db_password: 'Abc123' }, pseudo: { stackName: 's' } });
 * params.values['db_port']; // 50000 (the default)
 * ```
 */
export function resolveParameters(
  template: { parameters: Readonly<Record<string, ParameterSchema>> },
  input: ParameterInput = {},
): ResolvedParameters {
  const limits = resolveTemplateLimits(input.limits);
  const user: Record<string, JsonValue> = { ...(input.environment?.parameters ?? {}), ...(input.parameters ?? {}) };
  const defaults = input.environment?.parameterDefaults ?? {};
  const unknown = Object.keys(user).filter((name) => !Object.hasOwn(template.parameters, name));
  if (unknown.length > 0) {
    // the names come from the request: shown escaped and cut short, and at most 20 of them
    const shown = unknown.slice(0, 20).map((n) => showText(n));
    if (unknown.length > 20) shown.push(`and ${unknown.length - 20} more`);
    throw templateError(
      'STOKER_PARAMETER_INVALID',
      `parameters.${unknown[0]!}`,
      unknown.length === 1
        ? `The Parameter (${shown[0]!}) was not defined in template.`
        : `The Parameters (${shown.join(', ')}) were not defined in template.`,
      { parameters: unknown.slice(0, 100).map((n) => n.slice(0, 255)) },
    );
  }
  const pseudo = input.pseudo ?? {};
  const values: Record<string, JsonValue> = {
    'OS::stack_id': pseudo.stackId ?? '',
    'OS::project_id': pseudo.projectId ?? '',
    'OS::stack_name': pseudo.stackName ?? '',
  };
  const sources: Record<string, ParameterSource> = {};
  // one budget for the allowed_pattern checks of every value (docs/security.md S6)
  const budget = patternBudget(limits.maxPatternSteps);
  for (const [name, schema] of Object.entries(template.parameters)) {
    const fail = (message: string, details: Record<string, JsonValue> = {}): never => {
      throw templateError('STOKER_PARAMETER_INVALID', `parameters.${name}`, message, { parameter: name, ...details });
    };
    let raw: JsonValue | undefined;
    if (user[name] !== undefined && user[name] !== null) [raw, sources[name]] = [user[name], 'parameters'];
    else if (defaults[name] !== undefined && defaults[name] !== null) [raw, sources[name]] = [defaults[name], 'parameter_defaults'];
    else if (schema.default !== undefined) [raw, sources[name]] = [schema.default, 'default'];
    if (raw === undefined) return fail(`The Parameter (${showText(name)}) was not provided.`);
    const bounds = { maxDepth: limits.maxDepth, maxBytes: limits.maxParameterValueBytes, maxNodes: limits.maxNodes };
    guardJson(raw, `The value of parameter "${showText(name)}"`, bounds, 'STOKER_PARAMETER_INVALID', 'STOKER_PARAMETER_INVALID');
    const converted = convertParameterValue(schema, raw);
    if (!converted.ok) return fail(`Parameter '${showText(name)}' is invalid: ${converted.message}`);
    guardJson(
      converted.value,
      `The value of parameter "${showText(name)}"`,
      bounds,
      'STOKER_PARAMETER_INVALID',
      'STOKER_PARAMETER_INVALID',
    );
    const problem = checkConstraints(schema, converted.value, budget);
    if (problem !== undefined) fail(`Parameter '${showText(name)}' is invalid: ${problem.message}`, { constraint: problem.constraint });
    values[name] = converted.value;
  }
  return { values, schemas: template.parameters, sources };
}

/**
 * Heat's immutability check on update: a parameter marked `immutable` in the new template may
 * not change value. Throws STOKER_PARAMETER_INVALID naming every changed one.
 *
 * @example
 * ```ts
 * checkImmutableParameters(previousParameters, nextParameters);
 * // 'The following parameters are immutable and may not be updated: param1'
 * ```
 */
export function checkImmutableParameters(previous: ResolvedParameters, next: ResolvedParameters): void {
  const changed = Object.keys(next.schemas).filter(
    (name) => next.schemas[name]!.immutable && Object.hasOwn(previous.schemas, name) && !pyEquals(previous.values[name], next.values[name]),
  );
  if (changed.length > 0) {
    throw templateError(
      'STOKER_PARAMETER_INVALID',
      'parameters',
      `The following parameters are immutable and may not be updated: ${changed.map((n) => showText(n)).join(', ')}`,
      { parameters: changed },
    );
  }
}
