/**
 * Where software configs live (Heat's software config API): OS::Heat::SoftwareConfig,
 * CloudConfig and MultipartMime store one config each under their physical id, and
 * MultipartMime reads the configs its parts name by id. The stack engine supplies a store over
 * its database; {@link MemoryConfigStore} serves tests and single-process use.
 */
import type { JsonObject } from '../../../core/json.js';

/**
 * A stored config, in the shape Heat's API shows it (`inputs`, `outputs`, `options` are those
 * of OS::Heat::SoftwareConfig; the other types store empty ones).
 *
 * @example
 * ```ts
 * const record: SoftwareConfigRecord = { id, name: 'web-config-…', group: 'Heat::Ungrouped', config: 'xxxx', inputs: [], outputs: [], options: null, project: 'demo' };
 * ```
 */
export interface SoftwareConfigRecord {
  id: string;
  name: string;
  group: string;
  config: string | null;
  inputs: JsonObject[];
  outputs: JsonObject[];
  options: JsonObject | null;
  project: string | null;
}

/**
 * The store. Every method must be idempotent: an operation executed again puts the same
 * record again, or deletes an id already gone.
 *
 * @example
 * ```ts
 * await store.put(record);
 * (await store.get(record.id))?.config; // 'xxxx'
 * ```
 */
export interface SoftwareConfigStore {
  /** stores `record` under its id (replacing an identical earlier put) */
  put(record: SoftwareConfigRecord): Promise<void>;
  /** the record, or null when there is none */
  get(id: string): Promise<SoftwareConfigRecord | null>;
  /** removes the record; nothing happens when there is none */
  delete(id: string): Promise<void>;
}

/**
 * A store in memory.
 *
 * @example
 * ```ts
 * const configs = new MemoryConfigStore();
 * const types = createBuiltinResourceTypes({ secret, configs });
 * ```
 */
export class MemoryConfigStore implements SoftwareConfigStore {
  private readonly records = new Map<string, SoftwareConfigRecord>();

  async put(record: SoftwareConfigRecord): Promise<void> {
    this.records.set(record.id, structuredClone(record));
  }

  async get(id: string): Promise<SoftwareConfigRecord | null> {
    const record = this.records.get(id);
    return record ? structuredClone(record) : null;
  }

  async delete(id: string): Promise<void> {
    this.records.delete(id);
  }

  /** how many configs are stored (for tests) */
  get size(): number {
    return this.records.size;
  }
}
