/**
 * The runtime a command works with, built from the common flags. Kept in one place so
 * every command opens, migrates and names its store the same way.
 */
import { createRuntime, type Runtime, type RuntimeOptions } from '../runtime/create-runtime.js';
import type { CommonOptions } from './options.js';

/**
 * `role` names the database connections (application_name), e.g. stoker-engine. The schema
 * is only checked (`migrate: 'check'`: nothing is created, a SQLite file must exist) unless
 * the command asks otherwise: only `migrate`, `engine` and `demo` may change it (a
 * `runs list` against the wrong database created the tables there; docs/errors.md,
 * `STOKER_STORE_NOT_MIGRATED`).
 */
export function openRuntime(
  options: CommonOptions & { amqp?: string; amqpKey?: string },
  extra: Omit<RuntimeOptions, 'store' | 'storeOptions' | 'logLevel'> = {},
  role = 'cli',
): Promise<Runtime> {
  return createRuntime({
    store: options.store,
    storeOptions: { role, ...(options.tablePrefix !== undefined ? { tablePrefix: options.tablePrefix } : {}) },
    logLevel: options.logLevel,
    migrate: 'check',
    ...(options.amqp !== undefined
      ? { amqp: options.amqpKey !== undefined ? { url: options.amqp, key: options.amqpKey } : options.amqp }
      : {}),
    ...extra,
  });
}
