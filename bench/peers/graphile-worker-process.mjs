/**
 * graphile-worker as a worker process, for the same-run references of the benchmarks:
 * `node graphile-worker-process.mjs <postgresUrl> <logPath> [idle|defaults]`.
 * - task `idle` appends `{"id": <payload.id>, "t": <wall ms>, "hr": <wall ms, fractional>}` to the log as it starts,
 *   the way Stoker's benchmark task does (bench/takeover.ts, idle latency);
 * - task `noop` does nothing (bench/run.ts, scenario c: a queue of one-task jobs drained).
 * Mode `idle` (the default) polls every second like Stoker's idle engine (both wake by
 * NOTIFY); `defaults` keeps every setting of graphile-worker at its default (concurrency 1,
 * poll 2 s). Prints `ready` once the worker listens; SIGTERM stops it.
 */
import { appendFileSync, writeSync } from 'node:fs';
import { run } from 'graphile-worker';

const [connectionString, log, mode = 'idle'] = process.argv.slice(2);
if (!connectionString || !log || !['idle', 'defaults'].includes(mode)) {
  process.stderr.write('usage: graphile-worker-process.mjs <postgresUrl> <logPath> [idle|defaults]\n');
  process.exit(2);
}
const runner = await run({
  connectionString,
  ...(mode === 'idle' ? { concurrency: 4, pollInterval: 1000 } : {}),
  noHandleSignals: true,
  taskList: {
    idle: async (payload) => {
      appendFileSync(log, JSON.stringify({ id: String(payload.id), t: Date.now(), hr: performance.timeOrigin + performance.now() }) + '\n');
    },
    noop: async () => undefined,
  },
});
process.on('SIGTERM', () => {
  runner.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
writeSync(1, 'ready\n');
await runner.promise;
