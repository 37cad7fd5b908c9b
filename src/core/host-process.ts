/**
 * The host process, as far as an engine that runs a service needs it: stop signals, a
 * handle that keeps Node's event loop alive, and an immediate exit. A port (like `Clock`)
 * so that the engine folder touches no process state itself and tests can drive it.
 *
 * @example
 * ```ts
 * const off = systemHostProcess.onStopSignal((signal, nth) => console.log(signal, nth));
 * const release = systemHostProcess.keepAlive();
 * // … later
 * release();
 * off();
 * ```
 */
import { constants } from 'node:os';

export type StopSignal = 'SIGTERM' | 'SIGINT';

export interface HostProcess {
  /** calls `handler` on every SIGTERM or SIGINT (`nth` counts them from 1); returns a function that removes it */
  onStopSignal(handler: (signal: StopSignal, nth: number) => void): () => void;
  /** keeps the process alive (engines' own timers are unref'd) until the returned function is called */
  keepAlive(): () => void;
  /** ends the process at once with the exit code of a process killed by `signal` (128 + its number) */
  exitForSignal(signal: StopSignal): never;
}

/** The Node process this code runs in. */
export const systemHostProcess: HostProcess = {
  onStopSignal(handler) {
    let nth = 0;
    const onSignal = (signal: NodeJS.Signals): void => handler(signal as StopSignal, ++nth);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    return () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
  },
  keepAlive() {
    const timer = setInterval(() => undefined, 1 << 30);
    return () => clearInterval(timer);
  },
  exitForSignal(signal) {
    process.exit(128 + (constants.signals[signal] ?? 2));
  },
};
