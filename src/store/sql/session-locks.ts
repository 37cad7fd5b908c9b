/**
 * Engine session locks (protocol 4, ARCHITECTURE.md "Liveness"; docs/reliability.md R11),
 * shared by PostgreSQL and MySQL: registering an engine first takes its lock on a
 * connection of its own, held until deregistration or close(); the database frees it the
 * moment that session ends (`kill -9`, a cut connection), which is how others see the
 * engine die. The lock statements themselves are the dialect's (an advisory lock,
 * `GET_LOCK`): {@link SessionLockPort}.
 *
 * A lock lost while the engine is registered (the server restarted, the session was
 * killed) is reported once through `onSessionLost`; the engine row is marked dead (best
 * effort) and every later heartbeat fails, so the engine fences itself and registers again
 * under a new id. The lock is never taken again for the old id.
 */
import { StoreError } from '../../errors.js';
import type { EngineRegistration } from '../types.js';
import type { SqlDialect } from './dialect.js';
import type { SqlDriver } from './driver.js';

/** What one dialect does with its lock connections. */
export interface SessionLockPort<C> {
  /** opens a connection of its own, with the store's session settings (errors wrapped) */
  open(): Promise<C>;
  /** calls `lost` when the connection fails (`cause`) or ends (none) */
  onLoss(conn: C, lost: (cause?: Error) => void): void;
  /** tries the engine's lock on `conn` without waiting; `session`: the id to record with the engine row (MySQL) */
  take(conn: C, engineId: string): Promise<{ ok: boolean; session: number | null }>;
  /** ends a connection that failed or whose registration failed, at once */
  drop(conn: C): Promise<void>;
  /** ends a connection cleanly (deregistration, close): the database frees its lock; never rejects */
  end(conn: C): Promise<void>;
  /** a driver error as a StoreError naming `purpose` */
  wrap(e: unknown, purpose: string): unknown;
}

/** An engine's session lock: the connection that holds it. */
export interface SessionLock<C> {
  conn: C;
  /** registerEngine has completed: a loss from now on is reported to the engine */
  registered: boolean;
  /** deregisterEngine/close ended it on purpose */
  released: boolean;
  /** why the session was lost, once it was */
  lost: Error | undefined;
}

/** What the shared store does with the session locks, whatever their connection type. */
export interface EngineSessionLocks {
  register(e: EngineRegistration, insertRow: (session: number | null) => Promise<unknown>): Promise<void>;
  isLost(engineId: string): boolean;
  markDead(engineId: string): Promise<void>;
  release(engineId: string): Promise<void>;
  releaseAll(): Promise<unknown>;
}

/** The session locks of the engines registered through one store. */
export class SessionLocks<C> implements EngineSessionLocks {
  private readonly locks = new Map<string, SessionLock<C>>();

  constructor(
    private readonly port: SessionLockPort<C>,
    private readonly driver: SqlDriver,
    private readonly d: SqlDialect,
    private readonly onError: (error: Error) => void,
  ) {}

  /** Marks an engine's row dead: its session was lost, so others may take its atoms over now. */
  async markDead(engineId: string): Promise<void> {
    await this.driver.write('mark an engine dead (session lost)', (s) =>
      s.exec('mark an engine dead (session lost)', `UPDATE {p}engines SET state = 'dead' WHERE id = ${this.d.placeholder(1)}`, [engineId]),
    );
  }

  /** the lock of a registered engine (tests reach the connection through it) */
  get(engineId: string): SessionLock<C> | undefined {
    return this.locks.get(engineId);
  }

  /** whether the registered engine's session was lost: it must not renew, whatever its row says */
  isLost(engineId: string): boolean {
    return this.locks.get(engineId)?.lost !== undefined;
  }

  /**
   * Takes the engine's lock, then inserts its row with `insertRow` (lock first, row second;
   * the reverse on deregistration: while the row exists, its lock is held unless the
   * session was lost). An id whose lock is held elsewhere is refused.
   */
  async register(e: EngineRegistration, insertRow: (session: number | null) => Promise<unknown>): Promise<void> {
    const { port, driver } = this;
    const conn = await port.open();
    const lock: SessionLock<C> = { conn, registered: false, released: false, lost: undefined };
    port.onLoss(conn, (cause) => {
      if (lock.released || lock.lost !== undefined) return;
      lock.lost =
        cause ?? new StoreError('STOKER_STORE_UNREACHABLE', `${driver.label}: the session lock connection of engine ${e.id} ended`);
      void port.drop(conn);
      if (!lock.registered) return; // register fails instead
      this.onError(lock.lost);
      // Best effort: others requeue a dead engine's atoms without waiting for a lock check,
      // and its next heartbeat fails. If the server is down this fails too; heartbeat retries.
      this.markDead(e.id).catch(() => undefined);
      try {
        e.onSessionLost?.(lock.lost);
      } catch (err) {
        this.onError(err instanceof Error ? err : new Error(String(err)));
      }
    });
    try {
      const got = await port.take(conn, e.id);
      if (!got.ok) {
        throw new StoreError(
          'STOKER_STORE_QUERY_FAILED',
          `${driver.label}: engine ${e.id} is already registered (its session lock is held)`,
          {
            details: { purpose: 'take the engine session lock', engineId: e.id },
          },
        );
      }
      await insertRow(got.session);
      if (lock.lost !== undefined || driver.closed) {
        if (!driver.closed) await this.markDead(e.id).catch(() => undefined);
        if (driver.closed) throw new StoreError('STOKER_STORE_CLOSED', 'the store was closed while an engine registered');
        throw port.wrap(lock.lost, 'keep the engine session lock');
      }
    } catch (err) {
      lock.released = true;
      await port.drop(conn);
      throw err;
    }
    lock.registered = true;
    this.locks.set(e.id, lock);
  }

  /** Ends the engine's lock session (after its row was deleted): the lock is free. */
  async release(engineId: string): Promise<void> {
    const lock = this.locks.get(engineId);
    if (!lock) return;
    this.locks.delete(engineId);
    lock.released = true;
    await this.port.end(lock.conn);
  }

  /** Ends every lock session (the store closes): others may take these engines' atoms over. */
  releaseAll(): Promise<unknown> {
    const locks = [...this.locks.values()];
    this.locks.clear();
    for (const l of locks) l.released = true;
    return Promise.allSettled(locks.map((l) => this.port.end(l.conn)));
  }
}
