/**
 * `stack update --dry-run` (Heat's preview): what an update would add, update, replace, delete
 * or leave unchanged, decided with the same rules as the update itself, without storing
 * anything. With `showNested`, the resources of nested stacks are listed too, named
 * `<resource owning the nested stack>/<resource>` as Heat names them; a nested stack resource
 * then counts as updated, and one replaced takes its nested resources with it (deleted).
 */
import { needsReplacement, validateProperties } from '../resources/index.js';
import { resolveResourceType, type TemplateInstance } from '../template/index.js';
import type { StackLayer } from './layer.js';
import { childBody } from './nested.js';
import { nestedAttribute, rowsRuntime } from './outputs.js';
import { nestedFingerprint } from './resource-step.js';
import type { ResourceRow, StackRow } from './stack-store.js';
import { stackLayerKind } from './stack-types.js';
import { instantiateSet, type TemplateSetBody } from './template-set.js';

export interface PreviewResult {
  added: string[];
  updated: string[];
  replaced: string[];
  deleted: string[];
  unchanged: string[];
}

const current = async (layer: StackLayer, stackId: string): Promise<ResourceRow[]> =>
  (await layer.stacks.sql.read('list resources', (s) => layer.stacks.resources(s, stackId))).filter((r) => r.current);

/** Every resource under a nested stack, deeper ones first, named as Heat names them. */
async function nestedNames(layer: StackLayer, row: ResourceRow): Promise<string[]> {
  if (!row.nestedStack) return [];
  const out: string[] = [];
  for (const child of await current(layer, row.nestedStack)) {
    out.push(...(await nestedNames(layer, child)), `${row.name}/${child.name}`);
  }
  return out;
}

export async function previewStack(
  layer: StackLayer,
  stack: StackRow,
  body: TemplateSetBody,
  instance: TemplateInstance,
  options: { showNested: boolean; label?: (name: string) => string },
  out: PreviewResult = { added: [], updated: [], replaced: [], deleted: [], unchanged: [] },
): Promise<PreviewResult> {
  const label = options.label ?? ((n: string) => n);
  const rows = await current(layer, stack.id);
  const byName = new Map(rows.map((r) => [r.name, r]));
  const runtime = { ...rowsRuntime(rows, nestedAttribute), ...(body.facade ? { resourceFacade: body.facade } : {}) };
  for (const name of instance.order) {
    const row = byName.get(name);
    if (!row) {
      out.added.push(label(name));
      continue;
    }
    const def = instance.resource(name);
    const resolved = resolveResourceType(body.environment.resourceRegistry, def.type, { resourceName: name, files: body.files });
    const plugin = resolved.kind === 'plugin' ? layer.registry.find(resolved.type) : undefined;
    const layerKind = resolved.kind === 'plugin' ? stackLayerKind(resolved.type) : undefined;
    const nested = resolved.kind === 'template' || layerKind === 'stack' || layerKind === 'group' || layerKind === 'chain';
    if (row.status === 'FAILED' || (nested ? row.type !== def.type : row.type !== def.type && row.nestedStack !== null)) {
      out.replaced.push(label(name));
      if (options.showNested) out.deleted.push(...(await nestedNames(layer, row)));
      continue;
    }
    const evaluated = instance.evaluateResource(name, runtime);
    if (nested) {
      if (!options.showNested || !row.nestedStack) {
        const fingerprint = nestedFingerprint(evaluated.properties, resolved.kind === 'template' ? resolved.content : null, body);
        (row.data?.['fingerprint'] === fingerprint && row.status === 'COMPLETE' ? out.unchanged : out.updated).push(label(name));
        continue;
      }
      // Heat lists a nested stack resource as updated and looks inside it
      out.updated.push(label(name));
      const child = await layer.stacks.sql.read('read a stack', (s) => layer.stacks.getStack(s, row.nestedStack!));
      if (!child) continue;
      const properties = plugin ? validateProperties(plugin, evaluated.properties, '') : evaluated.properties;
      const nestedBody = childBody({
        stack,
        row,
        body,
        instance,
        name,
        resolved,
        properties,
        evaluated,
        action: 'UPDATE',
        ctx: undefined as never,
        layerKind,
      });
      const nestedInstance = instantiateSet(null, nestedBody, child, layer.limits.template);
      await previewStack(layer, child, nestedBody, nestedInstance, { showNested: true, label: (n) => `${name}/${n}` }, out);
      continue;
    }
    if (!plugin || row.type !== def.type) {
      out.replaced.push(label(name));
      continue;
    }
    try {
      const properties = validateProperties(plugin, evaluated.properties, '');
      const decision = needsReplacement(plugin, row.properties, properties, { resourceName: name });
      (decision.action === 'none' ? out.unchanged : decision.action === 'update' ? out.updated : out.replaced).push(label(name));
    } catch {
      out.replaced.push(label(name));
    }
  }
  for (const row of rows) {
    if (instance.hasResource(row.name)) continue;
    if (options.showNested) out.deleted.push(...(await nestedNames(layer, row)));
    out.deleted.push(label(row.name));
  }
  return out;
}
