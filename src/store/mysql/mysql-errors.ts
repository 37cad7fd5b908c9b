/**
 * What mysql2 errors mean for the store: which end a transaction that may simply run
 * again, which say that the database cannot be used from here (rather than that one
 * statement failed), and how to name them in messages without values or passwords.
 */
import { StoreError, isStokerError } from '../../errors.js';
import { NETWORK_ERROR_CODES, aggregateMessage } from '../sql/driver-errors.js';
import type { MysqlTarget } from './mysql-driver.js';

/** errno of a deadlock and of a lock wait timeout: the whole transaction may run again */
const RETRYABLE_ERRNOS = new Set([1213, 1205]);
const UNREACHABLE_CODES = new Set([
  ...NETWORK_ERROR_CODES,
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_HOST_NOT_PRIVILEGED',
  'ER_HOST_IS_BLOCKED',
]);

interface DriverError {
  code?: string;
  errno?: number;
  sqlState?: string;
  message?: string;
  fatal?: boolean;
}

/** The mysql2 error in `e` or its causes (through our wrappers), if any. */
export function driverError(e: unknown): DriverError | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (isStokerError(cur)) continue;
    if (typeof cur === 'object' && cur !== null && ('errno' in cur || 'sqlState' in cur || 'code' in cur)) return cur as DriverError;
  }
  return undefined;
}

/**
 * A deadlock or lock wait timeout, or two starts with the same new key that raced
 * (`activeKeyIndex` violated: the loser runs again and finds the winner).
 */
export function isRetryable(e: unknown, activeKeyIndex: string): boolean {
  const err = driverError(e);
  if (!err) return false;
  if (err.errno !== undefined && RETRYABLE_ERRNOS.has(err.errno)) return true;
  return err.errno === 1062 && (err.message ?? '').includes(activeKeyIndex);
}

export function isUnreachable(e: unknown): boolean {
  const err = driverError(e);
  if (!err) return false;
  if (err.code !== undefined && UNREACHABLE_CODES.has(err.code)) return true;
  // a fatal error leaves the connection unusable: the server or the network went away
  return err.fatal === true && err.errno === undefined;
}

export function codeDetails(e: unknown): Record<string, string | number> {
  const err = driverError(e);
  const out: Record<string, string | number> = {};
  if (err?.code) out.errorCode = err.code;
  if (err?.errno !== undefined) out.errno = err.errno;
  return out;
}

/** A cause as one readable line (Node's AggregateError for ECONNREFUSED has an empty message). */
export function describeCause(e: unknown): string {
  const all = aggregateMessage(e);
  if (all !== undefined) return all;
  if (e instanceof Error) {
    const err = e as Error & DriverError;
    return err.message || err.code || err.name;
  }
  return String(e);
}

/**
 * Reads a `mysql://` or `mariadb://` URL. Throws STOKER_STORE_URL_INVALID when it is not one
 * or names no database.
 */
export function parseMysqlUrl(uri: string): MysqlTarget {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new StoreError('STOKER_STORE_URL_INVALID', 'the MySQL store URL is malformed; expected mysql://user:password@host:port/database');
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new StoreError('STOKER_STORE_URL_INVALID', `a MySQL store URL starts with mysql:// or mariadb://, not ${u.protocol}//`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!u.hostname || !database || database.includes('/')) {
    throw new StoreError(
      'STOKER_STORE_URL_INVALID',
      'a MySQL store URL must name a host and a database: mysql://user:password@host:port/database',
    );
  }
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    database,
  };
}
