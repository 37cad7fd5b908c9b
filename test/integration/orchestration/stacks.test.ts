/**
 * Stacks on every dialect, through the stack layer's API with a real engine: dependency
 * order and outputs, updates in place versus replacement (create before delete), failed
 * create and update with rollback, delete order and the Retain policy, nested stacks
 * (template resources through the environment's registry, ResourceGroup scale up and down),
 * hidden parameters, a newer update superseding one in progress, cancel, and bad requests
 * leaving nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Orchestrator, StackRow } from '../../../src/orchestration/stacks/index.js';
import { StackStore } from '../../../src/orchestration/stacks/stack-store.js';
import type { ModuleSql } from '../../../src/store/ports.js';
import { stackJson } from '../../../src/orchestration/stacks/views.js';
import { createRuntime, type Runtime } from '../../../src/runtime/create-runtime.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(25);
  }
}

async function settle(stacks: Orchestrator, name: string, timeoutMs = 60_000): Promise<StackRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await stacks.get(name, undefined, { deleted: true });
    if (row.status !== 'IN_PROGRESS') return row;
    if (Date.now() > deadline) throw new Error(`stack ${name} still ${row.action}_${row.status}`);
    await sleep(25);
  }
}

const CHAIN = `
heat_template_version: 2016-10-14
parameters:
  value: {type: string, default: one}
  secret: {type: string, default: s3cr3t-value, hidden: true}
resources:
  first: {type: OS::Heat::TestResource, properties: {value: {get_param: value}}}
  second: {type: OS::Heat::TestResource, properties: {value: {list_join: ['-', [{get_attr: [first, output]}, two]]}}}
  third: {type: OS::Heat::TestResource, depends_on: [second], properties: {value: three}}
outputs:
  joined: {value: {get_attr: [second, output]}, description: second's value}
`;

for (const dialect of testDialects()) {
  describe(`stacks on ${dialect}`, () => {
    let db: TestStore | null = null;
    let runtime: Runtime;
    let stacks: Orchestrator;
    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (!db) return;
      runtime = await createRuntime({ store: db.store, orchestration: true, engines: 1, concurrency: 8, pollMs: 50, logLevel: 'error' });
      stacks = runtime.stacks!;
      await runtime.start();
    });
    afterAll(async () => {
      if (db) await runtime.stop({ timeoutMs: 5_000 });
      await db?.drop();
    });
    const dbIt = (name: string, fn: () => Promise<void>) =>
      it(
        name,
        async (ctx) => {
          if (db === null) return ctx.skip();
          await fn();
        },
        120_000,
      );

    dbIt('creates in dependency order, with outputs, events and hidden parameters masked', async () => {
      await stacks.create('chain', { template: CHAIN });
      const row = await settle(stacks, 'chain');
      expect(`${row.action}_${row.status}`).toBe('CREATE_COMPLETE');
      expect(row.statusReason).toBe('Stack CREATE completed successfully');
      const outputs = await stacks.outputs(row);
      expect(outputs).toEqual([{ output_key: 'joined', output_value: 'one-two', description: "second's value" }]);
      const events = (await stacks.events(row)).map((e) => `${e.resourceName} ${e.status}`);
      expect(events[0]).toBe('chain CREATE_IN_PROGRESS');
      expect(events.at(-1)).toBe('chain CREATE_COMPLETE');
      expect(events.indexOf('first CREATE_COMPLETE')).toBeLessThan(events.indexOf('second CREATE_IN_PROGRESS'));
      expect(events.indexOf('second CREATE_COMPLETE')).toBeLessThan(events.indexOf('third CREATE_IN_PROGRESS'));
      // first and third read no other resource: on PostgreSQL each is one write, start and end together, with the same events
      for (const name of ['first', 'second', 'third'])
        expect(events.filter((e) => e.startsWith(`${name} `))).toEqual([`${name} CREATE_IN_PROGRESS`, `${name} CREATE_COMPLETE`]);
      const stored = new Map((await stacks.resources(row)).map((r) => [r.row.name, r.row]));
      expect(stored.get('first')).toMatchObject({ action: 'CREATE', status: 'COMPLETE', attributes: { output: 'one' }, holdToken: null });
      expect(stored.get('first')!.physicalId).toMatch(/^chain-first-[a-z2-7]{12}$/);
      expect(stored.get('third')).toMatchObject({
        properties: { value: 'three' },
        data: { value: 'three' },
        reference: stored.get('third')!.physicalId,
      });
      const shown = stackJson(row, await stacks.instance(row), outputs);
      expect((shown['parameters'] as Record<string, string>)['secret']).toBe('******');
      expect(JSON.stringify(shown)).not.toContain('s3cr3t-value');
    });

    dbIt('planned rows keep names and values that need escaping, in the order of the template', async () => {
      // the names and values go through one JSON parameter on PostgreSQL (insertResourcesIfAbsent)
      const names = ['quote \'single\' and "double"', 'back\\slash', 'naïve – ünïcödé 🚀', 'percent % and ? mark'];
      const template = [
        'heat_template_version: 2016-10-14',
        'resources:',
        ...names.map(
          (n, i) => `  ${JSON.stringify(n)}: {type: OS::Heat::TestResource, properties: {value: ${JSON.stringify(`v${i} ${n} \\ \n`)}}}`,
        ),
      ].join('\n');
      await stacks.create('escapes', { template });
      const row = await settle(stacks, 'escapes');
      expect(`${row.action}_${row.status}`).toBe('CREATE_COMPLETE');
      const stored = (await stacks.resources(row)).map((r) => r.row);
      // the plan lists independent resources in template order, and the rows were inserted in that order
      expect([...stored].sort((a, b) => a.id - b.id).map((r) => r.name)).toEqual(names);
      for (const [i, n] of names.entries()) {
        const r = stored.find((x) => x.name === n)!;
        expect(r.properties).toMatchObject({ value: `v${i} ${n} \\ \n` });
        expect(r.attributes).toEqual({ output: `v${i} ${n} \\ \n` });
      }
    });

    dbIt('a process reads a template set it has not seen once, however many steps want it at once', async () => {
      await stacks.create('read-once', { template: CHAIN });
      const row = await settle(stacks, 'read-once');
      // another process (a second engine process): its steps of this stack start knowing nothing of the set
      const other = await createRuntime({ store: db!.store, orchestration: true, engines: 0, logLevel: 'error' });
      try {
        const layer = other.stacks!;
        const before = layer.stacks.templateSetReads;
        const bodies = await Promise.all(Array.from({ length: 5 }, () => layer.setBody(row.templateSet!)));
        expect(layer.stacks.templateSetReads - before).toBe(1);
        expect(new Set(bodies).size).toBe(1);
        await layer.setBody(row.templateSet!);
        expect(layer.stacks.templateSetReads - before).toBe(1);
        // a set that is gone fails every caller waiting for it, and is read again when asked again
        const gone = await Promise.allSettled([layer.setBody('no-such-set'), layer.setBody('no-such-set')]);
        expect(gone.map((g) => g.status)).toEqual(['rejected', 'rejected']);
        expect(layer.stacks.templateSetReads - before).toBe(2);
        await expect(layer.setBody('no-such-set')).rejects.toThrow(/gone/);
        expect(layer.stacks.templateSetReads - before).toBe(3);
      } finally {
        await other.stop({ timeoutMs: 5_000 });
      }
    });

    dbIt("a group step stores its members' template set and its nested action starts from it without reading it back", async () => {
      const before = stacks.stacks.templateSetReads;
      await stacks.create('no-read-back', {
        template: `heat_template_version: 2016-10-14
resources:
  group: {type: OS::Heat::ResourceGroup, properties: {count: 3, resource_def: {type: OS::Heat::TestResource, properties: {value: v%index%}}}}
outputs:
  refs: {value: {get_attr: [group, refs]}}
`,
      });
      const row = await settle(stacks, 'no-read-back');
      expect(`${row.action}_${row.status}`).toBe('CREATE_COMPLETE');
      // one process made the stack, its group's set and ran every step: no set was read from the database
      expect(stacks.stacks.templateSetReads - before).toBe(0);
      const refs = (await stacks.outputs(row))[0]!.output_value as string[];
      expect(refs).toHaveLength(3);
      // the group's summary of its members and the plan of the next action read only the columns they use
      const group = (await stacks.resources(row)).find((r) => r.row.name === 'group')!.row;
      const store = stacks.stacks;
      const full = await store.sql.read('list', (s) => store.resources(s, group.nestedStack!, { includeDeleted: true }));
      const summaries = await store.sql.read('list', (s) => store.resourceSummaries(s, group.nestedStack!));
      const planned = await store.sql.read('list', (s) => store.resourcesToPlan(s, group.nestedStack!));
      const pick = (r: object, keys: string[]) => Object.fromEntries(Object.entries(r).filter(([k]) => keys.includes(k)));
      for (const [part, keys] of [
        [summaries, ['id', 'name', 'current', 'deleted', 'physicalId', 'reference', 'attributes', 'data']],
        [planned, ['id', 'name', 'generation', 'current', 'deleted', 'status', 'requires', 'templateSet']],
      ] as const) {
        expect(part.map((r) => Object.keys(r).sort())).toEqual(full.map(() => [...keys].sort()));
        expect(part).toEqual(full.map((r) => pick(r, [...keys])));
      }
      expect(summaries.map((r) => r.attributes)).toEqual([{ output: 'v0' }, { output: 'v1' }, { output: 'v2' }]);
    });

    dbIt('ends an action in one statement on PostgreSQL, only while its traversal is current and no replaced row is left', async () => {
      await stacks.create('ending', { template: 'heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::TestResource}\n' });
      const row = await settle(stacks, 'ending');
      const store = stacks.stacks;
      const end = (traversal: string, noReplacedRows: boolean) =>
        store.finishTraversal(
          row.id,
          traversal,
          { statusReason: 'ended here' },
          { status: 'CHECK_COMPLETE', reason: 'ended here', at: 1 },
          noReplacedRows,
        );
      const lastEvent = async () => (await stacks.events(row)).map((e) => `${e.resourceName} ${e.status} ${e.reason}`).at(-1);
      const before = await lastEvent();
      expect(await end('another traversal', false)).toBeNull();
      const [a] = (await stacks.resources(row)).map((r) => r.row);
      await store.sql.write('test', (s) => store.updateResource(s, a!.id, { current: false }));
      expect(await end(row.traversal!, true)).toBeNull();
      expect(await lastEvent()).toBe(before);
      const ended = await end(row.traversal!, false);
      if (dialect !== 'postgres') {
        // the other dialects end an action in a transaction (Orchestrator.finish)
        expect(ended).toBeNull();
        return;
      }
      expect(ended).toMatchObject({ id: row.id, name: 'ending', statusReason: 'ended here' });
      expect(await lastEvent()).toBe('ending CHECK_COMPLETE ended here');
    });

    dbIt('updates in place or replaces, creating the replacement before deleting the old one', async () => {
      const template = `
heat_template_version: 2016-10-14
parameters:
  v: {type: string, default: a}
  salt: {type: string, default: x}
resources:
  inplace: {type: OS::Heat::TestResource, properties: {value: {get_param: v}}}
  random: {type: OS::Heat::RandomString, properties: {salt: {get_param: salt}, length: 10}}
  user: {type: OS::Heat::TestResource, properties: {value: {get_resource: random}}}
`;
      await stacks.create('upd', { template });
      let row = await settle(stacks, 'upd');
      const before = new Map((await stacks.resources(row)).map((r) => [r.row.name, r.row.physicalId]));
      await stacks.update('upd', { template, parameters: { v: 'b', salt: 'y' } });
      row = await settle(stacks, 'upd');
      expect(`${row.action}_${row.status}`).toBe('UPDATE_COMPLETE');
      const after = new Map((await stacks.resources(row)).map((r) => [r.row.name, r.row.physicalId]));
      expect(after.get('inplace')).toBe(before.get('inplace'));
      expect(after.get('random')).not.toBe(before.get('random'));
      const events = (await stacks.events(row)).map((e) => `${e.resourceName} ${e.status}`);
      const update = events.slice(events.indexOf('upd UPDATE_IN_PROGRESS'));
      expect(update).toContain('inplace UPDATE_COMPLETE');
      expect(update.indexOf('random CREATE_COMPLETE')).toBeLessThan(update.indexOf('user UPDATE_IN_PROGRESS'));
      expect(update.indexOf('user UPDATE_COMPLETE')).toBeLessThan(update.indexOf('random DELETE_IN_PROGRESS'));
      expect(update.indexOf('random DELETE_COMPLETE')).toBeLessThan(update.indexOf('upd UPDATE_COMPLETE'));
      const preview = await stacks.preview('upd', { template, parameters: { v: 'c', salt: 'y' } });
      expect(preview).toEqual({ added: [], updated: ['inplace'], replaced: [], deleted: [], unchanged: ['random', 'user'] });
    });

    dbIt('an update in place that ends at once is one write on PostgreSQL; a held or changed row goes the usual way', async () => {
      const template = `
heat_template_version: 2016-10-14
parameters:
  v: {type: string, default: one}
resources:
  free: {type: OS::Heat::TestResource, properties: {value: {get_param: v}}}
  held: {type: OS::Heat::TestResource, properties: {value: {get_param: v}}}
  user: {type: OS::Heat::TestResource, properties: {value: {get_attr: [free, output]}}}
outputs:
  v: {value: {get_attr: [user, output]}}
`;
      const store = stacks.stacks;
      await stacks.create('once', { template });
      let row = await settle(stacks, 'once');
      const before = new Map((await stacks.resources(row)).map((r) => [r.row.name, r.row]));
      // a hold left by a step that no longer runs: the update takes it over the usual way
      const gone = { run: 'gone-run', atom: 'gone-atom', token: 'gone-run/gone-atom/1.1' };
      expect(await store.takeHold(before.get('held')!.id, gone, null)).toBe(true);
      const counted = store.updatedAtOnce;
      await stacks.update('once', { template, parameters: { v: 'two' } });
      row = await settle(stacks, 'once');
      expect(`${row.action}_${row.status}`).toBe('UPDATE_COMPLETE');
      expect(await stacks.outputs(row)).toEqual([{ output_key: 'v', output_value: 'two', description: 'No description given' }]);
      // free and user in one write each (PostgreSQL), held the usual way: the same events and rows either way
      expect(store.updatedAtOnce - counted).toBe(dialect === 'postgres' ? 2 : 0);
      const events = (await stacks.events(row)).map((e) => `${e.resourceName} ${e.status} ${e.reason} ${e.physicalId}`);
      const update = events.slice(events.findIndex((e) => e.startsWith('once UPDATE_IN_PROGRESS')));
      for (const name of ['free', 'held', 'user']) {
        const id = before.get(name)!.physicalId!;
        expect(update.filter((e) => e.startsWith(`${name} `))).toEqual([
          `${name} UPDATE_IN_PROGRESS state changed ${id}`,
          `${name} UPDATE_COMPLETE state changed ${id}`,
        ]);
      }
      const at = (prefix: string) => update.findIndex((e) => e.startsWith(prefix));
      expect(at('free UPDATE_COMPLETE')).toBeLessThan(at('user UPDATE_IN_PROGRESS'));
      const after = new Map((await stacks.resources(row)).map((r) => [r.row.name, r.row]));
      for (const name of ['free', 'held', 'user'])
        expect(after.get(name)).toMatchObject({
          action: 'UPDATE',
          status: 'COMPLETE',
          statusReason: 'state changed',
          properties: { value: 'two' },
          data: { value: 'two' },
          attributes: { output: 'two' },
          physicalId: before.get(name)!.physicalId,
          templateSet: row.templateSet,
          holdToken: null,
        });

      // the statement itself: nothing on a row held, changed since it was read, or of a superseded traversal
      const free = after.get('free')!;
      const write = (seen: typeof free, traversal = row.traversal!) =>
        store.updateInPlace({
          stackId: row.id,
          traversal,
          row: seen,
          type: seen.type,
          physicalId: seen.physicalId,
          at: Date.now(),
          patch: { properties: { value: 'three' }, updatedAt: Date.now() },
        });
      const eventCount = (await stacks.events(row)).length;
      expect(await write({ ...free, updatedAt: free.updatedAt! - 1 })).toBe(false);
      expect(await write(free, 'another-traversal')).toBe(false);
      expect(await store.takeHold(free.id, gone, null)).toBe(true);
      expect(await write(free)).toBe(false);
      expect((await stacks.events(row)).length).toBe(eventCount);
      expect(
        await store.sql.write('free a row', (s) => store.updateResource(s, free.id, { holdRun: null, holdAtom: null, holdToken: null })),
      ).toBe(true);
      // free again and as read: it matches on PostgreSQL, with both events
      expect(await write(free)).toBe(dialect === 'postgres');
      expect((await stacks.events(row)).length).toBe(eventCount + (dialect === 'postgres' ? 2 : 0));
    });

    dbIt('a failed create rolls back (deleting what it made) unless rollback is disabled', async () => {
      const template = `
heat_template_version: 2016-10-14
resources:
  good: {type: OS::Heat::TestResource, properties: {value: ok}}
  bad: {type: OS::Heat::TestResource, depends_on: [good], properties: {fail: true}}
`;
      await stacks.create('rb', { template });
      const row = await settle(stacks, 'rb');
      expect(`${row.action}_${row.status}`).toBe('ROLLBACK_COMPLETE');
      expect(await stacks.resources(row)).toEqual([]);
      const events = (await stacks.events(row)).map((e) => `${e.resourceName} ${e.status} ${e.reason}`);
      expect(events).toContain('rb CREATE_FAILED Resource CREATE failed: ValueError: resources.bad: Test Resource failed bad');
      expect(events).toContain('good DELETE_COMPLETE state changed');

      await stacks.create('norb', { template, disableRollback: true });
      const kept = await settle(stacks, 'norb');
      expect(`${kept.action}_${kept.status}`).toBe('CREATE_FAILED');
      const states = Object.fromEntries((await stacks.resources(kept)).map((r) => [r.row.name, `${r.row.action}_${r.row.status}`]));
      expect(states).toEqual({ good: 'CREATE_COMPLETE', bad: 'CREATE_FAILED' });
    });

    dbIt('a failed group member names its nested path in the reasons, once (as Heat words it)', async () => {
      const template = `
heat_template_version: 2013-05-23
resources:
  group1:
    type: OS::Heat::ResourceGroup
    properties:
      count: 1
      resource_def: {type: fail.yaml}
`;
      const files = {
        'fail.yaml': 'heat_template_version: 2013-05-23\nresources:\n  oops: {type: OS::Heat::TestResource, properties: {fail: true}}\n',
      };
      await stacks.create('gfail', { template, files, disableRollback: true });
      const row = await settle(stacks, 'gfail');
      expect(`${row.action}_${row.status}`).toBe('CREATE_FAILED');
      const path = 'resources.group1.resources[0].resources.oops';
      expect(row.statusReason).toBe(`Resource CREATE failed: ValueError: ${path}: Test Resource failed oops`);
      const [group] = await stacks.resources(row);
      expect(group!.row.statusReason).toBe(`ValueError: ${path}: Test Resource failed oops`);
    });

    dbIt('a failed update with rollback goes back to the previous template and values', async () => {
      const good = `
heat_template_version: 2016-10-14
parameters:
  v: {type: string, default: one}
resources:
  a: {type: OS::Heat::TestResource, properties: {value: {get_param: v}}}
outputs:
  v: {value: {get_attr: [a, output]}}
`;
      const failing = good.replace('properties: {value: {get_param: v}}', 'properties: {value: {get_param: v}, fail: true}');
      await stacks.create('urb', { template: good });
      await settle(stacks, 'urb');
      await stacks.update('urb', { template: failing, parameters: { v: 'two' }, disableRollback: false });
      const row = await settle(stacks, 'urb');
      expect(`${row.action}_${row.status}`).toBe('ROLLBACK_COMPLETE');
      expect(await stacks.outputs(row)).toEqual([{ output_key: 'v', output_value: 'one', description: 'No description given' }]);
    });

    dbIt('deletes in reverse dependency order and keeps Retain resources out of it', async () => {
      const template = `
heat_template_version: 2016-10-14
resources:
  base: {type: OS::Heat::TestResource}
  mid: {type: OS::Heat::TestResource, depends_on: base}
  top: {type: OS::Heat::TestResource, depends_on: mid, deletion_policy: Retain}
`;
      await stacks.create('del', { template });
      const created = await settle(stacks, 'del');
      await stacks.delete('del');
      const row = await settle(stacks, created.id);
      expect(`${row.action}_${row.status}`).toBe('DELETE_COMPLETE');
      await expect(stacks.get('del')).rejects.toMatchObject({ code: 'STOKER_STACK_NOT_FOUND' });
      const events = (await stacks.events(row)).map((e) => `${e.resourceName} ${e.status}`);
      const del = events.slice(events.indexOf('del DELETE_IN_PROGRESS'));
      expect(del.indexOf('top DELETE_COMPLETE')).toBeLessThan(del.indexOf('mid DELETE_IN_PROGRESS'));
      expect(del.indexOf('mid DELETE_COMPLETE')).toBeLessThan(del.indexOf('base DELETE_IN_PROGRESS'));
      // the name is free again
      await stacks.create('del', { template });
      expect((await settle(stacks, 'del')).status).toBe('COMPLETE');
    });

    dbIt('nested stacks: a template resource through the registry, a ResourceGroup scaled up and down', async () => {
      const provider = `
heat_template_version: 2016-10-14
parameters:
  word: {type: string}
resources:
  inner: {type: OS::Heat::TestResource, properties: {value: {get_param: word}}}
outputs:
  said: {value: {get_attr: [inner, output]}}
`;
      const template = `
heat_template_version: 2016-10-14
parameters:
  count: {type: number, default: 2}
resources:
  custom: {type: My::Speaker, properties: {word: hello}}
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: {get_param: count}
      resource_def: {type: OS::Heat::TestResource, properties: {value: member-%index%}}
outputs:
  said: {value: {get_attr: [custom, said]}}
  values: {value: {get_attr: [group, output]}}
`;
      const environments = [{ text: 'resource_registry:\n  My::Speaker: speaker.yaml\n' }];
      await stacks.create('nest', { template, files: { 'speaker.yaml': provider }, environments });
      let row = await settle(stacks, 'nest');
      expect(`${row.action}_${row.status}`).toBe('CREATE_COMPLETE');
      const outputs = Object.fromEntries((await stacks.outputs(row)).map((o) => [o.output_key, o.output_value]));
      expect(outputs).toEqual({ said: 'hello', values: ['member-0', 'member-1'] });
      const nested = await stacks.resources(row, 1);
      expect(
        nested
          .filter((r) => r.stack.parentId === row.id)
          .map((r) => r.row.name)
          .sort(),
      ).toEqual(['0', '1', 'inner']);

      await stacks.update('nest', { existing: true, parameters: { count: '3' } });
      row = await settle(stacks, 'nest');
      expect(Object.fromEntries((await stacks.outputs(row)).map((o) => [o.output_key, o.output_value]))['values']).toEqual([
        'member-0',
        'member-1',
        'member-2',
      ]);
      await stacks.update('nest', { existing: true, parameters: { count: '1' } });
      row = await settle(stacks, 'nest');
      expect(`${row.action}_${row.status}`).toBe('UPDATE_COMPLETE');
      expect(Object.fromEntries((await stacks.outputs(row)).map((o) => [o.output_key, o.output_value]))['values']).toEqual(['member-0']);
      await stacks.delete('nest');
      expect((await settle(stacks, row.id)).action).toBe('DELETE');
      expect((await stacks.list(undefined, { nested: true })).filter((s) => s.parentId === row.id)).toEqual([]);
    });

    dbIt('a newer update supersedes one in progress; the stack ends with the newer values', async () => {
      const template = (secs: number) => `
heat_template_version: 2016-10-14
parameters:
  v: {type: string}
resources:
  slow: {type: OS::Heat::TestResource, properties: {value: {get_param: v}, action_wait_secs: {update: ${secs}}}}
  after: {type: OS::Heat::TestResource, depends_on: slow, properties: {value: {get_param: v}}}
outputs:
  v: {value: {get_attr: [after, output]}}
`;
      await stacks.create('sup', { template: template(1), parameters: { v: 'one' } });
      await settle(stacks, 'sup');
      await stacks.update('sup', { template: template(1), parameters: { v: 'two' } });
      await sleep(300);
      await stacks.update('sup', { template: template(0), parameters: { v: 'three' } });
      const row = await settle(stacks, 'sup');
      expect(`${row.action}_${row.status}`).toBe('UPDATE_COMPLETE');
      expect((await stacks.outputs(row))[0]!.output_value).toBe('three');
      const rows = await stacks.resources(row);
      expect(rows.every((r) => r.row.status === 'COMPLETE' && r.row.holdToken === null)).toBe(true);
    });

    dbIt('cancel rolls back an update in progress', async () => {
      const template = (v: string, wait: number) => `
heat_template_version: 2016-10-14
resources:
  r: {type: OS::Heat::TestResource, properties: {value: ${v}, action_wait_secs: {update: ${wait}}}}
outputs:
  v: {value: {get_attr: [r, output]}}
`;
      await stacks.create('can', { template: template('one', 0) });
      await settle(stacks, 'can');
      await stacks.update('can', { template: template('two', 2) });
      await sleep(300);
      await stacks.cancel('can');
      const row = await settle(stacks, 'can');
      expect(`${row.action}_${row.status}`).toBe('ROLLBACK_COMPLETE');
      expect((await stacks.outputs(row))[0]!.output_value).toBe('one');
      const events = (await stacks.events(row)).map((e) => `${e.resourceName} ${e.status} ${e.reason}`);
      expect(events).toContain('can UPDATE_FAILED Stack UPDATE cancelled');
    });

    dbIt('OS::Heat::Stack, ResourceChain and a WaitCondition signalled through its handle', async () => {
      const template = `
heat_template_version: 2016-10-14
resources:
  inline:
    type: OS::Heat::Stack
    properties:
      template: |
        heat_template_version: 2016-10-14
        parameters:
          word: {type: string}
        resources:
          v: {type: OS::Heat::Value, properties: {value: {get_param: word}}}
        outputs:
          echoed: {value: {get_attr: [v, value]}}
      parameters: {word: inline-hello}
  chain:
    type: OS::Heat::ResourceChain
    properties:
      resources: [OS::Heat::None, OS::Heat::TestResource, OS::Heat::TestResource]
  handle: {type: OS::Heat::WaitConditionHandle}
  waiter:
    type: OS::Heat::WaitCondition
    properties: {handle: {get_resource: handle}, timeout: 60, count: 1}
outputs:
  echoed: {value: {get_attr: [inline, outputs, echoed]}}
  refs: {value: {get_attr: [chain, refs]}}
  data: {value: {get_attr: [waiter, data]}}
`;
      await stacks.create('kinds', { template });
      await waitFor(async () =>
        (await stacks.resources(await stacks.get('kinds'))).some((r) => r.row.name === 'waiter' && r.row.status === 'IN_PROGRESS'),
      );
      await stacks.signal('kinds', 'handle', { status: 'SUCCESS', id: 'one', data: 'ready' });
      const row = await settle(stacks, 'kinds');
      expect(`${row.action}_${row.status}`, row.statusReason).toBe('CREATE_COMPLETE');
      const outputs = Object.fromEntries((await stacks.outputs(row)).map((o) => [o.output_key, o.output_value]));
      expect(outputs['echoed']).toBe('inline-hello');
      expect(outputs['refs']).toHaveLength(3);
      expect(JSON.parse(String(outputs['data']))).toEqual({ one: 'ready' });
      const events = (await stacks.events(row)).map((e) => e.resourceName);
      expect(events.indexOf('handle')).toBeLessThan(events.indexOf('waiter'));

      await stacks.create('timeout', {
        template: `
heat_template_version: 2016-10-14
resources:
  handle: {type: OS::Heat::WaitConditionHandle}
  waiter: {type: OS::Heat::WaitCondition, properties: {handle: {get_resource: handle}, timeout: 1}}
`,
        disableRollback: true,
      });
      const failed = await settle(stacks, 'timeout');
      expect(`${failed.action}_${failed.status}`).toBe('CREATE_FAILED');
      expect(failed.statusReason).toContain('WaitConditionTimeout');
    });

    dbIt('the first reads of concurrent steps probe each row by its index, whatever the stack holds (PostgreSQL)', async () => {
      if (dialect !== 'postgres') return;
      const n = 300;
      await stacks.create('probed', {
        template: `heat_template_version: 2016-10-14
resources:
  group: {type: OS::Heat::ResourceGroup, properties: {count: ${n}, resource_def: {type: OS::Heat::TestResource}}}
`,
      });
      const row = await settle(stacks, 'probed');
      expect(`${row.action}_${row.status}`).toBe('CREATE_COMPLETE');
      const group = (await stacks.resources(row)).find((r) => r.row.name === 'group')!.row;
      // a StackStore whose reads run in a transaction that then counts the resources table's rows read by sequential scans and its index entries read
      const inner = db!.store.moduleSql!;
      const reads: { seq: number; idx: number }[] = [];
      const counting: ModuleSql = {
        dialect: inner.dialect,
        transaction: (purpose, fn, options) => inner.transaction(purpose, fn, options),
        write: (purpose, fn, options) => inner.write(purpose, fn, options),
        read: (purpose, fn) =>
          inner.transaction(purpose, async (s) => {
            // the backend's counts not yet reported, before and after (within a transaction they only grow)
            const count = async () =>
              (
                await s.rows(
                  'count reads',
                  `SELECT pg_stat_get_xact_tuples_returned(i.indrelid) AS seq, sum(pg_stat_get_xact_tuples_returned(i.indexrelid)) AS idx
                   FROM pg_index i WHERE i.indrelid = '{p}stack_resources'::regclass GROUP BY i.indrelid`,
                  [],
                )
              )[0]!;
            const before = await count();
            const out = await fn(s);
            const after = await count();
            reads.push({ seq: Number(after['seq']) - Number(before['seq']), idx: Number(after['idx']) - Number(before['idx']) });
            return out;
          }),
      };
      const store = new StackStore(counting);
      const names = ['0', '7', '150', `${n - 1}`];
      // concurrent steps' first reads go as one statement; the second asks for two names, one twice
      const views = await counting.read('read steps', (s) =>
        Promise.all([
          ...names.map((name) => store.stepView(s, group.nestedStack!, [name])),
          store.stepView(s, group.nestedStack!, ['3', '4', '3']),
        ]),
      );
      expect(views.map((v) => v.rows.map((r) => r.name))).toEqual([['0'], ['7'], ['150'], [`${n - 1}`], ['3', '4']]);
      expect(views.every((v) => v.stack?.id === group.nestedStack)).toBe(true);
      const rowViews = await counting.read('read rows', (s) =>
        Promise.all(views.slice(0, 2).map((v) => store.rowView(s, group.nestedStack!, v.rows[0]!.id))),
      );
      expect(rowViews.map((v) => v.row?.name)).toEqual(['0', '7']);
      // one index probe per name or row, never a scan of the stack's rows (before: a sequential scan of every row of the stack per batch)
      const total = reads.reduce((a, r) => ({ seq: a.seq + r.seq, idx: a.idx + r.idx }), { seq: 0, idx: 0 });
      expect(total.seq).toBe(0);
      expect(total.idx).toBeLessThanOrEqual(3 * (names.length + 2 + 2));
    });

    dbIt('bad requests are refused with a clear error and leave no stack', async () => {
      const cases: [string, RegExp][] = [
        [
          'heat_template_version: 2016-10-14\nresources:\n  a: {type: No::Such::Type}\n',
          /Resource Type \(No::Such::Type\) could not be found/,
        ],
        ['heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::TestResource, properties: {nope: 1}}\n', /nope/],
        [
          'heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::None, depends_on: b}\n  b: {type: OS::Heat::None, depends_on: a}\n',
          /a.*b|b.*a/,
        ],
        ['heat_template_version: 2016-10-14\nresources: [unclosed\n', /line/i],
        [
          'heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::Value, properties: {value: {get_file: missing.txt}}}\n',
          /missing\.txt/,
        ],
      ];
      for (const [template, message] of cases) {
        await expect(stacks.create('bad', { template })).rejects.toThrow(message);
        await expect(stacks.get('bad')).rejects.toMatchObject({ code: 'STOKER_STACK_NOT_FOUND' });
      }
      await expect(stacks.create('chain', { template: CHAIN })).rejects.toMatchObject({ code: 'STOKER_STACK_EXISTS' });
    });
  });
}
