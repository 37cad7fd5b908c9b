/**
 * MySQL/MariaDB's one-call start (protocol 1, ARCHITECTURE.md): a run without a key has
 * nothing to look up first, so its whole start (the graph row once per content, the run
 * row, its atoms, `run.created`) is one `CALL` of the procedure `start_run` of migration 7
 * (./procedures.ts), as PostgreSQL makes it one statement (src/store/postgres/starts.ts).
 * A keyed start (idempotent, conflicting or superseding) takes the shared transaction
 * (src/store/sql/starts.ts). A start that wakes idle engines (`NewRun.wakeup`, protocol 6)
 * calls `start_run_and_wake` of migration 8 instead: the same start, then the wake-up after
 * its commit, still one round trip (./wakeups.ts).
 *
 * Why: the shared transaction is six round trips here (begin, insert the run, read it
 * back: no RETURNING on UPDATE-capable MySQL forms, insert the atoms, the event, commit).
 * An idle engine cannot start a run before it is committed, so they were most of the
 * latency from `startRun` to the task executing (docs/amqp.md, "Performance").
 *
 * @example
 * ```ts
 * const starts = new MysqlStarts(driver, core);
 * const { run } = await starts.startAlone(newRun);
 * ```
 */
import { canonicalJson } from '../../core/canonical-json.js';
import { StoreError } from '../../errors.js';
import { graphDigest } from '../graphs.js';
import { runFromRow } from '../rows.js';
import type { SqlCore } from '../sql/core.js';
import type { Raw } from '../sql/driver.js';
import type { NewRun, StartOptions, StartResult } from '../types.js';
import type { MysqlDriver } from './mysql-driver.js';

export class MysqlStarts {
  constructor(
    private readonly driver: MysqlDriver,
    private readonly core: SqlCore,
  ) {}

  /**
   * A keyless run in one call; the caller marks its graph committed. `onInserted` is called
   * when the procedure sends the run's row, before its COMMIT (./mysql-driver.ts, `callEarly`).
   */
  async startAlone(run: NewRun, options: StartOptions = {}): Promise<StartResult> {
    const graph = graphDigest(run.graph);
    // protocol 6: a start that makes atoms claimable wakes idle engines after its commit, in the same call
    const wake = (run.wakeup ?? true) && run.graph.atoms.some((a) => a.predecessors.length === 0);
    const procedure = wake ? 'start_run_and_wake' : 'start_run';
    const { onInserted } = options;
    const call = (purpose: string, text: string, params: readonly unknown[]): Promise<Raw[]> =>
      onInserted
        ? this.driver.callEarly(purpose, text, params, 'id', () => onInserted()).then((sets) => sets[0] ?? [])
        : this.driver.call(purpose, text, params);
    const [row] = await call('start a run', `CALL {p}${procedure}(?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      run.id,
      run.flow,
      run.version,
      canonicalJson(run.args),
      graph.hash,
      // the graph's text only until this store has seen it committed
      this.core.graphs.has(graph.hash) ? null : graph.text,
      run.parentRunId ?? null,
      run.parentAtom ?? null,
      JSON.stringify(run.graph.atoms.map((a) => [a.index, a.name, a.predecessors.length])),
    ]);
    if (!row) throw new StoreError('STOKER_STORE_QUERY_FAILED', 'MySQL: start a run returned no row (are migrations 7 and 8 applied?)');
    return { run: runFromRow(row), created: true };
  }
}
