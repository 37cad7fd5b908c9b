/**
 * Protocol 6 (ARCHITECTURE.md "Wake-ups") on MySQL/MariaDB, which have no LISTEN/NOTIFY:
 * one listening connection per store (`stoker-<role>-listen`), shared by its subscribers,
 * runs nothing but {@link LISTEN_STATEMENT}, a `SLEEP` of a few seconds, again and again.
 * To wake the engines, `wake_engines` (migration 8) sends `KILL QUERY` to every connection
 * of this database whose running statement is exactly that one: the sleep ends at once
 * (MariaDB: error 1317; MySQL: `SLEEP` returns 1) and the listener calls its subscribers.
 * Killing a listener's statement at any moment is harmless: it only ever sleeps.
 *
 * Who wakes: a keyless start (`start_run_and_wake`, the start and the wake-up in the one
 * call, after its COMMIT), a keyed start or a signal (after the transaction's commit: the
 * driver's {@link MysqlDriver.announceAtCommit}), and the engines' own announcements
 * ({@link MysqlWakeups.notify}: commits that made atoms claimable for others, requeues,
 * due timers). `KILL` of another user's connection needs a privilege: engines and
 * starters of one deployment share a database user. A wake-up that does not arrive (no
 * privilege, a kill between two sleeps) costs the poll interval, never correctness.
 *
 * Why: without it an idle engine found a run started by another process (`stoker run`) only
 * at its next poll, about half the default second later on average; a run of 1,000 atoms
 * that executes in a third of a second spent most of its time waiting for that poll.
 */
import type mysql from 'mysql2/promise';
import type { Wakeups } from '../ports.js';
import { coalesced } from '../sql/coalesced.js';
import { SharedListener } from '../sql/shared-listener.js';
import type { MysqlDriver } from './mysql-driver.js';
import { driverError } from './mysql-errors.js';

/** What a listener runs; `wake_engines` finds listeners by this exact text (and the database). */
export const LISTEN_STATEMENT = 'SELECT SLEEP(10) AS {p}wake_listener';

/** errno of a statement ended by `KILL QUERY` */
const ER_QUERY_INTERRUPTED = 1317;
/** errno of a statement ended by `max_statement_time` (MariaDB) or `max_execution_time` (MySQL) */
const STATEMENT_TIMEOUTS = new Set([1969, 3024]);
/** how long the listener waits for its sleep's answer (the sleep is 10 s) before it connects again */
const LISTEN_ANSWER_MS = 20_000;
/** Backoff of the listener's reconnects: first delay and cap, in ms. */
const LISTEN_RETRY_MS = 100;
const LISTEN_RETRY_MAX_MS = 5_000;

/** Migration 8: the wake-up, and a keyless start that wakes after its commit. */
export const WAKE_STATEMENTS: readonly string[] = [
  // KILL QUERY to every listener of this database (a routine's DATABASE() is its own
  // schema, the one the listeners use). A wake-up is a hint: an error ends the call quietly.
  `DROP PROCEDURE IF EXISTS {p}wake_engines`,
  `CREATE PROCEDURE {p}wake_engines()
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE v_id BIGINT UNSIGNED;
  DECLARE v_done INT DEFAULT 0;
  DECLARE c CURSOR FOR SELECT ID FROM information_schema.PROCESSLIST
    WHERE DB = DATABASE() AND INFO = '${LISTEN_STATEMENT}' AND ID <> CONNECTION_ID();
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN END;
  OPEN c;
  listeners: LOOP
    FETCH c INTO v_id;
    IF v_done = 1 THEN LEAVE listeners; END IF;
    BEGIN
      -- gone meanwhile, or another user's: the next one still gets its wake-up
      DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END;
      KILL QUERY v_id;
    END;
  END LOOP;
  CLOSE c;
END`,
  // start_run (migration 7) and, after its COMMIT, the wake-up: one round trip for a start
  // that idle engines hear at once.
  `DROP PROCEDURE IF EXISTS {p}start_run_and_wake`,
  `CREATE PROCEDURE {p}start_run_and_wake(IN p_id VARBINARY(255), IN p_flow VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_version VARCHAR(255) CHARACTER SET utf8mb4, IN p_args LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_hash VARBINARY(80), IN p_graph LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_parent_run VARBINARY(255), IN p_parent_atom INT, IN p_atoms LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin)
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  CALL {p}start_run(p_id, p_flow, p_version, p_args, p_hash, p_graph, p_parent_run, p_parent_atom, p_atoms);
  CALL {p}wake_engines();
END`,
];

export class MysqlWakeups implements Wakeups {
  private readonly share = new SharedListener(
    () => new WakeListener(this.driver),
    () => this.driver.closed,
  );
  /** one wake-up call in flight at a time; calls meanwhile share one more */
  private readonly send = coalesced(() => this.driver.call('wake idle engines', 'CALL {p}wake_engines()', []).then(() => undefined));

  constructor(private readonly driver: MysqlDriver) {}

  /** the listener while anyone subscribes (tests reach its connection) */
  get listener(): WakeListener | undefined {
    return this.share.current;
  }

  async subscribe(onWake: () => void): Promise<() => Promise<void>> {
    this.driver.assertOpen();
    return this.share.subscribe(onWake);
  }

  async notify(): Promise<void> {
    this.driver.assertOpen();
    return this.send();
  }

  /** Stops listening (the store closes). */
  stop(): Promise<void> {
    return this.share.stop();
  }
}

/**
 * The listening side: one dedicated connection sleeping in {@link LISTEN_STATEMENT}; a
 * killed sleep calls the subscribers (once the next sleep is sent). A lost connection is
 * opened again with jittered exponential backoff, and the subscribers are called once
 * after that (wake-ups sent meanwhile were lost).
 */
export class WakeListener {
  readonly subscribers = new Set<{ onWake: () => void }>();
  /** the listening connection, while open (tests kill it) */
  conn: mysql.Connection | undefined;
  private stopped = false;
  private timer: { handle: NodeJS.Timeout; resolve: () => void } | undefined;
  private readonly text: string;

  constructor(private readonly driver: MysqlDriver) {
    this.text = driver.prefixed(LISTEN_STATEMENT);
  }

  /** Opens the connection (rejects if it cannot) and starts listening. */
  async start(): Promise<void> {
    this.conn = await this.driver.lockConnection('listen');
    void this.loop();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    // A KILL QUERY that reaches the listener between two sleeps is lost. So the next sleep
    // is sent before the subscribers are called: the claim they make starts after it, and
    // sees whatever a wake-up lost in that gap announced.
    let woken = false;
    while (!this.stopped) {
      let conn = this.conn;
      if (!conn) {
        await this.pause(Math.min(LISTEN_RETRY_MAX_MS, LISTEN_RETRY_MS * 2 ** failures) * (0.5 + Math.random() / 2));
        if (this.stopped) return;
        try {
          conn = await this.driver.lockConnection('listen');
        } catch (e) {
          failures = Math.min(failures + 1, 10);
          this.driver.onError(e instanceof Error ? e : new Error(String(e)));
          continue;
        }
        if (this.stopped) {
          conn.destroy();
          return;
        }
        this.conn = conn;
        failures = 0;
        // wake-ups sent while it was down are lost: everyone is woken once
        woken = true;
      }
      // an answer that never comes (a cut network) counts as a lost connection
      const sleeping = conn.query<mysql.RowDataPacket[]>({ sql: this.text, timeout: LISTEN_ANSWER_MS });
      if (woken) {
        woken = false;
        this.wakeAll();
      }
      try {
        const [rows] = await sleeping;
        // MySQL ends a killed SLEEP with 1 (MariaDB raises 1317, below)
        woken = Number(Object.values(rows[0] ?? {})[0]) === 1;
      } catch (e) {
        if (this.stopped) return;
        const errno = driverError(e)?.errno;
        if (errno === ER_QUERY_INTERRUPTED) woken = true;
        else if (errno === undefined || !STATEMENT_TIMEOUTS.has(errno)) {
          // the connection is gone or unusable: another one
          conn.destroy();
          if (this.conn === conn) this.conn = undefined;
          this.driver.onError(this.driver.wrap(e, 'listen for wake-ups') as Error);
        }
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = setTimeout(() => {
        this.timer = undefined;
        resolve();
      }, ms);
      handle.unref();
      this.timer = { handle, resolve };
    });
  }

  private wakeAll(): void {
    for (const s of [...this.subscribers]) {
      try {
        s.onWake();
      } catch (e) {
        this.driver.onError(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  /**
   * Stops listening. The server would notice the closed socket only when the sleep ends:
   * its connection is killed first, from a pooled one (any failure only leaves it to end
   * with its sleep).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const t = this.timer;
    this.timer = undefined;
    if (t) {
      clearTimeout(t.handle);
      t.resolve();
    }
    const c = this.conn;
    this.conn = undefined;
    if (!c) return;
    // the pool itself: the store may be closing (its calls refused), the pool not yet ended
    await this.driver.pool.query('KILL ?', [c.threadId]).catch(() => undefined);
    c.destroy();
  }
}
