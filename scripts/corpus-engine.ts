/**
 * One engine process of `npm run corpus` (case 032, `kill_engine`):
 * `node --import tsx scripts/corpus-engine.ts <storeUrl> [logFile]`. It builds a runtime with
 * the stack layer and one engine on the case's database, prints `ready <engineId> <pid>`,
 * and runs until SIGTERM (a graceful stop) or SIGKILL (what the case does to it).
 */
import { writeSync } from 'node:fs';
import pino from 'pino';
import { createRuntime } from '../src/runtime/index.js';

const [url, logFile] = process.argv.slice(2);
if (!url) throw new Error('usage: scripts/corpus-engine.ts <storeUrl> [logFile]');

const logger = pino(
  { level: 'info', base: { pid: process.pid } },
  logFile ? pino.destination({ dest: logFile, sync: true }) : pino.destination(2),
);
const runtime = await createRuntime({ store: url, orchestration: true, engines: 1, concurrency: 16, pollMs: 100, logger });
await runtime.start();
// the engine's timers are unref'd: this keeps the process up until a signal
const keepAlive = setInterval(() => undefined, 1_000);
writeSync(1, `ready ${runtime.engine!.id} ${process.pid}\n`);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void runtime.stop({ timeoutMs: 5_000 }).finally(() => {
    clearInterval(keepAlive);
    process.exit(0);
  });
});
