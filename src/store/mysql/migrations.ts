import type { Migration } from '../migration.js';
import { CHAIN_STATEMENTS } from './chain-procedures.js';
import { PROCEDURE_STATEMENTS, START_AND_CLAIM_STATEMENTS } from './procedures.js';
import { VISIBLE_CLAIM_STATEMENTS } from './visible-claims.js';
import { LOCK_WAKE_STATEMENTS, WAKE_STATEMENTS } from './wakeups.js';

/**
 * MySQL 8 / MariaDB 10.6+ schema: the same tables and version numbers as SQLite's.
 *
 * - InnoDB, utf8mb4 with binary collation;
 * - ids, keys and signal names are `VARBINARY`: compared byte for byte, with no trailing-space
 *   padding (utf8mb4_bin is a PAD SPACE collation, so `'k'` and `'k '` would be one key),
 *   and ordered like SQLite orders them; the adapter reads them back as UTF-8 strings;
 * - times are `DATETIME(6)` in UTC (every session sets `time_zone = '+00:00'`), written
 *   with `NOW(6)`;
 * - JSON is `LONGTEXT` (what MariaDB's JSON type is anyway): stored as given, parsed by
 *   the adapter;
 * - no partial indexes: `atoms_claimable` is on `(ready_at, state)`, and `ready_at` is NULL
 *   for every atom that is not claimable or parked on a timer, so the claim's range scan
 *   in `ready_at` order still only walks claimable rows;
 * - DDL is not transactional here, so each statement is `IF NOT EXISTS` and a migration
 *   interrupted half-way can simply run again.
 */
export const mysqlMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, atoms, events, engines, signals',
    statements: [
      `CREATE TABLE IF NOT EXISTS {p}runs (
        id VARBINARY(255) NOT NULL,
        flow VARCHAR(255) NOT NULL,
        version VARCHAR(255) NOT NULL,
        \`key\` VARBINARY(255) NULL,
        active_key VARBINARY(255) NULL,
        status VARCHAR(16) NOT NULL,
        args LONGTEXT NOT NULL,
        graph LONGTEXT NOT NULL,
        result LONGTEXT NULL,
        failure LONGTEXT NULL,
        parent_run_id VARBINARY(255) NULL,
        parent_atom INT NULL,
        pending_atoms INT NOT NULL,
        revert_pending INT NOT NULL DEFAULT 0,
        atom_count INT NOT NULL,
        row_version BIGINT NOT NULL DEFAULT 0,
        created_at DATETIME(6) NOT NULL,
        updated_at DATETIME(6) NOT NULL,
        finished_at DATETIME(6) NULL,
        PRIMARY KEY (id),
        UNIQUE KEY {p}runs_active_key (active_key),
        KEY {p}runs_created (created_at, id),
        KEY {p}runs_status (status, created_at),
        KEY {p}runs_key (\`key\`),
        KEY {p}runs_parent (parent_run_id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS {p}atoms (
        run_id VARBINARY(255) NOT NULL,
        idx INT NOT NULL,
        name VARCHAR(255) NOT NULL,
        state VARCHAR(16) NOT NULL,
        pending INT NOT NULL,
        revert_pending INT NOT NULL DEFAULT 0,
        skip TINYINT(1) NOT NULL DEFAULT 0,
        revert_requested TINYINT(1) NOT NULL DEFAULT 0,
        epoch BIGINT NOT NULL DEFAULT 0,
        claimed_by VARBINARY(255) NULL,
        claimed_at DATETIME(6) NULL,
        attempt INT NOT NULL DEFAULT 1,
        execution INT NOT NULL DEFAULT 0,
        result LONGTEXT NULL,
        failure LONGTEXT NULL,
        journal LONGTEXT NULL,
        wait_kind VARCHAR(64) NULL,
        wait_ref VARBINARY(255) NULL,
        ready_at DATETIME(6) NULL,
        updated_at DATETIME(6) NOT NULL,
        PRIMARY KEY (run_id, idx),
        KEY {p}atoms_claimable (ready_at, state),
        KEY {p}atoms_running (state, claimed_by)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS {p}events (
        id BIGINT NOT NULL AUTO_INCREMENT,
        run_id VARBINARY(255) NOT NULL,
        atom INT NULL,
        kind VARCHAR(64) NOT NULL,
        from_state VARCHAR(32) NULL,
        to_state VARCHAR(32) NULL,
        engine_id VARBINARY(255) NULL,
        epoch BIGINT NULL,
        data LONGTEXT NULL,
        at DATETIME(6) NOT NULL,
        PRIMARY KEY (id),
        KEY {p}events_run (run_id, id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS {p}engines (
        id VARBINARY(255) NOT NULL,
        host VARCHAR(255) NOT NULL,
        pid INT NOT NULL,
        version VARCHAR(255) NOT NULL,
        state VARCHAR(16) NOT NULL,
        started_at DATETIME(6) NOT NULL,
        heartbeat_at DATETIME(6) NOT NULL,
        lease_expires_at DATETIME(6) NOT NULL,
        PRIMARY KEY (id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS {p}signals (
        id BIGINT NOT NULL AUTO_INCREMENT,
        run_id VARBINARY(255) NOT NULL,
        name VARBINARY(255) NOT NULL,
        payload LONGTEXT NOT NULL,
        at DATETIME(6) NOT NULL,
        PRIMARY KEY (id),
        KEY {p}signals_run (run_id, name, id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ],
  },
  {
    version: 2,
    name: 'graphs stored once per content',
    statements: [
      // src/store/graphs.ts says why. Runs from before keep their graph under a per-run key.
      // MariaDB commits each DDL statement: every step can run again after a crash.
      `CREATE TABLE IF NOT EXISTS {p}graphs (
        hash VARBINARY(80) NOT NULL,
        graph LONGTEXT NOT NULL,
        created_at DATETIME(6) NOT NULL,
        PRIMARY KEY (hash)
      ) ENGINE=InnoDB`,
      `ALTER TABLE {p}runs ADD COLUMN IF NOT EXISTS graph_hash VARBINARY(80) NOT NULL DEFAULT ''`,
      // the copy reads runs.graph, which a finished earlier attempt may have dropped already
      `SET @stoker_m2 = IF(
        (SELECT COUNT(*) FROM information_schema.columns
          WHERE table_schema = DATABASE() AND table_name = '{p}runs' AND column_name = 'graph') > 0,
        'INSERT IGNORE INTO {p}graphs (hash, graph, created_at) SELECT CONCAT(''run:'', id), graph, created_at FROM {p}runs',
        'DO 0')`,
      `PREPARE stoker_m2 FROM @stoker_m2`,
      `EXECUTE stoker_m2`,
      `DEALLOCATE PREPARE stoker_m2`,
      `UPDATE {p}runs SET graph_hash = CONCAT('run:', id) WHERE graph_hash = ''`,
      `ALTER TABLE {p}runs DROP COLUMN IF EXISTS graph`,
    ],
  },
  {
    version: 3,
    name: 'locks',
    statements: [
      // Protocol 10 (ARCHITECTURE.md). A row is kept after release and expiry, so a name's token
      // only ever grows (every acquire bumps it); `released_at` is set by a release.
      `CREATE TABLE IF NOT EXISTS {p}locks (
        name VARBINARY(255) NOT NULL,
        holder VARCHAR(255) NOT NULL,
        token BIGINT NOT NULL,
        acquired_at DATETIME(6) NOT NULL,
        expires_at DATETIME(6) NOT NULL,
        released_at DATETIME(6) NULL,
        PRIMARY KEY (name)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ],
  },
  {
    version: 4,
    name: 'engine lock sessions',
    statements: [
      // MySQL records which session holds an engine's GET_LOCK (its CONNECTION_ID), so that a
      // watcher left holding a dead engine's lock cannot make it look alive; elsewhere NULL.
      `ALTER TABLE {p}engines ADD COLUMN lock_session BIGINT NULL`,
    ],
  },
  {
    version: 5,
    name: 'claim and completion procedures',
    // MySQL/MariaDB only (no tables, no columns): the claim and the common completions in
    // one round trip each (./procedures.ts, ./fast-completions.ts). Each procedure is
    // dropped before it is created, so an interrupted migration can run again.
    statements: PROCEDURE_STATEMENTS,
  },
  {
    version: 6,
    name: 'engine remote waits',
    statements: [
      // docs/amqp.md, "Remote tasks": written with the lease renewal, the number of remote
      // calls a worker has not started yet and how long the oldest has waited (ms, or NULL).
      `ALTER TABLE {p}engines ADD COLUMN remote_queued INT NOT NULL DEFAULT 0`,
      `ALTER TABLE {p}engines ADD COLUMN remote_oldest_ms BIGINT NULL`,
    ],
  },
  {
    version: 7,
    name: 'one-call start, claims with their runs',
    // MySQL/MariaDB only, like 5: a keyless start in one call, and the claim returning the
    // rows of its runs (./procedures.ts, ./starts.ts). Dropped before created, as in 5.
    statements: START_AND_CLAIM_STATEMENTS,
  },
  {
    version: 8,
    name: 'wake-ups',
    // MySQL/MariaDB only, like 5: wake_engines ends the sleep of every wake-up listener
    // (KILL QUERY), and a keyless start that calls it after its commit (./wakeups.ts).
    statements: WAKE_STATEMENTS,
  },
  {
    version: 9,
    name: 'wake-up listeners wait in a lock',
    // MySQL/MariaDB only: wake_engines finds the listeners by the end of their statement,
    // which this version's lock wait and migration 8's sleep share (./wakeups.ts: a KILL
    // QUERY of a sleep could take 2 s on MariaDB).
    statements: LOCK_WAKE_STATEMENTS,
  },
  {
    version: 10,
    name: 'chain step in fewer statements',
    // MySQL/MariaDB only, like 5: fast_success again, the successor locked and read with
    // the run, both events in one INSERT (./chain-procedures.ts). Dropped before created.
    statements: CHAIN_STATEMENTS,
  },
  {
    version: 11,
    name: 'claims seen before their commit',
    // MySQL/MariaDB only, like 5: a claim that sends its claims and their runs' rows before
    // its COMMIT, so the engine starts them while the commit is made durable (./visible-claims.ts).
    statements: VISIBLE_CLAIM_STATEMENTS,
  },
];
