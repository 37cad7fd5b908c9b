/**
 * A bare "engine" process for the store liveness tests: `node --import tsx
 * test/helpers/liveness-child.ts <storeUrl> <tablePrefix> <engineId> [leaseMs] [claims]`.
 *
 * Opens the store, registers the engine (taking its session lock on PostgreSQL and MySQL),
 * claims up to `claims` atoms (default 1), prints one JSON line
 * `{"ready":true,"pid":…,"claims":[{"runId":…,"index":…}]}` and then waits, holding its
 * claims and its lock, without ever renewing its lease, until it is killed (the tests use
 * SIGKILL) or told to stop (SIGTERM: deregisters and exits 0).
 */
import { hostname } from 'node:os';
import { openStore } from '../../src/store/open-store.js';

const [url, tablePrefix, engineId, leaseMs = '60000', claims = '1'] = process.argv.slice(2);
if (!url || !tablePrefix || !engineId) throw new Error('usage: liveness-child <storeUrl> <tablePrefix> <engineId> [leaseMs] [claims]');

const store = await openStore(url, { tablePrefix, poolSize: 2 });
await store.registerEngine({
  id: engineId,
  host: hostname(),
  pid: process.pid,
  version: 'liveness-child',
  leaseMs: Number(leaseMs),
  onSessionLost: (e) => process.stderr.write(`session lost: ${e.message}\n`),
});
const claimed = Number(claims) > 0 ? await store.claimAtoms(engineId, Number(claims)) : [];
process.stdout.write(
  `${JSON.stringify({ ready: true, pid: process.pid, claims: claimed.map((c) => ({ runId: c.runId, index: c.index })) })}\n`,
);

const keepAlive = setInterval(() => undefined, 1 << 30);
process.on('SIGTERM', () => {
  clearInterval(keepAlive);
  void store
    .deregisterEngine(engineId)
    .then(() => store.close())
    .then(() => process.exit(0));
});
