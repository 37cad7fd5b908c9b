/**
 * The resource plugin API: what a resource type is (`OS::Heat::TestResource`, …) and what each
 * of its operations receives and returns. The stack engine runs one operation per step of a
 * stack action (one Stoker atom); a type never touches the stack's state itself, it returns
 * what is to be stored (physical id, its own JSON `data`, attribute values).
 *
 * Operations must be idempotent per `idempotencyKey`: an engine killed in the middle of a
 * create executes it again with the same key, and the create must then come back with the
 * same physical id and values, not make a second resource.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import type { AttributeSchema, PropertiesSchema, SupportStatus } from './property-schema.js';

/**
 * The stack a resource belongs to.
 *
 * @example
 * ```ts
 * const stack: StackIdentity = { id: '5d1c…', name: 'web', project: 'demo' };
 * ```
 */
export interface StackIdentity {
  readonly id: string;
  readonly name: string;
  readonly project: string | null;
}

/**
 * What resolving an attribute (or a reference) sees: the resource as stored.
 *
 * @example
 * ```ts
 * const output = await type.attribute('output', { stack, resourceName: 'test1', properties, physicalId, data, signal, sleep });
 * ```
 */
export interface AttributeContext {
  readonly stack: StackIdentity;
  readonly resourceName: string;
  /** the validated properties the resource was last created or updated with (defaults applied) */
  readonly properties: JsonObject;
  /** null before a create stored one (or when the type never sets one) */
  readonly physicalId: string | null;
  /** the type's own data, as the last operation returned it ({} at first) */
  readonly data: JsonObject;
  /** aborted on stack cancel, timeout and engine shutdown */
  readonly signal: AbortSignal;
  /** waits `ms` milliseconds; rejects (with the abort reason) when `signal` aborts */
  sleep(ms: number): Promise<void>;
}

/**
 * What `create`, `delete`, `check`, `suspend` and `resume` receive.
 *
 * @example
 * ```ts
 * const id = physicalResourceName(ctx.stack.name, ctx.resourceName, ctx.idempotencyKey);
 * ```
 */
export interface OperationContext extends AttributeContext {
  /** the same for every execution of one attempt of one step: derive ids and randomness from it */
  readonly idempotencyKey: string;
}

/**
 * What `update` receives: the new validated properties, the previous ones and the names of
 * those that differ (Heat's `prop_diff`; empty when only metadata or policies changed).
 *
 * @example
 * ```ts
 * if (ctx.changed.includes('value')) data = { value: ctx.properties['value'] ?? null };
 * ```
 */
export interface UpdateContext extends OperationContext {
  readonly previousProperties: JsonObject;
  readonly changed: readonly string[];
}

/**
 * What a reference (`get_resource`) is computed from.
 *
 * @example
 * ```ts
 * type.referenceId?.({ resourceName: 'secret', physicalId, data, properties }); // the random string
 * ```
 */
export interface ReferenceContext {
  readonly resourceName: string;
  readonly physicalId: string | null;
  readonly data: JsonObject;
  readonly properties: JsonObject;
}

/**
 * What an operation hands back to be stored.
 *
 * @example
 * ```ts
 * return { physicalId: 'web-test1-abcdefghijkl', data: { value: 'x' } };
 * ```
 */
export interface ResourceResult {
  physicalId: string | null;
  data: JsonObject;
  /** attribute values already known, which the engine may store instead of resolving them */
  attributes?: JsonObject;
  /** keys of `data` holding secrets (Heat's `redact`): store them protected, never show them */
  secretData?: readonly string[];
}

/**
 * The answer of an `update` that cannot be done in place: the engine creates a replacement
 * first, then deletes this resource.
 *
 * @example
 * ```ts
 * async update(ctx) { return ctx.changed.length === 0 ? unchanged(ctx) : REPLACE; }
 * ```
 */
export interface ReplaceRequest {
  readonly replace: true;
}

/**
 * The replacement marker.
 *
 * @example
 * ```ts
 * if (isReplace(await type.update(ctx))) { … create the replacement, then delete this one … }
 * ```
 */
export const REPLACE: ReplaceRequest = Object.freeze({ replace: true as const });

/**
 * True when an update asked for a replacement.
 *
 * @example
 * ```ts
 * isReplace(REPLACE); // true
 * ```
 */
export function isReplace(result: ResourceResult | ReplaceRequest): result is ReplaceRequest {
  return 'replace' in result && result.replace === true;
}

/**
 * What a type's own cross-property check sees besides the properties.
 *
 * @example
 * ```ts
 * validate(props, ctx) { return props.min > ctx.stackTimeoutSecs ? 'too long' : undefined; }
 * ```
 */
export interface ValidationContext {
  /** where the resource is, as Heat prints it: `resources.server` */
  readonly path: string;
  readonly resourceName: string;
  /** the stack's timeout (Heat: timeout_mins × 60, else its `stack_action_timeout`, 3600) */
  readonly stackTimeoutSecs: number;
  /** Heat's `strict_validate`: checks that need the stack (timeouts) run only when true */
  readonly strict: boolean;
}

/**
 * A resource type. Optional operations have Heat's defaults: no `check` means "CHECK not
 * supported" (the engine reports it, the check completes); no `suspend`/`resume` means they
 * do nothing and complete; no `snapshotDelete` means the Snapshot deletion policy is refused.
 *
 * @example
 * ```ts
 * const echo: ResourceType = {
 *   type: 'Example::Echo', description: 'Stores a string.', supportStatus: supported('1.0'),
 *   properties: { text: { type: 'string', updateAllowed: true } },
 *   attributes: { text: { description: 'The text.' } },
 *   async create(ctx) { return { physicalId: deterministicUuid(ctx.idempotencyKey), data: {} }; },
 *   async update(ctx) { return { physicalId: ctx.physicalId, data: ctx.data }; },
 *   async delete() {},
 *   async attribute(name, ctx) { return ctx.properties[name] ?? null; },
 * };
 * ```
 */
export interface ResourceType {
  readonly type: string;
  readonly description: string;
  readonly supportStatus: SupportStatus;
  readonly properties: PropertiesSchema;
  /** the type's own attributes; `show` is every type's and need not be listed */
  readonly attributes: Readonly<Record<string, AttributeSchema>>;
  /**
   * Heat's OS::Heat::None: any properties are accepted and none validated (the resource sees
   * none), an update never updates nor replaces it, and every attribute name resolves to null.
   */
  readonly stub?: boolean;
  /** the schema to validate `raw` with when it depends on the properties themselves (OS::Heat::Value's `type`) */
  propertiesSchema?(raw: JsonObject): PropertiesSchema;
  /** rewrites deprecated properties before validation (Heat's translation rules) */
  translate?(raw: JsonObject): JsonObject;
  /** a check across validated properties: Heat's message, or undefined */
  validate?(properties: JsonObject, context: ValidationContext): string | undefined;
  /** the type's own replacement rule, asked when some properties changed (Heat's `needs_replace_with_prop_diff`) */
  needsReplace?(changed: ReadonlySet<string>, after: JsonObject, before: JsonObject): boolean;
  create(ctx: OperationContext): Promise<ResourceResult>;
  /**
   * True when `create` (and then resolving every attribute) with these validated properties
   * ends at once and changes nothing outside what it returns: no wait, no failure, no object
   * made elsewhere. The engine may then run the create before it takes the resource and
   * record the create's start and end in one write (docs/orchestration.md, "Performance"); if
   * that write finds the resource taken, the result is thrown away and the step goes the
   * usual way. Absent: never.
   */
  createsAtOnce?(properties: JsonObject): boolean;
  update(ctx: UpdateContext): Promise<ResourceResult | ReplaceRequest>;
  /**
   * True when an in-place `update` to these validated properties (and then resolving every
   * attribute) ends at once, never asks for a replace and changes nothing outside what it
   * returns, like {@link createsAtOnce}. The engine may then run the update before it takes
   * the resource and record the update's start and end in one write (docs/orchestration.md,
   * "A converge step"); if that write finds the resource taken or changed, the result is
   * thrown away and the step goes the usual way (running the update again). Absent: never.
   */
  updatesAtOnce?(properties: JsonObject): boolean;
  delete(ctx: OperationContext): Promise<void>;
  /** deletion under the Snapshot policy; its presence is what allows that policy */
  snapshotDelete?(ctx: OperationContext): Promise<void>;
  check?(ctx: OperationContext): Promise<void>;
  suspend?(ctx: OperationContext): Promise<void>;
  resume?(ctx: OperationContext): Promise<void>;
  /** resolves one of `attributes` (never called for `show` nor for unknown names) */
  attribute(name: string, ctx: AttributeContext): Promise<JsonValue>;
  /** the `show` attribute (the underlying object); null when absent, as for Heat's cloud-free types */
  show?(ctx: AttributeContext): Promise<JsonValue>;
  /** what `get_resource` gives; default: the physical id, or the resource name before there is one */
  referenceId?(ctx: ReferenceContext): JsonValue;
}
