/**
 * Waiting for a run in a command: until it ends, a timeout passes, or the user asks to
 * stop. The process's wake-up hub wakes the wait at once when an engine of this process
 * ended the run; a short poll covers runs finished by other engines.
 */
import { isTerminalRun } from '../store/states.js';
import { NotFoundError } from '../errors.js';
import type { Runtime } from '../runtime/create-runtime.js';
import type { RunRow } from '../store/store.js';

export type WaitOutcome = { kind: 'finished'; run: RunRow } | { kind: 'timeout'; run: RunRow } | { kind: 'interrupted'; run: RunRow };

export async function waitForRun(
  runtime: Runtime,
  runId: string,
  options: { timeoutMs?: number; pollMs?: number; interrupt?: Promise<unknown> } = {},
): Promise<WaitOutcome> {
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  let interrupted = false;
  let wake: (() => void) | null = null;
  let off = runtime.wakeHub.onRunEnded(runId, () => wake?.());
  void options.interrupt?.then(() => {
    interrupted = true;
    wake?.();
  });
  try {
    for (;;) {
      const run = await runtime.store.getRun(runId);
      if (!run) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
      if (isTerminalRun(run.status)) return { kind: 'finished', run };
      if (interrupted) return { kind: 'interrupted', run };
      const left = deadline - Date.now();
      if (left <= 0) return { kind: 'timeout', run };
      off();
      off = runtime.wakeHub.onRunEnded(runId, () => wake?.());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, options.pollMs ?? 250));
        function done(): void {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = done;
      });
    }
  } finally {
    off();
  }
}
