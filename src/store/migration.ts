/**
 * Versioned, checksummed migrations. Each dialect ships its own SQL for the same numbered
 * versions; an applied migration is never edited (its checksum is checked on every start).
 */
import { createHash } from 'node:crypto';
import { StoreError } from '../errors.js';

export interface Migration {
  version: number;
  name: string;
  /** statements, with `{p}` standing for the table prefix */
  statements: readonly string[];
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
 * Compares what the database has applied with what this build ships; throws when an applied
 * migration changed or the database is newer. Returns the migrations still to apply.
 */
export function pendingMigrations(shipped: readonly Migration[], applied: readonly AppliedMigration[]): Migration[] {
  const byVersion = new Map(shipped.map((m) => [m.version, m]));
  const latest = Math.max(0, ...shipped.map((m) => m.version));
  for (const a of applied) {
    const m = byVersion.get(a.version);
    if (!m) {
      if (a.version > latest) {
        throw new StoreError(
          'STOKER_STORE_SCHEMA_TOO_NEW',
          `the database has migration ${a.version} (${a.name}); this Stoker knows up to ${latest}: upgrade Stoker`,
          {
            details: { applied: a.version, known: latest },
          },
        );
      }
      continue;
    }
    const sum = migrationChecksum(m);
    if (sum !== a.checksum) {
      throw new StoreError(
        'STOKER_STORE_MIGRATION_CHECKSUM',
        `migration ${a.version} (${a.name}) was applied with checksum ${a.checksum.slice(0, 12)}…, this build ships ${sum.slice(0, 12)}…`,
        {
          details: { version: a.version, applied: a.checksum, shipped: sum },
        },
      );
    }
  }
  const done = new Set(applied.map((a) => a.version));
  return shipped.filter((m) => !done.has(m.version)).sort((a, b) => a.version - b.version);
}

/** Table prefixes are identifiers spliced into SQL: validated once, here. */
export function checkPrefix(prefix: string): string {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(prefix)) {
    throw new StoreError('STOKER_CONFIG_INVALID', `table prefix "${prefix}" must match [a-z][a-z0-9_]{0,30}`);
  }
  return prefix;
}
