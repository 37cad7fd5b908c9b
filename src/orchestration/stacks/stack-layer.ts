/**
 * Builds the stack layer over an opened store and run client: the resource type registry
 * (built-in types, the stack layer's own, and user plugins), the SoftwareConfig store and
 * the RandomString secret kept in the database (so that every engine derives the same
 * values), and the {@link Orchestrator} whose step types the engines register.
 */
import { randomBytes } from 'node:crypto';
import type { RunClient } from '../../engine/run-client.js';
import { StokerError } from '../../errors.js';
import type { StepTypeRegistry } from '../../flow/step-type.js';
import type { ModuleSql, RunQueries } from '../../store/ports.js';
import { createBuiltinRegistry, type ResourceType, type SoftwareConfigRecord, type SoftwareConfigStore } from '../resources/index.js';
import type { StackLimits } from './layer.js';
import { Orchestrator } from './orchestrator.js';

export interface StackLayerOptions {
  /** resource types of the user's own (`--plugins`) */
  plugins?: readonly ResourceType[];
  /** lets Stoker::Local::Command run commands (`--allow-local-commands`) */
  allowLocalCommands?: boolean;
  /** the environment local commands start from (default: empty, so the engine's secrets stay out) */
  localCommandEnv?: Record<string, string | undefined>;
  limits?: Partial<StackLimits>;
}

/** SoftwareConfig records in the `software_configs` table. */
export class SqlConfigStore implements SoftwareConfigStore {
  constructor(private readonly sql: ModuleSql) {}

  async put(record: SoftwareConfigRecord): Promise<void> {
    await this.sql.transaction('store a software config', async (s) => {
      await s.exec('store a software config', 'DELETE FROM {p}software_configs WHERE id = ?', [record.id]);
      await s.exec('store a software config', 'INSERT INTO {p}software_configs (id, body) VALUES (?, ?)', [
        record.id,
        JSON.stringify(record),
      ]);
    });
  }

  async get(id: string): Promise<SoftwareConfigRecord | null> {
    const rows = await this.sql.read('read a software config', (s) =>
      s.rows('read a software config', 'SELECT body FROM {p}software_configs WHERE id = ?', [id]),
    );
    return rows[0] ? (JSON.parse(String(rows[0]['body'])) as SoftwareConfigRecord) : null;
  }

  async delete(id: string): Promise<void> {
    await this.sql.transaction('delete a software config', (s) =>
      s.exec('delete a software config', 'DELETE FROM {p}software_configs WHERE id = ?', [id]),
    );
  }
}

/** The deployment's RandomString secret: made once, stored, the same for every engine. */
export async function orchestrationSecret(sql: ModuleSql): Promise<string> {
  const read = async (): Promise<string | null> => {
    const rows = await sql.read('read the orchestration secret', (s) =>
      s.rows('read the orchestration secret', `SELECT value FROM {p}orchestration_settings WHERE name = ?`, ['random_string_secret']),
    );
    return rows[0] ? String(rows[0]['value']) : null;
  };
  const found = await read();
  if (found) return found;
  try {
    await sql.transaction('store the orchestration secret', (s) =>
      s.exec('store the orchestration secret', `INSERT INTO {p}orchestration_settings (name, value) VALUES (?, ?)`, [
        'random_string_secret',
        randomBytes(48).toString('base64'),
      ]),
    );
  } catch {
    // another process stored it first
  }
  const stored = await read();
  if (!stored) throw new StokerError('STOKER_INTERNAL_INVARIANT', 'the orchestration secret could not be stored');
  return stored;
}

/** The stack layer of a runtime: registers its step types in `steps`. */
export async function createStackLayer(
  deps: { sql: ModuleSql; queries: RunQueries; client: RunClient; steps: StepTypeRegistry },
  options: StackLayerOptions = {},
): Promise<Orchestrator> {
  const secret = await orchestrationSecret(deps.sql);
  const registry = createBuiltinRegistry({
    secret,
    configs: new SqlConfigStore(deps.sql),
    ...(options.allowLocalCommands ? { allowLocalCommands: true } : {}),
    ...(options.localCommandEnv ? { localCommandEnv: options.localCommandEnv } : {}),
  });
  for (const plugin of options.plugins ?? []) registry.register(plugin);
  const orchestrator = new Orchestrator({
    sql: deps.sql,
    queries: deps.queries,
    client: deps.client,
    registry,
    ...(options.limits ? { limits: options.limits } : {}),
  });
  for (const step of orchestrator.stepTypes()) if (!deps.steps.find(step.type)) deps.steps.register(step);
  return orchestrator;
}
