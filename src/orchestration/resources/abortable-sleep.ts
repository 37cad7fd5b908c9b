/**
 * A sleep that honours an AbortSignal by rejecting with its reason: what an engine (or a test)
 * can hand to resource operations as `ctx.sleep`. Long and infinite waits are split into
 * timer-sized pieces.
 */
import { systemClock, type Clock } from '../../core/clock.js';

/** The longest single timer Node keeps (2^31 - 1 ms); longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The reason an aborted signal carries, as an Error.
 *
 * @example
 * ```ts
 * const c = new AbortController(); c.abort(); abortReason(c.signal).name; // 'AbortError'
 * ```
 */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(reason === undefined ? 'The operation was aborted' : String(reason));
  error.name = 'AbortError';
  return error;
}

/**
 * Waits `ms` milliseconds (`Infinity`: until aborted); rejects with the abort reason as soon as
 * `signal` aborts.
 *
 * @example
 * ```ts
 * const sleep = (ms: number) => abortableSleep(ms, signal);
 * await type.create({ …, signal, sleep });
 * ```
 */
export async function abortableSleep(ms: number, signal: AbortSignal, clock: Clock = systemClock): Promise<void> {
  let left = Number.isNaN(ms) ? 0 : Math.max(0, ms);
  do {
    const piece = Math.min(left, MAX_TIMER_MS);
    await new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(abortReason(signal));
      const onAbort = (): void => {
        timer.cancel();
        reject(abortReason(signal));
      };
      const timer = clock.setTimer(piece, () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
    left -= piece;
  } while (left > 0);
}
