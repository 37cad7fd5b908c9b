import type { Migration } from '../migration.js';

/** SQLite schema. Times are INTEGER milliseconds since the epoch, from the database clock. */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, atoms, events, engines, signals',
    statements: [
      `CREATE TABLE {p}runs (
        id TEXT PRIMARY KEY,
        flow TEXT NOT NULL,
        version TEXT NOT NULL,
        key TEXT,
        active_key TEXT UNIQUE,
        status TEXT NOT NULL,
        args TEXT NOT NULL,
        graph TEXT NOT NULL,
        result TEXT,
        failure TEXT,
        parent_run_id TEXT,
        parent_atom INTEGER,
        pending_atoms INTEGER NOT NULL,
        revert_pending INTEGER NOT NULL DEFAULT 0,
        atom_count INTEGER NOT NULL,
        row_version INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        finished_at INTEGER
      )`,
      `CREATE INDEX {p}runs_created ON {p}runs (created_at, id)`,
      `CREATE INDEX {p}runs_status ON {p}runs (status, created_at)`,
      `CREATE INDEX {p}runs_parent ON {p}runs (parent_run_id) WHERE parent_run_id IS NOT NULL`,
      `CREATE TABLE {p}atoms (
        run_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        pending INTEGER NOT NULL,
        revert_pending INTEGER NOT NULL DEFAULT 0,
        skip INTEGER NOT NULL DEFAULT 0,
        revert_requested INTEGER NOT NULL DEFAULT 0,
        epoch INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        claimed_at INTEGER,
        attempt INTEGER NOT NULL DEFAULT 1,
        execution INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        failure TEXT,
        journal TEXT,
        wait_kind TEXT,
        wait_ref TEXT,
        ready_at INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, idx)
      ) WITHOUT ROWID`,
      `CREATE INDEX {p}atoms_claimable ON {p}atoms (ready_at) WHERE state IN ('READY', 'WAITING', 'REVERT_READY')`,
      `CREATE INDEX {p}atoms_claimed_by ON {p}atoms (claimed_by) WHERE claimed_by IS NOT NULL`,
      `CREATE INDEX {p}atoms_waiting ON {p}atoms (run_id, wait_ref) WHERE state = 'WAITING'`,
      `CREATE TABLE {p}events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        atom INTEGER,
        kind TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT,
        engine_id TEXT,
        epoch INTEGER,
        data TEXT,
        at INTEGER NOT NULL
      )`,
      `CREATE INDEX {p}events_run ON {p}events (run_id, id)`,
      `CREATE TABLE {p}engines (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        version TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        lease_expires_at INTEGER NOT NULL
      )`,
      `CREATE TABLE {p}signals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        at INTEGER NOT NULL
      )`,
      `CREATE INDEX {p}signals_run ON {p}signals (run_id, name, id)`,
    ],
  },
  {
    version: 2,
    name: 'graphs stored once per content',
    statements: [
      // src/store/graphs.ts says why. Runs from before keep their graph under a per-run key.
      `CREATE TABLE {p}graphs (
        hash TEXT PRIMARY KEY,
        graph TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      `INSERT INTO {p}graphs (hash, graph, created_at) SELECT 'run:' || id, graph, created_at FROM {p}runs`,
      `ALTER TABLE {p}runs ADD COLUMN graph_hash TEXT NOT NULL DEFAULT ''`,
      `UPDATE {p}runs SET graph_hash = 'run:' || id`,
      `ALTER TABLE {p}runs DROP COLUMN graph`,
    ],
  },
  {
    version: 3,
    name: 'locks',
    statements: [
      // Protocol 10 (ARCHITECTURE.md). A row is kept after release and expiry, so a name's token
      // only ever grows (every acquire bumps it); `released_at` is set by a release.
      `CREATE TABLE {p}locks (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        token INTEGER NOT NULL,
        acquired_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        released_at INTEGER
      ) WITHOUT ROWID`,
    ],
  },
  {
    version: 4,
    name: 'engine lock sessions',
    statements: [
      // MySQL records which session holds an engine's GET_LOCK (its CONNECTION_ID), so that a
      // watcher left holding a dead engine's lock cannot make it look alive; elsewhere NULL.
      `ALTER TABLE {p}engines ADD COLUMN lock_session INTEGER`,
    ],
  },
  {
    version: 6,
    name: 'engine remote waits',
    statements: [
      // docs/amqp.md, "Remote tasks": written with the lease renewal, the number of remote
      // calls a worker has not started yet and how long the oldest has waited (ms, or NULL).
      `ALTER TABLE {p}engines ADD COLUMN remote_queued INTEGER NOT NULL DEFAULT 0`,
      `ALTER TABLE {p}engines ADD COLUMN remote_oldest_ms INTEGER`,
    ],
  },
];
