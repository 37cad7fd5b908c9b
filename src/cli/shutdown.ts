/**
 * Graceful stop on SIGINT/SIGTERM for long-running commands (`engine`, `run --wait`,
 * `demo`): the first signal asks the command to stop (engines drain their in-flight atoms
 * and hand back the rest); a second one exits at once with 128 + the signal number.
 */
import { constants } from 'node:os';
import type { CliContext } from './context.js';

export interface ShutdownWatch {
  /** resolves with the first signal received */
  readonly requested: Promise<NodeJS.Signals>;
  /** whether a signal was received */
  readonly received: () => NodeJS.Signals | null;
  /** removes the handlers */
  dispose(): void;
}

/**
 * Installs the handlers. `what` completes the note printed on the first signal, e.g.
 * "stopping the engine (draining in-flight atoms)".
 */
export function watchShutdown(ctx: CliContext, what: string): ShutdownWatch {
  let first: NodeJS.Signals | null = null;
  let resolve!: (s: NodeJS.Signals) => void;
  const requested = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const handler = (signal: NodeJS.Signals): void => {
    if (first === null) {
      first = signal;
      ctx.note(`received ${signal}: ${what}; send it again to exit at once`);
      resolve(signal);
      return;
    }
    ctx.note(`received ${signal} again: exiting now`);
    process.exit(128 + (constants.signals[signal] ?? 2));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    requested,
    received: () => first,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
