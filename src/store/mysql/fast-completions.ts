/**
 * The claim and the common completions on MySQL/MariaDB, one round trip each: a `CALL` of
 * a stored procedure of migration 5, the claim as migration 7 redefined it (./procedures.ts
 * says what each keeps of protocols 2 and 3, and how).
 *
 * Why: MariaDB has no data-changing CTE, so PostgreSQL's one-statement forms
 * (src/store/postgres/fast-success.ts) cannot be written here, and the general path costs a
 * round trip per statement: a linear flow's completion was 12 (begin, run lock, fenced
 * write, successor lock, decrement, read back, local claim, read back, run update, read
 * back, events, commit), a claim 6. On this 2-core machine a round trip costs about what a
 * commit does, so a linear flow ran at 0.13 of the rate at which MariaDB commits one-row
 * UPDATEs from one client (bench/results). A procedure runs the same statements inside the
 * server: one round trip, and one commit.
 *
 * As on PostgreSQL, what a procedure cannot do it leaves unwritten (fence missed, run
 * about to end or not PENDING/RUNNING, parent to wake) and the caller takes the general
 * transaction, which handles every case. A deadlock or lock wait timeout rolled the
 * procedure's transaction back before it was raised: the call is made again whole.
 *
 * @example
 * ```ts
 * const fast = new MysqlFastCompletions(driver);
 * const r = await fast.completeSuccess({ runId, index: 0, epoch: 1, result: 42, journal: [],
 *   successors: [1], claim: 1, engineId: 'e1' });
 * ```
 */
import type { JsonValue } from '../../core/json.js';
import { StoreError } from '../../errors.js';
import type { FastCompletions } from '../ports.js';
import { claimFromRow, runFromRow } from '../rows.js';
import type {
  ClaimOptions,
  ClaimedAtom,
  FastBatchResult,
  FastFinish,
  FastFinishResult,
  FastSuccess,
  FastSuccessBatch,
  FastSuccessResult,
  JournalEntry,
} from '../types.js';
import type { Raw } from '../sql/driver.js';
import type { MysqlDriver } from './mysql-driver.js';

/** A claim as the procedures return it: `[run_id, idx, state, epoch, attempt, execution, journal, failure, from_state]`. */
type ClaimTuple = [string, number, string, number, number, number, string | null, string | null, string];

/** The claims of a JSON column of claim tuples. */
export function claimsOf(column: unknown): ClaimedAtom[] {
  const tuples = JSON.parse(String(column ?? '[]')) as ClaimTuple[];
  return tuples.map((t) =>
    claimFromRow({ run_id: t[0], idx: t[1], state: t[2], epoch: t[3], attempt: t[4], execution: t[5], journal: t[6], failure: t[7] }),
  );
}

/** The claims of `claim_atoms_early`'s result sets (the runs' rows, then the claims), the first of each run with its run's row. */
function claimsWithRuns(sets: readonly Raw[][]): ClaimedAtom[] {
  const last = sets.at(-1)?.[0];
  if (!last || !('claims' in last)) {
    throw new StoreError('STOKER_STORE_QUERY_FAILED', 'MySQL: claim atoms returned no claims (is migration 11 applied?)');
  }
  const claims = claimsOf(last.claims);
  const runs = new Map(sets.slice(0, -1).flatMap((set) => set.map((r) => [String(r.id), runFromRow(r)] as const)));
  if (runs.size === 0) return claims;
  return claims.map((c) => {
    const run = runs.get(c.runId);
    if (!run) return c;
    runs.delete(c.runId);
    return { ...c, run };
  });
}

export class MysqlFastCompletions implements FastCompletions {
  constructor(private readonly driver: MysqlDriver) {}

  /** {@inheritDoc FastCompletions.completeSuccess} (procedure `fast_success`) */
  async completeSuccess(input: FastSuccess): Promise<FastSuccessResult> {
    const row = await this.one('complete an atom (fast path)', 'CALL {p}fast_success(?, ?, ?, ?, ?, ?, ?, ?)', [
      input.runId,
      input.index,
      input.epoch,
      JSON.stringify(input.result satisfies JsonValue),
      JSON.stringify(input.journal satisfies JournalEntry[]),
      JSON.stringify(input.successors),
      input.claim,
      input.engineId,
    ]);
    if (Number(row.done) !== 1) return { handled: false, claimed: null, madeReady: 0 };
    return { handled: true, claimed: claimsOf(row.next)[0] ?? null, madeReady: Number(row.made_ready) };
  }

  /** {@inheritDoc FastCompletions.completeSuccesses} (procedure `fast_successes`) */
  async completeSuccesses(input: FastSuccessBatch): Promise<FastBatchResult> {
    const batch = input.successes.map((s) => [
      s.index,
      s.epoch,
      JSON.stringify(s.result satisfies JsonValue),
      JSON.stringify(s.journal satisfies JournalEntry[]),
      s.successors,
    ]);
    const row = await this.one('complete atoms (fast path)', 'CALL {p}fast_successes(?, ?, ?, ?, ?)', [
      input.runId,
      JSON.stringify(batch),
      JSON.stringify(input.claim),
      input.claimMore,
      input.engineId,
    ]);
    const more = claimsOf(row.more);
    return {
      written: (JSON.parse(String(row.written)) as unknown[]).map(Number),
      continuations: [...claimsOf(row.next), ...more],
      claimedMore: more.length,
      madeReady: Number(row.made_ready),
    };
  }

  /** {@inheritDoc FastCompletions.finishRuns} (procedure `fast_finish`) */
  async finishRuns(input: FastFinish): Promise<FastFinishResult> {
    // in run id order: the order every transaction locks runs in
    const finishes = [...input.finishes].sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
    const batch = finishes.map((f) => [
      f.runId,
      f.index,
      f.epoch,
      JSON.stringify(f.result satisfies JsonValue),
      JSON.stringify(f.journal satisfies JournalEntry[]),
      JSON.stringify(f.outputs satisfies JsonValue),
    ]);
    const row = await this.one('finish runs (fast path)', 'CALL {p}fast_finish(?, ?, ?)', [
      JSON.stringify(batch),
      input.claimMore,
      input.engineId,
    ]);
    const done = JSON.parse(String(row.done)) as [string, unknown][];
    return { finished: done.map(([runId, index]) => ({ runId, index: Number(index) })), continuations: claimsOf(row.more) };
  }

  /**
   * Protocol 2 in one round trip (procedure `claim_atoms_early` of migration 11); limit > 0.
   * The first claimed atom of each run carries the run's row (migration 7), as on
   * PostgreSQL: the engine starts a run's first task without reading it. With `onVisible`,
   * the claims go to it as soon as the server has made them, before its COMMIT returns
   * (./visible-claims.ts); the promise then resolves with the same claims once committed.
   * With `after`, it first waits (at most a second) for the commit of that run's start.
   */
  async claimAtoms(engineId: string, limit: number, options: ClaimOptions = {}): Promise<ClaimedAtom[]> {
    const { onVisible } = options;
    const early = onVisible ? (sets: Raw[][]): void => onVisible(claimsWithRuns(sets)) : () => undefined;
    const params = [engineId, limit, options.after ?? null];
    const sets = await this.driver.callEarly('claim atoms', 'CALL {p}claim_atoms_early(?, ?, ?)', params, 'claims', early);
    return claimsWithRuns(sets);
  }

  private async one(purpose: string, text: string, params: readonly unknown[]): Promise<Raw> {
    const [row] = await this.driver.call(purpose, text, params);
    if (!row) throw new StoreError('STOKER_STORE_QUERY_FAILED', `MySQL: ${purpose} returned no row (is migration 5 applied?)`);
    return row;
  }
}
