/**
 * OS::Heat::Value, OS::Heat::None and OS::Heat::Delay, and aborts: waits end with the abort
 * reason as soon as the stack is cancelled, timed out or the engine shuts down.
 */
import { describe, expect, it } from 'vitest';
import {
  abortableSleep,
  isReplace,
  referenceId,
  resolveAllAttributes,
  resolveAttribute,
  showAttributes,
  validateProperties,
} from '../../../../src/orchestration/resources/index.js';
import type { JsonObject } from '../../../../src/core/json.js';
import { harness } from './helpers.js';

const message = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as Error).message;
  }
};

describe('OS::Heat::Value', () => {
  it('exposes its value property, of any type, as the attribute value (case 054)', async () => {
    const h = harness();
    const type = h.type('OS::Heat::Value');
    const ctx = h.ctx(type, { value: { blarg: 'wibble', foo: 'bar' } }, { resourceName: 'dict_resource' });
    const result = await type.create(ctx);
    expect(result.physicalId).toMatch(/^web-dict_resource-[a-z2-7]{12}$/);
    const stored = { ...ctx, ...result };
    expect(await resolveAttribute(type, 'value', stored)).toEqual({ blarg: 'wibble', foo: 'bar' });
    expect(await resolveAllAttributes(type, stored)).toEqual({ value: { blarg: 'wibble', foo: 'bar' } });
    expect(referenceId(type, stored)).toBe(result.physicalId);
  });

  it('types the value by `type` as Heat maps HOT parameter types', () => {
    const type = harness().type('OS::Heat::Value');
    const v = (raw: JsonObject) => validateProperties(type, raw, 'resources.v')['value'];
    expect(v({ value: '3', type: 'number' })).toBe(3);
    expect(v({ value: 3, type: 'string' })).toBe('3');
    expect(v({ value: 'true', type: 'boolean' })).toBe(true);
    expect(v({ value: ['a'], type: 'comma_delimited_list' })).toEqual(['a']);
    expect(message(() => v({ value: 'a,b', type: 'comma_delimited_list' }))).toBe(
      `Property error: resources.v.properties.value: "'a,b'" is not a list`,
    );
    expect(message(() => v({ value: [1], type: 'json' }))).toBe('Property error: resources.v.properties.value: "[1]" is not a map');
    expect(message(() => v({ value: 1, type: 'integer' }))).toBe(
      'Property error: resources.v.properties.type: "integer" is not an allowed value [string, number, comma_delimited_list, json, boolean]',
    );
    expect(message(() => v({}))).toBe('Property error: resources.v.properties: Property value not assigned');
  });

  it('updates in place, keeping its physical id', async () => {
    const h = harness();
    const type = h.type('OS::Heat::Value');
    const created = h.ctx(type, { value: 'a' });
    const stored = { ...created, ...(await type.create(created)) };
    const update = h.updateCtx(type, stored, { value: 'b' });
    const result = await type.update(update);
    expect(result).toEqual({ physicalId: stored.physicalId, data: {} });
    expect(await resolveAttribute(type, 'value', { ...update, ...(isReplace(result) ? {} : result) })).toBe('b');
  });
});

describe('OS::Heat::None', () => {
  it('does nothing: a UUID, null for any attribute (case 069), no properties', async () => {
    const h = harness();
    const type = h.type('OS::Heat::None');
    const ctx = h.ctx(type, { anything: ['goes', 'here'] }, { resourceName: 'nothing' });
    const result = await type.create(ctx);
    expect(result.physicalId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await type.create(ctx)).toEqual(result);
    const stored = { ...ctx, ...result };
    expect(await resolveAttribute(type, 'whatever', stored)).toBeNull();
    expect(await resolveAttribute(type, 'show', stored)).toBeNull();
    expect(await showAttributes(type, stored)).toEqual({ show: null });
    expect(await type.update(h.updateCtx(type, stored, { other: 1 }))).toEqual({ physicalId: result.physicalId, data: {} });
    await type.delete(stored);
  });
});

describe('OS::Heat::Delay', () => {
  it('waits min_wait plus a jitter during the chosen actions only', async () => {
    const h = harness();
    const type = h.type('OS::Heat::Delay');
    const ctx = h.ctx(type, { min_wait: 2, max_jitter: 3, jitter_multiplier: 2, actions: ['CREATE', 'SUSPEND'] });
    expect(await type.create(ctx)).toEqual({ physicalId: null, data: {} });
    await type.delete(ctx);
    await type.suspend!(ctx);
    await type.resume!(ctx);
    expect(h.sleeps).toHaveLength(2);
    for (const ms of h.sleeps) {
      expect(ms).toBeGreaterThanOrEqual(2000);
      expect(ms).toBeLessThan(8000);
    }
    // the jitter comes from the key: executing the same step again waits as long
    expect(h.sleeps[0]).toBe(h.sleeps[1]);
    await type.create({ ...ctx, idempotencyKey: 'other' });
    expect(h.sleeps[2]).not.toBe(h.sleeps[0]);
  });

  it('defaults: no wait, CREATE only; nothing to wait during an update', async () => {
    const h = harness();
    const type = h.type('OS::Heat::Delay');
    expect(validateProperties(type, {}, 'resources.d')).toEqual({ min_wait: 0, max_jitter: 0, jitter_multiplier: 1, actions: ['CREATE'] });
    const ctx = h.ctx(type, {});
    await type.create(ctx);
    expect(await type.update(h.updateCtx(type, ctx, { min_wait: 9 }))).toEqual({ physicalId: null, data: {} });
    expect(h.sleeps).toEqual([]);
  });

  it('validates as Heat: non-negative numbers, known actions, a maximum within the stack timeout', () => {
    const type = harness().type('OS::Heat::Delay');
    expect(message(() => validateProperties(type, { min_wait: -1 }, 'resources.d'))).toBe(
      'Property error: resources.d.properties.min_wait: -1 is out of range (min: 0, max: None)',
    );
    expect(message(() => validateProperties(type, { actions: ['UPDATE'] }, 'resources.d'))).toBe(
      `Property error: resources.d.properties.actions: "['UPDATE']" is not an allowed value [CREATE, DELETE, SUSPEND, RESUME]`,
    );
    expect(message(() => validateProperties(type, { min_wait: 3000, max_jitter: 700 }, 'resources.d'))).toBe(
      'OS::Heat::Delay maximum delay 3700.0s exceeds stack timeout.',
    );
    expect(message(() => validateProperties(type, { min_wait: 30 }, 'resources.d', { stackTimeoutSecs: 20 }))).toBe(
      'OS::Heat::Delay maximum delay 30.0s exceeds stack timeout.',
    );
    expect(message(() => validateProperties(type, { min_wait: 30 }, 'resources.d', { stackTimeoutSecs: 20, strict: false }))).toBe('ok');
  });
});

describe('aborts', () => {
  it('abortableSleep waits, and rejects with the reason as soon as the signal aborts', async () => {
    const controller = new AbortController();
    const started = performance.now();
    await abortableSleep(20, controller.signal);
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
    const pending = abortableSleep(Infinity, controller.signal);
    setTimeout(() => controller.abort(new Error('stack cancelled')), 10);
    await expect(pending).rejects.toThrow('stack cancelled');
    await expect(abortableSleep(1, controller.signal)).rejects.toThrow('stack cancelled');
    const plain = new AbortController();
    plain.abort();
    await expect(abortableSleep(1000, plain.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('a TestResource waiting for ever, and a Delay, stop at the abort', async () => {
    const h = harness({ realSleep: true });
    const controller = new AbortController();
    const test = h.type('OS::Heat::TestResource');
    const delay = h.type('OS::Heat::Delay');
    const waiting = test.create(h.ctx(test, { wait_secs: -1 }, { signal: controller.signal }));
    const delaying = delay.create(h.ctx(delay, { min_wait: 600 }, { signal: controller.signal }));
    const timer = setTimeout(() => controller.abort(new Error('engine shutdown')), 20);
    await expect(waiting).rejects.toThrow('engine shutdown');
    await expect(delaying).rejects.toThrow('engine shutdown');
    clearTimeout(timer);
    const attr = { ...h.ctx(test, { attr_wait_secs: 600 }, { signal: controller.signal }), data: { value: 'v' } };
    await expect(resolveAttribute(test, 'output', attr)).rejects.toThrow('engine shutdown');
  });
});
