/**
 * BullMQ as a worker process on the local Redis, for scenario c) of bench/run.ts (a queue of
 * no-op jobs drained): `node bullmq-process.mjs <redisPort> <prefix> <queue> <concurrency>`.
 * One Worker with a high `concurrency` (its docs' example is 50: docs.bullmq.io, Workers,
 * Concurrency), `removeOnComplete` / `removeOnFail` `{ count: 0 }` (its auto-removal, which
 * its docs recommend in production so that finished jobs do not fill Redis) and
 * `maxRetriesPerRequest: null` on its connection (which a worker's blocking fetch needs).
 * Prints `ready` once its connection is and before it fetches (`autorun: false`, then `run()`),
 * so that the timing covers its first fetch as Stoker's covers its engine's first claim;
 * SIGTERM closes it.
 */
import { writeSync } from 'node:fs';
import { Worker } from 'bullmq';

const [port, prefix, queue, concurrency] = process.argv.slice(2);
if (!(Number(port) > 0) || !prefix || !queue || !(Number(concurrency) >= 1)) {
  process.stderr.write('usage: bullmq-process.mjs <redisPort> <prefix> <queue> <concurrency>\n');
  process.exit(2);
}
const worker = new Worker(queue, async () => undefined, {
  connection: { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null },
  prefix,
  concurrency: Number(concurrency),
  autorun: false,
  removeOnComplete: { count: 0 },
  removeOnFail: { count: 0 },
});
worker.on('error', (e) => process.stderr.write(`bullmq: ${e.message}\n`));
await worker.waitUntilReady();
process.on('SIGTERM', () => {
  worker.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
writeSync(1, 'ready\n');
worker.run().catch((e) => {
  process.stderr.write(`bullmq: ${e.message}\n`);
  process.exit(1);
});
