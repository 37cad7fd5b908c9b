/**
 * Heat's wording of failure reasons: an operation's own (`<Error>: resources.<name>: …`) and
 * a nested stack's, carried up through its parent resource with the path extended, never
 * with the nested stack's `Resource <ACTION> failed:` prefix repeated.
 */
import { describe, expect, it } from 'vitest';
import { ResourceFailure, nestedFailureReason, resourceStatusReason } from '../../../../src/orchestration/resources/index.js';

describe('failure reasons', () => {
  it("words an operation's failure with its error class and path", () => {
    expect(resourceStatusReason(new ResourceFailure('ValueError', 'Test Resource failed oops'), 'resources.oops')).toBe(
      'ValueError: resources.oops: Test Resource failed oops',
    );
  });

  it("extends a nested stack's failure with the parent resource's path, numbered members in brackets", () => {
    const member = nestedFailureReason('Resource CREATE failed: ValueError: resources.oops: Test Resource failed oops', '0', 'CREATE');
    expect(member).toBe('ValueError: resources[0].resources.oops: Test Resource failed oops');
    const group = nestedFailureReason(`Resource CREATE failed: ${member}`, 'group1', 'CREATE');
    expect(group).toBe('ValueError: resources.group1.resources[0].resources.oops: Test Resource failed oops');
  });

  it('keeps colons inside the message', () => {
    expect(nestedFailureReason('Resource UPDATE failed: Error: resources.cmd: exit 1: not found', 'app', 'UPDATE')).toBe(
      'Error: resources.app.resources.cmd: exit 1: not found',
    );
  });

  it('puts a reason of another shape after the resource path', () => {
    expect(nestedFailureReason('Timed out', 'group1', 'CREATE')).toBe('resources.group1: Timed out');
    expect(nestedFailureReason('Resource CREATE failed: boom', 'group1', 'CREATE')).toBe('resources.group1: Resource CREATE failed: boom');
    expect(nestedFailureReason('Resource DELETE failed: Error: resources.a: x', 'nest', 'CREATE')).toBe(
      'resources.nest: Resource DELETE failed: Error: resources.a: x',
    );
  });
});
