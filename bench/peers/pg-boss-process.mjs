/**
 * pg-boss as a worker process, for scenario c) of bench/run.ts (a queue of no-op jobs drained):
 * `node pg-boss-process.mjs <postgresUrl> <queue> <workers> <batchSize>`.
 * pg-boss 10 (the newest major that supports Node 20) fetches in batches: each `work()`
 * call is one polling worker that fetches up to `batchSize` jobs at once and hands them to
 * the handler as an array, completing them together when it returns; its docs leave the
 * concurrency inside a batch to the handler (all jobs at once here) and scale out with more
 * `work()` calls. `pollingIntervalSeconds: 0.5` is the smallest interval it accepts (a
 * worker whose batch took less than the interval waits out the rest before it fetches again).
 * Prints `ready` once pg-boss has started (connected, schema checked) and before its workers
 * fetch, so that the timing covers their first fetch as Stoker's covers its engine's first
 * claim; SIGTERM stops it.
 */
import { writeSync } from 'node:fs';
import PgBoss from 'pg-boss';

const [connectionString, queue, workers, batchSize] = process.argv.slice(2);
if (!connectionString || !queue || !(Number(workers) >= 1) || !(Number(batchSize) >= 1)) {
  process.stderr.write('usage: pg-boss-process.mjs <postgresUrl> <queue> <workers> <batchSize>\n');
  process.exit(2);
}
const boss = new PgBoss({ connectionString });
boss.on('error', (e) => process.stderr.write(`pg-boss: ${e.message}\n`));
await boss.start();
process.on('SIGTERM', () => {
  boss.stop({ graceful: false, wait: true }).then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
const noop = async () => undefined;
writeSync(1, 'ready\n');
for (let i = 0; i < Number(workers); i++)
  await boss.work(queue, { batchSize: Number(batchSize), pollingIntervalSeconds: 0.5 }, (jobs) => Promise.allSettled(jobs.map(noop)));
