/**
 * Output of the CLI: the JSON views of stored rows (src/views/json.ts, shared with the API)
 * and plain aligned tables for people. Commands pick one by `-f json|table`; nothing else
 * formats output.
 */
import type { JsonValue } from '../core/json.js';
import type { FailureRecord } from '../flow/types.js';
import type { AtomRow, EngineRow, EventRow, RunRow } from '../store/store.js';
import type { LockRow } from '../store/store.js';
import { lockState } from '../views/json.js';

export type OutputFormat = 'json' | 'table';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json'];

/** JSON for stdout: one value, indented, newline-terminated. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (v instanceof Date ? v.toISOString() : v), 2)}\n`;
}

// ------------------------------------------------------------------ text

/** A column of {@link formatTable}. */
export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** cut longer cells with an ellipsis */
  maxWidth?: number;
  align?: 'left' | 'right';
}

function cut(text: string, max: number | undefined): string {
  const one = text.replace(/\s*\n\s*/g, ' ');
  if (max === undefined || one.length <= max) return one;
  return `${one.slice(0, Math.max(1, max - 1))}…`;
}

/**
 * Rows as aligned columns with an upper-case header; the last column is not padded.
 *
 * @example
 * ```ts
 * formatTable([{ header: 'id', value: (r) => r.id }], rows);
 * ```
 */
export function formatTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((r) => columns.map((c) => cut(c.value(r), c.maxWidth)));
  const headers = columns.map((c) => c.header.toUpperCase());
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]): string =>
    values
      .map((v, i) => {
        const last = i === values.length - 1;
        if (columns[i]!.align === 'right') return v.padStart(widths[i]!);
        return last ? v : v.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...cells.map(line)].join('\n')}\n`;
}

/** `label: value` lines with aligned values. */
export function formatRecord(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return `${pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n')}\n`;
}

/** Compact JSON for a table cell (`-` for null). */
export function jsonCell(value: JsonValue | undefined): string {
  if (value === null || value === undefined) return '-';
  return JSON.stringify(value);
}

/** `Type: message`, then each cause as `← Type: message`. */
export function failureText(failure: FailureRecord | null | undefined): string {
  if (!failure) return '-';
  const parts: string[] = [];
  for (let f: FailureRecord | undefined = failure, depth = 0; f && depth < 5; f = f.cause, depth++) {
    parts.push(`${f.type}${f.code ? ` ${f.code}` : ''}: ${f.message}`);
  }
  return parts.join(' ← ');
}

export function dateCell(date: Date | null): string {
  return date === null
    ? '-'
    : date
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

/** 850 ms, 12.3 s, 4 min 5 s, 2 h 3 min. */
export function durationText(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (abs < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

// ------------------------------------------------------------------ tables of stored rows

export const RUN_COLUMNS: readonly Column<RunRow>[] = [
  { header: 'id', value: (r) => r.id },
  { header: 'flow', value: (r) => `${r.flow}@${r.version}` },
  { header: 'status', value: (r) => r.status },
  { header: 'key', value: (r) => r.key ?? '-', maxWidth: 24 },
  { header: 'created', value: (r) => dateCell(r.createdAt) },
  { header: 'took', value: (r) => (r.finishedAt ? durationText(r.finishedAt.getTime() - r.createdAt.getTime()) : '-'), align: 'right' },
  { header: 'failure', value: (r) => (r.failure ? failureText(r.failure) : ''), maxWidth: 60 },
];

export const ATOM_COLUMNS: readonly Column<AtomRow>[] = [
  { header: '#', value: (a) => String(a.index), align: 'right' },
  { header: 'name', value: (a) => a.name },
  {
    header: 'state',
    value: (a) => a.state + (a.waitKind && a.state === 'WAITING' ? ` (${a.waitKind}${a.waitRef ? ` ${a.waitRef}` : ''})` : ''),
  },
  { header: 'attempt', value: (a) => String(a.attempt), align: 'right' },
  { header: 'execution', value: (a) => String(a.execution), align: 'right' },
  // the result when there is one (a retried atom keeps its earlier failure), else the failure
  {
    header: 'result / failure',
    value: (a) => (a.state !== 'SUCCESS' && a.result === null && a.failure ? failureText(a.failure) : jsonCell(a.result)),
    maxWidth: 70,
  },
];

export function eventColumns(atomNames: ReadonlyMap<number, string>, start: Date | null): Column<EventRow>[] {
  return [
    { header: 'at', value: (e) => (start ? `+${durationText(e.at.getTime() - start.getTime())}` : dateCell(e.at)), align: 'right' },
    { header: 'atom', value: (e) => (e.atom === null ? '(run)' : (atomNames.get(e.atom) ?? `#${e.atom}`)) },
    { header: 'event', value: (e) => e.kind },
    { header: 'transition', value: (e) => (e.fromState || e.toState ? `${e.fromState ?? '-'} → ${e.toState ?? '-'}` : '') },
    { header: 'data', value: (e) => (e.data === null ? '' : jsonCell(e.data)), maxWidth: 60 },
  ];
}

export const ENGINE_COLUMNS: readonly Column<EngineRow>[] = [
  { header: 'id', value: (e) => e.id },
  { header: 'host', value: (e) => e.host, maxWidth: 30 },
  { header: 'pid', value: (e) => String(e.pid), align: 'right' },
  { header: 'version', value: (e) => e.version },
  { header: 'lease age', value: (e) => durationText(e.leaseAgeMs), align: 'right' },
  { header: 'atoms held', value: (e) => String(e.atomsHeld), align: 'right' },
  // remote calls no worker has started (docs/amqp.md), and the oldest one's wait
  {
    header: 'queued remotely',
    value: (e) => (e.remoteQueued === 0 ? '-' : `${e.remoteQueued} (oldest ${durationText(e.remoteOldestMs ?? 0)})`),
    align: 'right',
  },
  { header: 'state', value: (e) => e.state },
];

/** The key facts of one run, as `label: value` lines. */
export function runRecord(run: RunRow): string {
  const pairs: [string, string][] = [
    ['id', run.id],
    ['flow', `${run.flow}@${run.version}`],
    ['status', run.status],
    ['key', run.key ?? '-'],
    ['args', jsonCell(run.args)],
    ['result', jsonCell(run.result)],
  ];
  if (run.failure) pairs.push(['failure', failureText(run.failure)]);
  if (run.parentRunId) pairs.push(['parent', `${run.parentRunId} (atom ${run.parentAtom ?? '?'})`]);
  pairs.push(['created', dateCell(run.createdAt)]);
  pairs.push([
    'finished',
    run.finishedAt ? `${dateCell(run.finishedAt)} (took ${durationText(run.finishedAt.getTime() - run.createdAt.getTime())})` : '-',
  ]);
  return formatRecord(pairs);
}

// ------------------------------------------------------------------ locks (docs/locks.md)

export const LOCK_COLUMNS: readonly Column<LockRow>[] = [
  { header: 'name', value: (l) => l.name, maxWidth: 60 },
  { header: 'holder', value: (l) => l.holder, maxWidth: 40 },
  { header: 'token', value: (l) => String(l.token), align: 'right' },
  { header: 'state', value: (l) => lockState(l) },
  {
    header: 'expires',
    value: (l) => (l.held ? `in ${durationText(l.remainingMs)}` : lockState(l) === 'expired' ? dateCell(l.expiresAt) : '-'),
  },
  { header: 'acquired', value: (l) => dateCell(l.acquiredAt) },
];
