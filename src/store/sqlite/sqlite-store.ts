/**
 * SQLite adapter (better-sqlite3, WAL). One writer at a time: every write is a short
 * `BEGIN IMMEDIATE` transaction, and an in-process mutex keeps async callers of one
 * connection from interleaving their transactions. Times are INTEGER ms by SQLite's clock.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson } from '../../core/canonical-json.js';
import type { JsonValue } from '../../core/json.js';
import { ConflictError, StoreError } from '../../errors.js';
import type { FlowGraph } from '../../flow/graph.js';
import { graphDigest, KnownGraphs } from '../graphs.js';
import { TERMINAL_RUN_STATUSES, type RunStatus } from '../states.js';
import { checkPrefix, pendingMigrations, migrationChecksum, withPrefix, type AppliedMigration } from '../migration.js';
import {
  ATOM_PATCH_COLUMNS,
  atomFromRow,
  claimFromRow,
  requeueEventKind,
  requeueSql,
  engineFromRow,
  eventFromRow,
  jsonColumn,
  patchValue,
  checkPruneOptions,
  runFromRow,
  supersededAtomEvents,
  signalFromRow,
  toJsonText,
} from '../rows.js';
import type {
  AtomRow,
  AtomUpdate,
  ClaimedAtom,
  DialectCapabilities,
  EngineRow,
  EventInput,
  EventFilter,
  EventRow,
  LocalSupervisor,
  Wakeups,
  LocalEngineKill,
  NewRun,
  RequeueOptions,
  WatchOptions,
  RunFilter,
  RunPatch,
  RunRow,
  RunTx,
  SignalRow,
  StartResult,
  Store,
  SuperviseOptions,
  PruneOptions,
  PruneResult,
} from '../store.js';
import { sqliteMigrations } from './migrations.js';
import { SqliteLockStatements } from './locks.js';
import type { AcquiredLock, LockFilter, LockRow } from '../store.js';
import { AsyncMutex } from '../async-mutex.js';
import { WakeFile } from './wake-file.js';
import type { WatchAnswer } from '../watch-connections.js';

const NOW = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`;
/**
 * Run columns without `graph`: a run's graph can be megabytes (10,000 atoms), and reading it
 * back with every transition made a linear flow's cost per atom grow with its length.
 */
const RUN_COLUMNS = `id, flow, version, key, status, args, result, failure, parent_run_id, parent_atom,
  pending_atoms, revert_pending, atom_count, graph_hash, created_at, updated_at, finished_at`;
type Raw = Record<string, unknown>;
/** how often watchEngine looks at the watched engine's process (ms): a pid check and one row read */
const PID_WATCH_MS = 20;

export interface SqliteStoreOptions {
  /** file path, or ':memory:' */
  path: string;
  tablePrefix?: string;
  /** how long a writer waits for the lock before failing (ms) */
  busyTimeoutMs?: number;
  /**
   * is the engine with this pid on this host alive? (SQLite is one host: pid checks are
   * valid). `startedAt` is when the engine registered, to tell a reused pid apart.
   */
  isPidAlive?: (pid: number, startedAt: Date) => boolean;
  /**
   * This host's processes, for {@link SqliteStore.superviseLocalEngines} (RULES.md R12);
   * without it the supervisor finds nothing. `openStore` passes the real one (/proc, SIGKILL).
   */
  localProcesses?: LocalProcesses;
}

/** What the local supervisor needs from the host (injected: the store itself inspects and signals no process). */
export interface LocalProcesses {
  /** this host's name, as engines register it */
  host(): string;
  /** the pid of this process: never a target */
  selfPid: number;
  /** is `pid` stopped, and the process that registered at `registeredAt` (not a reused pid)? false when in doubt */
  isStopped(pid: number, registeredAt: Date): boolean;
  /** sends SIGKILL */
  kill(pid: number): void;
}

export class SqliteStore implements Store {
  readonly capabilities: DialectCapabilities = {
    name: 'sqlite',
    skipLocked: false,
    returning: true,
    advisoryLocks: false,
    listenNotify: false,
    transactionalDdl: true,
    singleWriter: true,
    fastCompletions: false,
    pushWakeups: true,
    localSupervisor: true,
  };
  readonly fast = null;
  /** protocol 6 through the wake file next to the database (see {@link subscribeWakeups}) */
  readonly wakeups: Wakeups = {
    subscribe: (onWake) => this.subscribeWakeups(onWake),
    notify: () => this.notifyWakeup(),
  };
  readonly supervisor: LocalSupervisor = { superviseLocalEngines: (options) => this.superviseLocalEngines(options) };
  private readonly db: Database.Database;
  private readonly p: string;
  private readonly mutex = new AsyncMutex();
  private readonly isPidAlive: (pid: number, startedAt: Date) => boolean;
  private readonly localProcesses: LocalProcesses | null;
  /** engine processes this store killed (pid@registration), not counted twice while they exit */
  private readonly killed = new Set<string>();
  private closed = false;
  private readonly graphs = new KnownGraphs();
  /** cross-process wake-ups (protocol 6); null for an in-memory database */
  private readonly wakeFile: WakeFile | null;
  /** a transaction in progress made atoms claimable that others should hear of at its commit */
  private wakeAtCommit = false;

  constructor(options: SqliteStoreOptions) {
    this.p = checkPrefix(options.tablePrefix ?? 'stoker_');
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    try {
      this.db = new Database(options.path);
    } catch (cause) {
      throw new StoreError('STOKER_STORE_UNREACHABLE', `cannot open SQLite database ${options.path}: ${(cause as Error).message}`, {
        cause,
      });
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    this.isPidAlive = options.isPidAlive ?? (() => true);
    this.localProcesses = options.localProcesses ?? null;
    this.wakeFile = options.path === ':memory:' ? null : new WakeFile(`${options.path}-${this.p}wake`);
  }

  private sql(text: string): string {
    return withPrefix(text, this.p);
  }

  private stmtCache = new Map<string, Database.Statement>();
  private stmt(text: string): Database.Statement {
    let s = this.stmtCache.get(text);
    if (!s) {
      s = this.db.prepare(this.sql(text));
      this.stmtCache.set(text, s);
    }
    return s;
  }

  private all(text: string, ...params: unknown[]): Raw[] {
    return this.stmt(text).all(...params) as Raw[];
  }
  private get(text: string, ...params: unknown[]): Raw | undefined {
    return this.stmt(text).get(...params) as Raw | undefined;
  }
  private run(text: string, ...params: unknown[]): number {
    return this.stmt(text).run(...params).changes;
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction, serialised with the other callers of this store. */
  private async write<T>(fn: () => Promise<T> | T): Promise<T> {
    this.assertOpen();
    return this.mutex.run(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      this.wakeAtCommit = false;
      try {
        const out = await fn();
        this.db.exec('COMMIT');
        if (this.wakeAtCommit) this.wakeFile?.touch();
        return out;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw wrap(e);
      } finally {
        this.wakeAtCommit = false;
      }
    });
  }

  private async read<T>(fn: () => T): Promise<T> {
    this.assertOpen();
    return this.mutex.run(async () => {
      try {
        return fn();
      } catch (e) {
        throw wrap(e);
      }
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('STOKER_STORE_CLOSED', 'the store is closed');
  }

  async migrate(): Promise<number[]> {
    return this.write(() => {
      this.db.exec(
        this.sql(
          `CREATE TABLE IF NOT EXISTS {p}migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
        ),
      );
      const applied = (this.db.prepare(this.sql(`SELECT version, name, checksum FROM {p}migrations`)).all() as Raw[]).map(
        (r): AppliedMigration => ({ version: Number(r.version), name: String(r.name), checksum: String(r.checksum) }),
      );
      const todo = pendingMigrations(sqliteMigrations, applied);
      for (const m of todo) {
        for (const s of m.statements) this.db.exec(this.sql(s));
        this.db
          .prepare(this.sql(`INSERT INTO {p}migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ${NOW})`))
          .run(m.version, m.name, migrationChecksum(m));
      }
      this.stmtCache.clear();
      return todo.map((m) => m.version);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.run(async () => {
      this.closed = true;
      this.db.close();
    });
  }

  async now(): Promise<Date> {
    return this.read(() => new Date(Number(this.get(`SELECT ${NOW} AS t`)!.t)));
  }

  // ---------------------------------------------------------------- runs

  private startRunSync(run: NewRun, wakeupByDefault: boolean): StartResult {
    const argsText = canonicalJson(run.args);
    let superseded: string | undefined;
    if (run.key !== null) {
      const active = this.get(`SELECT ${RUN_COLUMNS} FROM {p}runs WHERE active_key = ?`, run.key);
      if (active) {
        if (!run.supersede) {
          if (canonicalJson(jsonColumn(active.args) as JsonValue) === argsText && active.flow === run.flow) {
            return { run: runFromRow(active), created: false };
          }
          throw new ConflictError(
            'STOKER_RUN_KEY_CONFLICT',
            `run ${String(active.id)} with key "${run.key}" is still active with different arguments`,
            {
              details: { runId: String(active.id), key: run.key },
            },
          );
        }
        superseded = String(active.id);
        this.supersedeSync(superseded);
      }
    }
    const atoms = run.graph.atoms;
    const graph = graphDigest(run.graph);
    if (!this.graphs.has(graph.hash)) {
      this.run(`INSERT OR IGNORE INTO {p}graphs (hash, graph, created_at) VALUES (?, ?, ${NOW})`, graph.hash, graph.text);
    }
    this.run(
      `INSERT INTO {p}runs (id, flow, version, key, active_key, status, args, graph_hash, parent_run_id, parent_atom, pending_atoms, atom_count, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ${NOW}, ${NOW})`,
      run.id,
      run.flow,
      run.version,
      run.key,
      run.key,
      argsText,
      graph.hash,
      run.parentRunId ?? null,
      run.parentAtom ?? null,
      atoms.length,
      atoms.length,
    );
    const ins = this.stmt(
      `INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at) VALUES (?, ?, ?, ?, ?, CASE WHEN ? THEN ${NOW} END, ${NOW})`,
    );
    for (const a of atoms) {
      const ready = a.predecessors.length === 0;
      ins.run(run.id, a.index, a.name, ready ? 'READY' : 'PENDING', a.predecessors.length, ready ? 1 : 0);
    }
    if ((run.wakeup ?? wakeupByDefault) && atoms.some((a) => a.predecessors.length === 0)) this.wakeAtCommit = true;
    this.insertEventsSync([
      { runId: run.id, atom: null, kind: 'run.created', toState: 'PENDING', data: superseded ? { supersedes: superseded } : null },
    ]);
    const row = this.get(`SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id = ?`, run.id)!;
    return { run: runFromRow(row), created: true, ...(superseded ? { superseded } : {}) };
  }

  private supersedeSync(runId: string): void {
    this.run(
      `UPDATE {p}runs SET status = 'SUPERSEDED', active_key = NULL, finished_at = ${NOW}, updated_at = ${NOW}, row_version = row_version + 1 WHERE id = ?`,
      runId,
    );
    // (inside the write transaction: the states read are the ones the update changes)
    const open = this.all(
      `SELECT idx, state FROM {p}atoms WHERE run_id = ? AND state IN ('PENDING', 'READY', 'WAITING', 'REVERT_PENDING', 'REVERT_READY') ORDER BY idx`,
      runId,
    );
    this.run(
      `UPDATE {p}atoms SET state = 'CANCELLED', ready_at = NULL, updated_at = ${NOW}
       WHERE run_id = ? AND state IN ('PENDING', 'READY', 'WAITING', 'REVERT_PENDING', 'REVERT_READY')`,
      runId,
    );
    this.insertEventsSync([
      ...supersededAtomEvents(runId, open),
      { runId, atom: null, kind: 'run.superseded', toState: 'SUPERSEDED', data: { cancelledAtoms: open.length } },
    ]);
  }

  async startRuns(runs: readonly NewRun[]): Promise<RunRow[]> {
    if (runs.some((r) => r.key !== null))
      throw new StoreError('STOKER_CONFIG_INVALID', 'startRuns takes runs without keys; start keyed runs one by one');
    const rows = await this.write(() => runs.map((r) => this.startRunSync(r, true).run));
    for (const r of runs) this.graphs.committedHash(graphDigest(r.graph).hash);
    return rows;
  }

  async startRun(run: NewRun): Promise<StartResult> {
    const started = await this.write(() => this.startRunSync(run, true));
    this.graphs.committedHash(graphDigest(run.graph).hash);
    return started;
  }

  async claimAtoms(engineId: string, limit: number): Promise<ClaimedAtom[]> {
    if (limit <= 0) return [];
    return this.write(() => this.claimAtomsSync(engineId, limit));
  }

  private claimAtomsSync(engineId: string, limit: number): ClaimedAtom[] {
    const rows = this.all(
      `UPDATE {p}atoms SET
         state = CASE state WHEN 'REVERT_READY' THEN 'REVERTING' ELSE 'RUNNING' END,
         execution = CASE state WHEN 'REVERT_READY' THEN execution ELSE execution + 1 END,
         claimed_by = ?, claimed_at = ${NOW}, epoch = epoch + 1, ready_at = NULL, updated_at = ${NOW}
       WHERE (run_id, idx) IN (
         SELECT run_id, idx FROM {p}atoms
         WHERE state IN ('READY', 'WAITING', 'REVERT_READY') AND ready_at <= ${NOW}
         ORDER BY ready_at LIMIT ?)
       RETURNING run_id, idx, state, epoch, attempt, execution, journal, failure`,
      engineId,
      limit,
    );
    const claims = rows.map((r) => claimFromRow(r));
    this.insertEventsSync(
      claims.map((c) => ({ runId: c.runId, atom: c.index, kind: 'atom.claimed', toState: c.state, engineId, epoch: c.epoch })),
    );
    return claims;
  }

  async runTransaction<T>(runIds: readonly string[], fn: (tx: RunTx) => Promise<T>): Promise<T> {
    return this.write(async () => {
      const runs = new Map<string, RunRow>();
      for (const id of [...new Set(runIds)].sort()) {
        // Taking the write lock (BEGIN IMMEDIATE) already serialises everything; bumping
        // row_version keeps the "first statement locks the run" shape of the other dialects.
        const row = this.get(`UPDATE {p}runs SET row_version = row_version + 1 WHERE id = ? RETURNING ${RUN_COLUMNS}`, id);
        if (row) runs.set(id, runFromRow(row));
      }
      return fn(this.makeTx(runs));
    });
  }

  private makeTx(runs: Map<string, RunRow>): RunTx {
    const store = this;
    return {
      run(runId) {
        const r = runs.get(runId);
        if (!r) throw new StoreError('STOKER_RUN_NOT_FOUND', `run ${runId} is not locked by this transaction (or does not exist)`);
        return r;
      },
      async getAtoms(runId, indexes) {
        return store.getAtomsSync(runId, indexes);
      },
      async getAtomsInStates(runId, states) {
        if (states.length === 0) return [];
        return store
          .all(`SELECT * FROM {p}atoms WHERE run_id = ? AND state IN (${states.map(() => '?').join(',')}) ORDER BY idx`, runId, ...states)
          .map(atomFromRow);
      },
      async updateAtoms(runId, updates) {
        return updates.map((u) => store.updateAtomSync(runId, u));
      },
      async decrementPending(runId, entries) {
        const out: AtomRow[] = [];
        for (const e of entries) {
          const row = store.get(
            `UPDATE {p}atoms SET pending = pending - 1, skip = MAX(skip, ?),
               state = CASE WHEN pending = 1 AND skip = 0 AND ? = 0 THEN 'READY' ELSE state END,
               ready_at = CASE WHEN pending = 1 AND skip = 0 AND ? = 0 THEN ${NOW} ELSE ready_at END,
               updated_at = ${NOW}
             WHERE run_id = ? AND idx = ? AND state = 'PENDING' RETURNING *`,
            e.disable ? 1 : 0,
            e.disable ? 1 : 0,
            e.disable ? 1 : 0,
            runId,
            e.index,
          );
          if (row) out.push(atomFromRow(row));
        }
        return out;
      },
      async claimAtom(runId, index, engineId) {
        const row = store.get(
          `UPDATE {p}atoms SET state = 'RUNNING', execution = execution + 1, claimed_by = ?, claimed_at = ${NOW}, epoch = epoch + 1, ready_at = NULL, updated_at = ${NOW}
           WHERE run_id = ? AND idx = ? AND state = 'READY' RETURNING run_id, idx, state, epoch, attempt, execution, journal, failure`,
          engineId,
          runId,
          index,
        );
        return row ? claimFromRow(row) : null;
      },
      async updateRun(runId, patch) {
        const row = store.updateRunSync(runId, patch);
        if (row) runs.set(runId, row);
      },
      async insertEvents(events) {
        store.insertEventsSync(events);
      },
      async startRun(run) {
        return store.startRunSync(run, false);
      },
      async claimMore(engineId, limit) {
        return limit > 0 ? store.claimAtomsSync(engineId, limit) : [];
      },
      async signalCount(runId, name) {
        return Number(store.get(`SELECT count(*) AS n FROM {p}signals WHERE run_id = ? AND name = ?`, runId, name)!.n);
      },
    };
  }

  private getAtomsSync(runId: string, indexes: readonly number[]): AtomRow[] {
    if (indexes.length === 0) return [];
    const out: AtomRow[] = [];
    // chunk to stay under SQLite's bound-parameter limit
    for (let i = 0; i < indexes.length; i += 500) {
      const chunk = indexes.slice(i, i + 500);
      out.push(
        ...this.all(
          `SELECT * FROM {p}atoms WHERE run_id = ? AND idx IN (${chunk.map(() => '?').join(',')}) ORDER BY idx`,
          runId,
          ...chunk,
        ).map(atomFromRow),
      );
    }
    return out;
  }

  private updateAtomSync(runId: string, u: AtomUpdate): boolean {
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [field, column] of Object.entries(ATOM_PATCH_COLUMNS) as [keyof typeof ATOM_PATCH_COLUMNS, string][]) {
      if (field in u.patch && u.patch[field] !== undefined) {
        sets.push(`${column} = ?`);
        params.push(patchValue(field, u.patch[field]));
      }
    }
    if (u.patch.readyAt !== undefined) {
      if (u.patch.readyAt === null) sets.push('ready_at = NULL');
      else {
        sets.push(`ready_at = ${NOW} + ?`);
        params.push(Math.max(0, Math.round(u.patch.readyAt.delayMs)));
      }
    }
    sets.push(`updated_at = ${NOW}`);
    const where = ['run_id = ?', 'idx = ?'];
    params.push(runId, u.index);
    if (u.epoch !== undefined) {
      where.push('epoch = ?');
      params.push(u.epoch);
    }
    if (u.expectRevertRequested !== undefined) {
      where.push('revert_requested = ?');
      params.push(u.expectRevertRequested ? 1 : 0);
    }
    if (u.expectStates && u.expectStates.length > 0) {
      where.push(`state IN (${u.expectStates.map(() => '?').join(',')})`);
      params.push(...u.expectStates);
    }
    return this.run(`UPDATE {p}atoms SET ${sets.join(', ')} WHERE ${where.join(' AND ')}`, ...params) === 1;
  }

  private updateRunSync(runId: string, patch: RunPatch): RunRow | undefined {
    const sets: string[] = ['updated_at = ' + NOW, 'row_version = row_version + 1'];
    const params: unknown[] = [];
    if (patch.status !== undefined) {
      sets.push('status = ?');
      params.push(patch.status);
      if (TERMINAL_RUN_STATUSES.includes(patch.status)) sets.push('active_key = NULL', `finished_at = ${NOW}`);
    }
    if (patch.result !== undefined) {
      sets.push('result = ?');
      params.push(toJsonText(patch.result));
    }
    if (patch.failure !== undefined) {
      sets.push('failure = ?');
      params.push(toJsonText(patch.failure));
    }
    if (patch.pendingAtomsDelta) {
      sets.push('pending_atoms = pending_atoms + ?');
      params.push(patch.pendingAtomsDelta);
    }
    if (patch.revertPending !== undefined) {
      // both given: set, then add (one assignment, as in the other dialects)
      sets.push('revert_pending = ?');
      params.push(patch.revertPending + (patch.revertPendingDelta ?? 0));
    } else if (patch.revertPendingDelta) {
      sets.push('revert_pending = revert_pending + ?');
      params.push(patch.revertPendingDelta);
    }
    const row = this.get(`UPDATE {p}runs SET ${sets.join(', ')} WHERE id = ? RETURNING ${RUN_COLUMNS}`, ...params, runId);
    return row ? runFromRow(row) : undefined;
  }

  private insertEventsSync(events: readonly EventInput[]): void {
    const ins = this.stmt(
      `INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ${NOW})`,
    );
    for (const e of events) {
      ins.run(
        e.runId,
        e.atom,
        e.kind,
        e.fromState ?? null,
        e.toState ?? null,
        e.engineId ?? null,
        e.epoch ?? null,
        toJsonText(e.data ?? null),
      );
    }
  }

  // ---------------------------------------------------------------- reads

  async getRun(id: string): Promise<RunRow | null> {
    return this.read(() => {
      const r = this.get(`SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id = ?`, id);
      return r ? runFromRow(r) : null;
    });
  }

  async getRuns(ids: readonly string[]): Promise<RunRow[]> {
    return this.read(() => {
      const out: RunRow[] = [];
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        out.push(
          ...this.all(`SELECT ${RUN_COLUMNS} FROM {p}runs WHERE id IN (${chunk.map(() => '?').join(',')})`, ...chunk).map(runFromRow),
        );
      }
      return out;
    });
  }

  async getRunStatuses(ids: readonly string[]): Promise<Map<string, RunStatus>> {
    return this.read(() => {
      const out = new Map<string, RunStatus>();
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        for (const r of this.all(`SELECT id, status FROM {p}runs WHERE id IN (${chunk.map(() => '?').join(',')})`, ...chunk)) {
          out.set(String(r.id), r.status as RunStatus);
        }
      }
      return out;
    });
  }

  async getRunGraph(id: string): Promise<FlowGraph | null> {
    return this.read(() => {
      const r = this.get(`SELECT graph_hash FROM {p}runs WHERE id = ?`, id);
      if (!r) return null;
      const hash = String(r.graph_hash);
      const known = this.graphs.get(hash);
      if (known) return known;
      const g = this.get(`SELECT graph FROM {p}graphs WHERE hash = ?`, hash);
      if (!g)
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `run ${id} refers to graph ${hash}, which is not stored`, {
          details: { runId: id, hash },
        });
      const graph = jsonColumn<FlowGraph>(g.graph)!;
      this.graphs.remember(hash, graph);
      return graph;
    });
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRow[]> {
    return this.read(() => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.status && filter.status.length > 0) {
        where.push(`status IN (${filter.status.map(() => '?').join(',')})`);
        params.push(...filter.status);
      }
      if (filter.flow !== undefined) {
        where.push('flow = ?');
        params.push(filter.flow);
      }
      if (filter.key !== undefined) {
        where.push('key = ?');
        params.push(filter.key);
      }
      if (filter.parentRunId !== undefined) {
        where.push('parent_run_id = ?');
        params.push(filter.parentRunId);
      }
      if (filter.before !== undefined) {
        where.push(`(created_at, id) < (SELECT created_at, id FROM {p}runs WHERE id = ?)`);
        params.push(filter.before);
      }
      const text = `SELECT ${RUN_COLUMNS} FROM {p}runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
      return this.db
        .prepare(this.sql(text))
        .all(...params, filter.limit ?? 100)
        .map((r) => runFromRow(r as Raw));
    });
  }

  async getAtoms(runId: string): Promise<AtomRow[]> {
    return this.read(() => this.all(`SELECT * FROM {p}atoms WHERE run_id = ? ORDER BY idx`, runId).map(atomFromRow));
  }

  async getAtomResults(runId: string, indexes: readonly number[]): Promise<Map<number, JsonValue | null>> {
    return this.read(() => new Map(this.getAtomsSync(runId, indexes).map((a) => [a.index, a.result])));
  }

  async listEvents(filter: EventFilter = {}): Promise<EventRow[]> {
    const afterId = filter.afterId ?? 0;
    const limit = filter.limit ?? 10_000;
    return this.read(() =>
      (filter.runId === undefined
        ? this.all(`SELECT * FROM {p}events WHERE id > ? ORDER BY id LIMIT ?`, afterId, limit)
        : this.all(`SELECT * FROM {p}events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?`, filter.runId, afterId, limit)
      ).map(eventFromRow),
    );
  }

  /** {@inheritDoc Store.pruneRuns} One write transaction; ids are passed as one JSON array. */
  async pruneRuns(options: PruneOptions): Promise<PruneResult> {
    this.assertOpen();
    const { olderThanMs, limit } = checkPruneOptions(options);
    const terminal = TERMINAL_RUN_STATUSES.map((st) => `'${st}'`).join(', ');
    const victims = `SELECT r.id FROM {p}runs r
      WHERE r.status IN (${terminal}) AND r.finished_at < ${NOW} - ?
        AND NOT EXISTS (SELECT 1 FROM {p}runs p WHERE p.id = r.parent_run_id AND p.status NOT IN (${terminal}))
        AND NOT EXISTS (SELECT 1 FROM {p}runs c WHERE c.parent_run_id = r.id AND c.status NOT IN (${terminal}))
      LIMIT ?`;
    const engines = `{p}engines WHERE lease_expires_at < ${NOW} - ?
        AND NOT EXISTS (SELECT 1 FROM {p}atoms a WHERE a.claimed_by = {p}engines.id AND a.state IN ('RUNNING', 'REVERTING'))`;
    const prune = (): PruneResult => {
      const ids = JSON.stringify(this.all(victims, olderThanMs, limit).map((r) => String(r.id)));
      const inIds = (column: string) => `${column} IN (SELECT value FROM json_each(?))`;
      if (options.dryRun) {
        const count = (table: string) => Number(this.get(`SELECT count(*) AS n FROM {p}${table} WHERE ${inIds('run_id')}`, ids)!.n);
        return {
          runs: JSON.parse(ids).length as number,
          atoms: count('atoms'),
          events: count('events'),
          signals: count('signals'),
          engines: Number(this.get(`SELECT count(*) AS n FROM ${engines}`, olderThanMs)!.n),
        };
      }
      const del = (table: string, column = 'run_id') => this.run(`DELETE FROM {p}${table} WHERE ${inIds(column)}`, ids);
      const events = del('events');
      const atoms = del('atoms');
      const signals = del('signals');
      return { runs: del('runs', 'id'), atoms, events, signals, engines: this.run(`DELETE FROM ${engines}`, olderThanMs) };
    };
    return options.dryRun ? this.read(prune) : this.write(prune);
  }

  // ---------------------------------------------------------------- signals and waits

  async sendSignal(runId: string, name: string, payload: JsonValue): Promise<number> {
    return this.write(() => {
      const run = this.get(`UPDATE {p}runs SET row_version = row_version + 1 WHERE id = ? RETURNING status`, runId);
      if (!run) throw new StoreError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
      this.run(`INSERT INTO {p}signals (run_id, name, payload, at) VALUES (?, ?, ?, ${NOW})`, runId, name, JSON.stringify(payload));
      const woke = this.run(
        `UPDATE {p}atoms SET ready_at = ${NOW}, updated_at = ${NOW} WHERE run_id = ? AND state = 'WAITING' AND wait_kind = 'signal' AND wait_ref = ?`,
        runId,
        name,
      );
      this.insertEventsSync([{ runId, atom: null, kind: 'run.signal', data: { name, woke } }]);
      if (woke > 0) this.wakeAtCommit = true;
      return woke;
    });
  }

  async getSignals(runId: string): Promise<SignalRow[]> {
    return this.read(() => this.all(`SELECT * FROM {p}signals WHERE run_id = ? ORDER BY id`, runId).map(signalFromRow));
  }

  async wakeAtom(runId: string, index: number): Promise<void> {
    await this.write(() => {
      this.run(
        `UPDATE {p}atoms SET ready_at = ${NOW}, updated_at = ${NOW} WHERE run_id = ? AND idx = ? AND state = 'WAITING'`,
        runId,
        index,
      );
    });
  }

  // ---------------------------------------------------------------- wake-ups (protocol 6)

  /**
   * Watches the deployment's wake file (src/store/sqlite/wake-file.ts): `onWake` runs when
   * any process on this host touches it. An in-memory database has no other process to hear.
   */
  async subscribeWakeups(onWake: () => void): Promise<() => Promise<void>> {
    this.assertOpen();
    const stop = this.wakeFile?.subscribe(onWake);
    return async () => stop?.();
  }

  /** Touches the wake file: the engines of other processes claim at once. */
  async notifyWakeup(): Promise<void> {
    this.wakeFile?.touch();
  }

  // ---------------------------------------------------------------- engines

  async registerEngine(e: { id: string; host: string; pid: number; version: string; leaseMs: number }): Promise<void> {
    await this.write(() => {
      this.run(
        `INSERT INTO {p}engines (id, host, pid, version, state, started_at, heartbeat_at, lease_expires_at) VALUES (?, ?, ?, ?, 'alive', ${NOW}, ${NOW}, ${NOW} + ?)`,
        e.id,
        e.host,
        e.pid,
        e.version,
        e.leaseMs,
      );
    });
  }

  async heartbeat(engineId: string, leaseMs: number): Promise<boolean> {
    return this.write(
      () =>
        this.run(
          `UPDATE {p}engines SET heartbeat_at = ${NOW}, lease_expires_at = ${NOW} + ? WHERE id = ? AND state <> 'dead'`,
          leaseMs,
          engineId,
        ) === 1,
    );
  }

  async setEngineState(engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void> {
    await this.write(() => {
      this.run(`UPDATE {p}engines SET state = ? WHERE id = ?`, state, engineId);
    });
  }

  async deregisterEngine(engineId: string): Promise<void> {
    await this.write(() => {
      this.run(`DELETE FROM {p}engines WHERE id = ?`, engineId);
    });
  }

  async listEngines(): Promise<EngineRow[]> {
    return this.read(() =>
      this.all(
        `SELECT e.*, ${NOW} - e.heartbeat_at AS lease_age_ms,
           CASE WHEN e.state <> 'dead' AND e.lease_expires_at < ${NOW} THEN 'dead' ELSE e.state END AS state,
           (SELECT count(*) FROM {p}atoms a WHERE a.claimed_by = e.id AND a.state IN ('RUNNING', 'REVERTING')) AS atoms_held
         FROM {p}engines e ORDER BY e.started_at`,
      ).map(engineFromRow),
    );
  }

  /**
   * {@inheritDoc Store.requeueExpired}
   *
   * SQLite has no session locks: `liveCheckAfterMs` is ignored and every engine's pid is
   * checked on every call (SQLite is one host, and a pid check cannot be fooled by a
   * database restart).
   */
  async requeueExpired(_options?: RequeueOptions): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    return this.write(() => {
      // Engines whose lease ran out, or whose process is gone from this host (SQLite is one host).
      const engines = this.all(`SELECT id, pid, started_at, lease_expires_at < ${NOW} AS expired, state FROM {p}engines`);
      const dead = new Set<string>();
      for (const e of engines) {
        if (Number(e.expired) === 1 || e.state === 'dead' || !this.isPidAlive(Number(e.pid), new Date(Number(e.started_at))))
          dead.add(String(e.id));
      }
      const held = this.all(`SELECT DISTINCT claimed_by FROM {p}atoms WHERE claimed_by IS NOT NULL AND state IN ('RUNNING', 'REVERTING')`);
      const known = new Set(engines.map((e) => String(e.id)));
      for (const h of held) if (!known.has(String(h.claimed_by))) dead.add(String(h.claimed_by));
      const out: { runId: string; index: number; engineId: string | null }[] = [];
      for (const id of dead) {
        for (const r of this.requeueEngineSync(id)) out.push({ ...r, engineId: id });
        this.run(`UPDATE {p}engines SET state = 'dead' WHERE id = ?`, id);
      }
      return out;
    });
  }

  private requeueEngineSync(engineId: string): { runId: string; index: number }[] {
    const requeue = requeueSql('state', `(SELECT r.status FROM {p}runs r WHERE r.id = {p}atoms.run_id)`, NOW);
    const rows = this.all(
      `UPDATE {p}atoms SET state = ${requeue.state}, claimed_by = NULL, ready_at = ${requeue.readyAt}, updated_at = ${NOW}
       WHERE claimed_by = ? AND state IN ('RUNNING', 'REVERTING') RETURNING run_id, idx, state, epoch`,
      engineId,
    );
    this.insertEventsSync(
      rows.map((r) => ({
        runId: String(r.run_id),
        atom: Number(r.idx),
        kind: requeueEventKind(String(r.state)),
        fromState: null,
        toState: String(r.state),
        engineId,
        epoch: Number(r.epoch),
      })),
    );
    return rows.map((r) => ({ runId: String(r.run_id), index: Number(r.idx) }));
  }

  /**
   * {@inheritDoc Store.watchEngine}
   *
   * SQLite has no sessions, but its engines share one host: the wait looks at the engine's
   * process every {@link PID_WATCH_MS} ms with the same pid check as the sweep, and answers
   * `'free'` once it is gone (or the engine's row is). Without a pid check (a store made
   * without `isPidAlive`) every wait runs out (`'held'`). A stopped (SIGSTOP) process is
   * alive here: its lease decides.
   */
  async watchEngine(engineId: string, options: WatchOptions): Promise<WatchAnswer> {
    this.assertOpen();
    const until = performance.now() + Math.max(1, options.maxWaitMs);
    for (;;) {
      if (options.signal.aborted || this.closed) return 'aborted';
      const row = this.get(`SELECT pid, started_at FROM {p}engines WHERE id = ?`, engineId);
      if (!row || !this.isPidAlive(Number(row.pid), new Date(Number(row.started_at)))) return 'free';
      const left = until - performance.now();
      if (left <= 0) return 'held';
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          options.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(PID_WATCH_MS, left));
        timer.unref(); // like the engine's timers: a watch does not keep the process alive
        options.signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  async requeueEngine(engineId: string): Promise<number> {
    return this.write(() => this.requeueEngineSync(engineId).length);
  }

  /**
   * {@inheritDoc Store.superviseLocalEngines}
   *
   * One statement, run at once: not behind this store's mutex, where queued writes may each
   * wait busy_timeout for the lock the stopped process holds. Reading needs no lock in WAL
   * mode, and a read inside another caller's open transaction on this connection is harmless.
   */
  async superviseLocalEngines(options: SuperviseOptions): Promise<LocalEngineKill[]> {
    this.assertOpen();
    const procs = this.localProcesses;
    if (!procs) return [];
    let rows: Raw[];
    try {
      rows = this.all(
        `SELECT id, host, pid, started_at, ${NOW} - lease_expires_at AS overdue_ms FROM {p}engines
         WHERE id <> ? AND lease_expires_at < ${NOW} - ? ORDER BY lease_expires_at`,
        options.selfId,
        Math.max(0, Math.trunc(options.staleMs)),
      );
    } catch (e) {
      throw wrap(e);
    }
    const host = procs.host();
    const out: LocalEngineKill[] = [];
    for (const r of rows) {
      const pid = Number(r.pid);
      // one process may have several rows (ids it had before fencing itself)
      const key = `${pid}@${String(r.started_at)}`;
      if (r.host !== host || pid === procs.selfPid || this.killed.has(key) || out.some((k) => k.pid === pid)) continue;
      if (!procs.isStopped(pid, new Date(Number(r.started_at)))) continue;
      procs.kill(pid);
      this.killed.add(key);
      out.push({ engineId: String(r.id), pid, overdueMs: Number(r.overdue_ms) });
    }
    return out;
  }

  // ---------------------------------------------------------------- locks (protocol 10; statements in ./locks.ts)

  private readonly lockStatements = new SqliteLockStatements((text) => this.stmt(text));

  async acquireLock(name: string, holder: string, ttlMs: number): Promise<AcquiredLock | null> {
    return this.write(() => this.lockStatements.acquire(name, holder, ttlMs));
  }

  async extendLock(name: string, token: number, ttlMs: number): Promise<boolean> {
    return this.write(() => this.lockStatements.extend(name, token, ttlMs));
  }

  async releaseLock(name: string, token: number): Promise<boolean> {
    return this.write(() => this.lockStatements.release(name, token));
  }

  async getLock(name: string): Promise<LockRow | null> {
    return this.read(() => this.lockStatements.get(name));
  }

  async listLocks(filter?: LockFilter): Promise<LockRow[]> {
    return this.read(() => this.lockStatements.list(filter));
  }
}

function wrap(e: unknown): unknown {
  if (
    e instanceof Error &&
    'code' in e &&
    typeof (e as { code: unknown }).code === 'string' &&
    (e as { code: string }).code.startsWith('SQLITE_')
  ) {
    return new StoreError('STOKER_STORE_QUERY_FAILED', `SQLite: ${e.message}`, {
      cause: e,
      details: { sqliteCode: (e as { code: string }).code },
    });
  }
  return e;
}
