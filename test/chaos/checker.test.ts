/**
 * The chaos checker must be able to fail: a clean hand-made history passes, and one bad
 * edit per invariant is caught with a counterexample.
 */
import { describe, expect, it } from 'vitest';
import type { AtomRow, EventRow, RunRow } from '../../src/store/store.js';
import type { EffectLine } from '../fixtures/chaos-flows.js';
import { checkHistory, formatVerdict, type History, type InvariantId } from './checker.js';

const RUN = 'run1';
let nextId = 1;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function ev(kind: string, atom: number | null, o: Partial<EventRow> = {}): EventRow {
  const id = nextId++;
  return {
    id,
    runId: RUN,
    atom,
    kind,
    fromState: null,
    toState: null,
    engineId: 'e1',
    epoch: null,
    data: null,
    at: new Date(T0 + id),
    ...o,
  };
}

function atomRow(index: number, name: string, o: Partial<AtomRow> = {}): AtomRow {
  return {
    runId: RUN,
    index,
    name,
    state: 'SUCCESS',
    pending: 0,
    revertPending: 0,
    skip: false,
    revertRequested: false,
    epoch: 1,
    claimedBy: null,
    attempt: 1,
    execution: 1,
    result: { pid: 100, epoch: 1, execution: 1, attempt: 1 },
    failure: null,
    journal: [],
    waitKind: null,
    waitRef: null,
    readyAt: null,
    updatedAt: new Date(T0),
    ...o,
  };
}

function line(phase: EffectLine['phase'], name: string, epoch: number, o: Partial<EffectLine> = {}): EffectLine {
  return { phase, run: RUN, name, key: `${RUN}/${name}/1`, execution: 1, attempt: 1, pid: 100, epoch, t: T0, hr: T0, ...o };
}

const runRow = (status: RunRow['status']): RunRow => ({
  id: RUN,
  flow: 'two',
  version: '1',
  key: null,
  status,
  args: {},
  result: {},
  failure: null,
  parentRunId: null,
  parentAtom: null,
  pendingAtoms: 0,
  revertPending: 0,
  atomCount: 2,
  graphHash: 'test',
  createdAt: new Date(T0),
  updatedAt: new Date(T0),
  finishedAt: new Date(T0),
});

/**
 * A clean two-atom run with a takeover: engine e1 claims a (epoch 1), dies; a is
 * requeued and claimed by e2 (epoch 2), which finishes it; b runs once (epoch 1).
 */
function clean(): History {
  nextId = 1;
  const events: EventRow[] = [
    ev('run.created', null, { toState: 'PENDING' }),
    ev('atom.claimed', 0, { toState: 'RUNNING', epoch: 1 }),
    ev('atom.requeued', 0, { toState: 'READY', epoch: 1 }),
    ev('atom.claimed', 0, { toState: 'RUNNING', epoch: 2, engineId: 'e2' }),
    ev('run.running', null, { fromState: 'PENDING', toState: 'RUNNING', engineId: 'e2' }),
    ev('atom.success', 0, { fromState: 'RUNNING', toState: 'SUCCESS', epoch: 2, engineId: 'e2' }),
    ev('atom.ready', 1, { fromState: 'PENDING', toState: 'READY' }),
    ev('atom.claimed', 1, { toState: 'RUNNING', epoch: 1, engineId: 'e2' }),
    ev('atom.success', 1, { fromState: 'RUNNING', toState: 'SUCCESS', epoch: 1, engineId: 'e2' }),
    ev('run.success', null, { fromState: 'RUNNING', toState: 'SUCCESS', engineId: 'e2' }),
  ];
  return {
    submitted: [{ id: RUN, flow: 'two', expect: 'SUCCESS' }],
    runs: new Map([[RUN, runRow('SUCCESS')]]),
    atoms: new Map([
      [
        RUN,
        [
          atomRow(0, 'a', { epoch: 2, execution: 2, result: { pid: 200, epoch: 2, execution: 2, attempt: 1 } }),
          atomRow(1, 'b', { epoch: 1, execution: 1, result: { pid: 200, epoch: 1, execution: 1, attempt: 1 } }),
        ],
      ],
    ]),
    events,
    effects: [
      line('start', 'a', 1, { pid: 100 }),
      line('start', 'a', 2, { pid: 200, execution: 2 }),
      line('end', 'a', 2, { pid: 200, execution: 2 }),
      line('start', 'b', 1, { pid: 200 }),
      line('end', 'b', 1, { pid: 200 }),
    ],
  };
}

function only(h: History): InvariantId[] {
  const verdict = checkHistory(h);
  return [...new Set(verdict.violations.map((x) => x.invariant))];
}

describe('chaos checker', () => {
  it('passes a clean history with a takeover', () => {
    const verdict = checkHistory(clean());
    expect(verdict.violations, formatVerdict(verdict)).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.stats).toMatchObject({ claims: 3, requeues: 1, reexecutions: 1 });
  });

  it('I1: a second terminal transition', () => {
    const h = clean();
    (h.events as EventRow[]).push(ev('run.cancelled', null, { fromState: 'SUCCESS', toState: 'CANCELLED' }));
    expect(only(h)).toEqual(['I1']);
  });

  it('I1: the terminal event disagrees with the run row', () => {
    const h = clean();
    (h.runs as Map<string, RunRow>).set(RUN, runRow('REVERTED'));
    expect(only(h)).toContain('I1');
  });

  it('I2: a lost run and a run left running', () => {
    const lost = clean();
    (lost.runs as Map<string, RunRow | null>).set(RUN, null);
    expect(only(lost)).toEqual(['I2']);
    const stuck = clean();
    (stuck.runs as Map<string, RunRow>).set(RUN, runRow('RUNNING'));
    expect(only(stuck)).toContain('I2');
  });

  it('I3: a zombie write under a superseded epoch', () => {
    const h = clean();
    // e1 (epoch 1) lands its success after e2 claimed epoch 2
    const events = h.events as EventRow[];
    const at = events.findIndex((e) => e.kind === 'atom.claimed' && e.epoch === 2);
    events.splice(at + 1, 0, ev('atom.success', 0, { fromState: 'RUNNING', toState: 'SUCCESS', epoch: 1, id: events[at]!.id + 0.5 }));
    const verdict = checkHistory(h);
    expect(verdict.violations.map((x) => x.invariant)).toContain('I3');
    expect(JSON.stringify(verdict.violations)).toContain('"writerEpoch":1');
  });

  it('I3: a write with the right epoch after the claim was requeued', () => {
    const h = clean();
    const events = h.events as EventRow[];
    const at = events.findIndex((e) => e.kind === 'atom.requeued');
    events.splice(at + 1, 0, ev('atom.failure', 0, { fromState: 'RUNNING', toState: 'FAILURE', epoch: 1, id: events[at]!.id + 0.5 }));
    expect(only(h)).toEqual(['I3']);
  });

  it('I3: an unfenced transition of a claimed atom', () => {
    const h = clean();
    const events = h.events as EventRow[];
    const at = events.findIndex((e) => e.kind === 'atom.claimed' && e.atom === 1);
    events.splice(at + 1, 0, ev('atom.ready', 1, { fromState: 'RUNNING', toState: 'READY', id: events[at]!.id + 0.5 }));
    expect(only(h)).toContain('I3');
  });

  it('I3: a recorded result from a superseded execution', () => {
    const h = clean();
    const atoms = (h.atoms as Map<string, AtomRow[]>).get(RUN)!;
    atoms[0] = { ...atoms[0]!, result: { pid: 100, epoch: 1, execution: 1, attempt: 1 } };
    expect(only(h)).toEqual(['I3']);
  });

  it('I3: a recorded result no execution produced', () => {
    const h = clean();
    h.effects = h.effects.filter((l) => !(l.name === 'b' && l.phase === 'end'));
    expect(only(h)).toEqual(['I3']);
  });

  it('I4: an epoch claimed twice, and epochs going backwards', () => {
    const dup = clean();
    const events = dup.events as EventRow[];
    const i = events.findIndex((e) => e.kind === 'atom.claimed' && e.epoch === 2);
    events[i] = { ...events[i]!, epoch: 1 };
    const atoms = (dup.atoms as Map<string, AtomRow[]>).get(RUN)!;
    atoms[0] = { ...atoms[0]!, epoch: 1, result: { pid: 200, epoch: 1, execution: 2, attempt: 1 } };
    dup.effects = dup.effects.map((l) => (l.name === 'a' && l.pid === 200 ? { ...l, epoch: 1 } : l));
    expect(only(dup)).toContain('I4');
  });

  it('I4: two holders at once (a claim while another is open)', () => {
    const h = clean();
    h.events = (h.events as EventRow[]).filter((e) => e.kind !== 'atom.requeued');
    expect(only(h)).toEqual(['I4']);
  });

  it('I4: an execution under an epoch never claimed, or twice under one epoch', () => {
    const ghost = clean();
    ghost.effects = [...ghost.effects, line('start', 'b', 7, { pid: 300 })];
    expect(only(ghost)).toContain('I4');
    const twice = clean();
    twice.effects = [...twice.effects, line('start', 'b', 1, { pid: 300 })];
    expect(only(twice)).toContain('I4');
  });

  it('I6: a succeeded atom claimed and executed again', () => {
    const h = clean();
    const events = h.events as EventRow[];
    const at = events.findIndex((e) => e.kind === 'atom.success' && e.atom === 1);
    events.splice(
      at + 1,
      0,
      ev('atom.claimed', 1, { toState: 'RUNNING', epoch: 2, id: events[at]!.id + 0.3 }),
      ev('atom.success', 1, { fromState: 'RUNNING', toState: 'SUCCESS', epoch: 2, id: events[at]!.id + 0.6 }),
    );
    const atoms = (h.atoms as Map<string, AtomRow[]>).get(RUN)!;
    atoms[1] = { ...atoms[1]!, epoch: 2, execution: 2, result: { pid: 200, epoch: 2, execution: 2, attempt: 1 } };
    h.effects = [...h.effects, line('start', 'b', 2, { pid: 200, execution: 2 }), line('end', 'b', 2, { pid: 200, execution: 2 })];
    expect(only(h)).toEqual(['I6']);
  });

  it('I6: the log shows an execution after the recorded success', () => {
    const h = clean();
    (h.events as EventRow[]).push(ev('atom.claimed', 1, { toState: 'RUNNING', epoch: 3 }));
    h.effects = [...h.effects, line('start', 'b', 3, { pid: 300, execution: 2 })];
    const ids = only(h);
    expect(ids).toContain('I6');
  });

  it('a scope retry that resets a succeeded atom is not a re-execution', () => {
    const h = clean();
    const events = h.events as EventRow[];
    const end = events.pop()!; // run.success
    events.push(
      ev('atom.revert_pending', 1, { fromState: 'SUCCESS', toState: 'REVERT_PENDING' }),
      ev('atom.reverted', 1, { fromState: 'REVERT_PENDING', toState: 'REVERTED' }),
      ev('atom.reset', 1, { fromState: 'REVERTED', toState: 'PENDING' }),
      ev('atom.ready', 1, { fromState: 'PENDING', toState: 'READY' }),
      ev('atom.claimed', 1, { toState: 'RUNNING', epoch: 2 }),
      ev('atom.success', 1, { fromState: 'RUNNING', toState: 'SUCCESS', epoch: 2 }),
      { ...end, id: nextId++ },
    );
    const atoms = (h.atoms as Map<string, AtomRow[]>).get(RUN)!;
    atoms[1] = { ...atoms[1]!, epoch: 2, attempt: 2, execution: 1, result: { pid: 200, epoch: 2, execution: 1, attempt: 2 } };
    h.effects = [
      ...h.effects,
      line('start', 'b', 2, { pid: 200, attempt: 2, key: `${RUN}/b/2` }),
      line('end', 'b', 2, { pid: 200, attempt: 2, key: `${RUN}/b/2` }),
    ];
    const verdict = checkHistory(h);
    expect(verdict.violations, formatVerdict(verdict)).toEqual([]);
  });
});
