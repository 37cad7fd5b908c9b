import type { Rng } from '../core/clock.js';
import type { TaskRetrySpec } from '../flow/graph.js';

/**
 * Delay before attempt `nextAttempt` (2 = the first retry): exponential, capped, with a
 * jittered fraction so that many atoms failing together do not retry in lockstep.
 */
export function backoffDelayMs(spec: TaskRetrySpec, nextAttempt: number, rng: Rng): number {
  const base = Math.min(spec.maxBackoffMs, spec.backoffMs * spec.factor ** Math.max(0, nextAttempt - 2));
  const jitter = base * spec.jitter;
  return Math.max(0, Math.round(base - jitter + rng.next() * 2 * jitter));
}
