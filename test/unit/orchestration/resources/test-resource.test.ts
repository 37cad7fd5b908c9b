/**
 * OS::Heat::TestResource: create, update, delete, attributes, waits, failures and idempotent
 * re-execution, against Heat's test_resource.py behaviour.
 */
import { describe, expect, it } from 'vitest';
import {
  ResourceFailure,
  isReplace,
  physicalResourceName,
  referenceId,
  resolveAllAttributes,
  resolveAttribute,
  resourceStatusReason,
  showAttributes,
} from '../../../../src/orchestration/resources/index.js';
import type { JsonObject } from '../../../../src/core/json.js';
import { harness } from './helpers.js';

async function failure(p: Promise<unknown>): Promise<ResourceFailure> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ResourceFailure) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

describe('OS::Heat::TestResource', () => {
  it('create stores the value under a physical name, waits wait_secs, and resolves output', async () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const ctx = h.ctx(type, { value: 'test_in_place', wait_secs: 1 }, { resourceName: 'test1' });
    const result = await type.create(ctx);
    expect(result).toEqual({ physicalId: physicalResourceName('web', 'test1', ctx.idempotencyKey), data: { value: 'test_in_place' } });
    expect(result.physicalId).toMatch(/^web-test1-[a-z2-7]{12}$/);
    expect(h.sleeps).toEqual([1000]);
    const stored = { ...ctx, ...result };
    expect(await resolveAttribute(type, 'output', stored)).toBe('test_in_place');
    expect(await resolveAllAttributes(type, stored)).toEqual({ output: 'test_in_place' });
    expect(await showAttributes(type, stored)).toEqual({ output: 'test_in_place', show: null });
    expect(referenceId(type, stored)).toBe(result.physicalId);
    await expect(resolveAttribute(type, 'nope', stored)).rejects.toThrow('The Referenced Attribute (test1 nope) is incorrect.');
  });

  it('waits per action: action_wait_secs for the action, else wait_secs; a negative time waits until aborted', async () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    await type.create(h.ctx(type, { wait_secs: 2, action_wait_secs: { create: 0.5 } }));
    await type.delete(h.ctx(type, { wait_secs: 2, action_wait_secs: { create: 0.5 } }));
    await type.create(h.ctx(type, { wait_secs: 0 }));
    await type.create(h.ctx(type, { wait_secs: -1 }));
    expect(h.sleeps).toEqual([500, 2000, Infinity]);
  });

  it("fail: nothing stored, the wait, then Heat's ValueError (case 001)", async () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const ctx = h.ctx(
      type,
      { value: 'test_create_rollback', fail: true, wait_secs: 1, action_wait_secs: { create: 1 } },
      { resourceName: 'test1' },
    );
    const e = await failure(type.create(ctx));
    expect(h.sleeps).toEqual([1000]);
    expect(e.code).toBe('STOKER_RESOURCE_FAILED');
    expect(resourceStatusReason(e, 'resources.test1')).toBe('ValueError: resources.test1: Test Resource failed test1');
    // a rollback deletes it: the delete waits and never fails
    await expect(type.delete(ctx)).resolves.toBeUndefined();
    expect(referenceId(type, { ...ctx, physicalId: null })).toBe('test1');
  });

  it('update stores a changed value in place and waits the update time (case 003)', async () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const created = h.ctx(type, { value: 'a', action_wait_secs: { update: 3 } });
    const result = await type.create(created);
    const stored = { ...created, ...result };
    const update = h.updateCtx(type, stored, { value: 'b', action_wait_secs: { update: 3 } });
    expect(update.changed).toEqual(['value']);
    const updated = await type.update(update);
    expect(isReplace(updated)).toBe(false);
    expect(updated).toEqual({ physicalId: result.physicalId, data: { value: 'b' } });
    expect(h.sleeps).toEqual([3000]);
  });

  it('update: an empty new value or an unrelated change completes at once and keeps the value', async () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const stored = { ...h.ctx(type, { value: 'a', wait_secs: 5 }), physicalId: 'p', data: { value: 'a' } };
    expect(await type.update(h.updateCtx(type, stored, { value: '', wait_secs: 5 }))).toEqual({ physicalId: 'p', data: { value: 'a' } });
    expect(await type.update(h.updateCtx(type, stored, { value: 'a', wait_secs: 6 }))).toEqual({ physicalId: 'p', data: { value: 'a' } });
    expect(h.sleeps).toEqual([]);
  });

  it('update with fail: true fails after its wait, keeping the old value', async () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const stored = { ...h.ctx(type, { value: 'a' }, { resourceName: 'test1' }), physicalId: 'p', data: { value: 'a' } };
    const e = await failure(type.update(h.updateCtx(type, stored, { value: 'b', fail: true, wait_secs: 2 })));
    expect(e.message).toBe('Test Resource failed test1');
    expect(h.sleeps).toEqual([2000]);
  });

  it('attr_wait_secs delays resolving output', async () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const ctx = { ...h.ctx(type, { attr_wait_secs: 2 }), data: { value: 'v' } };
    expect(await resolveAttribute(type, 'output', ctx)).toBe('v');
    expect(h.sleeps).toEqual([2000]);
  });

  it('creates at once (one write, docs/orchestration.md) only without a create wait, a failure or an attribute wait', () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const atOnce = (raw: JsonObject) => type.createsAtOnce!(h.ctx(type, raw).properties);
    expect(atOnce({ value: 'x' })).toBe(true);
    expect(atOnce({ value: 'x', action_wait_secs: { update: 5 }, attr_wait_secs: -1 })).toBe(true);
    expect(atOnce({ wait_secs: 1 })).toBe(false);
    expect(atOnce({ wait_secs: -1 })).toBe(false);
    expect(atOnce({ action_wait_secs: { create: 2 } })).toBe(false);
    expect(atOnce({ wait_secs: 3, action_wait_secs: { create: 0 } })).toBe(true);
    expect(atOnce({ fail: true })).toBe(false);
    expect(atOnce({ attr_wait_secs: 1 })).toBe(false);
  });

  it('updates at once (one write) only without an update wait, a failure or an attribute wait', () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const atOnce = (raw: JsonObject) => type.updatesAtOnce!(h.ctx(type, raw).properties);
    expect(atOnce({ value: 'x' })).toBe(true);
    expect(atOnce({ value: 'x', action_wait_secs: { create: 5, delete: 3 } })).toBe(true);
    expect(atOnce({ wait_secs: 1 })).toBe(false);
    expect(atOnce({ action_wait_secs: { update: -1 } })).toBe(false);
    expect(atOnce({ wait_secs: 3, action_wait_secs: { update: 0 } })).toBe(true);
    expect(atOnce({ fail: true })).toBe(false);
    expect(atOnce({ attr_wait_secs: 2 })).toBe(false);
  });

  it('re-executing a create with the same key gives the same physical id; another key another one', async () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    const ctx = h.ctx(type, { value: 'x' });
    const first = await type.create(ctx);
    expect(await type.create(ctx)).toEqual(first);
    const replacement = await type.create({ ...ctx, idempotencyKey: 'run-2/create.r/1' });
    expect(replacement.physicalId).not.toBe(first.physicalId);
  });

  it('accepts every property of Heat 19, client_name and entity_name included', () => {
    const h = harness();
    const type = h.type('OS::Heat::TestResource');
    expect(
      h.ctx(type, {
        value: 'v',
        update_replace: false,
        update_replace_value: 'u',
        fail: false,
        wait_secs: 0,
        action_wait_secs: { create: 1, update: 2, delete: 3 },
        attr_wait_secs: 0,
        client_name: 'nova',
        entity_name: 'servers',
        constraint_prop_secs: 0,
      }).properties['action_wait_secs'],
    ).toEqual({ create: 1, update: 2, delete: 3 });
  });
});
