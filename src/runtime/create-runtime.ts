/**
 * `createRuntime(options)`: the one place that wires Stoker together: a store opened from
 * a URL (and migrated), a flow registry and step types, one in-process wake-up hub shared
 * by every engine and client of the process, a pino logger, a run client, and zero or more
 * engines (none for code that only starts and watches runs, like most CLI commands).
 *
 * The CLI, the server and applications all go through here, so the wiring (and its
 * defaults) exists once. Options come in as data: this module never reads `process.env`.
 */
import pino from 'pino';
import type { Logger } from '../core/logger.js';
import { Engine } from '../engine/engine.js';
import { RunClient } from '../engine/run-client.js';
import { WakeHub } from '../engine/wake-hub.js';
import { ValidationError } from '../errors.js';
import { FlowRegistry } from '../flow/registry.js';
import { StepTypeRegistry } from '../flow/step-type.js';
import type { CompiledFlow, FlowDefinition } from '../flow/types.js';
import type { Store } from '../store/store.js';
import { openStore, type OpenStoreOptions } from '../store/open-store.js';
import type { MigrationRecord } from '../store/migration.js';
import { openAmqp, type Amqp } from './amqp.js';
import { createStackLayer, orchestrationSchema, type Orchestrator, type StackLayerOptions } from '../orchestration/stacks/index.js';

/** pino's levels, plus `silent`. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Defaults of {@link createRuntime}, in one place. */
export const RUNTIME_DEFAULTS = Object.freeze({
  engines: 1,
  concurrency: 64,
  migrate: true,
  logLevel: 'info' as LogLevel,
  stopTimeoutMs: 30_000,
});

export interface RuntimeOptions {
  /** a store URL (`sqlite:PATH`, `postgres://…`, `mysql://…`) or an already opened store */
  store: string | Store;
  /** passed to `openStore` when `store` is a URL */
  storeOptions?: OpenStoreOptions;
  /**
   * apply pending migrations when the runtime is created (default true); `'check'`: change
   * nothing, and fail with `STOKER_STORE_NOT_MIGRATED` (or `…_SCHEMA_TOO_NEW`) unless the
   * database is migrated to this version; with a store URL it also opens a SQLite file only
   * if it exists. The CLI checks in every command but `migrate`, `engine` and `demo`.
   */
  migrate?: boolean | 'check';
  /**
   * builds the stack layer (runtime.stacks) and registers its step types with the engines:
   * `true` for the defaults, or its options (user resource types, local commands, limits)
   */
  orchestration?: boolean | StackLayerOptions;
  /** a registry to use, or flows to register in a new one (default: an empty registry) */
  flows?: FlowRegistry | readonly (FlowDefinition | CompiledFlow)[];
  /** step types for graphs built at run time (default: none) */
  steps?: StepTypeRegistry;
  /** how many engines to create (default 1); 0 makes a client-only runtime */
  engines?: number;
  /** per engine: atoms executed at once (default 64; see `EngineOptions.concurrency`) */
  concurrency?: number;
  pollMs?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  /** largest run arguments accepted, in bytes (default 1 MiB; see EngineOptions.maxArgsBytes) */
  maxArgsBytes?: number;
  /** largest task result and signal payload accepted, in bytes (default 256 KiB) */
  maxResultBytes?: number;
  /**
   * SQLite: the local supervisor that SIGKILLs a stopped engine process of this host
   * stalling every engine by holding the write lock (docs/reliability.md R12; default true; see
   * `EngineOptions.localSupervisor`). No effect on PostgreSQL and MySQL.
   */
  localSupervisor?: boolean;
  /**
   * One engine of this process watches another process's engine (its session lock on
   * PostgreSQL and MySQL, its pid on SQLite), so a crash is taken over at once (default
   * true; see `EngineOptions.watchPeers`).
   */
  watchPeers?: boolean;
  /** retention: prune runs that ended more than this long ago (ms; see `EngineOptions.retentionMs`; default off) */
  retentionMs?: number;
  /** version reported in the engines table */
  version?: string;
  /** a logger to use (pino or the Logger port); otherwise a pino logger writing JSON lines to stderr */
  logger?: Logger;
  /** level of the pino logger created when `logger` is not given (default 'info') */
  logLevel?: LogLevel;
  /**
   * RabbitMQ (docs/amqp.md): an `amqp://` URL, or the URL with options. Starts, signals,
   * requeues and commit batches are announced on a fanout exchange and idle engines of
   * every process wake at once (hints only: the poll stays). A malformed URL, refused
   * credentials or an unreachable broker fail `createRuntime` within `connectTimeoutMs`.
   * With `key` (shared with the workers), tasks marked `remote` go to `stoker worker`
   * processes (docs/amqp.md, "Remote tasks").
   */
  amqp?: string | { url: string; key?: string; prefix?: string; connectTimeoutMs?: number };
  /** task names executed by remote workers although not marked `remote` (needs `amqp` with a key; see `EngineOptions.remoteTasks`) */
  remoteTasks?: readonly string[];
  /** per engine: remote atoms out with workers at once, on top of `concurrency` (default 256; see `EngineOptions.remoteConcurrency`) */
  remoteConcurrency?: number;
}

export interface Runtime {
  readonly store: Store;
  readonly flows: FlowRegistry;
  readonly steps: StepTypeRegistry;
  readonly wakeHub: WakeHub;
  readonly logger: Logger;
  /** starts, cancels, signals and waits for runs; shares the wake-up hub with the engines */
  readonly client: RunClient;
  /** the first engine, or null with `engines: 0` */
  readonly engine: Engine | null;
  /** every engine that `start()` starts (empty with `engines: 0`) */
  readonly engines: readonly Engine[];
  /** migrations applied at creation, with their module (empty when up to date or disabled) */
  readonly migrated: readonly MigrationRecord[];
  /** the stack layer (Heat-compatible orchestration), with `orchestration` set; else null */
  readonly stacks: Orchestrator | null;
  /** the RabbitMQ link, with `amqp` set; else null */
  readonly amqp: Amqp | null;
  /** starts every engine */
  start(): Promise<void>;
  /**
   * Stops the engines (draining in-flight atoms up to `timeoutMs`, default 30 s) and
   * closes the store unless it was passed in already opened. Safe to call twice.
   */
  stop(options?: { drain?: boolean; timeoutMs?: number }): Promise<void>;
}

/** The default logger of a process: pino, JSON lines on stderr, at `level` or above. */
export function createLogger(level: LogLevel): Logger {
  if (!LOG_LEVELS.includes(level)) {
    throw new ValidationError('STOKER_CONFIG_INVALID', `log level must be one of ${LOG_LEVELS.join(', ')}, got ${String(level)}`);
  }
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

function checkCount(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError('STOKER_CONFIG_INVALID', `${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * Opens the store, migrates it (unless `migrate: false`), and builds the run client and
 * the engines. Engines are not started until `start()`; the client (`startRun`, `cancel`,
 * `signal`, `waitForRun`) works at once.
 *
 * @example
 * ```ts
 * const runtime = await createRuntime({ store: 'sqlite:./.stoker/app.db', flows: [orderFlow], concurrency: 8 });
 * await runtime.start();
 * const { run } = await runtime.client.startRun('order', { orderId: 42 });
 * console.log((await runtime.client.waitForRun(run.id)).status);
 * await runtime.stop();
 * ```
 */
export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const engineCount = checkCount('engines', options.engines ?? RUNTIME_DEFAULTS.engines, 0, 64);
  const concurrency = checkCount('concurrency', options.concurrency ?? RUNTIME_DEFAULTS.concurrency, 1, 10_000);
  const level = options.logLevel ?? RUNTIME_DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(level)) {
    throw new ValidationError('STOKER_CONFIG_INVALID', `log level must be one of ${LOG_LEVELS.join(', ')}, got ${String(level)}`);
  }
  const logger: Logger = options.logger ?? createLogger(level);

  let flows: FlowRegistry;
  if (options.flows instanceof FlowRegistry) flows = options.flows;
  else {
    flows = new FlowRegistry();
    for (const f of options.flows ?? []) flows.register(f);
  }

  // the broker first: a bad --amqp fails before the database is opened or migrated
  const amqp: Amqp | null =
    options.amqp === undefined
      ? null
      : await openAmqp({
          ...(typeof options.amqp === 'string' ? { url: options.amqp } : options.amqp),
          logger,
          name: `stoker-${options.storeOptions?.role ?? 'app'}`,
        });
  const ownsStore = typeof options.store === 'string';
  const migrate = options.migrate ?? RUNTIME_DEFAULTS.migrate;
  let store: Store;
  try {
    store =
      typeof options.store === 'string'
        ? await openStore(options.store, { ...(migrate === 'check' ? { create: false } : {}), ...options.storeOptions })
        : options.store;
  } catch (e) {
    await amqp?.close().catch(() => undefined);
    throw e;
  }
  let migrated: MigrationRecord[] = [];
  try {
    // the orchestration module is part of the schema a migrate applies; a check asks for it only when stacks are used
    if (migrate === 'check') await store.checkSchema({ modules: options.orchestration ? [orchestrationSchema] : [] });
    else if (migrate) {
      const applied = await store.migrate({ modules: [orchestrationSchema] });
      migrated = applied;
      if (applied.length > 0) logger.info({ migrations: applied.map((m) => `${m.module} ${m.version}`) }, 'store migrated');
    }
  } catch (e) {
    await amqp?.close().catch(() => undefined);
    if (ownsStore) await store.close().catch(() => undefined);
    throw e;
  }

  const steps = options.steps ?? new StepTypeRegistry();
  const wakeHub = new WakeHub();
  // one relay for the process: the client's starts and signals are announced too
  if (amqp) wakeHub.attach(amqp.wakeups);
  const client = new RunClient({
    store,
    flows,
    wakeHub,
    ...(options.maxArgsBytes !== undefined ? { maxArgsBytes: options.maxArgsBytes } : {}),
    ...(options.maxResultBytes !== undefined ? { maxPayloadBytes: options.maxResultBytes } : {}),
  });
  const makeEngine = (): Engine =>
    new Engine({
      store,
      flows,
      steps,
      wakeHub,
      logger,
      concurrency,
      ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
      ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
      ...(options.maxArgsBytes !== undefined ? { maxArgsBytes: options.maxArgsBytes } : {}),
      ...(options.maxResultBytes !== undefined ? { maxResultBytes: options.maxResultBytes } : {}),
      ...(options.localSupervisor !== undefined ? { localSupervisor: options.localSupervisor } : {}),
      ...(options.watchPeers !== undefined ? { watchPeers: options.watchPeers } : {}),
      ...(options.retentionMs !== undefined ? { retentionMs: options.retentionMs } : {}),
      ...(options.version !== undefined ? { version: options.version } : {}),
      ...(amqp ? { amqp } : {}),
      ...(options.remoteTasks !== undefined ? { remoteTasks: options.remoteTasks } : {}),
      ...(options.remoteConcurrency !== undefined ? { remoteConcurrency: options.remoteConcurrency } : {}),
    });
  const engines: Engine[] = [];
  let stacks: Orchestrator | null = null;
  try {
    if (options.orchestration && store.moduleSql) {
      stacks = await createStackLayer(
        { sql: store.moduleSql, queries: store, client, steps },
        options.orchestration === true ? {} : options.orchestration,
      );
    }
    for (let i = 0; i < engineCount; i++) engines.push(makeEngine());
  } catch (e) {
    await amqp?.close().catch(() => undefined);
    if (ownsStore) await store.close().catch(() => undefined);
    throw e;
  }

  let started = false;
  let stopped: Promise<void> | null = null;
  return {
    store,
    flows,
    steps,
    wakeHub,
    logger,
    client,
    engine: engines[0] ?? null,
    engines,
    migrated,
    stacks,
    amqp,
    async start() {
      if (stopped) throw new ValidationError('STOKER_ENGINE_STOPPED', 'this runtime was stopped; create a new one');
      if (started) return;
      started = true;
      try {
        for (const e of engines) await e.start();
      } catch (err) {
        await Promise.all(engines.map((e) => e.stop({ drain: false }).catch(() => undefined)));
        throw err;
      }
    },
    stop(stopOptions = {}) {
      stopped ??= (async () => {
        const timeoutMs = stopOptions.timeoutMs ?? RUNTIME_DEFAULTS.stopTimeoutMs;
        await Promise.all(engines.map((e) => e.stop({ drain: stopOptions.drain ?? true, timeoutMs })));
        await client.flush();
        await amqp?.close();
        if (ownsStore) await store.close();
      })();
      return stopped;
    },
  };
}
