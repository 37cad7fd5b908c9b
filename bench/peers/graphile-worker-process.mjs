/**
 * graphile-worker as an idle worker process, for the same-run reference of the idle-latency
 * benchmark (bench/takeover.ts): `node graphile-worker-process.mjs <postgresUrl> <logPath>`.
 * Its one task, `idle`, appends `{"id": <payload.id>, "t": <wall ms>}` to the log as it
 * starts, the way Stoker's benchmark task does. Prints `ready` once the worker listens;
 * SIGTERM stops it.
 */
import { appendFileSync, writeSync } from 'node:fs';
import { run } from 'graphile-worker';

const [connectionString, log] = process.argv.slice(2);
if (!connectionString || !log) {
  process.stderr.write('usage: graphile-worker-process.mjs <postgresUrl> <logPath>\n');
  process.exit(2);
}
const runner = await run({
  connectionString,
  concurrency: 4,
  // its default poll interval is 2 s; Stoker's idle engine polls every 1 s: both wake by NOTIFY
  pollInterval: 1000,
  noHandleSignals: true,
  logger: undefined,
  taskList: {
    idle: async (payload) => {
      appendFileSync(log, JSON.stringify({ id: String(payload.id), t: Date.now() }) + '\n');
    },
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
