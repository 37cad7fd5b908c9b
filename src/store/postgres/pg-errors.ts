/**
 * What node-postgres errors mean for the store: which end a transaction that may simply
 * run again, which say that the database cannot be used from here (rather than that one
 * statement failed), and how to name them in messages without values or passwords.
 */
import pg from 'pg';
import { NETWORK_ERROR_CODES, aggregateMessage } from '../sql/driver-errors.js';

/** SQLSTATEs after which the whole transaction may simply run again. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);
/** SQLSTATEs that mean "the database cannot be used from here" rather than "this statement failed". */
const UNREACHABLE_SQLSTATES = new Set(['28P01', '28000', '3D000', '57P01', '57P02', '57P03', '53300']);
const UNREACHABLE_NODE_CODES = new Set(NETWORK_ERROR_CODES);

/** The SQLSTATE of a database error, looking through `cause`s (a StoreError wraps the driver's). */
export function sqlState(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (cur instanceof pg.DatabaseError) return cur.code;
  }
  return undefined;
}

function constraintOf(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (cur instanceof pg.DatabaseError) return cur.constraint;
  }
  return undefined;
}

/**
 * A deadlock or serialization failure, or two starts with the same new key that raced
 * (`activeKeyIndex` violated: the loser runs again and finds the winner).
 */
export function isRetryable(e: unknown, activeKeyIndex: string): boolean {
  const code = sqlState(e);
  if (code !== undefined && RETRYABLE_SQLSTATES.has(code)) return true;
  return code === '23505' && constraintOf(e) === activeKeyIndex;
}

function nodeCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isUnreachable(e: unknown): boolean {
  if (e instanceof pg.DatabaseError) return e.code !== undefined && (UNREACHABLE_SQLSTATES.has(e.code) || e.code.startsWith('08'));
  const code = nodeCode(e);
  if (code !== undefined && UNREACHABLE_NODE_CODES.has(code)) return true;
  const message = e instanceof Error ? e.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended/i.test(
    message,
  );
}

export function codeDetails(e: unknown): Record<string, string> {
  if (e instanceof pg.DatabaseError && e.code) return { sqlState: e.code };
  const code = nodeCode(e);
  return code ? { errorCode: code } : {};
}

/** A cause as one readable line (Node's AggregateError for ECONNREFUSED has an empty message). */
export function describeCause(e: unknown): string {
  const all = aggregateMessage(e);
  if (all !== undefined) return all;
  if (e instanceof pg.DatabaseError) return `${e.message} (SQLSTATE ${e.code ?? '?'})`;
  if (e instanceof Error) return e.message || nodeCode(e) || e.name;
  return String(e);
}

/** `host:port/database` of a connection string, without credentials. */
export function describeTarget(connectionString: string): string {
  try {
    const u = new URL(connectionString);
    const host = u.hostname || 'localhost';
    const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
    return `${host}:${u.port || '5432'}/${db}`;
  } catch {
    return '(unparsable connection string)';
  }
}
