/**
 * Template resources inside template resources (docs/security.md S3, S4). The template layer
 * does not create nested stacks, the stack layer does; but whether a template and its files
 * nest too deeply or include each other is known before anything is created, so
 * {@link checkNestedTemplates} walks the whole tree up front, the way Heat would meet it:
 *
 * - each resource's type goes through the registry its stack sees: the request's registry for
 *   the top-level template, then, for a nested stack, `childRegistry` of its parent's (without
 *   the entry that made it a template resource, and with the parent's nested overrides), as
 *   Heat's `get_child_environment` does; so a template that implements `OS::Heat::RandomString`
 *   can use the real one inside;
 * - a file already on the way from the top-level template to here is a cycle
 *   (`a.yaml → b.yaml → a.yaml`, STOKER_TEMPLATE_CYCLE), refused even where Heat would stop at
 *   its depth limit or at a condition (the walk does not evaluate conditions);
 * - a nested stack deeper than `maxNestedDepth` (Heat's `max_nested_stack_depth`, 5) is
 *   refused with Heat's "Recursion depth exceeds 5" (STOKER_TEMPLATE_TOO_LARGE);
 * - the resources of all the stacks together may not exceed `maxResources`, as Heat counts
 *   `max_resources_per_stack` over a stack and its nested stacks; this also bounds the walk, so
 *   a fan-out of template resources cannot make it exponential.
 *
 * Every file is parsed once (with `parseTemplate`, the files map and the limits); the walk is
 * iterative, with an explicit stack.
 */
import { isStokerError } from '../../errors.js';
import { resolveTemplateLimits, type TemplateLimits } from './limits.js';
import { parseTemplate } from './parse-template.js';
import { childRegistry, emptyRegistry, resolveResourceType, type ResourceRegistry } from './resource-registry.js';
import type { Template } from './template-model.js';
import { showText, templateError } from './template-error.js';

/**
 * What {@link checkNestedTemplates} needs besides the template.
 *
 * @example
 * ```ts
 * const options: NestedTemplateOptions = { files: request.files, registry: environment.resourceRegistry };
 * ```
 */
export interface NestedTemplateOptions {
  /** the request's files map: the only place template resources come from (S7) */
  files?: Readonly<Record<string, string>>;
  /** the top-level stack's resource registry (the merged environment's) */
  registry?: ResourceRegistry;
  limits?: Partial<TemplateLimits>;
  /** the top-level template's name in messages and cycles: `template`, or its file name */
  label?: string;
  /** passed to parseTemplate for every file */
  strictFunctions?: boolean;
}

/**
 * What the walk found.
 *
 * @example
 * ```ts
 * const nested = checkNestedTemplates(template, { files, registry });
 * nested.templates.get('server.yaml')?.parameters; // the file, parsed once
 * ```
 */
export interface NestedTemplates {
  /** every template file reached, parsed, by file name */
  templates: ReadonlyMap<string, Template>;
  /** the deepest nesting reached: 0 when there are no template resources */
  depth: number;
  /** the resources of the top-level stack and of every nested stack it would create */
  resources: number;
}

interface Frame {
  template: Template;
  registry: ResourceRegistry;
  /** file names from the top-level template (its label) down to this one */
  chain: string[];
}

/**
 * Walks the template resources reachable from `template` through the files map; throws on a
 * cycle, on nesting deeper than `maxNestedDepth`, on more than `maxResources` resources in all,
 * and on a nested template that is missing or invalid (its error, with the chain of files in
 * front of the message and in `details.files`).
 *
 * @example
 * ```ts
 * checkNestedTemplates(parseTemplate(text, { files }), { files, registry: env.resourceRegistry });
 * // throws STOKER_TEMPLATE_CYCLE: "The template resources include each other: a.yaml → b.yaml → a.yaml"
 * ```
 */
export function checkNestedTemplates(template: Template, options: NestedTemplateOptions = {}): NestedTemplates {
  const limits = resolveTemplateLimits(options.limits);
  const files = options.files ?? {};
  const parsed = new Map<string, Template>();
  let resources = 0;
  let deepest = 0;
  const stack: Frame[] = [{ template, registry: options.registry ?? emptyRegistry(), chain: [options.label ?? 'template'] }];
  while (stack.length > 0) {
    const { template: current, registry, chain } = stack.pop()!;
    const depth = chain.length - 1;
    deepest = Math.max(deepest, depth);
    resources += Object.keys(current.resources).length;
    if (resources > limits.maxResources) {
      throw templateError(
        'STOKER_TEMPLATE_TOO_LARGE',
        '',
        `The stack and its nested stacks have more than ${limits.maxResources} resources (reached at ${showChain(chain)})`,
        { maxResources: limits.maxResources, files: chain },
      );
    }
    const children: Frame[] = [];
    for (const [name, resource] of Object.entries(current.resources)) {
      const resolved = within(chain, () => resolveResourceType(registry, resource.type, { resourceName: name, files }));
      if (resolved.kind !== 'template') continue;
      const file = resolved.file;
      const next = [...chain, file];
      const seen = chain.indexOf(file);
      if (seen !== -1) {
        const cycle = next.slice(seen);
        throw templateError('STOKER_TEMPLATE_CYCLE', '', `The template resources include each other: ${showChain(cycle)}`, {
          cycle,
          files: next,
          resource: name,
        });
      }
      if (depth + 1 > limits.maxNestedDepth) {
        throw templateError('STOKER_TEMPLATE_TOO_LARGE', '', `Recursion depth exceeds ${limits.maxNestedDepth}: ${showChain(next)}`, {
          maxNestedDepth: limits.maxNestedDepth,
          files: next,
        });
      }
      let child = parsed.get(file);
      if (child === undefined) {
        const text = resolved.content;
        child = within(next, () =>
          parseTemplate(text, {
            files,
            label: file,
            ...(options.limits ? { limits: options.limits } : {}),
            ...(options.strictFunctions !== undefined ? { strictFunctions: options.strictFunctions } : {}),
          }),
        );
        parsed.set(file, child);
      }
      children.push({
        template: child,
        registry: childRegistry(registry, { resourceName: name, ...removed(registry, name, resolved.chain) }),
        chain: next,
      });
    }
    // depth first, in template order
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return { templates: parsed, depth: deepest, resources };
}

/**
 * The registry entry that made the resource a template resource, which Heat removes from the
 * nested stack's registry: the last type before the file, when it is a top-level entry (a
 * per-resource override is not passed down anyway, and a file named directly is no entry).
 */
function removed(registry: ResourceRegistry, resourceName: string, chain: readonly string[]): { removeType?: string } {
  if (chain.length < 2) return {};
  const type = chain[chain.length - 2]!;
  const overrides = Object.hasOwn(registry.resources, resourceName) ? registry.resources[resourceName] : undefined;
  if (overrides && Object.hasOwn(overrides.types, type)) return {};
  return { removeType: type };
}

const showChain = (chain: readonly string[]): string => chain.map((f) => showText(f)).join(' → ');

/** Runs `f`; a StokerError it throws gets the chain of files in front of its message. */
function within<T>(chain: readonly string[], f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (!isStokerError(e) || chain.length < 2) throw e;
    throw templateError(e.code, '', `${showChain(chain)}: ${e.message}`, { ...e.details, files: [...chain] });
  }
}
