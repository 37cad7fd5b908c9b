/**
 * Run and atom states, and the transitions allowed between them, as data. The engine
 * writes each transition as one conditional UPDATE (`WHERE state = <from>`); docs/states.md
 * is checked against these tables by a unit test.
 */

export const RunStatus = {
  PENDING: 'PENDING',
  RUNNING: 'RUNNING',
  REVERTING: 'REVERTING',
  SUCCESS: 'SUCCESS',
  REVERTED: 'REVERTED',
  FAILED: 'FAILED',
  CANCELLED: 'CANCELLED',
  SUPERSEDED: 'SUPERSEDED',
} as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

export const AtomState = {
  PENDING: 'PENDING',
  READY: 'READY',
  RUNNING: 'RUNNING',
  WAITING: 'WAITING',
  SUCCESS: 'SUCCESS',
  FAILURE: 'FAILURE',
  SKIPPED: 'SKIPPED',
  CANCELLED: 'CANCELLED',
  REVERT_PENDING: 'REVERT_PENDING',
  REVERT_READY: 'REVERT_READY',
  REVERTING: 'REVERTING',
  REVERTED: 'REVERTED',
  REVERT_FAILURE: 'REVERT_FAILURE',
} as const;
export type AtomState = (typeof AtomState)[keyof typeof AtomState];

export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ['SUCCESS', 'REVERTED', 'FAILED', 'CANCELLED', 'SUPERSEDED'];
/** Run statuses in which atoms may still be claimed. */
export const ACTIVE_RUN_STATUSES: readonly RunStatus[] = ['PENDING', 'RUNNING', 'REVERTING'];
/** Atom states a claim picks up (when `ready_at <= now()`). */
export const CLAIMABLE_ATOM_STATES: readonly AtomState[] = ['READY', 'WAITING', 'REVERT_READY'];

/** Allowed run transitions: from → to[]. */
export const RUN_TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  PENDING: ['RUNNING', 'CANCELLED', 'SUPERSEDED'],
  RUNNING: ['SUCCESS', 'REVERTING', 'CANCELLED', 'SUPERSEDED'],
  REVERTING: ['REVERTED', 'FAILED', 'CANCELLED', 'SUPERSEDED'],
  SUCCESS: [],
  REVERTED: [],
  FAILED: [],
  CANCELLED: [],
  SUPERSEDED: [],
};

/** Allowed atom transitions: from → to[]. */
export const ATOM_TRANSITIONS: Readonly<Record<AtomState, readonly AtomState[]>> = {
  PENDING: ['READY', 'SKIPPED', 'CANCELLED'],
  READY: ['RUNNING', 'PENDING', 'CANCELLED'],
  RUNNING: ['SUCCESS', 'FAILURE', 'READY', 'WAITING', 'REVERT_PENDING', 'REVERT_READY', 'CANCELLED'],
  WAITING: ['RUNNING', 'PENDING', 'REVERT_PENDING', 'CANCELLED'],
  SUCCESS: ['REVERT_PENDING', 'REVERT_READY', 'REVERTED'],
  FAILURE: ['REVERT_PENDING', 'REVERT_READY', 'REVERTED'],
  SKIPPED: ['PENDING'],
  CANCELLED: [],
  REVERT_PENDING: ['REVERT_READY', 'REVERTED', 'READY', 'CANCELLED'],
  REVERT_READY: ['REVERTING', 'REVERTED', 'CANCELLED'],
  REVERTING: ['REVERTED', 'REVERT_FAILURE', 'REVERT_READY', 'CANCELLED'],
  REVERTED: ['PENDING'],
  REVERT_FAILURE: [],
};

/** Whether the transition tables allow `from → to` for an atom. */
export function atomTransitionAllowed(from: AtomState, to: AtomState): boolean {
  return ATOM_TRANSITIONS[from].includes(to);
}

export function isTerminalRun(status: RunStatus): boolean {
  return TERMINAL_RUN_STATUSES.includes(status);
}
