/**
 * The runtime: wiring of store, flows, wake-ups, logger and engines (see create-runtime.ts),
 * and loading of flows modules.
 */
export {
  createLogger,
  createRuntime,
  RUNTIME_DEFAULTS,
  LOG_LEVELS,
  type LogLevel,
  type Runtime,
  type RuntimeOptions,
} from './create-runtime.js';
export { loadFlowsModule, FLOWS_MODULE_EXTENSIONS } from './load-flows.js';
export { openAmqp, type Amqp, type AmqpOptions } from './amqp.js';
export { Worker, type WorkerOptions } from './worker.js';
