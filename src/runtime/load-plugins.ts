/**
 * Loading a *plugins module* (`--plugins`): a file that default-exports an array of resource
 * types (docs/orchestration.md, "Writing a resource type"). Each is checked as the registry
 * checks it; every problem is `STOKER_PLUGINS_MODULE_INVALID` naming the file and element.
 */
import { StokerError, isStokerError } from '../errors.js';
import { checkResourceType, type ResourceType } from '../orchestration/resources/index.js';
import { importUserModule } from './load-flows.js';

function invalid(
  file: string,
  problem: string,
  options: { cause?: unknown; details?: Record<string, string | number | null> } = {},
): StokerError {
  return new StokerError('STOKER_PLUGINS_MODULE_INVALID', `plugins module ${file} ${problem}`, {
    cause: options.cause,
    details: { file, ...options.details },
  });
}

/**
 * Imports a plugins module and returns its resource types, checked.
 *
 * @example
 * ```ts
 * const types = await loadPluginsModule('./plugins/dns.ts'); // [{ type: 'Example::DNS::Record', … }]
 * ```
 */
export async function loadPluginsModule(path: string): Promise<ResourceType[]> {
  const mod = await importUserModule(path, (problem, options) => invalid(path, problem, options));
  const list = mod['default'];
  if (!Array.isArray(list)) throw invalid(path, 'must default-export an array of resource types (export default [myType])');
  return list.map((item: unknown, i) => {
    if (item === null || typeof item !== 'object' || typeof (item as { type?: unknown }).type !== 'string') {
      throw invalid(
        path,
        `default export element ${i} is not a resource type (an object with type, properties, create, update, delete …)`,
        {
          details: { element: i },
        },
      );
    }
    try {
      checkResourceType(item as ResourceType);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw invalid(path, `element ${i} (${(item as ResourceType).type}): ${message}${isStokerError(e) ? ` (${e.code})` : ''}`, {
        cause: e,
        details: { element: i },
      });
    }
    return item as ResourceType;
  });
}
