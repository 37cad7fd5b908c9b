/**
 * An example plugins module (`stoker engine --plugins examples/resource-types.ts`): resource
 * types of your own for Heat templates. This one keeps "records" in a JSON file, so it needs no
 * cloud, and shows what every type does:
 * - properties with types, defaults, constraints, and which of them can change in place
 *   (`updateAllowed`) or never (`immutable`); any other change replaces the resource;
 * - idempotent operations: the engine may execute a create again after a crash, with the same
 *   `ctx.idempotencyKey`, and must then get the same resource back, not a second one;
 * - the abort signal (stack cancel, timeout, engine shutdown) and attributes.
 *
 * Template:
 * ```yaml
 * resources:
 *   greeting:
 *     type: Example::File::Record
 *     properties: {file: /tmp/records.json, text: hello}
 * outputs:
 *   id: {value: {get_resource: greeting}}
 *   text: {value: {get_attr: [greeting, text]}}
 * ```
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { deterministicUuid, supported, type OperationContext, type ResourceType } from '../src/orchestration/resources/index.js';

type Records = Record<string, { text: string; key: string }>;

function load(file: string): Records {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Records;
  } catch {
    return {};
  }
}

function save(file: string, records: Records, signal: AbortSignal): void {
  signal.throwIfAborted();
  writeFileSync(file, JSON.stringify(records, null, 2));
}

const fileOf = (ctx: OperationContext): string => String(ctx.properties['file']);

export const fileRecord: ResourceType = {
  type: 'Example::File::Record',
  description: 'A record in a local JSON file (an example of a resource type plugin).',
  supportStatus: supported('1.0'),
  properties: {
    file: { type: 'string', required: true, immutable: true, description: 'The JSON file holding the records.' },
    text: { type: 'string', default: '', updateAllowed: true, constraints: [{ length: { max: 1000 } }], description: 'The text.' },
  },
  attributes: {
    text: { description: 'The text stored.', type: 'string' },
  },
  async create(ctx) {
    // the id comes from the idempotency key: a create executed again finds its own record
    const id = deterministicUuid(ctx.idempotencyKey, 'Example::File::Record');
    const records = load(fileOf(ctx));
    records[id] ??= { text: String(ctx.properties['text']), key: ctx.idempotencyKey };
    save(fileOf(ctx), records, ctx.signal);
    return { physicalId: id, data: {} };
  },
  async update(ctx) {
    const records = load(fileOf(ctx));
    records[ctx.physicalId!] = { text: String(ctx.properties['text']), key: ctx.idempotencyKey };
    save(fileOf(ctx), records, ctx.signal);
    return { physicalId: ctx.physicalId, data: ctx.data };
  },
  async delete(ctx) {
    if (ctx.physicalId === null) return;
    const records = load(fileOf(ctx));
    delete records[ctx.physicalId];
    save(fileOf(ctx), records, ctx.signal);
  },
  async check(ctx) {
    if (ctx.physicalId === null || !load(fileOf(ctx))[ctx.physicalId]) throw new Error(`record ${ctx.physicalId} is missing`);
  },
  async attribute(name, ctx) {
    return name === 'text' && ctx.physicalId !== null ? (load(String(ctx.properties['file']))[ctx.physicalId]?.text ?? null) : null;
  },
};

export default [fileRecord];
