/**
 * Protocol 6 (ARCHITECTURE.md "Wake-ups") on MySQL/MariaDB, which have no LISTEN/NOTIFY:
 * one listener per store, shared by its subscribers, made of two dedicated connections. The
 * holder (`stoker-<role>-hold`) takes a user lock of a random name and keeps it; the waiter
 * (`stoker-<role>-listen`) runs nothing but {@link LISTEN_STATEMENT}, a `GET_LOCK` of that
 * name for a few seconds, again and again, so it waits for ever. To wake the engines,
 * `wake_engines` (migration 9) sends `KILL QUERY` to every connection of this database whose
 * running statement ends in {@link LISTEN_SUFFIX}: the wait ends at once (MariaDB: error
 * 1317; MySQL: `GET_LOCK` answers NULL) and the listener calls its subscribers. Killing a
 * waiter's statement at any moment is harmless: it only ever waits.
 *
 * Why a lock wait and not `SLEEP`: every `SLEEP` of a MariaDB server waits under one shared
 * mutex, and a `KILL QUERY` that finds it taken retries for up to 2 s (measured here: with
 * three listeners and wake-ups from three connections, 1 to 6 % of the kills took 2 s, one
 * 10 s; a starter superseding a key waited that long for its turn). A `GET_LOCK` waits on
 * its own connection's state: 0 of 2,400 kills over 60 ms.
 *
 * Who wakes: a keyless start (`start_run_and_wake`, the start and the wake-up in the one
 * call, after its COMMIT), a keyed start or a signal (after the transaction's commit: the
 * driver's {@link MysqlDriver.announceAtCommit}), and the engines' own announcements
 * ({@link MysqlWakeups.notify}: commits that made atoms claimable for others, requeues,
 * due timers). `KILL` of another user's connection needs a privilege: engines and
 * starters of one deployment share a database user. A wake-up that does not arrive (no
 * privilege, a kill between two waits) costs the poll interval, never correctness.
 *
 * Why: without it an idle engine found a run started by another process (`stoker run`) only
 * at its next poll, about half the default second later on average; a run of 1,000 atoms
 * that executes in a third of a second spent most of its time waiting for that poll.
 */
import { randomBytes } from 'node:crypto';
import type mysql from 'mysql2/promise';
import { ListenerWakeups } from '../sql/shared-listener.js';
import type { MysqlDriver } from './mysql-driver.js';
import { driverError } from './mysql-errors.js';

/** What a waiter runs, its lock's name bound; `wake_engines` finds waiters by the end of the text. */
export const LISTEN_STATEMENT = 'SELECT GET_LOCK(?, 10) AS {p}wake_listener';
/** The end of every listener's statement, of this version's and of migration 8's (`SELECT SLEEP(10) AS {p}wake_listener`). */
export const LISTEN_SUFFIX = ') AS {p}wake_listener';

/** errno of a statement ended by `KILL QUERY` */
const ER_QUERY_INTERRUPTED = 1317;
/** errno of a statement ended by `max_statement_time` (MariaDB) or `max_execution_time` (MySQL) */
const STATEMENT_TIMEOUTS = new Set([1969, 3024]);
/** how long the listener waits for its wait's answer (the wait is 10 s) before it connects again */
const LISTEN_ANSWER_MS = 20_000;
/** Backoff of the listener's reconnects: first delay and cap, in ms. */
const LISTEN_RETRY_MS = 100;
const LISTEN_RETRY_MAX_MS = 5_000;

/**
 * `KILL QUERY` to every listener of this database (a routine's DATABASE() is its own
 * schema, the one the listeners use), found by `match`, a condition on PROCESSLIST's
 * `INFO`. A wake-up is a hint: an error ends the call quietly.
 */
function wakeEngines(match: string): string[] {
  return [
    `DROP PROCEDURE IF EXISTS {p}wake_engines`,
    `CREATE PROCEDURE {p}wake_engines()
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE v_id BIGINT UNSIGNED;
  DECLARE v_done INT DEFAULT 0;
  DECLARE c CURSOR FOR SELECT ID FROM information_schema.PROCESSLIST
    WHERE DB = DATABASE() AND ${match} AND ID <> CONNECTION_ID();
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
  ];
}

/** Migration 8: the wake-up of the first listeners (which slept), and a keyless start that wakes after its commit. */
export const WAKE_STATEMENTS: readonly string[] = [
  // as migration 8 ran it: the listeners of that version slept in exactly this statement
  ...wakeEngines(`INFO = 'SELECT SLEEP(10) AS {p}wake_listener'`),
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

/**
 * Migration 9: listeners wait in a lock (this version's) or sleep (migration 8's, still
 * running during a rolling upgrade); both statements end in {@link LISTEN_SUFFIX}.
 */
export const LOCK_WAKE_STATEMENTS: readonly string[] = wakeEngines(`RIGHT(INFO, CHAR_LENGTH('${LISTEN_SUFFIX}')) = '${LISTEN_SUFFIX}'`);

export class MysqlWakeups extends ListenerWakeups<WakeListener> {
  // a start's wake-up scans PROCESSLIST and kills listeners before its call returns
  readonly deferInStarts = true;

  constructor(driver: MysqlDriver) {
    super(
      driver,
      () => new WakeListener(driver),
      () => driver.call('wake idle engines', 'CALL {p}wake_engines()', []).then(() => undefined),
    );
  }
}

/** A listener's two connections and the name of the lock the one holds and the other waits for. */
interface Pair {
  holder: mysql.Connection;
  waiter: mysql.Connection;
  lock: string;
}

/**
 * The listening side: a holder connection keeping a user lock, and a waiter connection
 * waiting for it in {@link LISTEN_STATEMENT}; a killed wait calls the subscribers (once the
 * next wait is sent). A lost connection (either: a lost holder frees the lock, so the
 * waiter gets it) is replaced, both anew, with jittered exponential backoff, and the
 * subscribers are called once after that (wake-ups sent meanwhile were lost).
 */
export class WakeListener {
  readonly subscribers = new Set<{ onWake: () => void }>();
  /** both connections, while open (tests kill them) */
  pair: Pair | undefined;
  private stopped = false;
  private timer: { handle: NodeJS.Timeout; resolve: () => void } | undefined;
  private readonly text: string;

  constructor(private readonly driver: MysqlDriver) {
    this.text = driver.prefixed(LISTEN_STATEMENT);
  }

  /** Opens the connections (rejects if it cannot) and starts listening. */
  async start(): Promise<void> {
    this.pair = await this.connect();
    void this.loop();
  }

  /** The holder first, with its lock taken (a fresh random name: free), then the waiter. */
  private async connect(): Promise<Pair> {
    const lock = `stoker_wake_${randomBytes(12).toString('hex')}`;
    const holder = await this.driver.lockConnection('hold');
    try {
      const [rows] = await holder.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS ok', [lock]);
      if (Number(rows[0]?.ok) !== 1) throw new Error(`wake-up listener: the fresh lock ${lock} was not free`);
      return { holder, waiter: await this.driver.lockConnection('listen'), lock };
    } catch (e) {
      holder.destroy();
      throw e;
    }
  }

  private drop(pair: Pair): void {
    pair.waiter.destroy();
    pair.holder.destroy();
    if (this.pair === pair) this.pair = undefined;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    // A KILL QUERY that reaches the listener between two waits is lost. So the next wait
    // is sent before the subscribers are called: the claim they make starts after it, and
    // sees whatever a wake-up lost in that gap announced.
    let woken = false;
    while (!this.stopped) {
      let pair = this.pair;
      if (!pair) {
        await this.pause(Math.min(LISTEN_RETRY_MAX_MS, LISTEN_RETRY_MS * 2 ** failures) * (0.5 + Math.random() / 2));
        if (this.stopped) return;
        try {
          pair = await this.connect();
        } catch (e) {
          failures = Math.min(failures + 1, 10);
          this.driver.onError(e instanceof Error ? e : new Error(String(e)));
          continue;
        }
        if (this.stopped) {
          this.drop(pair);
          return;
        }
        this.pair = pair;
        failures = 0;
        // wake-ups sent while it was down are lost: everyone is woken once
        woken = true;
      }
      // an answer that never comes (a cut network) counts as a lost connection
      const waiting = pair.waiter.query<mysql.RowDataPacket[]>({ sql: this.text, values: [pair.lock], timeout: LISTEN_ANSWER_MS });
      if (woken) {
        woken = false;
        this.wakeAll();
      }
      try {
        const [rows] = await waiting;
        const got = Object.values(rows[0] ?? {})[0];
        // MySQL ends a killed GET_LOCK with NULL (MariaDB raises 1317, below); 0 is the wait's end
        if (got === null) woken = true;
        else if (Number(got) === 1) {
          // the lock came free: the holder's connection is gone
          if (this.stopped) return;
          this.drop(pair);
          this.driver.onError(new Error("MySQL: listen for wake-ups: the connection holding the listener's lock was lost"));
        }
      } catch (e) {
        if (this.stopped) return;
        const errno = driverError(e)?.errno;
        if (errno === ER_QUERY_INTERRUPTED) woken = true;
        else if (errno === undefined || !STATEMENT_TIMEOUTS.has(errno)) {
          // the connection is gone or unusable: both anew
          this.drop(pair);
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
   * Stops listening, at once: both sockets are closed. The server sees the holder's close
   * (it was idle), frees its lock, and the waiter's wait ends with it, so the waiter's
   * session ends too (a sleep, before, had to be killed and could block that kill for 2 s).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const t = this.timer;
    this.timer = undefined;
    if (t) {
      clearTimeout(t.handle);
      t.resolve();
    }
    const pair = this.pair;
    if (pair) this.drop(pair);
  }
}
