/**
 * What `StackStore`'s (./stack-store.ts) step reads return and its one-statement step writes take
 * (docs/orchestration.md, "Performance"): a step's first view, a create by its planned row,
 * an update in place, a step's first write with its hold.
 */
import type { ResourceRow, StackEventRow, StackRow } from './stack-rows.js';

/** What a step reads first: its stack (null when gone) and rows. */
export interface StepView {
  stack: StackRow | null;
  rows: ResourceRow[];
}

/** A write of `StackStore.writeResource`. */
export interface ResourceWrite {
  id: number;
  patch: Partial<ResourceRow>;
  holdToken: string | null | undefined;
  event: Omit<StackEventRow, 'id'> | null;
}

/** A create done in one write (`StackStore.createPlanned`): the planned row (by name), the row's new columns. */
export interface PlannedCreate {
  stackId: string;
  traversal: string;
  name: string;
  run: string;
  atom: string;
  /** the type as written, and the physical id the create made (for the events) */
  type: string;
  physicalId: string | null;
  at: number;
  patch: Partial<ResourceRow>;
}

/** An update in place done in one write (`StackStore.updateInPlace`): the row as the step read it, its new columns. */
export interface InPlaceUpdate {
  stackId: string;
  traversal: string;
  row: ResourceRow;
  /** the type as written, and the physical id after the update (for the events) */
  type: string;
  physicalId: string | null;
  at: number;
  patch: Partial<ResourceRow>;
}

/** A step's first write (`StackStore.startStep`): its row (a create's by name, a delete's by id), its hold. */
export interface StepStart {
  action: 'CREATE' | 'DELETE';
  stackId: string;
  traversal: string;
  name: string;
  rowId?: number;
  /** a create: the type as written */
  type?: string;
  run: string;
  atom: string;
  token: string;
  at: number;
}
