/**
 * An environment's `resource_registry`, with Heat's semantics (`heat/engine/environment.py`):
 *
 * - `"OS::Foo": "OS::Bar"` maps a type to another (aliases chain);
 * - `"OS::Net::*": "OS::Neutron::*"` maps by prefix (a glob key);
 * - `"My::Type": file.yaml` (or `.template`) makes a template resource whose text comes from the
 *   request's files map, never from a URL or the server's disk (docs/security.md S7, S8);
 * - `resources: {name: {…}}` overrides types for one resource, sets breakpoint `hooks` and
 *   `restricted_actions`, and nests (`resources: {parent: {child: {hooks: …}}}` reaches into a
 *   nested stack); patterns in those names are `fnmatch` globs;
 * - a `null` value removes an entry when environments are merged.
 */
import type { JsonValue } from '../../core/json.js';
import { globMatch } from './glob-match.js';
import { isMapping } from './python-values.js';
import { quoteText, showText, showValue, templateError } from './template-error.js';

/**
 * Breakpoint hook types.
 *
 * @example
 * ```ts
 * HookTypes.includes('pre-create'); // true
 * ```
 */
export const HookTypes = ['pre-create', 'pre-update', 'pre-delete', 'post-create', 'post-update', 'post-delete'] as const;
export type HookType = (typeof HookTypes)[number];
/**
 * Actions `restricted_actions` can forbid.
 *
 * @example
 * ```ts
 * restrictedActions(registry, 'db').includes('replace');
 * ```
 */
export const RestrictedActions = ['update', 'replace'] as const;
export type RestrictedAction = (typeof RestrictedActions)[number];

/**
 * Overrides for resources whose name matches a pattern.
 *
 * @example
 * ```ts
 * registry.resources['foo_*']?.hooks; // ['pre-create']
 * ```
 */
export interface ResourceOverrides {
  /** type mappings for this resource only; null removes on merge */
  types: Record<string, string | null>;
  hooks: HookType[] | null;
  restrictedActions: RestrictedAction[] | null;
  /** overrides for resources of the nested stack this resource creates */
  nested: Record<string, ResourceOverrides | null>;
}

/**
 * A parsed registry. Null values are removals, applied by {@link mergeRegistries}.
 *
 * @example
 * ```ts
 * registry.types['My::Server']; // 'server.yaml'
 * ```
 */
export interface ResourceRegistry {
  types: Record<string, string | null>;
  resources: Record<string, ResourceOverrides | null>;
}

/**
 * Where a resource type leads after the registry: a plugin type, or a template resource.
 *
 * @example
 * ```ts
 * const r = resolveResourceType(env.resourceRegistry, 'My::Server', { files });
 * if (r.kind === 'template') parseTemplate(r.content, { label: r.file });
 * ```
 */
export type ResolvedType =
  { kind: 'plugin'; type: string; chain: string[] } | { kind: 'template'; file: string; content: string; chain: string[] };

const isTemplateName = (s: string): boolean => s.endsWith('.yaml') || s.endsWith('.template');
/** The overrides for exactly `name` (own keys only: a resource may be called `toString`). */
const ownOverrides = (registry: ResourceRegistry, name: string): ResourceOverrides | null | undefined =>
  Object.hasOwn(registry.resources, name) ? registry.resources[name] : undefined;

/**
 * An empty registry.
 *
 * @example
 * ```ts
 * emptyRegistry(); // { types: {}, resources: {} }
 * ```
 */
export function emptyRegistry(): ResourceRegistry {
  return { types: {}, resources: {} };
}

/**
 * Parses a `resource_registry` section.
 *
 * @example
 * ```ts
 * parseRegistry({ 'My::Type': 'my.yaml', resources: { web: { hooks: 'pre-create' } } }, 'resource_registry');
 * ```
 */
export function parseRegistry(raw: JsonValue, path: string): ResourceRegistry {
  if (!isMapping(raw)) throw templateError('STOKER_ENVIRONMENT_INVALID', path, 'The resource_registry must be a map');
  const out = emptyRegistry();
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'resources') {
      if (value === null) continue;
      if (!isMapping(value))
        throw templateError('STOKER_ENVIRONMENT_INVALID', `${path}.resources`, 'resources must map resource names to overrides');
      for (const [name, o] of Object.entries(value))
        out.resources[name] = o === null ? null : parseOverrides(o, `${path}.resources.${name}`);
    } else out.types[key] = typeValue(value, `${path}.${key}`);
  }
  return out;
}

function typeValue(value: JsonValue, path: string): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || value === '') {
    throw templateError(
      'STOKER_ENVIRONMENT_INVALID',
      path,
      'A registry entry maps a type to a resource type name or a template file name (or null to remove it)',
    );
  }
  return value;
}

function parseOverrides(raw: JsonValue, path: string): ResourceOverrides {
  if (!isMapping(raw)) throw templateError('STOKER_ENVIRONMENT_INVALID', path, 'Resource overrides must be a map');
  const out: ResourceOverrides = { types: {}, hooks: null, restrictedActions: null, nested: {} };
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'hooks') out.hooks = listOf(value, HookTypes, `${path}.hooks`, 'hook type', 'resource breakpoint');
    else if (key === 'restricted_actions')
      out.restrictedActions = listOf(value, RestrictedActions, `${path}.restricted_actions`, 'restricted_action type', 'resource');
    else if (isMapping(value)) out.nested[key] = parseOverrides(value, `${path}.${key}`);
    else out.types[key] = typeValue(value, `${path}.${key}`);
  }
  return out;
}

function listOf<T extends string>(value: JsonValue, allowed: readonly T[], path: string, what: string, owner: string): T[] | null {
  if (value === null) return null;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string' && (allowed as readonly string[]).includes(v))) {
    throw templateError(
      'STOKER_ENVIRONMENT_INVALID',
      path,
      `Invalid ${what} "${showValue(value)}" for ${owner}, acceptable ${what}s are: ${allowed.join(', ')}`,
    );
  }
  return list as T[];
}

/**
 * Applies `next` over `base`, path by path: later entries win, a null removes (a null glob key
 * such as `"OS::*": null` removes every entry it matches).
 *
 * @example
 * ```ts
 * mergeRegistries(env1.resourceRegistry, env2.resourceRegistry);
 * ```
 */
export function mergeRegistries(base: ResourceRegistry, next: ResourceRegistry): ResourceRegistry {
  return { types: mergeTypes(base.types, next.types), resources: mergeResources(base.resources, next.resources) };
}

function mergeTypes(base: Record<string, string | null>, next: Record<string, string | null>): Record<string, string | null> {
  const out = { ...base };
  for (const [key, value] of Object.entries(next)) {
    if (value !== null) out[key] = value;
    else if (key.endsWith('*')) {
      for (const k of Object.keys(out)) if (k.startsWith(key.slice(0, -1))) delete out[k];
    } else delete out[key];
  }
  return out;
}

function mergeResources(
  base: Record<string, ResourceOverrides | null>,
  next: Record<string, ResourceOverrides | null>,
): Record<string, ResourceOverrides | null> {
  const out = { ...base };
  for (const [name, o] of Object.entries(next)) {
    const prev = out[name];
    if (o === null) delete out[name];
    else if (!prev) out[name] = o;
    else {
      out[name] = {
        types: mergeTypes(prev.types, o.types),
        hooks: o.hooks ?? prev.hooks,
        restrictedActions: o.restrictedActions ?? prev.restrictedActions,
        nested: mergeResources(prev.nested, o.nested),
      };
    }
  }
  return out;
}

/**
 * Resolves a resource type through the registry, as Heat's `get_resource_info`: a per-resource
 * override first, then the top-level entries in the order Heat sorts them (by key, so a glob
 * key such as `OS::*` sorts before `OS::Foo`), following aliases until a plugin type or a
 * template file. A loop of aliases is an error.
 *
 * @example
 * ```ts
 * resolveResourceType(registry, 'My::Server', { resourceName: 'web', files }); // { kind: 'template', file: 'server.yaml', … }
 * ```
 */
export function resolveResourceType(
  registry: ResourceRegistry,
  type: string,
  options: { resourceName?: string; files?: Readonly<Record<string, string>> } = {},
): ResolvedType {
  const chain: string[] = [];
  const where = options.resourceName === undefined ? 'resource_registry' : `resources.${options.resourceName}.type`;
  let current = type;
  for (;;) {
    if (chain.includes(current)) {
      throw templateError(
        'STOKER_ENVIRONMENT_INVALID',
        where,
        `The resource_registry maps ${quoteText(current)} to itself: ${[...chain, current].map((t) => showText(t)).join(' → ')}`,
      );
    }
    chain.push(current);
    if (isTemplateName(current)) return template(current);
    const next = lookup(current);
    if (next === undefined) return { kind: 'plugin', type: current, chain };
    if (isTemplateName(next)) {
      chain.push(next);
      return template(next);
    }
    current = next;
  }

  function lookup(t: string): string | undefined {
    const overrides = options.resourceName === undefined ? undefined : ownOverrides(registry, options.resourceName);
    const own = overrides && Object.hasOwn(overrides.types, t) ? overrides.types[t] : undefined;
    if (typeof own === 'string') return own;
    const keys = Object.keys(registry.types)
      .filter(
        (k) => registry.types[k] !== null && (k === t || (k.endsWith('*') && t.startsWith(k.slice(0, -1)) && registry.types[k] !== t)),
      )
      .sort();
    const key = keys[0];
    if (key === undefined) return undefined;
    const value = registry.types[key]!;
    if (key === t || !value.endsWith('*')) return value;
    return value.slice(0, -1) + t.slice(key.length - 1);
  }

  function template(file: string): ResolvedType {
    const files = options.files ?? {};
    if (!Object.hasOwn(files, file)) {
      throw templateError(
        'STOKER_TEMPLATE_INVALID',
        where,
        `Could not fetch the template ${quoteText(file)} for type ${quoteText(type)}: it is not in the files map (Stoker never fetches templates by URL or from disk)`,
        { file },
      );
    }
    return { kind: 'template', file, content: files[file]!, chain };
  }
}

/**
 * The hooks set for a resource (every pattern that matches its name).
 *
 * @example
 * ```ts
 * resourceHooks(registry, 'foo_step2'); // ['pre-create']
 * ```
 */
export function resourceHooks(registry: ResourceRegistry, resourceName: string): HookType[] {
  const out = new Set<HookType>();
  for (const [pattern, o] of Object.entries(registry.resources))
    if (o && globMatch(pattern, resourceName)) for (const h of o.hooks ?? []) out.add(h);
  return [...out];
}

/**
 * The restricted actions set for a resource (every pattern that matches its name).
 *
 * @example
 * ```ts
 * restrictedActions(registry, 'bar'); // ['update', 'replace']
 * ```
 */
export function restrictedActions(registry: ResourceRegistry, resourceName: string): RestrictedAction[] {
  const out = new Set<RestrictedAction>();
  for (const [pattern, o] of Object.entries(registry.resources)) {
    if (o && globMatch(pattern, resourceName)) for (const a of o.restrictedActions ?? []) out.add(a);
  }
  return [...out];
}

/**
 * The registry a nested stack created by `resourceName` sees (Heat's `get_child_environment`):
 * the parent's type mappings without the one that made this template resource (so a
 * template implementing `OS::Heat::RandomString` can use the real one), and as `resources`
 * the nested overrides of every pattern matching `resourceName`.
 *
 * @example
 * ```ts
 * childRegistry(env.resourceRegistry, { resourceName: 'nres', removeType: 'OS::Heat::RandomString' });
 * ```
 */
export function childRegistry(registry: ResourceRegistry, options: { resourceName?: string; removeType?: string } = {}): ResourceRegistry {
  const types = { ...registry.types };
  if (options.removeType !== undefined && Object.hasOwn(types, options.removeType) && isTemplateName(types[options.removeType] ?? ''))
    delete types[options.removeType];
  const resources: Record<string, ResourceOverrides | null> = {};
  if (options.resourceName !== undefined) {
    const name = options.resourceName;
    const matching = Object.entries(registry.resources).filter(([p, o]) => o && p !== name && globMatch(p, name));
    const exact = ownOverrides(registry, name);
    for (const [, o] of exact ? [...matching, [name, exact] as const] : matching) Object.assign(resources, o!.nested);
  }
  return { types, resources };
}
