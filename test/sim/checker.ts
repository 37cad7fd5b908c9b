/**
 * The independent checker (docs/reliability.md, "Invariants"). It never asks the engine: it replays the
 * SimStore's committed history (every write, in commit order, with the writer and the epoch a
 * fenced write was conditioned on), reads the final tables, the side-effect sink and the
 * submission log, and rebuilds its own model of every atom's claim, state and result.
 *
 * Verdicts:
 * - I1  every run ends in exactly one terminal state: one terminal transition in the history
 *       and one terminal `run.*` event, and the final row agrees;
 * - I2  no run lost: every submitted run (and every child) is terminal after quiescence;
 * - I3  no write by a fenced claim: a fenced atom write commits only while its claim
 *       (atom, epoch, engine) is the live one (not superseded, not requeued, not already
 *       used by an earlier fenced write); every side effect in the sink was made under a
 *       claim the history shows for that engine;
 * - I4  epochs strictly increase per atom, by one per claim; no (atom, epoch) claimed twice;
 * - I5a no premature takeover: a claim is requeued, or an engine marked dead, only when the
 *       holder's lease (its last committed renewal + lease, by the DB clock) has run out or
 *       its session is known dead;
 * - I6  a recorded SUCCESS result of an (atom, attempt) never changes, and the (atom,
 *       attempt) is never claimed for execution again after its result was recorded;
 * - I8  quiescence is clean: no atom is left held or claimable, no transaction open;
 * - T   every atom and run transition in the history is allowed by src/engine/states.ts, and
 *       each change starts from the state the model has (history self-consistency);
 * - OUT every submitted run ends as the workload model predicts (status and result; a run a
 *       client cancelled may also end CANCELLED).
 *
 * Informational figures: duplicate side effects (same idempotencyKey), zombie side effects
 * (made under a claim that was already superseded), takeovers.
 */
import { canonicalJson } from '../../src/core/canonical-json.js';
import type { JsonValue } from '../../src/core/json.js';
import { ATOM_TRANSITIONS, RUN_TRANSITIONS, TERMINAL_RUN_STATUSES, type AtomState, type RunStatus } from '../../src/store/states.js';
import type { AtomRow, EventRow, RunRow } from '../../src/store/store.js';
import type { Commit, StoreNote } from './sim-store.js';
import type { Expected, SinkRecord } from './workload.js';

export type Invariant = 'I1' | 'I2' | 'I3' | 'I4' | 'I5a' | 'I6' | 'I8' | 'T' | 'OUT';
export const INVARIANTS: readonly Invariant[] = ['I1', 'I2', 'I3', 'I4', 'I5a', 'I6', 'I8', 'T', 'OUT'];

export interface Violation {
  inv: Invariant;
  msg: string;
  /** commit seq or sink seq where it was seen */
  at?: string;
}

export interface Submission {
  runId: string;
  flow: string;
  expected: Expected;
  /** a client asked to cancel it: CANCELLED is then a correct outcome too */
  cancelRequested?: boolean;
}

export interface CheckInput {
  history: readonly Commit[];
  runs: readonly RunRow[];
  atoms: ReadonlyMap<string, readonly AtomRow[]>;
  events: readonly EventRow[];
  sink: readonly SinkRecord[];
  submitted: readonly Submission[];
  notes: readonly StoreNote[];
  /** whether engines hold session locks (R11): a crashed process or a store restart frees them */
  sessionLocks: boolean;
  openTransactions: number;
}

export interface CheckStats {
  commits: number;
  claims: number;
  fencedWrites: number;
  requeues: number;
  runsTerminal: number;
  effects: number;
  duplicateEffects: number;
  zombieEffects: number;
  /** fenced writes whose claim was made under an id the process had since given up (it re-registered): allowed while the epoch is live, counted */
  staleIdWrites: number;
  /** side effects of an (atom, attempt) made after its result was recorded (by a zombie: at-least-once, counted) */
  effectsAfterResult: number;
  /** side effects made when the engine's last committed renewal was older than its lease (R9 asks it to stop dispatching then) */
  effectsWithoutLease: number;
  /** crash → re-claim latency (ms) of every atom a crashed engine held (I5, figures only) */
  takeoverMs: number[];
}

export interface CheckResult {
  ok: boolean;
  violations: Violation[];
  stats: CheckStats;
}

interface AtomModel {
  state: AtomState;
  epoch: number;
  attempt: number;
  /** the claim that may still write: set by a claim, cleared by its fenced write or a requeue */
  live: { epoch: number; engine: string; proc: string } | null;
  /** attempt → canonical result recorded with SUCCESS */
  recorded: Map<number, string | null>;
  /** epoch → engine id that claimed it, and the process whose session committed the claim */
  claims: Map<number, { engine: string; proc: string; seq: number; t: number }>;
  /** time the live claim ended (superseded or requeued), by epoch */
  endedAt: Map<number, number>;
  /** attempt → when its SUCCESS was first recorded (attempt numbers only grow) */
  resultAt: Map<number, number>;
  /** a requeue of a crashed holder's claim waiting for the next claim: the crash time */
  crashPending: number | null;
}

const MAX_PER_INVARIANT = 5;

export function check(input: CheckInput): CheckResult {
  const violations: Violation[] = [];
  const counts = new Map<Invariant, number>();
  const fail = (inv: Invariant, msg: string, at?: string): void => {
    const n = (counts.get(inv) ?? 0) + 1;
    counts.set(inv, n);
    if (n <= MAX_PER_INVARIANT) violations.push({ inv, msg, ...(at === undefined ? {} : { at }) });
    else if (n === MAX_PER_INVARIANT + 1) violations.push({ inv, msg: `(more ${inv} violations not shown)` });
  };
  const stats: CheckStats = {
    commits: input.history.length,
    claims: 0,
    fencedWrites: 0,
    requeues: 0,
    runsTerminal: 0,
    effects: 0,
    duplicateEffects: 0,
    zombieEffects: 0,
    staleIdWrites: 0,
    effectsAfterResult: 0,
    effectsWithoutLease: 0,
    takeoverMs: [],
  };

  // ------------------------------------------------------------------ replay
  const atoms = new Map<string, AtomModel>();
  const runStatus = new Map<string, RunStatus>();
  const terminalTransitions = new Map<string, number>();
  const leases = new Map<string, { until: number }>();
  /** engine id → its committed renewals, in time order */
  const renewals = new Map<string, { t: number; leaseMs: number }[]>();
  /** process → the engine id it registered last */
  const currentId = new Map<string, string>();
  /** process → when it crashed; engine id → when its session lock was lost (store restart) */
  const crashedAt = new Map<string, number>();
  const lockLostAt = new Map<string, number>();
  for (const n of input.notes) {
    if (n.what === 'session-crash' && !crashedAt.has(n.by)) crashedAt.set(n.by, n.t);
    if (n.what === 'session-lost' && n.detail !== undefined && !lockLostAt.has(n.detail)) lockLostAt.set(n.detail, n.t);
  }
  /** engine id → the process that registered it */
  const procOf = new Map<string, string>();
  const proc = (engine: string): string => procOf.get(engine) ?? engine;

  const model = (run: string, idx: number): AtomModel => {
    const k = `${run}#${idx}`;
    let m = atoms.get(k);
    if (!m) {
      m = {
        state: 'PENDING',
        epoch: 0,
        attempt: 1,
        live: null,
        recorded: new Map(),
        claims: new Map(),
        endedAt: new Map(),
        resultAt: new Map(),
        crashPending: null,
      };
      atoms.set(k, m);
    }
    return m;
  };
  const initRun = (run: string, status: RunStatus): void => {
    runStatus.set(run, status);
  };
  const checkMove = (at: string, what: string, from: AtomState, to: AtomState, m: AtomModel): void => {
    if (from !== m.state) fail('T', `${what}: the history says it moved from ${from} but the model has it ${m.state}`, at);
    if (from !== to && !ATOM_TRANSITIONS[from].includes(to)) fail('T', `${what}: ${from} → ${to} is not an allowed atom transition`, at);
  };
  /** live by the DB clock: its lease runs, and (with session locks) its lock is held */
  const isLive = (engine: string, t: number): boolean => {
    const l = leases.get(engine);
    if (!l || l.until < t) return false;
    if (input.sessionLocks) {
      const c = crashedAt.get(proc(engine));
      if (c !== undefined && c <= t) return false;
      const lost = lockLostAt.get(engine);
      if (lost !== undefined && lost <= t) return false;
    }
    return true;
  };

  for (const c of input.history) {
    const at = `commit #${c.seq} t=${c.t} by ${c.by} (${c.op})`;
    for (const ch of c.changes) {
      switch (ch.k) {
        case 'runInsert':
          initRun(ch.run, ch.status);
          ch.atoms.forEach((state, i) => (model(ch.run, i).state = state));
          break;
        case 'claim': {
          stats.claims += 1;
          const m = model(ch.run, ch.idx);
          const what = `claim of ${ch.run}#${ch.idx} epoch ${ch.epoch} by ${ch.engine}`;
          checkMove(at, what, ch.from, ch.to, m);
          if (!['READY', 'WAITING', 'REVERT_READY'].includes(ch.from)) fail('T', `${what} from non-claimable state ${ch.from}`, at);
          if (m.claims.has(ch.epoch)) fail('I4', `${what}: epoch ${ch.epoch} was already claimed by ${m.claims.get(ch.epoch)!.engine}`, at);
          if (ch.epoch !== m.epoch + 1) fail('I4', `${what}: epoch does not follow the last one (${m.epoch})`, at);
          // A claim's lease is its engine row's: an id its process has not registered (yet) has
          // no row, so any reaper may take the atom at once (found by seed 21909: a fenced
          // engine's in-flight completion claimed under the id it was about to register).
          if (procOf.get(ch.engine) !== c.by)
            fail('I3', `${what}: engine id ${ch.engine} was not registered by process ${c.by} (no engine row backs the claim)`, at);
          if (m.live) m.endedAt.set(m.live.epoch, c.t);
          if (ch.to === 'RUNNING' && m.recorded.has(ch.attempt)) {
            fail('I6', `${what}: attempt ${ch.attempt} is claimed for execution again after its result was recorded`, at);
          }
          m.claims.set(ch.epoch, { engine: ch.engine, proc: c.by, seq: c.seq, t: c.t });
          if (m.crashPending !== null) {
            stats.takeoverMs.push(c.t - m.crashPending);
            m.crashPending = null;
          }
          m.epoch = Math.max(m.epoch, ch.epoch);
          m.state = ch.to;
          m.attempt = ch.attempt;
          m.live = { epoch: ch.epoch, engine: ch.engine, proc: c.by };
          break;
        }
        case 'atom': {
          const m = model(ch.run, ch.idx);
          const what = `write of ${ch.run}#${ch.idx} ${ch.from} → ${ch.to}${ch.writerEpoch === null ? '' : ` fenced by epoch ${ch.writerEpoch}`} by ${c.by}`;
          checkMove(at, what, ch.from, ch.to, m);
          if (ch.writerEpoch !== null) {
            stats.fencedWrites += 1;
            const live = m.live;
            if (live === null)
              fail(
                'I3',
                `${what}: no live claim (the claim of epoch ${ch.writerEpoch} was requeued, superseded or already used; current epoch ${m.epoch})`,
                at,
              );
            else if (live.epoch !== ch.writerEpoch) fail('I3', `${what}: the live claim is epoch ${live.epoch} (${live.engine})`, at);
            else if (live.proc !== c.by)
              fail('I3', `${what}: epoch ${live.epoch} was claimed by ${live.engine} of process ${live.proc}`, at);
            else if (live.engine !== currentId.get(c.by)) stats.staleIdWrites += 1;
            if (live !== null) m.endedAt.set(live.epoch, c.t);
            m.live = null;
          }
          // I6: a recorded result of this attempt never changes
          const rec = m.recorded.get(ch.attemptFrom);
          if (rec !== undefined && ch.attemptTo === ch.attemptFrom && ch.resultChanged) {
            fail('I6', `${what}: the recorded result of attempt ${ch.attemptFrom} changed from ${rec} to ${ch.result}`, at);
          }
          if (ch.attemptTo !== ch.attemptFrom) {
            m.recorded.clear();
            m.attempt = ch.attemptTo;
          }
          if (ch.to === 'SUCCESS' && ch.from !== 'SUCCESS') {
            if (rec !== undefined && rec !== ch.result) fail('I6', `${what}: attempt ${ch.attemptTo} already had the result ${rec}`, at);
            m.recorded.set(ch.attemptTo, ch.result);
            if (!m.resultAt.has(ch.attemptTo)) m.resultAt.set(ch.attemptTo, c.t);
          }
          m.state = ch.to;
          break;
        }
        case 'pending': {
          const m = model(ch.run, ch.idx);
          checkMove(at, `counter of ${ch.run}#${ch.idx}`, ch.from, ch.to, m);
          m.state = ch.to;
          break;
        }
        case 'requeue': {
          stats.requeues += 1;
          const m = model(ch.run, ch.idx);
          const what = `requeue of ${ch.run}#${ch.idx} epoch ${ch.epoch} held by ${ch.holder} (by ${c.by})`;
          checkMove(at, what, ch.from, ch.to, m);
          if (ch.reason === 'expired' && isLive(ch.holder, c.t)) {
            fail('I5a', `${what}: premature takeover, the holder's lease runs until t=${leases.get(ch.holder)?.until} by the DB clock`, at);
          }
          const crash = crashedAt.get(proc(ch.holder));
          if (crash !== undefined && crash <= c.t) m.crashPending = crash;
          if (ch.reason === 'engine' && proc(ch.holder) !== c.by) fail('I5a', `${what}: an engine released another engine's claims`, at);
          if (m.live) m.endedAt.set(m.live.epoch, c.t);
          m.live = null;
          m.state = ch.to;
          break;
        }
        case 'run': {
          const from = runStatus.get(ch.run);
          if (from !== undefined && from !== ch.from)
            fail('T', `run ${ch.run}: the history says ${ch.from} → ${ch.to} but the model has it ${from}`, at);
          // one transaction may take several steps at once (RUNNING → REVERTING → REVERTED): reachability
          if (!runReachable(ch.from, ch.to))
            fail('T', `run ${ch.run}: ${ch.from} → ${ch.to} is not reachable by allowed run transitions`, at);
          if (TERMINAL_RUN_STATUSES.includes(ch.to)) terminalTransitions.set(ch.run, (terminalTransitions.get(ch.run) ?? 0) + 1);
          runStatus.set(ch.run, ch.to);
          break;
        }
        case 'engine': {
          if (ch.what === 'register') {
            procOf.set(ch.engine, c.by);
            currentId.set(c.by, ch.engine);
          }
          if (ch.what === 'register' || ch.what === 'heartbeat') {
            leases.set(ch.engine, { until: c.t + (ch.leaseMs ?? 0) });
            let list = renewals.get(ch.engine);
            if (!list) renewals.set(ch.engine, (list = []));
            list.push({ t: c.t, leaseMs: ch.leaseMs ?? 0 });
          }
          if (ch.what === 'markDead' && isLive(ch.engine, c.t)) {
            fail(
              'I5a',
              `engine ${ch.engine} marked dead by ${c.by} at t=${c.t} while its lease runs until t=${leases.get(ch.engine)?.until}`,
              at,
            );
          }
          if (ch.what === 'markDead' || ch.what === 'deregister') leases.delete(ch.engine);
          break;
        }
        case 'event':
        case 'signal':
          break;
      }
    }
  }

  // ------------------------------------------------------------------ I1 / I2 / I8 on the final tables
  const submittedIds = new Set(input.submitted.map((s) => s.runId));
  const byId = new Map(input.runs.map((r) => [r.id, r]));
  const terminalEvents = new Map<string, number>();
  for (const e of input.events) {
    if (e.atom === null && TERMINAL_RUN_STATUSES.some((s) => e.kind === `run.${s.toLowerCase()}`))
      terminalEvents.set(e.runId, (terminalEvents.get(e.runId) ?? 0) + 1);
  }
  for (const s of input.submitted) if (!byId.has(s.runId)) fail('I2', `submitted run ${s.runId} (${s.flow}) does not exist`);
  for (const r of input.runs) {
    const terminal = TERMINAL_RUN_STATUSES.includes(r.status);
    if (terminal) stats.runsTerminal += 1;
    else {
      const open = (input.atoms.get(r.id) ?? []).filter(
        (a) => !['SUCCESS', 'SKIPPED', 'CANCELLED', 'REVERTED', 'FAILURE', 'REVERT_FAILURE'].includes(a.state),
      );
      const desc = open
        .map(
          (a) =>
            `${a.name}#${a.index}=${a.state}${a.claimedBy ? ` held by ${a.claimedBy}` : ''} epoch ${a.epoch}${a.readyAt ? ` readyAt ${a.readyAt.toISOString()}` : ''}`,
        )
        .join(', ');
      fail(
        'I2',
        `run ${r.id} (${r.flow}${submittedIds.has(r.id) ? '' : ', child'}) is still ${r.status} after quiescence: ${desc || 'no open atoms'}`,
      );
      continue;
    }
    const n = terminalTransitions.get(r.id) ?? 0;
    if (n !== 1) fail('I1', `run ${r.id} has ${n} terminal transitions in the history (final status ${r.status})`);
    const ev = terminalEvents.get(r.id) ?? 0;
    if (ev !== 1) fail('I1', `run ${r.id} has ${ev} terminal run events (final status ${r.status})`);
    const modelStatus = runStatus.get(r.id);
    if (modelStatus !== r.status) fail('I1', `run ${r.id}: final row says ${r.status}, the history ends at ${modelStatus}`);
    for (const a of input.atoms.get(r.id) ?? []) {
      if (['RUNNING', 'REVERTING', 'READY', 'REVERT_READY'].includes(a.state) || a.claimedBy !== null) {
        fail(
          'I8',
          `atom ${r.id}#${a.index} (${a.name}) of the ${r.status} run is left ${a.state}${a.claimedBy ? ` held by ${a.claimedBy}` : ''}`,
        );
      }
    }
  }
  if (input.openTransactions > 0) fail('I8', `${input.openTransactions} transactions are still open after quiescence`);

  // ------------------------------------------------------------------ OUT
  for (const s of input.submitted) {
    const r = byId.get(s.runId);
    if (!r || !TERMINAL_RUN_STATUSES.includes(r.status)) continue;
    if (s.cancelRequested && r.status === 'CANCELLED') continue;
    if (r.status !== s.expected.status) {
      fail(
        'OUT',
        `run ${r.id} (${s.flow}) ended ${r.status}, the model says ${s.expected.status}${r.failure ? ` (failure: ${r.failure.message})` : ''}`,
      );
    } else if (r.status === 'SUCCESS' && canonicalJson(r.result) !== canonicalJson(s.expected.result as JsonValue)) {
      fail(
        'OUT',
        `run ${r.id} (${s.flow}) result ${canonicalJson(r.result)} differs from the model's ${canonicalJson(s.expected.result as JsonValue)}`,
      );
    }
  }

  // ------------------------------------------------------------------ the sink
  const names = new Map<string, number>();
  for (const [runId, list] of input.atoms) for (const a of list) names.set(`${runId}/${a.name}`, a.index);
  const byKey = new Map<string, number>();
  for (const e of input.sink) {
    if (e.kind !== 'effect') continue;
    stats.effects += 1;
    byKey.set(e.idempotencyKey, (byKey.get(e.idempotencyKey) ?? 0) + 1);
    const idx = names.get(`${e.runId}/${e.atom}`);
    const m = idx === undefined ? undefined : atoms.get(`${e.runId}#${idx}`);
    const claim = m?.claims.get(e.epoch);
    if (!claim)
      fail(
        'I3',
        `side effect #${e.seq} of ${e.fencingToken} by ${e.engine} at t=${e.t}: the history has no claim of that epoch`,
        `sink #${e.seq}`,
      );
    else if (claim.proc !== e.proc)
      fail(
        'I3',
        `side effect #${e.seq} of ${e.fencingToken} by ${e.engine} (${e.proc}): epoch ${e.epoch} was claimed by ${claim.engine}`,
        `sink #${e.seq}`,
      );
    const ended = m?.endedAt.get(e.epoch);
    // made after its claim was superseded or requeued (a zombie): at-least-once, counted
    if (ended !== undefined && ended < e.t) stats.zombieEffects += 1;
    const resultAt = m?.resultAt.get(e.attempt);
    if (resultAt !== undefined && resultAt < e.t) stats.effectsAfterResult += 1;
    const ren = renewals.get(e.engine) ?? [];
    let last: { t: number; leaseMs: number } | undefined;
    for (const r of ren) if (r.t <= e.t) last = r;
    if (last === undefined || e.t - last.t > last.leaseMs) stats.effectsWithoutLease += 1;
  }
  for (const n of byKey.values()) if (n > 1) stats.duplicateEffects += n - 1;

  return { ok: violations.length === 0, violations, stats };
}

function runReachable(from: RunStatus, to: RunStatus): boolean {
  const seen = new Set<RunStatus>([from]);
  const todo: RunStatus[] = [from];
  while (todo.length > 0) {
    for (const n of RUN_TRANSITIONS[todo.pop()!]) {
      if (n === to) return true;
      if (!seen.has(n)) {
        seen.add(n);
        todo.push(n);
      }
    }
  }
  return false;
}

export function formatViolations(v: readonly Violation[]): string {
  return v.map((x) => `  [${x.inv}] ${x.msg}${x.at ? `  @ ${x.at}` : ''}`).join('\n');
}
