/**
 * Stack environments (`heat/common/environment_format.py`, `environment_util.py`): the
 * sections `parameters`, `parameter_defaults`, `resource_registry`, `encrypted_param_names`,
 * `event_sinks` and `parameter_merge_strategies`; an unknown or empty section is an error, as
 * in Heat. Several environments merge in order, later ones winning, with the per-parameter
 * merge strategies (`overwrite`, `merge`, `deep_merge`) Heat applies to environment files.
 *
 * Not supported, with a warning returned to the caller: `event_sinks` (Stoker sends no
 * events to Zaqar queues). Breakpoint `hooks` and `restricted_actions` are parsed and exposed
 * (resource-registry.ts); acting on them is the stack layer's job.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { guardJson } from './json-guard.js';
import { DEFAULT_TEMPLATE_LIMITS, resolveTemplateLimits, type TemplateLimits } from './limits.js';
import { strToNum } from './parameter-conversion.js';
import type { ParameterType } from './parameter-schema.js';
import { parseYamlMapping } from './parse-yaml.js';
import { isMapping } from './python-values.js';
import { emptyRegistry, mergeRegistries, parseRegistry, type ResourceRegistry } from './resource-registry.js';
import { quoteText, showText, showValue, templateError } from './template-error.js';

/**
 * Per-parameter merge strategies of environment files.
 *
 * @example
 * ```ts
 * MergeStrategies.includes('deep_merge'); // true
 * ```
 */
export const MergeStrategies = ['overwrite', 'merge', 'deep_merge'] as const;
export type MergeStrategy = (typeof MergeStrategies)[number];

/**
 * A parsed environment.
 *
 * @example
 * ```ts
 * env.parameterDefaults['length']; // 12
 * ```
 */
export interface Environment {
  parameters: Record<string, JsonValue>;
  parameterDefaults: Record<string, JsonValue>;
  resourceRegistry: ResourceRegistry;
  encryptedParamNames: string[];
  /** per parameter name, and `default` for the rest */
  parameterMergeStrategies: Record<string, MergeStrategy>;
  /** kept as given; Stoker does not act on them */
  eventSinks: JsonValue[];
}

/**
 * An environment and what the caller should tell the user about it.
 *
 * @example
 * ```ts
 * const { environment, warnings } = parseEnvironment(text);
 * ```
 */
export interface ParsedEnvironment {
  environment: Environment;
  warnings: string[];
}

const SECTIONS = [
  'parameters',
  'resource_registry',
  'parameter_defaults',
  'encrypted_param_names',
  'event_sinks',
  'parameter_merge_strategies',
];

/**
 * An environment with nothing in it.
 *
 * @example
 * ```ts
 * resolveParameters(template, { environment: emptyEnvironment() });
 * ```
 */
export function emptyEnvironment(): Environment {
  return {
    parameters: {},
    parameterDefaults: {},
    resourceRegistry: emptyRegistry(),
    encryptedParamNames: [],
    parameterMergeStrategies: {},
    eventSinks: [],
  };
}

/**
 * Parses one environment (YAML or JSON text, or an object).
 *
 * @example
 * ```ts
 * parseEnvironment('parameter_defaults:\n  length: 12\n').environment.parameterDefaults; // { length: 12 }
 * ```
 */
export function parseEnvironment(
  input: string | JsonObject,
  options: { limits?: Partial<TemplateLimits>; label?: string } = {},
): ParsedEnvironment {
  const limits = resolveTemplateLimits(options.limits);
  const label = showText(options.label ?? 'environment');
  let raw: JsonObject;
  if (typeof input === 'string') {
    raw = parseYamlMapping(input, {
      label,
      invalidCode: 'STOKER_ENVIRONMENT_INVALID',
      limits,
      notMappingMessage: `The ${label} is not a valid YAML mapping data type.`,
    }).value;
  } else {
    guardJson(
      input,
      `The ${label}`,
      { maxDepth: limits.maxDepth, maxBytes: limits.maxTemplateBytes, maxNodes: limits.maxNodes },
      'STOKER_ENVIRONMENT_INVALID',
    );
    if (!isMapping(input)) throw templateError('STOKER_ENVIRONMENT_INVALID', '', `The ${label} is not a valid YAML mapping data type.`);
    raw = input;
  }
  const fail = (path: string, message: string): never => {
    throw templateError('STOKER_ENVIRONMENT_INVALID', path, message);
  };
  for (const [key, value] of Object.entries(raw)) {
    if (!SECTIONS.includes(key)) fail(key, `environment has wrong section ${quoteText(key)}`);
    if (value === null) fail(key, `environment has empty section ${quoteText(key)}`);
  }
  const map = (key: string): JsonObject => {
    const v = raw[key];
    if (v === undefined) return {};
    if (!isMapping(v)) return fail(key, `The "${key}" section must be a map`);
    return { ...v };
  };
  const list = (key: string): JsonValue[] => {
    const v = raw[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) return fail(key, `The "${key}" section must be a list`);
    return [...v];
  };
  const strategies: Record<string, MergeStrategy> = {};
  for (const [name, s] of Object.entries(map('parameter_merge_strategies'))) {
    if (typeof s !== 'string' || !(MergeStrategies as readonly string[]).includes(s)) {
      fail(`parameter_merge_strategies.${name}`, `"${showValue(s)}" is not a merge strategy (${MergeStrategies.join(', ')})`);
    }
    strategies[name] = s as MergeStrategy;
  }
  const encrypted = list('encrypted_param_names');
  if (!encrypted.every((n) => typeof n === 'string'))
    fail('encrypted_param_names', 'encrypted_param_names must be a list of parameter names');
  const eventSinks = list('event_sinks');
  const warnings = eventSinks.length > 0 ? [`${label}: event_sinks are ignored (Stoker does not send stack events to sinks)`] : [];
  return {
    environment: {
      parameters: map('parameters'),
      parameterDefaults: map('parameter_defaults'),
      resourceRegistry:
        raw['resource_registry'] === undefined ? emptyRegistry() : parseRegistry(raw['resource_registry']!, 'resource_registry'),
      encryptedParamNames: encrypted as string[],
      parameterMergeStrategies: strategies,
      eventSinks,
    },
    warnings,
  };
}

/**
 * Merges environments in order (later wins). `parameters` and `parameter_defaults` follow
 * each environment's `parameter_merge_strategies` when the template's parameter types are
 * given (`merge` joins strings and lists, adds numbers and merges json maps; `deep_merge` merges
 * json maps recursively); one parameter may not be merged with two different strategies.
 *
 * @example
 * ```ts
 * const env = mergeEnvironments([env1, env2], { parameterTypes: { p2: 'string' } });
 * ```
 */
export function mergeEnvironments(
  environments: readonly Environment[],
  options: { parameterTypes?: Readonly<Record<string, ParameterType>> } = {},
): Environment {
  const out = emptyEnvironment();
  const chosen = new Map<string, MergeStrategy>();
  environments.forEach((env, index) => {
    for (const [section, target] of [
      [env.parameters, out.parameters],
      [env.parameterDefaults, out.parameterDefaults],
    ] as const) {
      for (const [name, value] of Object.entries(section)) {
        if (value === null) continue;
        if (!Object.hasOwn(target, name)) {
          target[name] = value;
          continue;
        }
        // as in Heat, a strategy is recorded when a value is merged into an earlier one
        const own = (key: string): MergeStrategy | undefined =>
          Object.hasOwn(env.parameterMergeStrategies, key) ? env.parameterMergeStrategies[key] : undefined;
        const strategy = own(name) ?? own('default') ?? 'overwrite';
        const previous = chosen.get(name);
        if (previous !== undefined && previous !== strategy) {
          throw templateError(
            'STOKER_ENVIRONMENT_INVALID',
            `parameter_merge_strategies.${name}`,
            `Conflicting merge strategy "${strategy}" for parameter ${quoteText(name)} in environment ${index + 1} (an earlier one used "${previous}")`,
          );
        }
        chosen.set(name, strategy);
        const type = options.parameterTypes?.[name];
        target[name] =
          strategy === 'overwrite' || type === undefined || !Object.hasOwn(target, name)
            ? value
            : mergeValue(name, type, target[name]!, value, strategy === 'deep_merge');
      }
    }
    out.resourceRegistry = mergeRegistries(out.resourceRegistry, env.resourceRegistry);
    for (const n of env.encryptedParamNames) if (!out.encryptedParamNames.includes(n)) out.encryptedParamNames.push(n);
    out.eventSinks.push(...env.eventSinks);
    Object.assign(out.parameterMergeStrategies, env.parameterMergeStrategies);
  });
  return out;
}

function mergeValue(name: string, type: ParameterType, old: JsonValue, value: JsonValue, deep: boolean): JsonValue {
  const fail = (message: string): never => {
    throw templateError('STOKER_ENVIRONMENT_INVALID', `parameters.${name}`, message);
  };
  switch (type) {
    case 'json': {
      const parse = (v: JsonValue): JsonValue => {
        if (typeof v !== 'string') return v;
        let parsed: unknown;
        try {
          parsed = JSON.parse(v);
        } catch {
          return fail(`Invalid parameter in environment: the value of ${quoteText(name)} is not JSON`);
        }
        // JSON text may hold `__proto__` keys and any depth: the same checks as any other input
        const { maxDepth, maxTemplateBytes, maxNodes } = DEFAULT_TEMPLATE_LIMITS;
        guardJson(
          parsed,
          `The value of ${quoteText(name)}`,
          { maxDepth, maxBytes: maxTemplateBytes, maxNodes },
          'STOKER_ENVIRONMENT_INVALID',
        );
        return parsed;
      };
      return mergeMaps(parse(old), parse(value), deep);
    }
    case 'comma_delimited_list':
      if (Array.isArray(old) && Array.isArray(value)) return [...old, ...value];
      if (typeof old === 'string' && typeof value === 'string') return old === '' ? value : `${old},${value}`;
      return fail(`Cannot merge the values of ${quoteText(name)}: mix of lists and comma-delimited strings`);
    case 'string':
      return `${typeof old === 'string' ? old : JSON.stringify(old)}${typeof value === 'string' ? value : JSON.stringify(value)}`;
    case 'number': {
      const a = strToNum(old);
      const b = strToNum(value);
      if (a === undefined || b === undefined) return fail(`Cannot merge the values of ${quoteText(name)}: not numbers`);
      return a + b;
    }
    case 'boolean':
      return fail(`Invalid merge strategy "merge" for parameter ${quoteText(name)}: booleans cannot be merged`);
  }
}

/** Heat's `merge_map`: later keys win; with `deep`, maps merge recursively, lists and strings append. */
function mergeMaps(old: JsonValue, value: JsonValue, deep: boolean, depth = 0): JsonValue {
  if (!isMapping(old) || Object.keys(old).length === 0) return value;
  if (!isMapping(value) || depth > 64) return value;
  const out: JsonObject = { ...old };
  for (const [k, v] of Object.entries(value)) {
    if (v === null) continue;
    const o = out[k];
    if (!deep || o === undefined || o === null) out[k] = v;
    else if (isMapping(v)) out[k] = mergeMaps(o, v, deep, depth + 1);
    else if (Array.isArray(v)) out[k] = Array.isArray(o) ? [...o, ...v] : v;
    else if (typeof v === 'string') out[k] = `${typeof o === 'string' ? o : ''}${v}`;
    else out[k] = v;
  }
  return out;
}
