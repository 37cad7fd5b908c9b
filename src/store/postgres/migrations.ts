import type { Migration } from '../migration.js';

/**
 * PostgreSQL schema: the same tables and version numbers as SQLite's, in PostgreSQL types.
 *
 * - times are `timestamptz` written with `now()` (the database clock, constant within a
 *   transaction, which keeps one transition's timestamps consistent);
 * - JSON is `jsonb` (arguments are compared through canonical JSON, so key order does not
 *   matter), except graphs, stored as text (migration 12);
 * - ids and keys are `text COLLATE "C"`: byte order, like SQLite, so every engine locks run
 *   rows in the same order whatever the database's default collation;
 * - the hot-path indexes are partial, so they stay as small as the work in flight:
 *   `atoms_claimable` holds only claimable atoms and `atoms_running` only held ones.
 */
export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, atoms, events, engines, signals',
    statements: [
      `CREATE TABLE {p}runs (
        id text COLLATE "C" PRIMARY KEY,
        flow text NOT NULL,
        version text NOT NULL,
        key text COLLATE "C",
        active_key text COLLATE "C",
        status text NOT NULL,
        args jsonb NOT NULL,
        graph jsonb NOT NULL,
        result jsonb,
        failure jsonb,
        parent_run_id text COLLATE "C",
        parent_atom integer,
        pending_atoms integer NOT NULL,
        revert_pending integer NOT NULL DEFAULT 0,
        atom_count integer NOT NULL,
        row_version bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        finished_at timestamptz
      )`,
      `CREATE UNIQUE INDEX {p}runs_active_key ON {p}runs (active_key) WHERE active_key IS NOT NULL`,
      `CREATE INDEX {p}runs_created ON {p}runs (created_at, id)`,
      `CREATE INDEX {p}runs_status ON {p}runs (status, created_at)`,
      `CREATE INDEX {p}runs_key ON {p}runs (key) WHERE key IS NOT NULL`,
      `CREATE INDEX {p}runs_parent ON {p}runs (parent_run_id) WHERE parent_run_id IS NOT NULL`,
      `CREATE TABLE {p}atoms (
        run_id text COLLATE "C" NOT NULL,
        idx integer NOT NULL,
        name text NOT NULL,
        state text NOT NULL,
        pending integer NOT NULL,
        revert_pending integer NOT NULL DEFAULT 0,
        skip boolean NOT NULL DEFAULT false,
        revert_requested boolean NOT NULL DEFAULT false,
        epoch bigint NOT NULL DEFAULT 0,
        claimed_by text COLLATE "C",
        claimed_at timestamptz,
        attempt integer NOT NULL DEFAULT 1,
        execution integer NOT NULL DEFAULT 0,
        result jsonb,
        failure jsonb,
        journal jsonb,
        wait_kind text,
        wait_ref text COLLATE "C",
        ready_at timestamptz,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (run_id, idx)
      )`,
      `CREATE INDEX {p}atoms_claimable ON {p}atoms (ready_at) WHERE state IN ('READY', 'WAITING', 'REVERT_READY')`,
      `CREATE INDEX {p}atoms_running ON {p}atoms (claimed_by) WHERE state IN ('RUNNING', 'REVERTING')`,
      `CREATE INDEX {p}atoms_waiting ON {p}atoms (run_id, wait_ref) WHERE state = 'WAITING'`,
      `CREATE TABLE {p}events (
        id bigserial PRIMARY KEY,
        run_id text COLLATE "C" NOT NULL,
        atom integer,
        kind text NOT NULL,
        from_state text,
        to_state text,
        engine_id text,
        epoch bigint,
        data jsonb,
        at timestamptz NOT NULL
      )`,
      `CREATE INDEX {p}events_run ON {p}events (run_id, id)`,
      `CREATE TABLE {p}engines (
        id text COLLATE "C" PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        version text NOT NULL,
        state text NOT NULL,
        started_at timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL,
        lease_expires_at timestamptz NOT NULL
      )`,
      `CREATE TABLE {p}signals (
        id bigserial PRIMARY KEY,
        run_id text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        payload jsonb NOT NULL,
        at timestamptz NOT NULL
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
        hash text COLLATE "C" PRIMARY KEY,
        graph jsonb NOT NULL,
        created_at timestamptz NOT NULL
      )`,
      `INSERT INTO {p}graphs (hash, graph, created_at) SELECT 'run:' || id, graph, created_at FROM {p}runs`,
      `ALTER TABLE {p}runs ADD COLUMN graph_hash text COLLATE "C"`,
      `UPDATE {p}runs SET graph_hash = 'run:' || id`,
      `ALTER TABLE {p}runs ALTER COLUMN graph_hash SET NOT NULL`,
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
        name text COLLATE "C" PRIMARY KEY,
        holder text NOT NULL,
        token bigint NOT NULL,
        acquired_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        released_at timestamptz
      )`,
    ],
  },
  {
    version: 4,
    name: 'engine lock sessions',
    statements: [
      // MySQL records which session holds an engine's GET_LOCK (its CONNECTION_ID), so that a
      // watcher left holding a dead engine's lock cannot make it look alive; elsewhere NULL.
      `ALTER TABLE {p}engines ADD COLUMN lock_session bigint`,
    ],
  },
  {
    version: 6,
    name: 'engine remote waits',
    statements: [
      // docs/amqp.md, "Remote tasks": written with the lease renewal, the number of remote
      // calls a worker has not started yet and how long the oldest has waited (ms, or NULL).
      `ALTER TABLE {p}engines ADD COLUMN remote_queued integer NOT NULL DEFAULT 0`,
      `ALTER TABLE {p}engines ADD COLUMN remote_oldest_ms bigint`,
    ],
  },
  {
    version: 12,
    name: 'graphs stored as text',
    statements: [
      // A graph is written once and read back whole, never queried inside: as jsonb, each
      // start of a new graph had the server parse it (a stack of 10,000 resources: a 5 MB
      // graph, 140-430 ms of its start, against 25-55 ms as text). Engines of earlier
      // versions still insert jsonb here: PostgreSQL casts it to text on assignment.
      `ALTER TABLE {p}graphs ALTER COLUMN graph TYPE text USING graph::text`,
    ],
  },
];
