/**
 * Parameter constraints (`length`, `range`, `modulo`, `allowed_values`, `allowed_pattern`,
 * `custom_constraint`) with Heat's definitions and default messages
 * (`heat/engine/constraints.py`). A constraint's `description`, when given, is the whole
 * message, as in Heat. `custom_constraint` is accepted and recorded but not enforced: its
 * checks (a Nova flavor exists, …) need a cloud. `allowed_pattern` runs on the linear-time
 * engine in linear-regex.ts, never on a backtracking one, under a step budget shared by all the
 * checks of one call; a value the budget cannot check is refused without quoting it.
 */
import type { JsonValue } from '../../core/json.js';
import { PatternBudgetError, PatternError, compilePattern, type CompiledPattern, type PatternBudget } from './linear-regex.js';
import type { TemplateLimits } from './limits.js';
import { boolFromString, strToNum } from './parameter-conversion.js';
import type { ParameterSchema } from './parameter-schema.js';
import { isMapping, pyContains, pyEquals, pyNumber, pyStr } from './python-values.js';
import { clipText, showText } from './template-error.js';
import type { TemplateVersion } from './versions.js';

/**
 * One constraint of a parameter.
 *
 * @example
 * ```ts
 * const c: ParameterConstraint = { kind: 'range', description: null, min: 1, max: 10 };
 * ```
 */
export type ParameterConstraint =
  | { kind: 'range' | 'length'; description: string | null; min: number | null; max: number | null }
  | { kind: 'modulo'; description: string | null; step: number; offset: number }
  | { kind: 'allowed_values'; description: string | null; values: JsonValue[] }
  | { kind: 'allowed_pattern'; description: string | null; pattern: string; compiled: CompiledPattern }
  | { kind: 'custom_constraint'; description: string | null; name: string };

const KEYS = ['description', 'length', 'range', 'modulo', 'allowed_values', 'allowed_pattern', 'custom_constraint'];

/**
 * Parses one entry of a parameter's `constraints` list; `fail` raises with the message.
 *
 * @example
 * ```ts
 * parameterConstraint({ length: { min: 6 }, description: 'too short' }, version, limits, fail);
 * ```
 */
export function parameterConstraint(
  raw: JsonValue,
  version: TemplateVersion,
  limits: TemplateLimits,
  fail: (m: string) => never,
): ParameterConstraint {
  if (!isMapping(raw)) return fail('Invalid parameter constraints, expected a mapping');
  for (const key of Object.keys(raw)) if (!KEYS.includes(key)) fail(`Invalid key '${showText(key)}' for parameter constraints`);
  const description = raw['description'] === undefined || raw['description'] === null ? null : pyStr(raw['description']);
  const bounds = (kind: string, keys: [string, string]): [number | null, number | null] => {
    const def = raw[kind]!;
    if (!isMapping(def)) return fail(`Invalid ${kind} constraint, expected a mapping`);
    for (const key of Object.keys(def)) if (!keys.includes(key)) fail(`Invalid key '${showText(key)}' for ${kind} constraint`);
    return keys.map((key) => {
      const v = def[key];
      if (v === undefined || v === null) return null;
      const n = strToNum(v);
      if (n === undefined) fail(`${keys.join('/')} must be numeric`);
      return n!;
    }) as [number | null, number | null];
  };
  if (version.constraintTypes.includes('modulo') && 'modulo' in raw) {
    const [step, offset] = bounds('modulo', ['step', 'offset']);
    if (step === null || offset === null) fail('A modulo constraint must have a step value and an offset value specified.');
    if (!Number.isInteger(step) || !Number.isInteger(offset)) fail('step/offset must be integer');
    if (step === 0) fail('step cannot be 0.');
    if (Math.abs(offset!) >= Math.abs(step!)) fail('offset must be smaller (by absolute value) than step.');
    if (step! * offset! < 0) fail('step and offset must be both positive or both negative.');
    return { kind: 'modulo', description, step: step!, offset: offset! };
  }
  for (const kind of ['range', 'length'] as const) {
    if (!(kind in raw)) continue;
    const [min, max] = bounds(kind, ['min', 'max']);
    if (min === null && max === null) fail(`A ${kind} constraint must have a min value and/or a max value specified.`);
    if (kind === 'length' && [min, max].some((v) => v !== null && !Number.isInteger(v))) fail('min/max length must be integral');
    return { kind, description, min, max };
  }
  if ('allowed_values' in raw) {
    const values = raw['allowed_values'];
    if (!Array.isArray(values)) return fail('AllowedValues must be a list');
    return { kind: 'allowed_values', description, values };
  }
  if ('allowed_pattern' in raw) {
    const pattern = raw['allowed_pattern'];
    if (typeof pattern !== 'string') return fail('AllowedPattern must be a string');
    if (pattern.length > limits.maxPatternLength) fail(`AllowedPattern is longer than ${limits.maxPatternLength} characters`);
    try {
      return { kind: 'allowed_pattern', description, pattern, compiled: compilePattern(pattern) };
    } catch (e) {
      if (e instanceof PatternError) return fail(`Invalid allowed_pattern "${pattern}": ${e.message}`);
      throw e;
    }
  }
  if ('custom_constraint' in raw) return { kind: 'custom_constraint', description, name: pyStr(raw['custom_constraint']!) };
  return fail('No constraint expressed');
}

const show = (n: number | null): string => (n === null ? 'None' : pyNumber(n));

/**
 * The first constraint a value breaks: its index in the `constraints` list and the message (the
 * constraint's description when it has one).
 *
 * @example
 * ```ts
 * const problem: ConstraintProblem = { constraint: 0, message: 'length (2) is out of range (min: 6, max: None)', outOfBudget: false };
 * ```
 */
export interface ConstraintProblem {
  constraint: number;
  message: string;
  /** the allowed_pattern checks ran out of steps before this one could tell */
  outOfBudget: boolean;
}

/**
 * Checks a converted value against the schema's constraints; returns the first failure, or
 * undefined. A hidden parameter's value is shown as `******`. Custom constraints always pass
 * (they need a cloud). `allowed_pattern` checks spend `budget`, shared by the caller's checks;
 * when it runs out the problem says so, naming the constraint but not the value (whatever the
 * constraint's description says, since the value did not break it).
 *
 * @example
 * ```ts
 * checkConstraints(schema, 'abc', patternBudget(limits.maxPatternSteps)); // e.g. { constraint: 0, message: 'Password length …', outOfBudget: false }
 * ```
 */
export function checkConstraints(schema: ParameterSchema, value: JsonValue, budget?: PatternBudget): ConstraintProblem | undefined {
  const shown = schema.hidden ? '******' : clipText(pyStr(value));
  for (const [index, c] of schema.constraints.entries()) {
    let problem: string | undefined;
    try {
      problem = violation(schema, c, value, shown, budget);
    } catch (e) {
      if (!(e instanceof PatternBudgetError)) throw e;
      return {
        constraint: index,
        message: `the value is too long or too complex to check against the allowed_pattern of constraints[${index}]: the pattern checks of one request may take at most ${e.limit} steps`,
        outOfBudget: true,
      };
    }
    if (problem !== undefined) return { constraint: index, message: c.description ?? problem, outOfBudget: false };
  }
  return undefined;
}

function violation(
  schema: ParameterSchema,
  c: ParameterConstraint,
  value: JsonValue,
  shown: string,
  budget: PatternBudget | undefined,
): string | undefined {
  switch (c.kind) {
    case 'range': {
      const n = strToNum(value);
      if (n === undefined) return `${shown} is not a number`;
      if ((c.min !== null && n < c.min) || (c.max !== null && n > c.max))
        return `${shown} is out of range (min: ${show(c.min)}, max: ${show(c.max)})`;
      return undefined;
    }
    case 'length': {
      const len =
        typeof value === 'string'
          ? [...value].length
          : Array.isArray(value)
            ? value.length
            : isMapping(value)
              ? Object.keys(value).length
              : undefined;
      if (len === undefined) return 'the value has no length';
      if ((c.min !== null && len < c.min) || (c.max !== null && len > c.max))
        return `length (${len}) is out of range (min: ${show(c.min)}, max: ${show(c.max)})`;
      return undefined;
    }
    case 'modulo': {
      const n = strToNum(value);
      if (n === undefined) return `${shown} is not a number`;
      // Python's % takes the sign of the divisor
      const remainder = ((n % c.step) + c.step) % c.step;
      return remainder === c.offset || (remainder === 0 && c.offset === 0)
        ? undefined
        : `${shown} is not a multiple of ${c.step} with an offset of ${c.offset}`;
    }
    case 'allowed_values': {
      const allowed = `[${c.values.map((v) => pyStr(v)).join(', ')}]`;
      const message = `"${shown}" is not an allowed value ${allowed}`;
      if (Array.isArray(value)) return value.every((v) => pyContains(v, c.values)) ? undefined : message;
      const typed = c.values.map((v) => asType(schema, v));
      return typed.some((v) => v !== undefined && pyEquals(v, value)) ? undefined : message;
    }
    case 'allowed_pattern':
      if (typeof value !== 'string') return `"${shown}" is not a string`;
      return c.compiled.matchesWhole(value, budget) ? undefined : `"${shown}" does not match pattern "${c.pattern}"`;
    case 'custom_constraint':
      return undefined;
  }
}

/** An allowed value in the parameter's type, as Heat's `to_schema_type` does before comparing. */
function asType(schema: ParameterSchema, v: JsonValue): JsonValue | undefined {
  if (schema.type === 'string') return pyStr(v);
  if (schema.type === 'number') return strToNum(v);
  if (schema.type === 'boolean') return boolFromString(v);
  return v;
}
