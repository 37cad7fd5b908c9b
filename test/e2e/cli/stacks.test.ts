/**
 * `stoker stack …` as a user runs it: the built CLI in child processes, on SQLite and
 * PostgreSQL. One stack's life with the openstack client's JSON shapes; bad input refused
 * with a clear message, a non-zero exit and no stack; and two `stoker engine` processes
 * sharing stacks: one is killed with SIGKILL in the middle of a 500-resource create and of its
 * delete, and concurrent updates started from two clients supersede each other.
 *
 * The three groups below use stores, files and engines of their own and mostly wait (on
 * TestResource's action_wait_secs and on child processes), so they run at the same time
 * (`concurrent` on each group); the tests within a group run in order (`it.sequential`), as
 * each one starts from what the previous one left.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';
import { ROOT, buildCliAsync, json, runCli, startCli, tempDir, waitUntil, writeFile, type Built, type CliResult } from './harness.js';

let built: Built;
let dir: { path: string; remove(): void };
beforeAll(async () => {
  built = await buildCliAsync();
  dir = tempDir('stoker-stacks-');
}, 180_000);
afterAll(() => {
  built?.remove();
  dir?.remove();
});

const PROVIDER = `
heat_template_version: 2016-10-14
parameters:
  word: {type: string}
resources:
  inner: {type: OS::Heat::TestResource, properties: {value: {get_param: word}}}
outputs:
  said: {value: {get_attr: [inner, output]}}
`;

const TEMPLATE = `
heat_template_version: 2016-10-14
description: a small stack
parameters:
  count: {type: number, default: 2}
  password: {type: string, default: correct-horse, hidden: true}
resources:
  speaker: {type: My::Speaker, properties: {word: hello}}
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: {get_param: count}
      resource_def: {type: OS::Heat::TestResource, properties: {value: m-%index%}}
outputs:
  said: {value: {get_attr: [speaker, said]}, description: what the speaker said}
  members: {value: {get_attr: [group, output]}}
`;

describe('stoker stack on SQLite', { concurrent: true }, () => {
  let store: string;
  const cli = (...args: string[]): Promise<CliResult> => runCli(built, [...args, '--store', store], { cwd: dir.path, timeoutMs: 60_000 });
  beforeAll(async () => {
    store = `sqlite:${dir.path}/stacks.db`;
    // only migrate, engine and demo change the schema; stack commands check it
    const migrated = await runCli(built, ['migrate', '--store', store], { cwd: dir.path });
    expect(migrated.code, migrated.stderr).toBe(0);
    writeFile(dir.path, 'stack/web.yaml', TEMPLATE);
    writeFile(dir.path, 'stack/speaker.yaml', PROVIDER);
    writeFile(dir.path, 'stack/env.yaml', 'resource_registry:\n  My::Speaker: speaker.yaml\n');
  });

  it.sequential(
    'creates, shows, updates and deletes a stack with the openstack client shapes',
    async () => {
      const created = await cli('stack', 'create', 'web', '-t', 'stack/web.yaml', '-e', 'stack/env.yaml', '--wait', '-f', 'json');
      expect(created.code, created.stderr).toBe(0);
      expect(json<{ stack_status: string }>(created).stack_status).toBe('CREATE_COMPLETE');
      expect(created.stderr).toContain('[web]: CREATE_COMPLETE  Stack CREATE completed successfully');

      const shown = json<Record<string, unknown>>(await cli('stack', 'show', 'web', '-f', 'json'));
      for (const key of [
        'id',
        'stack_name',
        'stack_status',
        'stack_status_reason',
        'parameters',
        'outputs',
        'creation_time',
        'updated_time',
        'parent',
        'disable_rollback',
        'timeout_mins',
        'tags',
      ]) {
        expect(shown).toHaveProperty(key);
      }
      expect((shown['parameters'] as Record<string, string>)['password']).toBe('******');
      expect(JSON.stringify(shown)).not.toContain('correct-horse');
      expect(shown['outputs']).toEqual([
        { output_key: 'said', output_value: 'hello', description: 'what the speaker said' },
        { output_key: 'members', output_value: ['m-0', 'm-1'], description: 'No description given' },
      ]);
      expect(json(await cli('stack', 'output', 'show', 'web', 'said', '-f', 'json'))).toEqual({
        output_key: 'said',
        output_value: 'hello',
        description: 'what the speaker said',
      });
      const resources = json<Record<string, string>[]>(await cli('stack', 'resource', 'list', 'web', '-f', 'json'));
      expect(resources.map((r) => Object.keys(r))[0]).toEqual([
        'resource_name',
        'physical_resource_id',
        'resource_type',
        'resource_status',
        'updated_time',
      ]);
      expect(resources.map((r) => [r['resource_name'], r['resource_type'], r['resource_status']]).sort()).toEqual([
        ['group', 'OS::Heat::ResourceGroup', 'CREATE_COMPLETE'],
        ['speaker', 'My::Speaker', 'CREATE_COMPLETE'],
      ]);
      const nested = json<Record<string, string>[]>(await cli('stack', 'resource', 'list', 'web', '--nested-depth', '1', '-f', 'json'));
      expect(nested.map((r) => r['resource_name']).sort()).toEqual(['0', '1', 'group', 'inner', 'speaker']);
      const res = json<Record<string, unknown>>(await cli('stack', 'resource', 'show', 'web', 'speaker', '-f', 'json'));
      expect(res['attributes']).toMatchObject({ said: 'hello' });
      expect(res['resource_status_reason']).toBe('state changed');
      expect(res).toHaveProperty('required_by');
      const events = json<Record<string, string>[]>(await cli('stack', 'event', 'list', 'web', '-f', 'json'));
      expect(Object.keys(events[0]!)).toEqual([
        'id',
        'resource_name',
        'resource_status',
        'resource_status_reason',
        'event_time',
        'physical_resource_id',
      ]);
      expect(events.at(-1)!['resource_status']).toBe('CREATE_COMPLETE');
      expect((await cli('stack', 'template', 'show', 'web')).stdout).toContain('heat_template_version');
      expect((await cli('stack', 'environment', 'show', 'web')).stdout).toContain('My::Speaker: speaker.yaml');

      const preview = json<Record<string, string[]>>(
        await cli('stack', 'update', 'web', '--existing', '--parameter', 'count=3', '--dry-run', '-f', 'json'),
      );
      expect(preview['updated']).toEqual(['group']);
      const updated = await cli('stack', 'update', 'web', '--existing', '--parameter', 'count=3', '--wait', '-f', 'json');
      expect(updated.code, updated.stderr).toBe(0);
      const after = json<{ outputs: { output_key: string; output_value: unknown }[] }>(await cli('stack', 'show', 'web', '-f', 'json'));
      expect(after.outputs.find((o) => o.output_key === 'members')!.output_value).toEqual(['m-0', 'm-1', 'm-2']);

      const list = await cli('stack', 'list', '-f', 'value', '-c', 'Stack Name', '-c', 'Stack Status');
      expect(list.stdout).toBe('web UPDATE_COMPLETE\n');
      const deleted = await cli('stack', 'delete', 'web', '--yes', '--wait');
      expect(deleted.code, deleted.stderr).toBe(0);
      expect((await cli('stack', 'list', '-f', 'value')).stdout).toBe('');
      const gone = await cli('stack', 'show', 'web');
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toContain('The Stack (web) could not be found');
    },
    120_000,
  );

  it.sequential(
    'runs resource types of a --plugins module (examples/resource-types.ts), and refuses a broken one',
    async () => {
      const records = `${dir.path}/records.json`;
      writeFile(
        dir.path,
        'plugin/rec.yaml',
        `heat_template_version: 2016-10-14
resources:
  greeting: {type: Example::File::Record, properties: {file: ${records}, text: hello}}
outputs:
  text: {value: {get_attr: [greeting, text]}}
`,
      );
      const plugins = join(ROOT, 'examples', 'resource-types.ts');
      const without = await cli('stack', 'create', 'nope', '-t', 'plugin/rec.yaml');
      expect(without.code).not.toBe(0);
      expect(without.stderr).toContain('Example::File::Record');
      const created = await cli('stack', 'create', 'rec', '-t', 'plugin/rec.yaml', '--plugins', plugins, '--wait', '-f', 'json');
      expect(created.code, created.stderr).toBe(0);
      const stored = JSON.parse(readFileSync(records, 'utf8')) as Record<string, { text: string }>;
      expect(Object.values(stored).map((r) => r.text)).toEqual(['hello']);
      const shown = json<{ outputs: { output_value: unknown }[] }>(await cli('stack', 'show', 'rec', '-f', 'json', '--plugins', plugins));
      expect(shown.outputs[0]!.output_value).toBe('hello');
      const deleted = await cli('stack', 'delete', 'rec', '--yes', '--wait', '--plugins', plugins);
      expect(deleted.code, deleted.stderr).toBe(0);
      expect(JSON.parse(readFileSync(records, 'utf8'))).toEqual({});
      writeFile(dir.path, 'plugin/broken.ts', 'export default [{ type: 42 }];\n');
      const broken = await cli('stack', 'list', '--plugins', `${dir.path}/plugin/broken.ts`);
      expect(broken.code).toBe(7);
      expect(broken.stderr).toContain('STOKER_PLUGINS_MODULE_INVALID');
    },
    120_000,
  );

  it.sequential(
    'refuses bad templates with the file, line and field, a non-zero exit and no stack',
    async () => {
      writeFile(dir.path, 'bad/yaml.yaml', 'heat_template_version: 2016-10-14\nresources:\n  a: [unclosed\n');
      writeFile(dir.path, 'bad/type.yaml', 'heat_template_version: 2016-10-14\nresources:\n  a:\n    type: No::Such\n');
      writeFile(
        dir.path,
        'bad/cycle.yaml',
        'heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::None, depends_on: b}\n  b: {type: OS::Heat::None, depends_on: a}\n',
      );
      writeFile(
        dir.path,
        'bad/param.yaml',
        'heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::Value, properties: {value: {get_param: nope}}}\n',
      );
      writeFile(
        dir.path,
        'bad/file.yaml',
        'heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::Value, properties: {value: {get_file: ../../etc/passwd}}}\n',
      );
      const expectations: [string, RegExp][] = [
        ['bad/yaml.yaml', /bad\/yaml\.yaml line \d/],
        ['bad/type.yaml', /No::Such/],
        ['bad/cycle.yaml', /[Cc]ircular|cycle/],
        ['bad/param.yaml', /resources\.a\.properties.*nope|nope/],
        ['bad/file.yaml', /outside|etc\/passwd/],
      ];
      for (const [file, message] of expectations) {
        const r = await cli('stack', 'create', 'broken', '-t', file);
        expect(r.code, `${file}: ${r.stderr}`).not.toBe(0);
        expect(r.stderr).toMatch(message);
        expect((await cli('stack', 'list', '-f', 'value')).stdout).toBe('');
      }
      writeFile(
        dir.path,
        'bad/fails.yaml',
        'heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::TestResource, properties: {fail: true}}\n',
      );
      const failed = await cli('stack', 'create', 'fails', '-t', 'bad/fails.yaml', '--disable-rollback', '--wait');
      expect(failed.code).toBe(3);
      expect(failed.stderr).toContain('CREATE_FAILED');
    },
    120_000,
  );
});

const GROUP = (n: number, waitSecs: number, deleteSecs = waitSecs) => `
heat_template_version: 2016-10-14
parameters:
  value: {type: string, default: one}
resources:
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: ${n}
      resource_def:
        type: OS::Heat::TestResource
        properties: {value: {get_param: value}, action_wait_secs: {create: ${waitSecs}, update: ${waitSecs}, delete: ${deleteSecs}}}
outputs:
  values: {value: {get_attr: [group, output]}}
`;

for (const dialect of testDialects().filter((d) => d !== 'mysql')) {
  describe(`two stoker engine processes on ${dialect}`, { concurrent: true }, () => {
    let db: TestStore | null = null;
    let url: string;
    const cli = (...args: string[]) => runCli(built, [...args, '--store', url], { cwd: dir.path, timeoutMs: 120_000 });
    const engines: ReturnType<typeof startCli>[] = [];
    const startEngine = async () => {
      const e = startCli(built, ['engine', '--store', url, '--concurrency', '8', '--stats-ms', '0'], {
        cwd: dir.path,
      });
      engines.push(e);
      await waitUntil(() => e.output.stderr.includes('started on'), 30_000, 'engine start');
      return e;
    };
    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (!db) return;
      url = db.url;
      writeFile(dir.path, `group-${dialect}.yaml`, GROUP(500, 0.3, 0.3));
      await startEngine();
      await startEngine();
    }, 120_000);
    afterAll(async () => {
      for (const e of engines) if (e.exitCode === null) e.kill('SIGKILL');
      await Promise.all(engines.map((e) => e.exited));
      await db?.drop();
    });
    const show = async (name: string) =>
      json<{ stack_status: string; outputs?: { output_value: unknown }[] }>(await cli('stack', 'show', name, '-f', 'json'));
    const settle = async (name: string, timeoutMs = 120_000) => {
      let last = '';
      await waitUntil(
        async () => {
          const r = await cli('stack', 'show', name, '-f', 'json');
          if (r.code !== 0) return (last = 'gone') === 'gone';
          last = json<{ stack_status: string }>(r).stack_status;
          return !last.endsWith('IN_PROGRESS');
        },
        timeoutMs,
        `stack ${name} to settle`,
      );
      return last;
    };
    const completed = async (name: string): Promise<number> => {
      const r = await cli('stack', 'resource', 'list', name, '--nested-depth', '1', '-f', 'json');
      return json<{ resource_status: string }[]>(r).filter((x) => x.resource_status === 'CREATE_COMPLETE').length;
    };

    it.sequential(
      'a 500-resource create survives kill -9 of an engine in the middle, and so does its delete',
      async (ctx) => {
        if (!db) return ctx.skip();
        const started = await cli('stack', 'create', 'big', '-t', `group-${dialect}.yaml`, '-f', 'json');
        expect(started.code, started.stderr).toBe(0);
        const id = json<{ id: string }>(started).id;
        await waitUntil(async () => (await completed('big')) >= 20, 120_000, '20 members created');
        const victim = engines[0]!;
        victim.kill('SIGKILL');
        // killed in the middle: the create was still going
        expect((await show('big')).stack_status).toBe('CREATE_IN_PROGRESS');
        expect(await completed('big')).toBeLessThan(500);
        expect(await settle('big')).toBe('CREATE_COMPLETE');
        const values = (await show('big')).outputs![0]!.output_value as string[];
        expect(values).toHaveLength(500);
        expect(new Set(values)).toEqual(new Set(['one']));
        await startEngine();

        const del = await cli('stack', 'delete', 'big', '--yes');
        expect(del.code, del.stderr).toBe(0);
        await waitUntil(
          async () => {
            const left = json<unknown[]>(await cli('stack', 'resource', 'list', 'big', '--nested-depth', '1', '-f', 'json'));
            return left.length <= 480;
          },
          120_000,
          '20 members deleted',
        );
        engines[1]!.kill('SIGKILL');
        expect(await settle(id)).toBe('DELETE_COMPLETE');
        expect((await cli('stack', 'show', 'big')).code).not.toBe(0);
        await startEngine();
      },
      300_000,
    );

    it.sequential(
      'concurrent updates from two clients: the newer wins, every resource ends consistent',
      async (ctx) => {
        if (!db) return ctx.skip();
        writeFile(dir.path, `small-${dialect}.yaml`, GROUP(20, 0.2));
        expect((await cli('stack', 'create', 'race', '-t', `small-${dialect}.yaml`)).code).toBe(0);
        expect(await settle('race')).toBe('CREATE_COMPLETE');
        const first = await cli('stack', 'update', 'race', '--existing', '--parameter', 'value=two');
        expect(first.code, first.stderr).toBe(0);
        await new Promise((r) => setTimeout(r, 300));
        const second = await cli('stack', 'update', 'race', '--existing', '--parameter', 'value=three');
        expect(second.code, second.stderr).toBe(0);
        expect(await settle('race')).toBe('UPDATE_COMPLETE');
        const values = (await show('race')).outputs![0]!.output_value as string[];
        expect(values).toEqual(Array.from({ length: 20 }, () => 'three'));
        const nested = json<{ resource_status: string }[]>(
          await cli('stack', 'resource', 'list', 'race', '--nested-depth', '1', '-f', 'json'),
        );
        expect(nested.every((r) => r.resource_status.endsWith('_COMPLETE'))).toBe(true);
      },
      300_000,
    );
  });
}
