/**
 * Update-in-place versus replacement, as Heat decides: update_allowed, immutable (an error,
 * not a replacement), the type's own rule (TestResource's update_replace), a FAILED resource,
 * and OS::Heat::None which is never updated.
 */
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../../../src/core/json.js';
import { isStokerError } from '../../../../src/errors.js';
import {
  ResourceFailure,
  needsReplacement,
  resourceStatusReason,
  supported,
  validateProperties,
  type ResourceType,
} from '../../../../src/orchestration/resources/index.js';
import { harness } from './helpers.js';

const h = harness();
const decide = (typeName: string, before: JsonObject, after: JsonObject, failed = false) => {
  const type = h.type(typeName);
  return needsReplacement(type, validateProperties(type, before, 'resources.r'), validateProperties(type, after, 'resources.r'), {
    resourceName: 'r',
    failed,
  });
};

describe('needsReplacement', () => {
  it('nothing changed (defaults count as given): no update', () => {
    expect(decide('OS::Heat::TestResource', {}, { value: 'test_string', fail: false })).toEqual({ action: 'none', changed: [] });
    // Python equality: 1 == 1.0 == True
    expect(decide('OS::Heat::TestResource', { wait_secs: 1 }, { wait_secs: '1' })).toEqual({ action: 'none', changed: [] });
  });

  it('update_allowed properties update in place (case 003)', () => {
    expect(decide('OS::Heat::TestResource', { value: 'test_in_place' }, { value: 'test_in_place_update' })).toEqual({
      action: 'update',
      changed: ['value'],
    });
    expect(decide('OS::Heat::Value', { value: 1 }, { value: [1], type: 'comma_delimited_list' })).toEqual({
      action: 'update',
      changed: ['value', 'type'],
    });
  });

  it('TestResource: a changed value with update_replace true replaces it (case 004); update_replace alone does not', () => {
    expect(decide('OS::Heat::TestResource', { value: 'a', update_replace: false }, { value: 'b', update_replace: true })).toEqual({
      action: 'replace',
      changed: ['value', 'update_replace'],
    });
    expect(decide('OS::Heat::TestResource', { value: 'a' }, { value: 'a', update_replace: true }).action).toBe('update');
  });

  it('a property that is not update_allowed replaces (RandomString salt, case 073; update_replace_value)', () => {
    expect(decide('OS::Heat::RandomString', { salt: 'one' }, { salt: 'two' })).toEqual({ action: 'replace', changed: ['salt'] });
    expect(decide('OS::Heat::TestResource', {}, { update_replace_value: 'x' }).action).toBe('replace');
    expect(decide('OS::Heat::SoftwareConfig', { config: 'a' }, { config: 'b' }).action).toBe('replace');
  });

  it('a FAILED resource is replaced, changed or not, and so is one never created', () => {
    expect(decide('OS::Heat::TestResource', { value: 'a' }, { value: 'a' }, true)).toEqual({ action: 'replace', changed: [] });
    const type = h.type('OS::Heat::Value');
    const props = validateProperties(type, { value: 1 }, 'resources.v');
    expect(needsReplacement(type, props, props, { absent: true }).action).toBe('replace');
  });

  it('OS::Heat::None is never updated nor replaced', () => {
    expect(decide('OS::Heat::None', { a: 1 }, { b: 2 }, true)).toEqual({ action: 'none', changed: [] });
  });

  it('a changed immutable property fails the update with NotSupported (nothing is replaced)', () => {
    const locked: ResourceType = {
      ...h.type('OS::Heat::TestResource'),
      type: 'Test::Locked',
      supportStatus: supported(),
      properties: {
        zone: { type: 'string', immutable: true },
        b: { type: 'string', immutable: true },
        note: { type: 'string', updateAllowed: true },
      },
    };
    const before = validateProperties(locked, { zone: 'a', b: 'x', note: 'n' }, 'resources.db');
    const after = validateProperties(locked, { zone: 'b', b: 'y', note: 'm' }, 'resources.db');
    let error: unknown;
    try {
      needsReplacement(locked, before, after, { resourceName: 'db' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ResourceFailure);
    expect(isStokerError(error) && error.code).toBe('STOKER_RESOURCE_FAILED');
    expect(resourceStatusReason(error, 'resources.db')).toBe(
      'NotSupported: resources.db: Update to properties b, zone of db (Test::Locked) is not supported.',
    );
    expect(needsReplacement(locked, before, { ...before, note: 'm' }).action).toBe('update');
  });

  it("words any error as Heat's status reason", () => {
    let invalid: unknown;
    try {
      validateProperties(h.type('OS::Heat::RandomString'), { length: 'x' }, '');
    } catch (e) {
      invalid = e;
    }
    // properties validated again at create time: Heat's StackValidationFailed without the resource in the property path
    expect(resourceStatusReason(invalid, 'resources.r')).toBe(
      "StackValidationFailed: resources.r: Property error: properties.length: Value 'x' is not an integer",
    );
    expect(resourceStatusReason(new TypeError('boom'), 'resources.r')).toBe('TypeError: resources.r: boom');
    expect(resourceStatusReason('odd', '')).toBe('Error: odd');
  });
});
