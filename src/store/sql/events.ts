/**
 * The shared form of event rows: multi-row INSERTs of {@link SqlDialect.rowsPerInsert}
 * rows, in the order given (ids grow with it). PostgreSQL writes them as one unnest
 * statement instead (src/store/postgres/batches.ts).
 */
import { toJsonText } from '../rows.js';
import type { EventInput } from '../types.js';
import { chunks } from './chunks.js';
import type { SqlDialect } from './dialect.js';
import { statement } from './binder.js';
import type { SqlSession } from './driver.js';

export async function insertEventRows(d: SqlDialect, s: SqlSession, events: readonly EventInput[]): Promise<void> {
  for (const chunk of chunks(events, d.rowsPerInsert)) {
    if (chunk.length === 0) continue;
    const st = statement(d, (b) => {
      const rows = chunk.map(
        (e) =>
          `(${b.bind(e.runId)}, ${b.bind(e.atom)}, ${b.bind(e.kind)}, ${b.bind(e.fromState ?? null)}, ${b.bind(e.toState ?? null)}, ` +
          `${b.bind(e.engineId ?? null)}, ${b.bind(e.epoch ?? null)}, ${d.json(b, toJsonText(e.data ?? null))}, ${d.now})`,
      );
      return `INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at) VALUES ${rows.join(', ')}`;
    });
    await s.exec('insert events', st.text, st.params);
  }
}
