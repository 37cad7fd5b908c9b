/**
 * `stoker orchestration template validate` and `stoker orchestration resource type list|show`:
 * the orchestration commands that need no stack store, with the `openstack orchestration …`
 * client's arguments and output (openstack-output.ts).
 *
 * `template validate` does on this machine what `openstack orchestration template validate`
 * asks Heat to do: it reads the template and the files it names (as python-heatclient builds the
 * request's files map), parses the template and the environments, merges the environments in
 * order, checks the nested templates and that every resource type exists, binds the parameters
 * when each has a value, and prints Heat's answer: `Description`, `Parameters` (Heat's
 * `format_validate_parameter`), `ParameterGroups`, `NestedParameters` with `--show-nested`, and
 * `Environment`. An error names the file, the line when it can be found, and the field.
 *
 * Reading files, kept simple and safe (docs/security.md S7, S8): a `get_file` argument, a
 * resource `type` (anywhere, ResourceGroup definitions included) ending in `.yaml` or
 * `.template`, and a `resource_registry` value ending so are files, named relative to the file
 * that names them, as heatclient resolves them. Nothing outside the top-level template's
 * directory is read (outside an environment's directory, for the files an environment names),
 * symbolic links included; no URL is fetched, no absolute path or `\` is accepted, and the
 * files' number and sizes are bounded. Unlike heatclient, which rewrites every reference into a
 * `file://` URL, the names stay as written: they are the keys of the files map, so one name
 * must mean one file in the whole tree.
 */
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import type { JsonObject, JsonValue } from '../../core/json.js';
import { MemoryConfigStore, createBuiltinRegistry, type ResourceTypeRegistry } from '../../orchestration/resources/index.js';
import {
  HIDDEN_VALUE,
  PatternError,
  checkNestedTemplates,
  childRegistry,
  compilePattern,
  instantiateTemplate,
  mergeEnvironments,
  parseEnvironment,
  parseTemplate,
  parseYamlMapping,
  resolveParameters,
  resolveResourceType,
  type Environment,
  type ParameterSchema,
  type ResourceOverrides,
  type ResourceRegistry,
  type Template,
  type TemplateInstance,
} from '../../orchestration/template/index.js';
import { stackLayerTypes } from '../../orchestration/stacks/stack-types.js';
import { pyTruthy } from '../../orchestration/template/python-values.js';
import { showText, templateError } from '../../orchestration/template/template-error.js';
import type { CliContext } from '../context.js';
import {
  outputOptions,
  printList,
  printShow,
  withListOutputOptions,
  withShowOutputOptions,
  type ListFormat,
  type OutputFlags,
  type ShowFormat,
} from '../openstack-output.js';
import { usageError } from '../options.js';
import { FileCollector, LIMITS, TEMPLATE_FILE, showChain, readTopFile, within, yamlOptions } from '../template-request.js';

interface ValidateOptions extends OutputFlags {
  template: string;
  environment?: string[];
  parameter?: string[];
  showNested?: boolean;
  format: ShowFormat;
}

interface TypeListOptions extends OutputFlags {
  filter?: string[];
  long?: boolean;
  format: ListFormat;
}

interface TypeShowOptions extends OutputFlags {
  format: ShowFormat;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/**
 * Registers the `orchestration` group.
 *
 * @example
 * ```ts
 * registerOrchestrationCommand(program, ctx); // stoker orchestration template validate -t web.yaml
 * ```
 */
export function registerOrchestrationCommand(program: Command, ctx: CliContext): void {
  const group = program
    .command('orchestration')
    .summary('validate Heat templates, list and show resource types')
    .description(
      'Heat-compatible orchestration commands that need no database, with the arguments and output formats of ' +
        '`openstack orchestration …`.',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ stoker orchestration template validate -t web.yaml -e prod-env.yaml\n  $ stoker orchestration resource type list',
    );

  const template = group.command('template').description('Check templates before creating stacks from them.');
  const validate = template
    .command('validate')
    .description(
      'Validate a template with its environments and print what Heat returns: the description, the parameters ' +
        '(type, description, default, label, NoEcho, constraints), the parameter groups and the merged environment. ' +
        'Files named by get_file and template resources are read next to the template, never outside its directory.',
    )
    .requiredOption('-t, --template <file>', 'the template (HOT, YAML or JSON)')
    .option('-e, --environment <file>', 'an environment; repeat to merge several, later ones winning', collect)
    .option('--parameter <key=value>', 'a parameter value; repeat for several', collect)
    .option('--show-nested', 'also show the parameters of the nested templates (NestedParameters)');
  withShowOutputOptions(validate, 'yaml').addHelpText(
    'after',
    `
Exit codes: 0 when the template is valid, 2 when it is not (the error names the file, line
and field), 1 for other failures. A parameter without a value is allowed, as in Heat; then
the checks that need its value (constraints, conditions, the order of resources) are left
out, with a note on stderr.

Examples:
  $ stoker orchestration template validate -t web.yaml
  $ stoker orchestration template validate -t web.yaml -e env.yaml --parameter flavor=m1.small -f json
  $ stoker orchestration template validate -t web.yaml --show-nested -c Parameters`,
  );
  validate.action((o: ValidateOptions) => {
    const result = validateTemplate(o, ctx);
    printShow(result, o.format, { ...outputOptions(o), out: ctx.out });
  });

  const resource = group.command('resource').description('Resource types.');
  const type = resource.command('type').description('The resource types this Stoker knows.');
  const list = type
    .command('list')
    .description('List the resource types, sorted by name.')
    .option(
      '--filter <key=value>',
      'only the types that match: name=REGEX (a Python regular expression matched at the start of the name, as Heat ' +
        'does), version=V or support_status=STATUS; repeat for several',
      collect,
    )
    .option('--long', 'also show each type’s description');
  withListOutputOptions(list, 'table').addHelpText(
    'after',
    '\nExamples:\n  $ stoker orchestration resource type list --filter name=OS::Heat::Random\n  $ stoker orchestration resource type list -f value',
  );
  list.action((o: TypeListOptions) => {
    const types = typeRegistry();
    const filters = parseFilters(o.filter ?? []);
    const rows = types
      .list()
      .filter((t) => matchesFilters(types, t.resource_type, filters))
      .map((t) => (o.long ? [t.resource_type, t.description] : [t.resource_type]));
    printList(o.long ? ['Resource Type', 'Description'] : ['Resource Type'], rows, o.format, { ...outputOptions(o), out: ctx.out });
  });

  const show = type
    .command('show')
    .description('Show a resource type: its properties, attributes and support status, as Heat returns them.')
    .argument('<type>', 'the resource type, e.g. OS::Heat::RandomString');
  withShowOutputOptions(show, 'yaml').addHelpText(
    'after',
    '\nExamples:\n  $ stoker orchestration resource type show OS::Heat::RandomString\n  $ stoker orchestration resource type show OS::Heat::Value -f json -c attributes',
  );
  show.action((name: string, o: TypeShowOptions) => {
    const schema = typeRegistry().show(name);
    printShow({ ...schema }, o.format, { ...outputOptions(o), out: ctx.out });
  });
}

// ------------------------------------------------------------------ resource types

/** The built-in types. Their secret only derives RandomString values at create time, which these commands never do. */
function typeRegistry(): ResourceTypeRegistry {
  const registry = createBuiltinRegistry({ secret: randomBytes(32), configs: new MemoryConfigStore() });
  // the types the stack layer runs itself (nested stacks, wait conditions)
  for (const { type } of Object.values(stackLayerTypes)) registry.register(type);
  return registry;
}

const SUPPORT_STATUSES = ['UNKNOWN', 'SUPPORTED', 'DEPRECATED', 'UNSUPPORTED', 'HIDDEN'];

interface TypeFilters {
  name?: ReturnType<typeof compilePattern>;
  version?: string;
  supportStatus?: string;
}

/** `--filter key=value` as heatclient passes them to Heat's `list_resource_types`. */
function parseFilters(values: readonly string[]): TypeFilters {
  const out: TypeFilters = {};
  for (const [key, value] of keyValues(values, '--filter')) {
    if (typeof value !== 'string') throw usageError(`--filter ${key} is given more than once`);
    if (key === 'name') {
      try {
        compilePattern(value);
        // Heat's re.match: the pattern matched at the start of the name, whatever follows
        out.name = compilePattern(`(?:${value}).*`);
      } catch (e) {
        if (e instanceof PatternError)
          throw usageError(`--filter name=${showText(value)}: not a regular expression Stoker supports: ${e.message}`);
        throw e;
      }
    } else if (key === 'version') out.version = value;
    else if (key === 'support_status') {
      if (!SUPPORT_STATUSES.includes(value))
        throw usageError(`--filter support_status=${showText(value)}: the status is one of ${SUPPORT_STATUSES.join(', ')}`);
      out.supportStatus = value;
    } else throw usageError(`--filter ${showText(key)}: filter by name, version or support_status`);
  }
  return out;
}

function matchesFilters(types: ResourceTypeRegistry, name: string, filters: TypeFilters): boolean {
  if (filters.name && !filters.name.matchesWhole(name)) return false;
  if (filters.version === undefined && filters.supportStatus === undefined) return true;
  const status = types.show(name).support_status;
  if (filters.version !== undefined && status['version'] !== filters.version) return false;
  return filters.supportStatus === undefined || status['status'] === filters.supportStatus;
}

/** `key=value` arguments (heatclient's `format_parameters`): a key given twice collects a list. */
function keyValues(values: readonly string[], flag: string): Map<string, string | string[]> {
  const out = new Map<string, string | string[]>();
  for (const text of values) {
    const at = text.indexOf('=');
    if (at <= 0) throw usageError(`${flag} ${JSON.stringify(text)}: malformed, use the key=value format`);
    const key = text.slice(0, at);
    const value = text.slice(at + 1);
    const previous = out.get(key);
    out.set(key, previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value]);
  }
  return out;
}

// ------------------------------------------------------------------ template validate

/** The validate result, in the order Heat returns it. */
function validateTemplate(o: ValidateOptions, ctx: CliContext): Record<string, JsonValue> {
  const top = readTopFile(o.template, 'template');
  const files = new FileCollector();
  const topSource = within(top, files, () => parseYamlMapping(top.text, yamlOptions(top.label, 'STOKER_TEMPLATE_INVALID')).value);
  within(top, files, () => files.scan(topSource, top, dirname(top.path), top.label));
  const template = within(top, files, () => parseTemplate(top.text, { files: files.map, label: top.label }));

  const parameterTypes = Object.fromEntries(Object.entries(template.parameters).map(([name, s]) => [name, s.type]));
  const environments: Environment[] = [];
  for (const path of o.environment ?? []) {
    const env = readTopFile(path, 'environment');
    const raw = within(env, files, () => parseYamlMapping(env.text, yamlOptions(env.label, 'STOKER_ENVIRONMENT_INVALID')).value);
    within(env, files, () => files.scanRegistry(raw['resource_registry'], env));
    const parsed = within(env, files, () => parseEnvironment(env.text, { label: env.label }));
    for (const warning of parsed.warnings) ctx.note(warning);
    environments.push(parsed.environment);
  }
  const cli = cliParameters(o.parameter ?? []);
  const merged = within(undefined, files, () => {
    const env = mergeEnvironments(environments, { parameterTypes });
    // Heat's API puts the request's parameters into the environment's
    return { ...env, parameters: { ...env.parameters, ...cli } };
  });

  const nested = within(top, files, () =>
    checkNestedTemplates(template, { files: files.map, registry: merged.resourceRegistry, label: top.label }),
  );
  const tree = within(top, files, () => resourceTree(template, merged.resourceRegistry, files.map, nested.templates, [top.label]));
  const types = typeRegistry();
  within(top, files, () => checkTypes(tree, types));

  const instance = within(top, files, () => bind(template, merged, cli, files.map, ctx));

  const result: Record<string, JsonValue> = {
    Description: template.description ?? 'No description',
    Parameters: validateParameters(template, merged),
  };
  const groups = template.source['parameter_groups'];
  if (Array.isArray(groups) && groups.length > 0) result['ParameterGroups'] = groups;
  if (o.showNested) {
    const nestedParameters = nestedParametersOf(tree, instance);
    if (Object.keys(nestedParameters).length > 0) result['NestedParameters'] = nestedParameters;
  }
  result['Environment'] = environmentJson(merged, template.parameters);
  // Heat's environment also maps every template file used directly as a type to itself
  const registry = result['Environment'] as { resource_registry: JsonObject };
  for (const definition of Object.values(template.resources)) {
    if (
      TEMPLATE_FILE.test(definition.type) &&
      Object.hasOwn(files.map, definition.type) &&
      !Object.hasOwn(registry.resource_registry, definition.type)
    ) {
      registry.resource_registry[definition.type] = definition.type;
    }
  }
  return result;
}

/** `--parameter key=value` values, as strings (the parameter's type converts them). */
function cliParameters(values: readonly string[]): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of keyValues(values, '--parameter'))
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * Binds the parameters, which checks their values against their constraints, evaluates the
 * conditions and orders the resources. Heat validates a template whose parameters have no
 * value yet; so does this, leaving out what needs the values (and saying so).
 */
function bind(
  template: Template,
  environment: Environment,
  cli: Record<string, JsonValue>,
  files: Readonly<Record<string, string>>,
  ctx: CliContext,
): TemplateInstance | undefined {
  const given = (bag: Readonly<Record<string, JsonValue>>, name: string): boolean =>
    Object.hasOwn(bag, name) && bag[name] !== null && bag[name] !== undefined;
  const unknown = Object.keys(environment.parameters).filter((name) => !Object.hasOwn(template.parameters, name));
  // resolveParameters checks unknown names first: with no schemas it reports them and nothing else
  if (unknown.length > 0)
    resolveParameters({ parameters: {} }, { parameters: Object.fromEntries(unknown.map((n) => [n, environment.parameters[n]!])) });
  const missing = Object.values(template.parameters)
    .filter((s) => !given(environment.parameters, s.name) && !given(environment.parameterDefaults, s.name) && s.default === undefined)
    .map((s) => s.name);
  if (missing.length > 0) {
    ctx.note(
      `no value for ${missing.map((n) => showText(n)).join(', ')}: the constraints, conditions and resource order that ` +
        'depend on them were not checked (give values with --parameter or an environment)',
    );
    return undefined;
  }
  return instantiateTemplate(template, { parameters: cli, environment, files, pseudo: { stackName: 'dummy' } });
}

const API_TYPES: Record<ParameterSchema['type'], string> = {
  string: 'String',
  number: 'Number',
  comma_delimited_list: 'CommaDelimitedList',
  json: 'Json',
  boolean: 'Boolean',
};

/**
 * One parameter as Heat's `format_validate_parameter` shapes it. A hidden parameter's
 * default written in the template is shown, as Heat does (it is the text the caller sent);
 * a default from an environment and a value given are `******` (docs/security.md S9).
 */
function validateParameter(schema: ParameterSchema, value: JsonValue | undefined, userDefault: JsonValue | undefined): JsonObject {
  const out: JsonObject = {
    Type: API_TYPES[schema.type],
    Description: schema.description || '',
    NoEcho: schema.hidden ? 'true' : 'false',
    Label: schema.label || schema.name,
  };
  const shown = (v: JsonValue): JsonValue => (schema.hidden ? HIDDEN_VALUE : v);
  if (userDefault !== undefined && userDefault !== null) out['Default'] = shown(userDefault);
  else if (schema.default !== undefined && schema.default !== null) out['Default'] = schema.default;
  if (value !== undefined && pyTruthy(value)) out['Value'] = shown(value);
  if (schema.tags && schema.tags.length > 0) out['Tags'] = schema.tags;
  const descriptions: string[] = [];
  for (const c of schema.constraints) {
    switch (c.kind) {
      case 'length':
      case 'range': {
        const [min, max] = c.kind === 'length' ? ['MinLength', 'MaxLength'] : ['MinValue', 'MaxValue'];
        if (c.min !== null) out[min] = c.min;
        if (c.max !== null) out[max] = c.max;
        break;
      }
      case 'modulo':
        out['Step'] = c.step;
        out['Offset'] = c.offset;
        break;
      case 'allowed_values':
        out['AllowedValues'] = c.values;
        break;
      case 'allowed_pattern':
        out['AllowedPattern'] = c.pattern;
        break;
      case 'custom_constraint':
        out['CustomConstraint'] = c.name;
        break;
    }
    if (c.description) descriptions.push(c.description);
  }
  if (descriptions.length > 0) out['ConstraintDescription'] = descriptions.join(' ');
  return out;
}

function validateParameters(template: Template, environment: Environment): JsonObject {
  const out: JsonObject = {};
  for (const [name, schema] of Object.entries(template.parameters)) {
    const own = (bag: Readonly<Record<string, JsonValue>>): JsonValue | undefined => (Object.hasOwn(bag, name) ? bag[name] : undefined);
    out[name] = validateParameter(schema, own(environment.parameters), own(environment.parameterDefaults) ?? undefined);
  }
  return out;
}

/** Heat's `user_env_as_dict`, with hidden parameters' values masked. */
function environmentJson(environment: Environment, schemas: Readonly<Record<string, ParameterSchema>>): JsonObject {
  const masked = (bag: Readonly<Record<string, JsonValue>>): JsonObject =>
    Object.fromEntries(
      Object.entries(bag).map(([name, v]) => [name, Object.hasOwn(schemas, name) && schemas[name]!.hidden ? HIDDEN_VALUE : v]),
    );
  return {
    resource_registry: registryJson(environment.resourceRegistry),
    parameters: masked(environment.parameters),
    parameter_defaults: masked(environment.parameterDefaults),
    event_sinks: environment.eventSinks,
  };
}

/** A registry as the environment section it came from (Heat's `ResourceRegistry.as_dict`). */
function registryJson(registry: ResourceRegistry): JsonObject {
  const overrides = (o: ResourceOverrides): JsonObject => {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(o.types)) if (v !== null) out[k] = v;
    if (o.hooks !== null) out['hooks'] = o.hooks;
    if (o.restrictedActions !== null) out['restricted_actions'] = o.restrictedActions;
    for (const [k, v] of Object.entries(o.nested)) if (v !== null) out[k] = overrides(v);
    return out;
  };
  const resources: JsonObject = {};
  for (const [name, o] of Object.entries(registry.resources)) if (o !== null) resources[name] = overrides(o);
  const out: JsonObject = { resources };
  for (const [k, v] of Object.entries(registry.types)) if (v !== null) out[k] = v;
  return out;
}

// ------------------------------------------------------------------ the tree of stacks

/** A stack the template would create (the top-level one, or a template resource's) and its resources. */
interface StackNode {
  template: Template;
  /** the files from the top-level template down to this one */
  chain: string[];
  resources: {
    name: string;
    /** the type as written */
    type: string;
    /** the plugin type it resolves to, or the nested stack */
    resolved: { kind: 'plugin'; type: string } | { kind: 'template'; file: string; stack: StackNode };
  }[];
}

/**
 * Resolves every resource type of the tree through the registries the stacks see (the walk of
 * checkNestedTemplates, which has already refused cycles and too deep nesting).
 */
function resourceTree(
  template: Template,
  registry: ResourceRegistry,
  files: Readonly<Record<string, string>>,
  templates: ReadonlyMap<string, Template>,
  chain: string[],
): StackNode {
  const node: StackNode = { template, chain, resources: [] };
  if (chain.length > LIMITS.maxNestedDepth + 1) return node;
  for (const [name, resource] of Object.entries(template.resources)) {
    const resolved = resolveResourceType(registry, resource.type, { resourceName: name, files });
    if (resolved.kind === 'plugin') {
      node.resources.push({ name, type: resource.type, resolved: { kind: 'plugin', type: resolved.type } });
      continue;
    }
    const child = templates.get(resolved.file);
    if (child === undefined) continue;
    // the entry that made this a template resource is not passed down (Heat's get_child_environment)
    const made = resolved.chain.length >= 2 ? resolved.chain[resolved.chain.length - 2]! : undefined;
    const own = Object.hasOwn(registry.resources, name) ? registry.resources[name] : undefined;
    const removeType = made !== undefined && !(own && Object.hasOwn(own.types, made)) ? made : undefined;
    const stack = resourceTree(
      child,
      childRegistry(registry, { resourceName: name, ...(removeType !== undefined ? { removeType } : {}) }),
      files,
      templates,
      [...chain, resolved.file],
    );
    node.resources.push({ name, type: resource.type, resolved: { kind: 'template', file: resolved.file, stack } });
  }
  return node;
}

/** Heat refuses a stack with a resource whose type it does not know. */
function checkTypes(node: StackNode, types: ResourceTypeRegistry): void {
  for (const r of node.resources) {
    if (r.resolved.kind === 'template') {
      checkTypes(r.resolved.stack, types);
      continue;
    }
    if (types.find(r.resolved.type) !== undefined) continue;
    const mapped = r.resolved.type === r.type ? '' : ` (the resource_registry maps ${showText(r.type)} to it)`;
    const error = templateError(
      'STOKER_RESOURCE_TYPE_NOT_FOUND',
      `resources.${r.name}`,
      `The Resource Type (${showText(r.resolved.type)}) could not be found.${mapped}`,
      { resource: r.name, resourceType: r.resolved.type.slice(0, 255), ...(node.chain.length > 1 ? { files: node.chain } : {}) },
    );
    if (node.chain.length < 2) throw error;
    throw templateError(error.code, '', `${showChain(node.chain)}: ${error.message}`, { ...error.details });
  }
}

/**
 * Heat's `NestedParameters`: per template resource, its type, the nested template's
 * description and parameters, and the same for the stacks nested in it. The values of the
 * first level's parameters are the resource's properties, when they can be evaluated without
 * the stack's resources (references to them are null, as in Heat before a stack exists).
 */
function nestedParametersOf(node: StackNode, instance: TemplateInstance | undefined): JsonObject {
  const out: JsonObject = {};
  for (const r of node.resources) {
    if (r.resolved.kind !== 'template') continue;
    if (instance && !instance.hasResource(r.name)) continue;
    const nested = r.resolved.stack;
    let properties: JsonObject = {};
    try {
      if (instance) properties = instance.evaluateResource(r.name, { getResource: () => null, getAttr: () => null }).properties;
    } catch {
      properties = {};
    }
    const parameters: JsonObject = {};
    for (const [name, schema] of Object.entries(nested.template.parameters)) {
      parameters[name] = validateParameter(schema, Object.hasOwn(properties, name) ? properties[name] : undefined, undefined);
    }
    const entry: JsonObject = {
      Type: r.type,
      Description: nested.template.description ?? 'No description',
      Parameters: parameters,
    };
    const groups = nested.template.source['parameter_groups'];
    if (Array.isArray(groups) && groups.length > 0) entry['ParameterGroups'] = groups;
    const deeper = nestedParametersOf(nested, undefined);
    if (Object.keys(deeper).length > 0) entry['NestedParameters'] = deeper;
    out[r.name] = entry;
  }
  return out;
}
