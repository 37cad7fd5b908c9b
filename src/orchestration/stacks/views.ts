/**
 * Stacks, resources, events and outputs as the OpenStack Orchestration API shows them (and
 * so the `openstack stack` client): the field names and value forms every interface of
 * Stoker prints (the CLI now, the API later). Hidden parameters are always `******`.
 */
import type { JsonObject, JsonValue } from '../../core/json.js';
import { displayParameters, type TemplateInstance } from '../template/index.js';
import type { StackOutput } from './outputs.js';
import type { ResourceRow, StackEventRow, StackRow } from './stack-store.js';

/** Heat's time format: ISO 8601 in UTC without fractions (`2026-12-06T15:50:21Z`). */
export function heatTime(ms: number | null): string | null {
  return ms === null ? null : `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export const stackStatus = (s: { action: string; status: string }): string => `${s.action}_${s.status}`;

/** `stack show` (and the record `stack create|update|delete` print). */
export function stackJson(stack: StackRow, instance: TemplateInstance | null, outputs: readonly StackOutput[] | null): JsonObject {
  const out: JsonObject = {
    id: stack.id,
    stack_name: stack.name,
    description: instance?.template.description ?? 'No description',
    creation_time: heatTime(stack.createdAt),
    updated_time: heatTime(stack.updatedAt),
    deletion_time: heatTime(stack.deletedAt),
    stack_status: stackStatus(stack),
    stack_status_reason: stack.statusReason,
    parameters: instance ? displayParameters(instance.parameters) : {},
    parent: stack.parentId,
    disable_rollback: stack.disableRollback,
    timeout_mins: stack.timeoutMins,
    tags: stack.tags.length > 0 ? stack.tags : null,
    project: stack.project,
  };
  if (outputs !== null) out['outputs'] = outputs.map((o) => ({ ...o }) as unknown as JsonValue);
  return out;
}

/** The columns of `stack list`. */
export const STACK_LIST_COLUMNS = ['ID', 'Stack Name', 'Project', 'Stack Status', 'Creation Time', 'Updated Time'];

export function stackListRow(stack: StackRow): JsonValue[] {
  return [stack.id, stack.name, stack.project, stackStatus(stack), heatTime(stack.createdAt), heatTime(stack.updatedAt)];
}

/** The columns of `stack resource list` (`stack_name` added with --nested-depth). */
export const RESOURCE_LIST_COLUMNS = ['resource_name', 'physical_resource_id', 'resource_type', 'resource_status', 'updated_time'];

export function resourceListRow(row: ResourceRow, stackName?: string): JsonValue[] {
  const values: JsonValue[] = [row.name, row.physicalId ?? '', row.type, stackStatus(row), heatTime(row.updatedAt ?? row.createdAt)];
  if (stackName !== undefined) values.push(stackName);
  return values;
}

/** `stack resource show`. */
export function resourceJson(
  stack: StackRow,
  row: ResourceRow,
  requiredBy: readonly string[],
  attributes: JsonObject,
  description: string | null,
): JsonObject {
  return {
    attributes,
    creation_time: heatTime(row.createdAt),
    description: description ?? '',
    logical_resource_id: row.name,
    physical_resource_id: row.physicalId ?? '',
    required_by: [...requiredBy],
    resource_name: row.name,
    resource_status: stackStatus(row),
    resource_status_reason: row.statusReason,
    resource_type: row.type,
    stack_name: stack.name,
    updated_time: heatTime(row.updatedAt ?? row.createdAt),
  };
}

/** The columns of `stack event list -f json|table`. */
export const EVENT_LIST_COLUMNS = [
  'id',
  'resource_name',
  'resource_status',
  'resource_status_reason',
  'event_time',
  'physical_resource_id',
];

export function eventListRow(e: StackEventRow): JsonValue[] {
  return [String(e.id), e.resourceName, e.status, e.reason, heatTime(e.createdAt), e.physicalId ?? ''];
}

/** One line of the event log (`stack event list`'s default format, and `--wait`'s progress). */
export function eventLogLine(e: StackEventRow, stackName?: string): string {
  const who = stackName !== undefined && e.resourceName !== stackName ? `${stackName}.${e.resourceName}` : e.resourceName;
  return `${heatTime(e.createdAt)} [${who}]: ${e.status}  ${e.reason}`;
}
