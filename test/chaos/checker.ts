/**
 * The chaos checker (docs/reliability.md, "Invariants"): verifies a finished history independently of the
 * engine's own view. It reads only what the database recorded (runs, atoms and the event
 * log, ordered by event id) and what the tasks themselves wrote to their side-effect log
 * (test/fixtures/chaos-flows.ts), and reports a verdict per invariant with counterexamples.
 *
 * - I1: every run has exactly one terminal transition event, its status is terminal and
 *   the same, and nothing changes the run's status after it.
 * - I2: no run lost: every submitted run exists and is terminal (and, when the expected
 *   outcome is known, ended with it).
 * - I3: no write by a fenced claim. Per atom, in event-id order: every write made for a
 *   claim (an event carrying an epoch: `atom.success`, `atom.failure`, `atom.waiting`,
 *   `atom.retry_scheduled`, `atom.reverted`, …) carries the epoch of the latest
 *   `atom.claimed` and lands while that claim is still open (not already closed by its own
 *   write or by an `atom.requeued`); no transition out of RUNNING/REVERTING is written
 *   without an epoch; a requeue releases the current claim. And in the data: a succeeded
 *   atom's stored result was produced by the execution under the atom's final epoch (the
 *   result names its epoch), which the side-effect log confirms ran and ended.
 * - I4: epochs strictly increase per atom across `atom.claimed` events; no `(atom, epoch)`
 *   twice; never two open claims; the atom row's epoch is the last claimed one; every task
 *   execution in the side-effect log ran under a claimed epoch, and at most once per epoch
 *   (with `History.redelivery`, remote tasks: at most once per epoch and worker process,
 *   since the broker redelivers the request a killed worker held; docs/amqp.md).
 * - I6: a succeeded atom is not executed again: no claim to RUNNING after `atom.success`
 *   unless a reverting scope took it back first (an event SUCCESS → REVERT_*: a scope
 *   retry then runs it again, legitimately); in the side-effect log, no
 *   start of that attempt with a later execution or epoch than the recorded success.
 *
 * Events written in one transaction get increasing ids; writes to one atom hold its row
 * lock, so per atom the id order is the commit order on every dialect.
 */
import type { AtomRow, EventRow, RunRow, Store } from '../../src/store/store.js';
import type { EffectLine } from '../fixtures/chaos-flows.js';

export type InvariantId = 'I1' | 'I2' | 'I3' | 'I4' | 'I6';
export const INVARIANTS: readonly InvariantId[] = ['I1', 'I2', 'I3', 'I4', 'I6'];

export interface Violation {
  invariant: InvariantId;
  runId: string;
  atom?: number;
  message: string;
  /** event ids, epochs, engine ids, log lines: whatever shows it */
  evidence?: unknown;
}

export interface Verdict {
  ok: boolean;
  violations: Violation[];
  /** oddities that are not invariant violations (printed, not failed on) */
  warnings: string[];
  checked: Record<InvariantId, number>;
  stats: {
    runs: number;
    atoms: number;
    events: number;
    claims: number;
    requeues: number;
    fencedWriteEvents: number;
    effectLines: number;
    /** task executions beyond the first per attempt (at-least-once re-executions) */
    reexecutions: number;
  };
}

export interface History {
  /** the submission log: every run the client started (and what it should end as) */
  submitted: readonly { id: string; flow?: string; expect?: string }[];
  runs: ReadonlyMap<string, RunRow | null>;
  atoms: ReadonlyMap<string, readonly AtomRow[]>;
  /** the events of those runs, any order (sorted by id here) */
  events: readonly EventRow[];
  effects: readonly EffectLine[];
  /**
   * Remote tasks (docs/amqp.md): a request held by a worker that was killed is delivered
   * again under the same claim, so one epoch may be executed once per worker process.
   */
  redelivery?: boolean;
}

const TERMINAL_RUN = new Set(['SUCCESS', 'REVERTED', 'FAILED', 'CANCELLED', 'SUPERSEDED']);
/** event kinds that carry an epoch without being a write made for that claim */
const CLAIM_BOOKKEEPING = new Set(['atom.claimed', 'atom.requeued', 'atom.fenced_write']);
const HELD = new Set(['RUNNING', 'REVERTING']);
/** where a succeeded atom may legitimately go (states.ts: SUCCESS → REVERT_PENDING | REVERT_READY | REVERTED) */
const REVERT_STATES = new Set(['REVERT_PENDING', 'REVERT_READY', 'REVERTED']);

/** Reads the history of the submitted runs from the store (and the side-effect lines). */
export async function collectHistory(
  store: Store,
  submitted: readonly { id: string; flow?: string; expect?: string }[],
  effects: readonly EffectLine[],
): Promise<History> {
  const runs = new Map<string, RunRow | null>();
  const atoms = new Map<string, AtomRow[]>();
  const events: EventRow[] = [];
  for (const { id } of submitted) {
    runs.set(id, await store.getRun(id));
    atoms.set(id, await store.getAtoms(id));
    for (let after = 0; ;) {
      const page = await store.listEvents({ runId: id, afterId: after, limit: 5000 });
      events.push(...page);
      if (page.length < 5000) break;
      after = page.at(-1)!.id;
    }
  }
  return { submitted, runs, atoms, events, effects };
}

/** Checks I1–I4 and I6 on a history. Pure. */
export function checkHistory(h: History): Verdict {
  const violations: Violation[] = [];
  const warnings: string[] = [];
  const checked: Record<InvariantId, number> = { I1: 0, I2: 0, I3: 0, I4: 0, I6: 0 };
  const v = (invariant: InvariantId, runId: string, atom: number | undefined, message: string, evidence?: unknown) =>
    violations.push({
      invariant,
      runId,
      ...(atom === undefined ? {} : { atom }),
      message,
      ...(evidence === undefined ? {} : { evidence }),
    });

  const events = [...h.events].sort((a, b) => a.id - b.id);
  const byRun = new Map<string, EventRow[]>();
  const byAtom = new Map<string, EventRow[]>();
  for (const e of events) {
    push(byRun, e.runId, e);
    if (e.atom !== null) push(byAtom, `${e.runId}/${e.atom}`, e);
  }
  const effectsByKey = new Map<string, EffectLine[]>();
  const effectsByAtom = new Map<string, EffectLine[]>();
  for (const l of h.effects) {
    push(effectsByKey, l.key, l);
    push(effectsByAtom, `${l.run}/${l.name}`, l);
  }

  // ------------------------------------------------------------ I2: no run lost
  for (const s of h.submitted) {
    checked.I2 += 1;
    const run = h.runs.get(s.id) ?? null;
    if (!run) {
      v('I2', s.id, undefined, `submitted run ${s.id} (${s.flow ?? '?'}) does not exist`);
      continue;
    }
    if (!TERMINAL_RUN.has(run.status))
      v('I2', s.id, undefined, `run ${s.id} (${run.flow}) is still ${run.status}`, { pendingAtoms: run.pendingAtoms });
    else if (s.expect !== undefined && run.status !== s.expect)
      v('I2', s.id, undefined, `run ${s.id} (${run.flow}) ended ${run.status}, expected ${s.expect}`, { failure: run.failure });
  }

  // ------------------------------------------------------------ I1: one terminal transition
  for (const s of h.submitted) {
    const run = h.runs.get(s.id);
    if (!run) continue;
    checked.I1 += 1;
    const runEvents = (byRun.get(s.id) ?? []).filter((e) => e.atom === null && e.toState !== null);
    const terminal = runEvents.filter((e) => TERMINAL_RUN.has(e.toState!));
    if (terminal.length !== 1) {
      v(
        'I1',
        s.id,
        undefined,
        `run ${s.id} has ${terminal.length} terminal transition events`,
        terminal.map((e) => ({ id: e.id, kind: e.kind, engine: e.engineId })),
      );
    } else {
      const t = terminal[0]!;
      if (t.toState !== run.status)
        v('I1', s.id, undefined, `run ${s.id} is ${run.status} but its terminal event #${t.id} says ${t.toState}`);
      const later = runEvents.filter((e) => e.id > t.id);
      if (later.length > 0)
        v(
          'I1',
          s.id,
          undefined,
          `run ${s.id} changed status after its terminal event #${t.id}`,
          later.map((e) => ({ id: e.id, kind: e.kind })),
        );
    }
    if (!TERMINAL_RUN.has(run.status) && terminal.length === 0) continue; // reported by I2
  }

  // ------------------------------------------------------------ per atom: I3, I4, I6 (events)
  let claims = 0;
  let requeues = 0;
  let fencedWriteEvents = 0;
  for (const s of h.submitted) {
    for (const atom of h.atoms.get(s.id) ?? []) {
      const list = byAtom.get(`${s.id}/${atom.index}`) ?? [];
      const seen = new Set<number>();
      let lastEpoch = -Infinity;
      let lastClaim: EventRow | null = null;
      let open: number | null = null;
      let succeeded: EventRow | null = null;
      checked.I4 += 1;
      checked.I3 += 1;
      checked.I6 += 1;
      for (const e of list) {
        if (e.kind === 'atom.claimed') {
          claims += 1;
          const epoch = e.epoch ?? NaN;
          if (seen.has(epoch))
            v('I4', s.id, atom.index, `epoch ${epoch} claimed twice (${atom.name})`, { event: e.id, previous: lastClaim?.id });
          else if (!(epoch > lastEpoch))
            v('I4', s.id, atom.index, `epoch went from ${lastEpoch} to ${epoch} (${atom.name})`, { event: e.id, previous: lastClaim?.id });
          if (open !== null)
            v('I4', s.id, atom.index, `claimed at epoch ${epoch} by ${e.engineId} while epoch ${open} was still held (${atom.name})`, {
              event: e.id,
              heldSince: lastClaim?.id,
              holder: lastClaim?.engineId,
            });
          if (succeeded && e.toState === 'RUNNING') {
            v('I6', s.id, atom.index, `${atom.name} claimed to run again (epoch ${epoch}) after its success #${succeeded.id}`, {
              event: e.id,
              engine: e.engineId,
            });
          }
          seen.add(epoch);
          lastEpoch = Math.max(lastEpoch, epoch);
          lastClaim = e;
          open = epoch;
          continue;
        }
        if (e.kind === 'atom.requeued') {
          requeues += 1;
          if (open === null || e.epoch !== open) {
            v('I3', s.id, atom.index, `requeue #${e.id} of epoch ${e.epoch} does not match the open claim (${open ?? 'none'})`, {
              event: e.id,
              lastClaim: lastClaim?.id,
            });
          }
          open = null;
          continue;
        }
        if (e.kind === 'atom.fenced_write') {
          fencedWriteEvents += 1;
          if (open !== null && e.epoch === open)
            warnings.push(`atom ${s.id}/${atom.index}: fenced_write #${e.id} for epoch ${e.epoch}, which is still the open claim`);
          continue;
        }
        if (e.epoch !== null && !CLAIM_BOOKKEEPING.has(e.kind)) {
          // a write made for a claim: it must be the open claim's
          if (open === null || e.epoch !== open) {
            v(
              'I3',
              s.id,
              atom.index,
              `${e.kind} #${e.id} written under epoch ${e.epoch} by ${e.engineId}, but ${open === null ? `the claim of epoch ${lastEpoch} was already closed` : `epoch ${open} held it`} (${atom.name})`,
              {
                event: e.id,
                writerEpoch: e.epoch,
                lastClaim: lastClaim ? { id: lastClaim.id, epoch: lastClaim.epoch, engine: lastClaim.engineId } : null,
              },
            );
          }
          open = null;
        } else if (e.epoch === null && e.fromState !== null && HELD.has(e.fromState) && open !== null) {
          v('I3', s.id, atom.index, `${e.kind} #${e.id} moved ${atom.name} out of ${e.fromState} without the claim's epoch ${open}`, {
            event: e.id,
            engine: e.engineId,
          });
          open = null;
        }
        if (e.kind === 'atom.success') succeeded = e;
        // a reverting scope took it back (SUCCESS → REVERT_*): a scope retry may run it again
        else if (e.fromState === 'SUCCESS' && e.toState !== null && REVERT_STATES.has(e.toState)) succeeded = null;
      }
      if (Number.isFinite(lastEpoch) && atom.epoch !== lastEpoch) {
        v('I4', s.id, atom.index, `atom row epoch ${atom.epoch} is not the last claimed epoch ${lastEpoch} (${atom.name})`);
      }
      if (open !== null && TERMINAL_RUN.has(h.runs.get(s.id)?.status ?? '') && HELD.has(atom.state)) {
        warnings.push(`atom ${s.id}/${atom.index} (${atom.name}) is still ${atom.state} under epoch ${open} in a finished run`);
      }

      // ---------------------------------------------------------- data and side-effect log
      const lines = effectsByAtom.get(`${s.id}/${atom.name}`) ?? [];
      const starts = lines.filter((l) => l.phase === 'start');
      const perEpoch = new Map<number, EffectLine[]>();
      for (const l of starts) push(perEpoch, l.epoch, l);
      for (const [epoch, ls] of perEpoch) {
        if (!seen.has(epoch)) v('I4', s.id, atom.index, `${atom.name} executed under epoch ${epoch}, which was never claimed`, ls);
        const runs = h.redelivery ? ls.length - new Set(ls.map((l) => l.pid)).size + 1 : ls.length;
        if (runs > 1)
          v(
            'I4',
            s.id,
            atom.index,
            `${atom.name} executed ${runs} times under one epoch ${epoch}${h.redelivery ? ' in one process' : ''}`,
            ls,
          );
      }
      if (atom.state === 'SUCCESS') {
        const result = atom.result as { epoch?: unknown; pid?: unknown; execution?: unknown } | null;
        const lastSuccess = list.filter((e) => e.kind === 'atom.success').at(-1);
        if (lastSuccess && lastSuccess.epoch !== atom.epoch) {
          v(
            'I3',
            s.id,
            atom.index,
            `success #${lastSuccess.id} of ${atom.name} was written under epoch ${lastSuccess.epoch}, the atom's epoch is ${atom.epoch}`,
          );
        }
        if (result !== null && typeof result === 'object' && typeof result.epoch === 'number') {
          if (result.epoch !== atom.epoch) {
            v(
              'I3',
              s.id,
              atom.index,
              `${atom.name}'s recorded result comes from epoch ${result.epoch} (pid ${String(result.pid)}), superseded by epoch ${atom.epoch}`,
              { result },
            );
          } else if (!lines.some((l) => l.phase === 'end' && l.epoch === result.epoch && l.pid === result.pid)) {
            v(
              'I3',
              s.id,
              atom.index,
              `${atom.name}'s recorded result (epoch ${result.epoch}, pid ${String(result.pid)}) matches no finished execution in the side-effect log`,
              { result },
            );
          }
          // I6 in the log: nothing of this attempt started after (or beside) the recorded execution
          const key = `${s.id}/${atom.name}/${atom.attempt}`;
          const after = (effectsByKey.get(key) ?? []).filter(
            (l) => l.phase === 'start' && (l.execution > atom.execution || l.epoch > atom.epoch),
          );
          if (after.length > 0)
            v(
              'I6',
              s.id,
              atom.index,
              `${atom.name} was executed again after its recorded success (execution ${atom.execution}, epoch ${atom.epoch})`,
              after,
            );
        }
      }
    }
  }

  const attempts = new Map<string, number>();
  for (const l of h.effects) if (l.phase === 'start') attempts.set(l.key, (attempts.get(l.key) ?? 0) + 1);
  const reexecutions = [...attempts.values()].reduce((n, c) => n + c - 1, 0);

  return {
    ok: violations.length === 0,
    violations,
    warnings,
    checked,
    stats: {
      runs: h.submitted.length,
      atoms: [...h.atoms.values()].reduce((n, a) => n + a.length, 0),
      events: events.length,
      claims,
      requeues,
      fencedWriteEvents,
      effectLines: h.effects.length,
      reexecutions,
    },
  };
}

/** A short report: one line per invariant, then the first counterexamples. */
export function formatVerdict(verdict: Verdict, label = 'checker', maxExamples = 10): string {
  const out = [`${label}: ${verdict.ok ? 'PASS' : 'FAIL'} ${JSON.stringify(verdict.stats)}`];
  for (const id of INVARIANTS) {
    const n = verdict.violations.filter((x) => x.invariant === id).length;
    out.push(`  ${id}: ${n === 0 ? 'ok' : `${n} violation(s)`} (${verdict.checked[id]} checked)`);
  }
  for (const x of verdict.violations.slice(0, maxExamples)) {
    out.push(
      `  ✗ ${x.invariant} run ${x.runId}${x.atom !== undefined ? ` atom ${x.atom}` : ''}: ${x.message}${x.evidence !== undefined ? ` ${JSON.stringify(x.evidence)}` : ''}`,
    );
  }
  if (verdict.violations.length > maxExamples) out.push(`  … ${verdict.violations.length - maxExamples} more`);
  for (const w of verdict.warnings.slice(0, 5)) out.push(`  ! ${w}`);
  return out.join('\n');
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
