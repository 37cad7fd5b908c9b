/**
 * How stored rows become the stack layer's rows (src/orchestration/stacks/stack-rows.ts): the
 * whole-row decoders written out as object literals (resourceOf, stackOf, stackFrom) give
 * what the generic column-by-column decoding gives, field for field and in the same order,
 * for every kind of column (JSON text, integer flags, numbers as text, nulls, absent columns);
 * and the JSON list of a batch of row patches (patchColumns), written as text, holds per entry
 * its fixed fields, the columns its patch sets and their stored values.
 */
import { describe, expect, it } from 'vitest';
import {
  RESOURCE_COLUMNS,
  STACK_COLUMNS,
  encode,
  patchColumns,
  resourceOf,
  resourcePartOf,
  stackFrom,
  stackOf,
  type StackColumnNames,
} from '../../../../src/orchestration/stacks/stack-rows.js';

/** a stored resource row as a driver returns it: numbers as text, flags as integers, JSON as text */
const storedResource = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: '42',
  stack_id: 'st-1',
  name: 'r1',
  generation: '3',
  current_row: 1,
  deleted: 0,
  type: 'OS::Heat::TestResource',
  physical_id: 'g-r1-abc',
  action: 'UPDATE',
  status: 'COMPLETE',
  status_reason: 'state changed',
  properties: '{"value":"two","wait_secs":0}',
  data: '{"value":"two"}',
  attributes: '{"output":"two"}',
  reference: '"g-r1-abc"',
  requires: '["a","b"]',
  metadata: null,
  template_set: 'set-1',
  nested_stack: null,
  hold_run: null,
  hold_atom: null,
  hold_token: null,
  created_at: '1765000000000',
  updated_at: null,
  ...overrides,
});

describe('resource rows', () => {
  it.each([
    ['a completed row', {}],
    [
      'a held row with booleans and numbers as a driver may give them',
      { current_row: true, deleted: '0', generation: 7, hold_run: 'run', hold_atom: 'a', hold_token: 't', updated_at: 5 },
    ],
    [
      'a planned row: null JSON columns and a null reference',
      { attributes: null, reference: 'null', data: '{}', properties: '{}', physical_id: null },
    ],
    ['a row read without some columns', { metadata: undefined, nested_stack: undefined, updated_at: undefined }],
  ])('%s decodes as the generic decoding does, in the same order', (_, overrides) => {
    const stored = storedResource(overrides);
    const generic = resourcePartOf<Record<string, unknown>>(stored, RESOURCE_COLUMNS);
    const literal = resourceOf(stored) as unknown as Record<string, unknown>;
    expect(literal).toStrictEqual(generic);
    expect(Object.keys(literal)).toEqual(Object.keys(generic));
  });
});

describe('stack rows', () => {
  const stored: Record<string, unknown> = {
    id: 'st-1',
    project: 'p',
    name: 'g',
    parent_id: null,
    parent_resource: null,
    action: 'CREATE',
    status: 'IN_PROGRESS',
    status_reason: 'Stack CREATE started',
    tags: '["x"]',
    timeout_mins: null,
    disable_rollback: 1,
    traversal: 'run-1',
    traversal_owner: null,
    run_id: 'run-1',
    template_set: 'set-1',
    previous_set: null,
    created_at: '1765000000000',
    updated_at: '1765000000001',
    deleted_at: null,
  };

  it('decodes every column of STACK_COLUMNS, id first', () => {
    const row = stackOf(stored);
    expect(Object.keys(row)).toEqual(['id', ...Object.keys(STACK_COLUMNS)]);
    expect(row).toStrictEqual({
      id: 'st-1',
      project: 'p',
      name: 'g',
      parentId: null,
      parentResource: null,
      action: 'CREATE',
      status: 'IN_PROGRESS',
      statusReason: 'Stack CREATE started',
      tags: ['x'],
      timeoutMins: null,
      disableRollback: true,
      traversal: 'run-1',
      traversalOwner: null,
      runId: 'run-1',
      templateSet: 'set-1',
      previousSet: null,
      createdAt: 1765000000000,
      updatedAt: 1765000000001,
      deletedAt: null,
    });
  });

  it('reads the same stack from columns under other names (a step view prefixes them)', () => {
    const names = Object.fromEntries(Object.entries(STACK_COLUMNS).map(([f, c]) => [f, `st__${c}`])) as StackColumnNames;
    const prefixed = Object.fromEntries(Object.entries(stored).map(([c, v]) => [`st__${c}`, v]));
    expect(stackFrom(prefixed, names, prefixed['st__id'])).toStrictEqual(stackOf(stored));
    // a column the read did not return decodes as null, as the generic decoding did
    expect(stackFrom({ ...prefixed, st__traversal_owner: undefined }, names, 'st-1').traversalOwner).toBeNull();
  });
});

describe('a batch of row patches', () => {
  it('lists per entry its fixed fields, the columns its patch sets and their stored values', () => {
    const patches = [
      {
        action: 'CREATE',
        status: 'COMPLETE',
        properties: { value: 'a "quoted" \u00e9 value' },
        reference: null,
        current: true,
        updatedAt: 5,
      },
      { holdRun: null, holdToken: 'x', data: {} },
      {},
    ] as const;
    const fixed = [{ ord: 0, name: 'r0', skipped: undefined }, { ord: 1, ev_at: null }, {}];
    const batch = patchColumns(patches as never);
    const expected = patches.map((p, i) => {
      const set = Object.keys(p);
      const values = Object.fromEntries(Object.entries(p).map(([f, v]) => [`c_${columnOf(f)}`, encode(f, v)]));
      return { ...JSON.parse(JSON.stringify(fixed[i])), set: set.map(columnOf), ...values };
    });
    expect(JSON.parse(batch.list(fixed))).toStrictEqual(expected);
    expect(batch.record).toBe(
      'set text[], c_action text, c_status text, c_properties text, c_reference text, c_current_row bigint, c_updated_at bigint, c_hold_run text, c_hold_token text, c_data text',
    );
    expect(batch.set.split(', ')[0]).toBe("action = CASE WHEN 'action' = ANY(v.set) THEN v.c_action ELSE r.action END");
    // a batch of the same fields again: the same statement
    const again = patchColumns(patches as never);
    expect([again.set, again.record]).toEqual([batch.set, batch.record]);
    expect(patchColumns([{}]).set).toBe('id = r.id');
  });
});

const columnOf = (field: string): string => (RESOURCE_COLUMNS as Record<string, string>)[field]!;
