/**
 * HOT template text (or an already-parsed object) → a statically validated {@link Template}.
 *
 * Checks, with Heat's rules for the template's version: the version itself, the top-level
 * sections, each parameter's schema and default, `parameter_groups`, the `conditions`
 * definitions, every resource's keys and their types, every output, every intrinsic
 * function's arguments and every reference to a resource, parameter, condition or (when the
 * files map is given) file; and dependency cycles that hold whatever the parameters are.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { topologicalOrder, buildDependencyGraph } from './dependency-graph.js';
import { parseExpression, type Expr, type ParseScope } from './expression.js';
import { guardJson } from './json-guard.js';
import { resolveTemplateLimits, type TemplateLimits } from './limits.js';
import { checkName } from './names.js';
import { parseParameterGroups } from './parameter-groups.js';
import { parseParameterSchemas } from './parameter-schema.js';
import { PSEUDO_PARAMETER_NAMES } from './parameter-values.js';
import { parseYamlMapping } from './parse-yaml.js';
import { isMapping, pyStr } from './python-values.js';
import type { OutputDefinition, ResourceDefinition, Template } from './template-model.js';
import { quoteText, showText, templateError } from './template-error.js';
import { templateVersion, type TemplateVersion } from './versions.js';

/**
 * Options of {@link parseTemplate}.
 *
 * @example
 * ```ts
 * parseTemplate(text, { files: request.files, limits: { maxResources: 200 } });
 * ```
 */
export interface ParseTemplateOptions {
  limits?: Partial<TemplateLimits>;
  /** the request's files map; when given, literal `get_file` keys must be in it */
  files?: Readonly<Record<string, string>>;
  /**
   * A function name of another HOT version is data in Heat (a map with that one key); with
   * `strictFunctions` it is an error naming the function and the version.
   */
  strictFunctions?: boolean;
  /** names the document in messages (`template`, or a provider template's file name; shown escaped) */
  label?: string;
}

const typeName = (v: JsonValue | undefined): string =>
  v === null || v === undefined ? 'null' : Array.isArray(v) ? 'list' : typeof v === 'object' ? 'map' : typeof v;
const text = (v: JsonValue | undefined): string | null => (v === undefined || v === null ? null : pyStr(v));

/**
 * Parses and validates a HOT template.
 *
 * @example
 * ```ts
 * const template = parseTemplate('heat_template_version: 2013-05-23\nresources: {}');
 * template.version.date; // '2013-05-23'
 * ```
 */
export function parseTemplate(input: string | JsonObject, options: ParseTemplateOptions = {}): Template {
  const limits = resolveTemplateLimits(options.limits);
  const label = showText(options.label ?? 'template');
  let source: JsonObject;
  let versionSource: string | undefined;
  if (typeof input === 'string') {
    const parsed = parseYamlMapping(input, {
      label,
      invalidCode: 'STOKER_TEMPLATE_INVALID',
      limits,
      notMappingMessage: `The ${label} is not a JSON object or YAML mapping.`,
    });
    source = parsed.value;
    versionSource = parsed.topLevelSource['heat_template_version'];
  } else {
    // a YAML 1.1 loader (PyYAML, js-yaml) turns an unquoted 2013-05-23 into a date: take it back
    const rawVersion: unknown = (input as Record<string, unknown>)['heat_template_version'];
    if (rawVersion instanceof Date && !Number.isNaN(rawVersion.getTime())) {
      input = { ...input, heat_template_version: rawVersion.toISOString().slice(0, 10) };
    }
    guardJson(
      input,
      `The ${label}`,
      { maxDepth: limits.maxDepth, maxBytes: limits.maxTemplateBytes, maxNodes: limits.maxNodes },
      'STOKER_TEMPLATE_INVALID',
    );
    if (!isMapping(input)) throw templateError('STOKER_TEMPLATE_INVALID', '', `The ${label} is not a JSON object or YAML mapping.`);
    source = input;
  }

  if (!Object.hasOwn(source, 'heat_template_version')) {
    const cfn = Object.hasOwn(source, 'AWSTemplateFormatVersion') || Object.hasOwn(source, 'HeatTemplateFormatVersion');
    throw templateError(
      'STOKER_TEMPLATE_INVALID',
      '',
      cfn
        ? 'CloudFormation-format templates are not supported; use a HOT template (heat_template_version)'
        : 'Template format version not found.',
    );
  }
  const rawVersion = source['heat_template_version'];
  const versionText = typeof rawVersion === 'string' ? rawVersion : (versionSource ?? pyStr(rawVersion ?? null));
  const version = templateVersion(versionText);
  for (const key of Object.keys(source)) {
    if (!version.sections.includes(key)) {
      const hint = key === 'conditions' ? ' (conditions need heat_template_version 2016-10-14 or later)' : '';
      throw templateError('STOKER_TEMPLATE_INVALID', '', `The template section is invalid: ${showText(key)}${hint}`, {
        section: key.slice(0, 255),
      });
    }
  }

  const parameters = parseParameterSchemas(source['parameters'], version, limits);
  const parameterGroups = parseParameterGroups(source['parameter_groups'], new Set(Object.keys(parameters)));
  const rawResources = section(source, 'resources', 'resource');
  const rawConditions = section(source, 'conditions', 'condition');
  const rawOutputs = section(source, 'outputs', 'output');
  const resourceCount = Object.keys(rawResources).length;
  if (resourceCount > limits.maxResources) {
    throw templateError(
      'STOKER_TEMPLATE_TOO_LARGE',
      'resources',
      `The template has ${resourceCount} resources, over the limit of ${limits.maxResources}`,
      {
        resources: resourceCount,
        maxResources: limits.maxResources,
      },
    );
  }
  for (const name of Object.keys(rawResources)) checkName(name, 'resources', 'resource');
  for (const name of Object.keys(rawOutputs)) checkName(name, 'outputs', 'output');
  for (const name of Object.keys(rawConditions)) checkName(name, 'conditions', 'condition');

  const scope: ParseScope = {
    version,
    resources: new Set(Object.keys(rawResources)),
    parameters: new Set([...Object.keys(parameters), ...PSEUDO_PARAMETER_NAMES]),
    conditions: new Set(Object.keys(rawConditions)),
    strictFunctions: options.strictFunctions === true,
    ...(options.files !== undefined ? { files: options.files } : {}),
  };

  const conditions: Record<string, Expr> = {};
  for (const [name, raw] of Object.entries(rawConditions)) {
    const expr = parseExpression(raw, `conditions.${name}`, scope, 'condition');
    if (!(expr.kind === 'call' || (expr.kind === 'literal' && typeof expr.value === 'boolean'))) {
      throw templateError(
        'STOKER_TEMPLATE_INVALID',
        `conditions.${name}`,
        `The definition of condition ${quoteText(name)} is invalid: ${showText(JSON.stringify(raw), 200)}`,
      );
    }
    conditions[name] = expr;
  }

  const resources: Record<string, ResourceDefinition> = {};
  for (const [name, raw] of Object.entries(rawResources)) resources[name] = parseResource(name, raw, scope);
  const outputs: Record<string, OutputDefinition> = {};
  const outputScope: ParseScope = { ...scope, checkParameters: false };
  for (const [name, raw] of Object.entries(rawOutputs)) outputs[name] = parseOutput(name, raw, outputScope);

  const template: Template = {
    version,
    versionText,
    description: text(source['description']),
    parameterGroups,
    parameters,
    conditions,
    resources,
    outputs,
    source,
  };
  // cycles that exist whatever the parameters are: report them now
  topologicalOrder(buildDependencyGraph(template, { certainOnly: true, limits }));
  return template;
}

function section(source: JsonObject, key: string, what: string): JsonObject {
  const v = source[key];
  if (v === undefined || v === null) return {};
  if (!isMapping(v))
    throw templateError('STOKER_TEMPLATE_INVALID', key, `"${key}" must contain a map of ${what} maps. Found a [${typeName(v)}] instead`);
  return v;
}

function parseResource(name: string, raw: JsonValue, scope: ParseScope): ResourceDefinition {
  const path = `resources.${name}`;
  const fail = (message: string, at = path): never => {
    throw templateError('STOKER_TEMPLATE_INVALID', at, message, { resource: name });
  };
  const shown = showText(name);
  if (raw === null || (isMapping(raw) && Object.keys(raw).length === 0)) fail('Each resource must contain a type key.');
  if (!isMapping(raw)) return fail(`"resources" must contain a map of resource maps. Found a [${typeName(raw)}] instead`);
  const version: TemplateVersion = scope.version;
  for (const key of Object.keys(raw)) {
    if (!version.resourceKeys.includes(key)) {
      const hint = ['condition', 'external_id'].includes(key) ? ` (it needs heat_template_version 2016-10-14 or later)` : '';
      fail(`${quoteText(key)} is not a valid keyword inside a resource definition${hint}`);
    }
  }
  const type = raw['type'];
  if (type === undefined) fail(`Resource ${shown} is missing "type"`);
  if (typeof type !== 'string') return fail(`Resource ${shown} type must be string`, `${path}.type`);
  if (type === '') fail(`Resource "${shown}" has no type`, `${path}.type`);

  const object = (key: string): Expr | null => {
    if (!Object.hasOwn(raw, key)) return null;
    const expr = parseExpression(raw[key]!, `${path}.${key}`, scope, 'value');
    const ok = expr.kind === 'call' || expr.kind === 'map' || (expr.kind === 'literal' && (isMapping(expr.value) || expr.value === null));
    if (!ok) fail(`Resource ${shown} ${key} type must be object`, `${path}.${key}`);
    return expr;
  };

  const rawDepends = raw['depends_on'];
  let dependsOn: string[] = [];
  if (rawDepends !== undefined && rawDepends !== null) {
    if (typeof rawDepends === 'string') dependsOn = [rawDepends];
    else if (Array.isArray(rawDepends)) {
      if (!rawDepends.every((d) => typeof d === 'string'))
        fail(`Resource ${shown} depends_on must be a list of strings`, `${path}.depends_on`);
      dependsOn = rawDepends as string[];
    } else fail(`Resource ${shown} depends_on type must be list or string`, `${path}.depends_on`);
  }
  for (const dep of dependsOn) {
    if (!scope.resources.has(dep))
      fail(`The specified reference ${quoteText(dep)} (in ${shown}) is incorrect: there is no such resource`, `${path}.depends_on`);
  }

  let deletionPolicy: Expr | null = null;
  if (Object.hasOwn(raw, 'deletion_policy') && raw['deletion_policy'] !== null) {
    deletionPolicy = parseExpression(raw['deletion_policy']!, `${path}.deletion_policy`, scope, 'value');
    if (deletionPolicy.kind === 'literal') {
      const v = deletionPolicy.value;
      if (typeof v !== 'string') fail(`Resource ${shown} deletion_policy type must be string`, `${path}.deletion_policy`);
      const policy = Object.hasOwn(version.deletionPolicies, v as string) ? version.deletionPolicies[v as string] : undefined;
      if (policy === undefined) fail(`Invalid deletion policy ${quoteText(v as string)}`, `${path}.deletion_policy`);
      deletionPolicy = { kind: 'literal', value: policy! };
    } else if (deletionPolicy.kind !== 'call') fail(`Resource ${shown} deletion_policy type must be string`, `${path}.deletion_policy`);
  }

  let condition: Expr | null = null;
  if (Object.hasOwn(raw, 'condition') && raw['condition'] !== null) {
    condition = parseExpression(raw['condition']!, `${path}.condition`, scope, 'condition');
    const v = condition.kind === 'literal' ? condition.value : undefined;
    if (condition.kind !== 'call' && typeof v !== 'boolean' && typeof v !== 'string') {
      fail(`Resource ${shown} condition type must be string_or_boolean`, `${path}.condition`);
    }
    if (typeof v === 'string' && !scope.conditions.has(v)) fail(`Invalid condition ${quoteText(v)}`, `${path}.condition`);
  }

  let externalId: Expr | null = null;
  if (Object.hasOwn(raw, 'external_id') && raw['external_id'] !== null) {
    externalId = parseExpression(raw['external_id']!, `${path}.external_id`, scope, 'value');
    if (externalId.kind !== 'call' && !(externalId.kind === 'literal' && typeof externalId.value === 'string')) {
      fail(`Resource ${shown} external_id type must be string`, `${path}.external_id`);
    }
  }

  const description = raw['description'];
  if (description !== undefined && description !== null && typeof description !== 'string') {
    fail(`Resource ${shown} description type must be string`, `${path}.description`);
  }
  return {
    name,
    type,
    properties: object('properties'),
    metadata: object('metadata'),
    dependsOn,
    deletionPolicy,
    updatePolicy: object('update_policy'),
    description: text(description),
    condition,
    externalId,
  };
}

function parseOutput(name: string, raw: JsonValue, scope: ParseScope): OutputDefinition {
  const path = `outputs.${name}`;
  const fail = (message: string): never => {
    throw templateError('STOKER_TEMPLATE_INVALID', path, message, { output: name });
  };
  if (!isMapping(raw)) return fail(`Output definitions must be a map. Found a ${typeName(raw)} instead`);
  for (const key of Object.keys(raw)) {
    if (!scope.version.outputKeys.includes(key)) {
      fail(
        `${quoteText(key)} is not a valid keyword inside a output definition${key === 'condition' ? ' (it needs heat_template_version 2016-10-14 or later)' : ''}`,
      );
    }
  }
  if (!Object.hasOwn(raw, 'value')) fail('Each output definition must contain a value key.');
  let condition: Expr | null = null;
  if (Object.hasOwn(raw, 'condition') && raw['condition'] !== null) {
    condition = parseExpression(raw['condition']!, `${path}.condition`, scope, 'condition');
    const v = condition.kind === 'literal' ? condition.value : undefined;
    if (typeof v === 'string' && !scope.conditions.has(v)) fail(`Invalid condition ${quoteText(v)}`);
    if (condition.kind !== 'call' && typeof v !== 'boolean' && typeof v !== 'string')
      fail(`The condition of output ${showText(name)} must be a condition name or a boolean`);
  }
  return {
    name,
    value: parseExpression(raw['value']!, `${path}.value`, scope, 'value'),
    description: text(raw['description']),
    condition,
  };
}
