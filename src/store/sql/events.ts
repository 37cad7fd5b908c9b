/**
 * The shared form of event rows: multi-row INSERTs of {@link SqlDialect.rowsPerInsert}
 * rows, in the order given (ids grow with it). PostgreSQL writes them as one unnest
 * statement instead (src/store/postgres/batches.ts).
 */
import { toJsonText } from '../rows.js';
import type { EventInput } from '../types.js';
import { chunks } from './chunks.js';
import type { SqlDialect } from './dialect.js';
import { textCache } from './binder.js';
import type { SqlSession } from './driver.js';

/** the text for each number of rows (at most rowsPerInsert of them per dialect) */
const texts = textCache();

export async function insertEventRows(d: SqlDialect, s: SqlSession, events: readonly EventInput[]): Promise<void> {
  for (const chunk of chunks(events, d.rowsPerInsert)) {
    if (chunk.length === 0) continue;
    const text = texts(d, chunk.length, (b) => {
      const rows = chunk.map(
        () =>
          `(${b.bind('runId')}, ${b.bind('atom')}, ${b.bind('kind')}, ${b.bind('fromState')}, ${b.bind('toState')}, ` +
          `${b.bind('engineId')}, ${b.bind('epoch')}, ${d.json(b, 'data')}, ${d.now})`,
      );
      return `INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at) VALUES ${rows.join(', ')}`;
    });
    const params: unknown[] = [];
    for (const e of chunk) {
      params.push(
        e.runId,
        e.atom,
        e.kind,
        e.fromState ?? null,
        e.toState ?? null,
        e.engineId ?? null,
        e.epoch ?? null,
        toJsonText(e.data ?? null),
      );
    }
    await s.exec('insert events', text, params);
  }
}
