/**
 * The flows an application (or the CLI's `--flows` module) makes runnable, by name and
 * version. A run stores its graph, so the registry is only needed to find the *code* of a
 * graph's tasks and deciders, and to compile the graph of a new run.
 */
import { NotFoundError, ConflictError, ValidationError } from '../errors.js';
import { compareVersions } from './compare-versions.js';
import { compileFlow } from './compile.js';
import { isCompiledFlow, isFlowDefinition } from './guards.js';
import { jsonEqual } from './json-equal.js';
import type { JsonValue } from '../core/json.js';
import { quoteName } from './names.js';
import type { CompiledFlow, FlowDefinition } from './types.js';

/** At most this many known flows are listed in a not-found message (all are in `details`). */
const LISTED_IN_MESSAGE = 20;

/**
 * Registered flows, compiled once. Not a singleton: each runtime owns one.
 *
 * @example
 * ```ts
 * const flows = new FlowRegistry();
 * flows.register(linear('order', [reserve, charge], { version: '2' }));
 * flows.get('order').version;      // '2' (the latest)
 * flows.get('order', '1');         // throws NotFoundError STOKER_FLOW_NOT_FOUND
 * ```
 */
export class FlowRegistry {
  /** name → version → compiled flow */
  private readonly flows = new Map<string, Map<string, CompiledFlow>>();

  /**
   * Registers a flow (compiling a definition first) and returns the registered compiled
   * flow. Registering a structurally identical graph under the same name and version
   * again is a no-op that returns the flow registered first (so loading a flows module
   * twice is harmless); a different graph under a registered name and version throws a
   * ConflictError `STOKER_FLOW_ALREADY_REGISTERED`: change the version instead, so that
   * runs in flight keep the graph they started with.
   *
   * @example
   * ```ts
   * const compiled = flows.register(linear('order', [reserve, charge]));
   * flows.register(linear('order', [reserve, charge])); // same graph: no-op
   * ```
   */
  register(flow: FlowDefinition | CompiledFlow): CompiledFlow {
    let compiled: CompiledFlow;
    if (isFlowDefinition(flow)) compiled = compileFlow(flow);
    else if (isCompiledFlow(flow)) compiled = flow;
    else {
      throw new ValidationError(
        'STOKER_FLOW_INVALID',
        'register() needs a flow (from linear, unordered or graph) or a compiled flow (from compileFlow).',
      );
    }
    if (compiled.graph.flow !== compiled.name || compiled.graph.version !== compiled.version) {
      throw new ValidationError(
        'STOKER_FLOW_INVALID',
        `The compiled flow ${quoteName(compiled.name)} version ${quoteName(compiled.version)} carries the graph of ${quoteName(compiled.graph.flow)} version ${quoteName(compiled.graph.version)}.`,
      );
    }
    let versions = this.flows.get(compiled.name);
    const existing = versions?.get(compiled.version);
    if (existing !== undefined) {
      if (existing === compiled || jsonEqual(existing.graph as unknown as JsonValue, compiled.graph as unknown as JsonValue)) {
        return existing;
      }
      throw new ConflictError(
        'STOKER_FLOW_ALREADY_REGISTERED',
        `A different flow ${quoteName(compiled.name)} is already registered as version ${quoteName(compiled.version)}; give the changed flow a new version.`,
        { details: { flow: compiled.name, version: compiled.version } },
      );
    }
    if (versions === undefined) {
      versions = new Map();
      this.flows.set(compiled.name, versions);
    }
    versions.set(compiled.version, compiled);
    return compiled;
  }

  /**
   * The flow registered under `name` and `version`, or its latest version (by
   * {@link compareVersions}) when `version` is omitted. Throws a NotFoundError
   * `STOKER_FLOW_NOT_FOUND` that lists the registered flows.
   *
   * @example
   * ```ts
   * flows.get('order');      // latest version
   * flows.get('order', '1'); // exactly version 1
   * ```
   */
  get(name: string, version?: string): CompiledFlow {
    const found = this.find(name, version);
    if (found !== undefined) return found;
    const known = this.list().map((f) => `${f.name}@${f.version}`);
    const shown =
      known.length === 0
        ? 'none'
        : known.length > LISTED_IN_MESSAGE
          ? `${known.slice(0, LISTED_IN_MESSAGE).join(', ')} and ${known.length - LISTED_IN_MESSAGE} more`
          : known.join(', ');
    const what = version === undefined ? `flow ${quoteName(name)}` : `flow ${quoteName(name)} version ${quoteName(version)}`;
    throw new NotFoundError('STOKER_FLOW_NOT_FOUND', `No ${what} is registered. Registered flows: ${shown}.`, {
      details: { flow: typeof name === 'string' ? name.slice(0, 200) : null, version: version ?? null, known },
    });
  }

  /**
   * Whether `get(name, version)` would find a flow.
   *
   * @example
   * ```ts
   * flows.has('order');      // any version
   * flows.has('order', '2');
   * ```
   */
  has(name: string, version?: string): boolean {
    return this.find(name, version) !== undefined;
  }

  /**
   * Every registered flow, by name, then by version (oldest first).
   *
   * @example
   * ```ts
   * flows.list().map((f) => `${f.name}@${f.version}`); // ['order@1', 'order@2', 'ship@1']
   * ```
   */
  list(): CompiledFlow[] {
    const names = [...this.flows.keys()].sort();
    return names.flatMap((name) => {
      const versions = this.flows.get(name) ?? new Map<string, CompiledFlow>();
      return [...versions.keys()].sort(compareVersions).map((v) => versions.get(v) as CompiledFlow);
    });
  }

  private find(name: string, version: string | undefined): CompiledFlow | undefined {
    const versions = this.flows.get(name);
    if (versions === undefined) return undefined;
    if (version !== undefined) return versions.get(version);
    let latest: string | undefined;
    for (const v of versions.keys()) if (latest === undefined || compareVersions(v, latest) > 0) latest = v;
    return latest === undefined ? undefined : versions.get(latest);
  }
}
