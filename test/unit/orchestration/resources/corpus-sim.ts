/**
 * A small stack simulator over the resource plugin API, for the Heat acceptance corpus: it
 * does with the built-in types what a stack engine would (validate every resource first,
 * then create or update them in order, replace when `needsReplacement` says so, delete the
 * ones removed, evaluate outputs with their attributes and references), sequentially and with
 * waits that return at once. Template resources and ResourceGroup members become nested
 * stacks (paths as Heat prints them); other types it does not know (WaitCondition,
 * ResourceChain …) are placeholders whose outputs are never compared.
 */
import type { JsonObject, JsonValue } from '../../../../src/core/json.js';
import {
  MemoryConfigStore,
  checkDeletionPolicy,
  createBuiltinRegistry,
  deterministicUuid,
  needsReplacement,
  referenceId,
  resolveAllAttributes,
  resolveAttribute,
  resourceStatusReason,
  validateProperties,
  type AttributeContext,
  type ResourceType,
  type ResourceTypeRegistry,
} from '../../../../src/orchestration/resources/index.js';
import { facadeOf, groupMembers, nestedStack } from './corpus-nesting.js';
import {
  collectReferences,
  resolveResourceType,
  selectFromAttribute,
  type Environment,
  type ResourceFacadeData,
  type RuntimeContext,
  type TemplateInstance,
} from '../../../../src/orchestration/template/index.js';
import { SECRET } from './helpers.js';

/** One resource as the simulator keeps it. */
export interface SimResource {
  /** a plugin type name, `template:<file>`, `group` or `other` */
  kind: string;
  properties: JsonObject;
  physicalId: string | null;
  data: JsonObject;
  /** resolved attributes (all but show); null for kinds whose attributes are not simulated */
  attributes: JsonObject | null;
  reference: JsonValue;
  /** its outputs can be compared with Heat's */
  exact: boolean;
  failed: boolean;
}

/** What a stack's run gives: its outputs and, when a resource failed, Heat's status reason. */
export interface SimOutcome {
  outputs: Record<string, { value?: JsonValue; error?: string; exact: boolean }>;
  failure: string | null;
}

/** Thrown out of a run when a resource failed (the stack is then *_FAILED). */
class SimFailure extends Error {}

const signal = new AbortController().signal;
const sleep = async (): Promise<void> => {};

/** The simulator; one per corpus case. `stacks` holds every (nested) stack's resources by path. */
export class CorpusSim {
  readonly configs = new MemoryConfigStore();
  readonly registry: ResourceTypeRegistry = createBuiltinRegistry({ secret: SECRET, configs: this.configs });
  readonly stacks = new Map<string, Map<string, SimResource>>();
  private keys = 0;

  /** Validates, then creates or updates the stack `name` to `instance`. Throws validation errors (Heat's 400s). */
  async run(name: string, instance: TemplateInstance, environment: Environment, files: Record<string, string>): Promise<SimOutcome> {
    this.validate('', instance, environment, files, this.stacks.get(name) ?? new Map(), name);
    try {
      return await this.apply(name, '', instance, environment, files, name);
    } catch (e) {
      if (e instanceof SimFailure) return { outputs: {}, failure: e.message };
      throw e;
    }
  }

  /** Validation only (template validate, update preview). */
  check(name: string, instance: TemplateInstance, environment: Environment, files: Record<string, string>): void {
    this.validate('', instance, environment, files, this.stacks.get(name) ?? new Map(), name);
  }

  /** Deletes every simulated resource of a stack and its nested stacks. */
  async delete(name: string): Promise<void> {
    for (const key of [...this.stacks.keys()].filter((k) => k === name || k.startsWith(`${name}/`))) {
      for (const [resourceName, r] of this.stacks.get(key)!) await this.deleteResource(r, resourceName);
      this.stacks.delete(key);
    }
  }

  /** Marks a top-level resource unhealthy (CHECK_FAILED): the next update replaces it. */
  markUnhealthy(stack: string, resource: string): void {
    const r = this.stacks.get(stack)?.get(resource);
    if (r) r.failed = true;
  }

  private plugin(kind: string): ResourceType | undefined {
    return this.registry.find(kind);
  }

  /** Heat's stack validation: every resource (and nested stack) before anything is done. */
  private validate(
    prefix: string,
    instance: TemplateInstance,
    environment: Environment,
    files: Record<string, string>,
    existing: Map<string, SimResource>,
    stackKey: string,
    facade?: ResourceFacadeData,
  ): void {
    const names = new Set(instance.resourceNames);
    const runtime: RuntimeContext = {
      getResource: (n) => existing.get(n)?.reference ?? n,
      getAttr: () => null,
      ...(facade ? { resourceFacade: facade } : {}),
    };
    for (const name of instance.order) {
      const path = `${prefix}resources.${name}`;
      const definition = instance.template.resources[name]!;
      const resolved = resolveResourceType(environment.resourceRegistry, definition.type, { resourceName: name, files });
      const evaluated = instance.evaluateResource(name, runtime);
      const properties = evaluated.properties;
      if (resolved.kind === 'template') {
        const nested = nestedStack(resolved.content, resolved.file, files, properties, environment, name, definition.type);
        const nestedFacade = facadeOf(instance, name, evaluated);
        this.validate(
          `${path}<${resolved.file}>.`,
          nested.instance,
          nested.environment,
          files,
          new Map(),
          `${stackKey}/${name}`,
          nestedFacade,
        );
        continue;
      }
      const type = this.plugin(resolved.type);
      if (type) {
        // a property that reads a resource not created yet is only converted (Heat: _find_deps_any_in_init)
        const expr = definition.properties;
        const unresolved = new Set<string>();
        if (expr?.kind === 'map') {
          for (const [key, value] of expr.entries) {
            const refs = collectReferences(value, { resourceNames: names }).resources;
            if ([...refs].some((r) => !existing.has(r))) unresolved.add(key);
          }
        }
        validateProperties(type, properties, path, { unresolved });
        checkDeletionPolicy(type, instance.resource(name).deletionPolicy, path);
      } else if (resolved.type === 'OS::Heat::ResourceGroup') {
        for (const member of groupMembers(properties)) {
          const memberPath = `${path}<nested_stack>.resources.${member.name}`;
          const memberType = resolveResourceType(environment.resourceRegistry, member.type, { resourceName: member.name, files });
          if (memberType.kind === 'template') {
            const nested = nestedStack(
              memberType.content,
              memberType.file,
              files,
              member.properties,
              environment,
              member.name,
              member.type,
            );
            this.validate(
              `${memberPath}<${memberType.file}>.`,
              nested.instance,
              nested.environment,
              files,
              new Map(),
              `${stackKey}/${name}`,
            );
          } else if (this.plugin(memberType.type)) validateProperties(this.plugin(memberType.type)!, member.properties, memberPath);
        }
      }
    }
  }

  /** Creates or updates every resource in order, deletes those removed, evaluates outputs. */
  private async apply(
    stackKey: string,
    prefix: string,
    instance: TemplateInstance,
    environment: Environment,
    files: Record<string, string>,
    stackName: string,
    facade?: ResourceFacadeData,
  ): Promise<SimOutcome> {
    const previous = this.stacks.get(stackKey) ?? new Map<string, SimResource>();
    const current = new Map<string, SimResource>();
    this.stacks.set(stackKey, current);
    const runtime: RuntimeContext = {
      ...(facade ? { resourceFacade: facade } : {}),
      getResource: (n) => current.get(n)?.reference ?? previous.get(n)?.reference ?? n,
      getAttr: (n, attr, path) => {
        const r = current.get(n);
        if (!r || r.attributes === null) return null;
        if (attr === null) return r.attributes;
        const inner = /^resource\.([^.]+)(?:\.(.+))?$/.exec(attr);
        if (r.kind.startsWith('template:') && inner) {
          // a template resource's `resource.<name>[.<attribute>]`: an attribute of a resource of its nested stack
          const nestedAttr = inner[2] ?? String(path[0]);
          const value = this.stacks.get(`${stackKey}/${n}`)?.get(inner[1]!)?.attributes?.[nestedAttr] ?? null;
          return selectFromAttribute(value, inner[2] ? path : path.slice(1));
        }
        if (r.kind === 'OS::Heat::None') return null;
        if (!Object.hasOwn(r.attributes, attr)) throw new Error(`The Referenced Attribute (${n} ${attr}) is incorrect.`);
        return selectFromAttribute(r.attributes[attr]!, path);
      },
    };
    for (const name of instance.order) {
      const path = `${prefix}resources.${name}`;
      const definition = instance.template.resources[name]!;
      const resolved = resolveResourceType(environment.resourceRegistry, definition.type, { resourceName: name, files });
      const evaluated = instance.evaluateResource(name, runtime);
      const properties = evaluated.properties;
      const old = previous.get(name);
      if (resolved.kind === 'template') {
        const nested = nestedStack(resolved.content, resolved.file, files, properties, environment, name, definition.type);
        const key = `${stackKey}/${name}`;
        const outcome = await this.apply(
          key,
          `${path}<${resolved.file}>.`,
          nested.instance,
          nested.environment,
          files,
          stackName,
          facadeOf(instance, name, evaluated),
        );
        const attributes = Object.fromEntries(Object.entries(outcome.outputs).map(([k, o]) => [k, o.value ?? null]));
        const exact = Object.values(outcome.outputs).every((o) => o.exact);
        // get_resource of a template resource: its nested stack's ARN, or the nested template's OS::stack_id output
        const reference = attributes['OS::stack_id'] ?? `arn:openstack:heat::demo:stacks/${stackName}-${name}/${deterministicUuid(key)}`;
        current.set(name, {
          kind: `template:${resolved.file}`,
          properties,
          physicalId: null,
          data: {},
          attributes,
          reference,
          exact,
          failed: false,
        });
        continue;
      }
      if (resolved.type === 'OS::Heat::ResourceGroup') {
        await this.applyGroup(`${stackKey}/${name}`, `${path}<nested_stack>.`, properties, environment, files, stackName);
        current.set(name, {
          kind: 'group',
          properties,
          physicalId: null,
          data: {},
          attributes: null,
          reference: name,
          exact: false,
          failed: false,
        });
        continue;
      }
      current.set(name, await this.applyResource(resolved.type, name, path, properties, old, stackName));
    }
    for (const [name, r] of previous) if (!current.has(name)) await this.deleteResource(r, name);
    const outputs: SimOutcome['outputs'] = {};
    for (const name of instance.outputNames) {
      const o = instance.evaluateOutput(name, runtime);
      const exact = instance.outputDependencies(name).every((d) => current.get(d)?.exact === true);
      outputs[name] = { ...('error' in o ? { error: o.error } : { value: o.value }), exact };
    }
    return { outputs, failure: null };
  }

  /** A ResourceGroup's members (resource_def with %index% replaced) as a nested stack. */
  private async applyGroup(
    stackKey: string,
    prefix: string,
    properties: JsonObject,
    environment: Environment,
    files: Record<string, string>,
    stackName: string,
  ): Promise<void> {
    const previous = this.stacks.get(stackKey) ?? new Map<string, SimResource>();
    const current = new Map<string, SimResource>();
    this.stacks.set(stackKey, current);
    for (const member of groupMembers(properties)) {
      const path = `${prefix}resources.${member.name}`;
      const resolved = resolveResourceType(environment.resourceRegistry, member.type, { resourceName: member.name, files });
      if (resolved.kind === 'template') {
        const nested = nestedStack(resolved.content, resolved.file, files, member.properties, environment, member.name, member.type);
        await this.apply(`${stackKey}/${member.name}`, `${path}<${resolved.file}>.`, nested.instance, nested.environment, files, stackName);
        current.set(member.name, {
          kind: 'template',
          properties: member.properties,
          physicalId: null,
          data: {},
          attributes: null,
          reference: member.name,
          exact: false,
          failed: false,
        });
      } else
        current.set(
          member.name,
          await this.applyResource(resolved.type, member.name, path, member.properties, previous.get(member.name), stackName),
        );
    }
    for (const [name, r] of previous) if (!current.has(name)) await this.deleteResource(r, name);
  }

  /** One resource of a plugin type: create, update in place, replace, or keep. */
  private async applyResource(
    kind: string,
    name: string,
    path: string,
    raw: JsonObject,
    old: SimResource | undefined,
    stackName: string,
  ): Promise<SimResource> {
    const type = this.plugin(kind);
    if (!type)
      return { kind: 'other', properties: raw, physicalId: null, data: {}, attributes: null, reference: name, exact: false, failed: false };
    const stack = { id: `${stackName}-id`, name: stackName, project: 'demo' };
    const idempotencyKey = `${path}#${++this.keys}`;
    let properties: JsonObject;
    try {
      // validated again at create time, as Heat does: its message has no resource path (the reason adds it)
      properties = validateProperties(type, raw, '');
    } catch (e) {
      throw new SimFailure(resourceStatusReason(e, path));
    }
    const context = {
      stack,
      resourceName: name,
      properties,
      physicalId: null as string | null,
      data: {} as JsonObject,
      idempotencyKey,
      signal,
      sleep,
    };
    try {
      if (old && old.kind === kind) {
        const decision = needsReplacement(type, old.properties, properties, { resourceName: name, failed: old.failed });
        if (decision.action === 'none') return old;
        if (decision.action === 'update') {
          const result = await type.update({
            ...context,
            physicalId: old.physicalId,
            data: old.data,
            previousProperties: old.properties,
            changed: decision.changed,
          });
          if (!('replace' in result)) return this.stored(type, kind, name, { ...context, ...result });
        }
      }
      const result = await type.create(context);
      // create before delete: the old one goes once its replacement exists
      if (old) await this.deleteResource(old, name);
      return this.stored(type, kind, name, { ...context, ...result });
    } catch (e) {
      throw new SimFailure(resourceStatusReason(e, path));
    }
  }

  private async stored(type: ResourceType, kind: string, name: string, ctx: AttributeContext): Promise<SimResource> {
    return {
      kind,
      properties: ctx.properties,
      physicalId: ctx.physicalId,
      data: ctx.data,
      attributes: await resolveAllAttributes(type, ctx),
      reference: referenceId(type, ctx),
      exact: true,
      failed: false,
    };
  }

  private async deleteResource(r: SimResource, name: string): Promise<void> {
    const type = this.plugin(r.kind);
    if (!type) return;
    const stack = { id: 'x', name: 'x', project: 'demo' };
    await type.delete({
      stack,
      resourceName: name,
      properties: r.properties,
      physicalId: r.physicalId,
      data: r.data,
      idempotencyKey: `delete#${++this.keys}`,
      signal,
      sleep,
    });
  }

  /** An attribute of a top-level resource, resolved again (for `attributes` expectations). */
  async attribute(stack: string, resource: string, attribute: string): Promise<JsonValue | undefined> {
    const r = this.stacks.get(stack)?.get(resource);
    const type = r ? this.plugin(r.kind) : undefined;
    if (!r || !type) return undefined;
    const ctx = {
      stack: { id: 'x', name: stack, project: 'demo' },
      resourceName: resource,
      properties: r.properties,
      physicalId: r.physicalId,
      data: r.data,
      signal,
      sleep,
    };
    return resolveAttribute(type, attribute, ctx);
  }
}
