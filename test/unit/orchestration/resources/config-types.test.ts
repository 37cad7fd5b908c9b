/**
 * OS::Heat::SoftwareConfig, CloudConfig and MultipartMime (case 069), and the two pieces of
 * Python they reproduce byte for byte, checked against outputs Python produced:
 * fixtures/pyyaml-csafe-dump.json holds random JSON values with `yaml.dump(value,
 * Dumper=yaml.CSafeDumper)` of PyYAML 6.0.3 on libyaml (what Heat's CloudConfig runs);
 * fixtures/python-email-multipart.json holds MultipartMime part lists with the message
 * Python 3.11's `email` package wrote for them, Heat's way, with the boundary's random number
 * fixed at 123456789012345678.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../../../src/core/json.js';
import { isReplace, pyYamlDump, resolveAttribute, type OperationContext } from '../../../../src/orchestration/resources/index.js';
import { multipartMixed, multipartParts } from '../../../../src/orchestration/resources/types/mime-message.js';
import { harness } from './helpers.js';

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as T;

describe('pyYamlDump against PyYAML (CSafeDumper)', () => {
  const cases = fixture<{ value: JsonValue; yaml: string }[]>('pyyaml-csafe-dump.json');
  it(`writes all ${cases.length} recorded values byte for byte`, () => {
    expect(cases.length).toBeGreaterThan(150);
    for (const c of cases) expect(pyYamlDump(c.value), JSON.stringify(c.value)).toBe(c.yaml);
  });

  it('quotes what YAML 1.1 would read as something else, and folds long lines', () => {
    expect(pyYamlDump({ foo: 'bar' })).toBe('foo: bar\n');
    expect(pyYamlDump({ b: ['yes', 'on', '1.5', '', 'null', '~', 'x'], a: true })).toBe(
      "a: true\nb:\n- 'yes'\n- 'on'\n- '1.5'\n- ''\n- 'null'\n- '~'\n- x\n",
    );
    expect(pyYamlDump({ runcmd: [['echo', 'a b'], { k: [] }] })).toBe('runcmd:\n- - echo\n  - a b\n- k: []\n');
    expect(pyYamlDump({ s: 'café', t: 'a\tb', m: 'one\ntwo' })).toBe('m: \'one\n\n  two\'\ns: "caf\\xE9"\nt: "a\\tb"\n');
    const long = pyYamlDump({ cmd: Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ') });
    expect(long.split('\n')[0]!.length).toBeLessThanOrEqual(90);
    expect(long.split('\n')[1]).toMatch(/^ {2}word/);
    expect(pyYamlDump(null)).toBe('null\n');
    expect(pyYamlDump({})).toBe('{}\n');
  });
});

describe('MIME against Python email', () => {
  const cases =
    fixture<{ items: { config: string; type?: string; filename?: string; subtype?: string }[]; mime: string }[]>(
      'python-email-multipart.json',
    );
  it(`writes all ${cases.length} recorded messages byte for byte (and reads multipart parts back as Python does)`, () => {
    const stem = (n: string) => (/^(.+?)\.[^./]*$/.exec(n)?.[1] && !n.startsWith('.') ? n.slice(0, n.lastIndexOf('.')) : n);
    for (const c of cases) {
      const parts = c.items.flatMap((it) =>
        it.type === 'multipart'
          ? (multipartParts(it.config) ?? []).map((p) => ({ text: p.payload!, subtype: p.subtype, filename: p.filename }))
          : [{ text: it.config, subtype: it.subtype || (it.filename ? stem(it.filename) : ''), filename: it.filename ?? '' }],
      );
      expect(multipartMixed(parts, 123456789012345678n), JSON.stringify(c.items)).toBe(c.mime);
    }
  });
});

describe('the config types', () => {
  async function create(typeName: string, raw: Record<string, JsonValue>, resourceName: string, h = harness()) {
    const type = h.type(typeName);
    const ctx = h.ctx(type, raw, { resourceName, idempotencyKey: `run-1/create.${resourceName}/1` });
    const stored: OperationContext = { ...ctx, ...(await type.create(ctx)) };
    return { h, type, stored, config: await resolveAttribute(type, 'config', stored) };
  }

  it('SoftwareConfig stores its config under a UUID (case 069)', async () => {
    const { h, type, stored, config } = await create(
      'OS::Heat::SoftwareConfig',
      { config: 'xxxx', inputs: [{ name: 'in1', default: 'a' }], outputs: [{ name: 'out1' }] },
      'config',
    );
    expect(config).toBe('xxxx');
    expect(stored.physicalId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await h.configs.get(stored.physicalId!)).toEqual({
      id: stored.physicalId,
      name: expect.stringMatching(/^web-config-[a-z2-7]{12}$/) as unknown as string,
      group: 'Heat::Ungrouped',
      config: 'xxxx',
      inputs: [{ name: 'in1', type: 'String', default: 'a' }],
      outputs: [{ name: 'out1', type: 'String', error_output: false }],
      options: null,
      project: 'demo',
    });
    // executing the create again stores the same config under the same id
    expect(await type.create({ ...stored, physicalId: null })).toEqual({ physicalId: stored.physicalId, data: {} });
    expect(h.configs.size).toBe(1);
    expect(isReplace(await type.update(h.updateCtx(type, stored, { config: 'yyyy' })))).toBe(true);
    expect(
      await type.update(
        h.updateCtx(type, stored, { config: 'xxxx', inputs: [{ name: 'in1', default: 'a' }], outputs: [{ name: 'out1' }] }),
      ),
    ).toEqual({
      physicalId: stored.physicalId,
      data: {},
    });
    await type.delete(stored);
    await type.delete(stored);
    expect(h.configs.size).toBe(0);
    expect(await resolveAttribute(type, 'config', stored)).toBeNull();
  });

  it('CloudConfig writes #cloud-config and the YAML of cloud_config (case 069)', async () => {
    const { config } = await create('OS::Heat::CloudConfig', { cloud_config: { foo: 'bar' } }, 'config_mysql');
    expect(config).toBe('#cloud-config\nfoo: bar\n');
    expect((await create('OS::Heat::CloudConfig', {}, 'empty')).config).toBe('#cloud-config\nnull\n');
  });

  it('MultipartMime joins stored configs and inline text (case 069)', async () => {
    const h = harness();
    const cloud = await create('OS::Heat::CloudConfig', { cloud_config: { foo: 'bar' } }, 'config_mysql', h);
    const soft = await create('OS::Heat::SoftwareConfig', { config: 'xxxx' }, 'config', h);
    const mime = await create(
      'OS::Heat::MultipartMime',
      { parts: [{ config: cloud.stored.physicalId }, { config: soft.stored.physicalId, type: 'text' }] },
      'mime',
      h,
    );
    const text = String(mime.config);
    expect(text).toMatch(/^Content-Type: multipart\/mixed; boundary="={15}\d{19}=="\nMIME-Version: 1\.0\n\n--/);
    for (const piece of ['#cloud-config', 'foo: bar', 'xxxx']) expect(text).toContain(piece);
    expect(multipartParts(text)).toEqual([
      { payload: '#cloud-config\nfoo: bar\n', subtype: 'plain', filename: null },
      { payload: 'xxxx', subtype: 'plain', filename: null },
    ]);
    // the same key writes the same message (its boundary comes from the key)
    const again = await mime.type.create({ ...mime.stored, physicalId: null });
    expect(await resolveAttribute(mime.type, 'config', { ...mime.stored, ...again })).toBe(text);
  });

  it('MultipartMime: multipart parts are split, an unknown id stays text, filename gives the subtype', async () => {
    const h = harness();
    const inner = await create(
      'OS::Heat::MultipartMime',
      { parts: [{ config: 'one', filename: 'boot.sh' }, { config: 'two' }] },
      'inner',
      h,
    );
    const outer = await create(
      'OS::Heat::MultipartMime',
      {
        parts: [
          { config: inner.stored.physicalId, type: 'multipart' },
          { config: '00000000-0000-4000-8000-000000000000' },
          { config: 'not mime', type: 'multipart' },
        ],
        group: 'script',
      },
      'outer',
      h,
    );
    expect(multipartParts(String(outer.config))).toEqual([
      { payload: 'one', subtype: 'boot', filename: 'boot.sh' },
      { payload: 'two', subtype: 'plain', filename: null },
      { payload: '00000000-0000-4000-8000-000000000000', subtype: 'plain', filename: null },
    ]);
    expect((await h.configs.get(outer.stored.physicalId!))?.group).toBe('script');
  });

  it('MultipartMime validates its parts as Heat', () => {
    const h = harness();
    const type = h.type('OS::Heat::MultipartMime');
    expect(() => h.ctx(type, { parts: [{ type: 'text' }] })).toThrow(
      'Property error: resources.r.properties.parts[0]: Property config not assigned',
    );
    expect(() => h.ctx(type, { parts: [{ config: 'a', type: 'html' }] })).toThrow(
      'Property error: resources.r.properties.parts[0].type: "html" is not an allowed value [text, multipart]',
    );
  });
});
