/**
 * graphile-worker as a worker process, for the same-run references of the benchmarks:
 * `node graphile-worker-process.mjs <postgresUrl> <logPath> [idle|defaults|tuned]`.
 * - task `idle` appends `{"id": <payload.id>, "t": <wall ms>, "hr": <wall ms, fractional>}` to the log as it starts,
 *   the way Stoker's benchmark task does (bench/takeover.ts, idle latency);
 * - task `noop` does nothing (bench/run.ts, scenario c: a queue of one-task jobs drained).
 * Mode `idle` (the default) polls every second like Stoker's idle engine (both wake by
 * NOTIFY); `defaults` keeps every setting of graphile-worker 0.16.6 at its default
 * (concurrency 1, poll 2 s); `tuned` runs graphile-worker 0.17.3 (the release that brought
 * batching; installed as `graphile-worker-0.17`) with the configuration of its performance
 * page (worker.graphile.org/docs/performance): `concurrentJobs: 24`, `maxPoolSize: 25`,
 * `localQueue: { size: 500 }` (jobs fetched and locked in batches), `completeJobBatchDelay: 0`
 * and `failJobBatchDelay: 0` (completions and failures written in batches).
 * Prints `ready` once the worker listens; SIGTERM stops it.
 */
import { appendFileSync, writeSync } from 'node:fs';

const [connectionString, log, mode = 'idle'] = process.argv.slice(2);
if (!connectionString || !log || !['idle', 'defaults', 'tuned'].includes(mode)) {
  process.stderr.write('usage: graphile-worker-process.mjs <postgresUrl> <logPath> [idle|defaults|tuned]\n');
  process.exit(2);
}
const { run } = await import(mode === 'tuned' ? 'graphile-worker-0.17' : 'graphile-worker');
const settings = {
  idle: { concurrency: 4, pollInterval: 1000 },
  defaults: {},
  tuned: {
    concurrency: 24,
    maxPoolSize: 25,
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  },
}[mode];
const runner = await run({
  connectionString,
  ...settings,
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
