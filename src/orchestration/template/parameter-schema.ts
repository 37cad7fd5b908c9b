/**
 * The `parameters` section: each parameter's schema (type, default, hidden, immutable, label,
 * description, tags, constraints), validated the way Heat's `HOTParamSchema.from_dict` and
 * `Schema.validate` do, including the check that a default satisfies the constraints.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { checkConstraints, parameterConstraint, type ParameterConstraint } from './constraints.js';
import { patternBudget, type PatternBudget } from './linear-regex.js';
import type { TemplateLimits } from './limits.js';
import { convertParameterValue } from './parameter-conversion.js';
import { isMapping, pyStr } from './python-values.js';
import { checkName } from './names.js';
import { clipText, showText, showValue, templateError } from './template-error.js';
import type { TemplateVersion } from './versions.js';

/**
 * The parameter types of HOT.
 *
 * @example
 * ```ts
 * ParameterTypes.CommaDelimitedList; // 'comma_delimited_list'
 * ```
 */
export const ParameterTypes = {
  String: 'string',
  Number: 'number',
  Json: 'json',
  CommaDelimitedList: 'comma_delimited_list',
  Boolean: 'boolean',
} as const;
export type ParameterType = (typeof ParameterTypes)[keyof typeof ParameterTypes];

/**
 * One parameter's schema. `default` is undefined when the template gives none (or `null`).
 *
 * @example
 * ```ts
 * template.parameters['flavor']?.hidden; // false
 * ```
 */
export interface ParameterSchema {
  name: string;
  type: ParameterType;
  label: string | null;
  description: string | null;
  default: JsonValue | undefined;
  hidden: boolean;
  immutable: boolean;
  tags: string[] | null;
  constraints: ParameterConstraint[];
}

/** Which constraint kinds make sense for which type (Heat's `valid_types`). */
const VALID_FOR: Record<ParameterConstraint['kind'], readonly ParameterType[]> = {
  range: ['number'],
  modulo: ['number'],
  length: ['string', 'comma_delimited_list', 'json'],
  allowed_values: ['string', 'number', 'boolean', 'comma_delimited_list'],
  allowed_pattern: ['string'],
  custom_constraint: ['string', 'number', 'boolean', 'comma_delimited_list'],
};
const CLASS_NAMES: Record<ParameterConstraint['kind'], string> = {
  range: 'Range',
  modulo: 'Modulo',
  length: 'Length',
  allowed_values: 'AllowedValues',
  allowed_pattern: 'AllowedPattern',
  custom_constraint: 'CustomConstraint',
};
/** YAML 1.1 booleans, which PyYAML (and so Heat) reads as booleans and YAML 1.2 as strings. */
const YAML11_BOOLEANS: Record<string, boolean> = {
  yes: true,
  no: false,
  on: true,
  off: false,
  y: true,
  n: false,
  true: true,
  false: false,
};

/**
 * Parses and validates the `parameters` section.
 *
 * @example
 * ```ts
 * const params = parseParameterSchemas({ flavor: { type: 'string', default: 'm1.small' } }, version, limits);
 * params['flavor']!.default; // 'm1.small'
 * ```
 */
export function parseParameterSchemas(
  raw: JsonValue | undefined,
  version: TemplateVersion,
  limits: TemplateLimits,
): Record<string, ParameterSchema> {
  if (raw === undefined || raw === null) return {};
  if (!isMapping(raw))
    throw templateError('STOKER_TEMPLATE_INVALID', 'parameters', 'The "parameters" section must be a map of parameter definitions');
  const out: Record<string, ParameterSchema> = {};
  // one budget for the allowed_pattern checks of every default
  const budget = patternBudget(limits.maxPatternSteps);
  for (const [name, definition] of Object.entries(raw)) {
    checkName(name, `parameters`, 'parameter');
    out[name] = parseOne(name, definition, version, limits, budget);
  }
  return out;
}

function parseOne(
  name: string,
  definition: JsonValue,
  version: TemplateVersion,
  limits: TemplateLimits,
  budget: PatternBudget,
): ParameterSchema {
  const path = `parameters.${name}`;
  const fail = (message: string, details: Record<string, JsonValue> = {}): never => {
    throw templateError('STOKER_TEMPLATE_INVALID', path, message, { parameter: name, ...details });
  };
  const shownName = showText(name);
  if (!isMapping(definition)) return fail(`Invalid parameter (${shownName}), expected a mapping`);
  for (const key of Object.keys(definition)) {
    if (!version.parameterKeys.includes(key)) {
      const hint = key === 'tags' ? ' (parameter tags need heat_template_version 2018-03-02 or later)' : '';
      fail(`Invalid key '${showText(key)}' for parameter (${shownName})${hint}`);
    }
  }
  const type = definition['type'];
  if (type === undefined || type === null) return fail(`Missing parameter type for parameter: ${shownName}`);
  if (typeof type !== 'string' || !(Object.values(ParameterTypes) as string[]).includes(type)) {
    return fail(`Invalid type (${showValue(type)}); a parameter type is one of ${Object.values(ParameterTypes).join(', ')}`);
  }
  const tags = definition['tags'];
  if (tags !== undefined && tags !== null && !Array.isArray(tags)) fail(`Tags property should be a list for parameter: ${shownName}`);
  const text = (key: string): string | null => {
    const v = definition[key];
    return v === undefined || v === null ? null : pyStr(v);
  };
  const schema: ParameterSchema = {
    name,
    type: type as ParameterType,
    label: text('label'),
    description: text('description'),
    default: definition['default'] === null ? undefined : definition['default'],
    hidden: flag(definition, 'hidden', fail),
    immutable: flag(definition, 'immutable', fail),
    tags: Array.isArray(tags) ? tags.map((t) => pyStr(t)) : null,
    constraints: parseConstraints(definition, name, version, limits, fail),
  };
  for (const c of schema.constraints) {
    if (!VALID_FOR[c.kind].includes(schema.type))
      fail(`Parameter '${shownName}' is invalid: ${CLASS_NAMES[c.kind]} constraint invalid for ${schema.type}`);
  }
  if (schema.default !== undefined) {
    const shown = schema.hidden ? '******' : clipText(pyStr(schema.default));
    const converted = convertParameterValue(schema, schema.default);
    if (!converted.ok) fail(`Parameter '${shownName}' is invalid: Invalid default ${shown} (${converted.message})`);
    else {
      const problem = checkConstraints(schema, converted.value, budget);
      if (problem?.outOfBudget) {
        // the default may be long and is not known to break anything: leave it out
        fail(`Parameter '${shownName}' is invalid: ${problem.message.replace('the value', 'the default')}`, {
          constraint: problem.constraint,
        });
      }
      if (problem !== undefined) {
        fail(`Parameter '${shownName}' is invalid: Invalid default ${shown} (${problem.message})`, { constraint: problem.constraint });
      }
    }
  }
  return schema;
}

function flag(definition: JsonObject, key: string, fail: (m: string) => never): boolean {
  const v = definition[key];
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && Object.hasOwn(YAML11_BOOLEANS, v.toLowerCase())) return YAML11_BOOLEANS[v.toLowerCase()]!;
  return fail(`"${key}" must be a boolean`);
}

function parseConstraints(
  definition: JsonObject,
  name: string,
  version: TemplateVersion,
  limits: TemplateLimits,
  fail: (m: string) => never,
): ParameterConstraint[] {
  const raw = definition['constraints'];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) return fail(`Invalid parameter constraints for parameter ${showText(name)}, expected a list`);
  return raw.map((c, i) => parameterConstraint(c, version, limits, (m) => fail(`constraints[${i}]: ${m}`)));
}
