/**
 * Versioned, checksummed migrations, per schema module. The core schema (runs, atoms,
 * events, …) is module `core`, whose SQL each dialect ships in `<dialect>/migrations.ts`;
 * other layers bring their own modules (their tables, on all three dialects: write them
 * once with src/store/schema/portable.ts) and pass them to `Store.migrate({ modules })`.
 * Versions count from 1 within each module; an applied migration is never edited (its
 * checksum is checked on every migrate). The runner is src/store/schema/migrator.ts.
 */
import { createHash } from 'node:crypto';
import { StoreError, ValidationError } from '../errors.js';
import type { DialectName } from './types.js';

export interface Migration {
  version: number;
  name: string;
  /** statements, with `{p}` standing for the table prefix */
  statements: readonly string[];
}

/** A set of tables with its own numbered migrations, on every dialect. */
export interface SchemaModule {
  /** recorded with each applied migration; `core` is Stoker's own schema */
  readonly name: string;
  /** the migrations for one dialect, numbered from 1 (the same numbers on every dialect) */
  migrations(dialect: DialectName): readonly Migration[];
}

/** A migration that `Store.migrate` applied. */
export interface MigrationRecord {
  module: string;
  version: number;
  name: string;
}

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
}

/** The checksum of a migration's statements (prefix-independent). */
export function migrationChecksum(m: Migration): string {
  return createHash('sha256').update(m.statements.join('\n;\n')).digest('hex');
}

export function withPrefix(sql: string, prefix: string): string {
  return sql.replaceAll('{p}', prefix);
}

/**
 * Compares what the database has applied of one module with what this build ships; throws
 * when an applied migration changed or the database has a newer one. Returns the
 * migrations still to apply, in order.
 */
export function pendingMigrations(module: string, shipped: readonly Migration[], applied: readonly AppliedMigration[]): Migration[] {
  const byVersion = new Map(shipped.map((m) => [m.version, m]));
  const latest = Math.max(0, ...shipped.map((m) => m.version));
  for (const a of applied) {
    const m = byVersion.get(a.version);
    if (!m) {
      if (a.version > latest) {
        throw new StoreError(
          'STOKER_STORE_SCHEMA_TOO_NEW',
          `the database has migration ${a.version} (${a.name}) of module ${module}; this Stoker knows up to ${latest}: upgrade Stoker`,
          { details: { module, applied: a.version, known: latest } },
        );
      }
      continue;
    }
    const sum = migrationChecksum(m);
    if (sum !== a.checksum) {
      throw new StoreError(
        'STOKER_STORE_MIGRATION_CHECKSUM',
        `migration ${a.version} (${a.name}) of module ${module} was applied with checksum ${a.checksum.slice(0, 12)}…, this build ships ${sum.slice(0, 12)}…`,
        { details: { module, version: a.version, applied: a.checksum, shipped: sum } },
      );
    }
  }
  const done = new Set(applied.map((a) => a.version));
  return shipped.filter((m) => !done.has(m.version)).sort((a, b) => a.version - b.version);
}

/** Checks the modules given to `Store.migrate`: names, versions, no module twice. */
export function checkModules(modules: readonly SchemaModule[], dialect: DialectName): void {
  const seen = new Set<string>();
  for (const m of modules) {
    if (typeof m.name !== 'string' || !/^[a-z][a-z0-9_]{0,62}$/.test(m.name)) {
      throw new ValidationError('STOKER_CONFIG_INVALID', `schema module name "${String(m.name)}" must match [a-z][a-z0-9_]{0,62}`);
    }
    if (seen.has(m.name)) throw new ValidationError('STOKER_CONFIG_INVALID', `schema module ${m.name} is given twice`);
    seen.add(m.name);
    const versions = new Set<number>();
    for (const mig of m.migrations(dialect)) {
      if (!Number.isInteger(mig.version) || mig.version < 1 || versions.has(mig.version)) {
        throw new ValidationError(
          'STOKER_CONFIG_INVALID',
          `schema module ${m.name}: migration versions must be distinct whole numbers from 1 (got ${String(mig.version)})`,
        );
      }
      versions.add(mig.version);
    }
  }
}

/** Table prefixes are identifiers spliced into SQL: validated once, here. */
export function checkPrefix(prefix: string): string {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(prefix)) {
    throw new ValidationError('STOKER_CONFIG_INVALID', `table prefix "${prefix}" must match [a-z][a-z0-9_]{0,30}`);
  }
  return prefix;
}
