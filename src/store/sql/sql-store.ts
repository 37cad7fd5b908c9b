/**
 * The {@link Store} of every SQL dialect: each operation that is the same on SQLite,
 * PostgreSQL and MySQL but for SQL fragments is written here once, over a driver
 * (./driver.ts: connections, transactions, retries, errors) and the store's shared
 * statements (./core.ts: fragments, and the forms its dialect writes its own way). What
 * has a shape of its own per dialect comes in as parts (see {@link SqlStoreParts}): the
 * claim, the requeue sweeps and the peer watch, the locks API, the optional ports, and
 * PostgreSQL's one-statement starts and retention.
 *
 * The adapters (PostgresStore, MysqlStore, SqliteStore) extend this class only to build
 * their parts from their options and to expose what their dialect alone has.
 */
import type { JsonValue } from '../../core/json.js';
import { ConflictError, StoreError, ValidationError } from '../../errors.js';
import type { FlowGraph } from '../../flow/graph.js';
import { graphDigest } from '../graphs.js';
import { checkModules, type Migration, type MigrationRecord, type SchemaModule } from '../migration.js';
import { atomFromRow, checkPruneOptions, dateColumn, engineFromRow, eventFromRow, jsonColumn, runFromRow, signalFromRow } from '../rows.js';
import { checkSchema, runMigrations } from '../schema/migrator.js';
import { isTerminalRun, type RunStatus } from '../states.js';
import type { Store } from '../store.js';
import type * as t from '../types.js';
import type { EngineLiveness, FastCompletions, LocalSupervisor, LockStore, ModuleSql, RunTx, Wakeups } from '../ports.js';
import { getAtomResults } from './atoms.js';
import { chunks } from './chunks.js';
import type { SqlCore } from './core.js';
import { statement } from './binder.js';
import type { SqlDriver, SqlSession } from './driver.js';
import { DriverModuleSql } from './module-sql.js';
import { pruneRuns, type PruneRequest } from './retention.js';
import { SqlRunTx } from './run-tx.js';
import { lockRun, lockRuns, runColumns } from './runs.js';
import type { EngineSessionLocks } from './session-locks.js';
import { startRunOn } from './starts.js';

/** The requeue sweeps and the peer watch of a dialect (protocol 4, ARCHITECTURE.md "Liveness"). */
export type Sweeps = Pick<EngineLiveness, 'requeueExpired' | 'requeueEngine' | 'watchEngine'>;

/** What a dialect brings to the shared store. */
export interface SqlStoreParts {
  readonly driver: SqlDriver;
  readonly core: SqlCore;
  readonly prefix: string;
  readonly capabilities: t.DialectCapabilities;
  /** the dialect's core schema (schema module `core`) */
  readonly coreMigrations: readonly Migration[];
  /** protocol 2 on its own (a claim inside a run transaction is `core.forms.claimMore`); limit > 0 */
  claimAtoms(engineId: string, limit: number, options?: t.ClaimOptions): Promise<t.ClaimedAtom[]>;
  readonly sweeps: Sweeps;
  /** the locks API (protocol 10, ARCHITECTURE.md): the dialect's `locks.ts` */
  readonly locks: LockStore;
  /** session locks of registered engines (PostgreSQL, MySQL); null where there are none (SQLite) */
  readonly sessionLocks: EngineSessionLocks | null;
  readonly fast: FastCompletions | null;
  readonly wakeups: Wakeups | null;
  readonly supervisor: LocalSupervisor | null;
  /** a start without a key in one round trip (PostgreSQL: one statement; MySQL: one call); else one transaction */
  startAlone?(run: t.NewRun, options?: t.StartOptions): Promise<t.StartResult>;
  /** keyless runs started together in one statement (PostgreSQL), marking their graphs committed; else one transaction */
  startMany?(runs: readonly t.NewRun[]): Promise<t.RunRow[]>;
  /** retention in one statement (PostgreSQL); else ./retention.ts */
  prune?(request: PruneRequest): Promise<t.PruneResult>;
  /** closes everything the adapter holds, the driver last */
  close(): Promise<void>;
}

export class SqlStore implements Store {
  readonly capabilities: t.DialectCapabilities;
  readonly fast: FastCompletions | null;
  readonly wakeups: Wakeups | null;
  readonly supervisor: LocalSupervisor | null;
  readonly moduleSql: ModuleSql;
  protected readonly driver: SqlDriver;
  protected readonly core: SqlCore;
  /** engines' session locks, by engine id (null on SQLite) */
  protected readonly sessionLocks: EngineSessionLocks | null;

  constructor(private readonly parts: SqlStoreParts) {
    this.capabilities = parts.capabilities;
    this.fast = parts.fast;
    this.wakeups = parts.wakeups;
    this.supervisor = parts.supervisor;
    this.driver = parts.driver;
    this.core = parts.core;
    this.moduleSql = new DriverModuleSql(parts.driver, parts.core.d.name);
    this.sessionLocks = parts.sessionLocks;
  }

  // ---------------------------------------------------------------- the store itself

  /** Applies the pending migrations of the core schema, then of `modules`, under the migration lock. */
  async migrate(options: { modules?: readonly SchemaModule[] } = {}): Promise<MigrationRecord[]> {
    const coreMigrations = this.parts.coreMigrations;
    const modules: SchemaModule[] = [{ name: 'core', migrations: () => coreMigrations }, ...(options.modules ?? [])];
    checkModules(modules, this.core.d.name);
    return this.driver.migrating((s) => runMigrations(s, this.core.d, this.parts.prefix, modules));
  }

  async checkSchema(options: { modules?: readonly SchemaModule[] } = {}): Promise<void> {
    const coreMigrations = this.parts.coreMigrations;
    const modules: SchemaModule[] = [{ name: 'core', migrations: () => coreMigrations }, ...(options.modules ?? [])];
    checkModules(modules, this.core.d.name);
    await this.driver.read('check the schema', (s) =>
      checkSchema(s, this.core.d, this.parts.prefix, modules, `the ${this.core.label} database`),
    );
  }

  close(): Promise<void> {
    return this.parts.close();
  }

  /** Verifies that the database is reachable and accepts the credentials (`SELECT 1`). */
  async ping(): Promise<void> {
    await this.driver.read('connect', (s) => s.rows('connect', 'SELECT 1', []));
  }

  async now(): Promise<Date> {
    return this.driver.read('read the clock', async (s) =>
      dateColumn((await s.row('read the clock', `SELECT ${this.core.d.now} AS t`, []))!.t),
    );
  }

  // ---------------------------------------------------------------- protocols 1–3 and 7

  async startRun(run: t.NewRun, options?: t.StartOptions): Promise<t.StartResult> {
    const started =
      run.key === null && this.parts.startAlone
        ? await this.parts.startAlone(run, options)
        : await this.driver.transaction(
            'start a run',
            (s) => startRunOn(this.core, s, run, true),
            run.key !== null && run.supersede ? { supersedeKey: run.key } : undefined,
          );
    // the engine of this process is likely to claim its first atoms next: no need to read the graph back
    const digest = graphDigest(run.graph);
    if (started.created) this.core.graphs.remember(digest.hash, run.graph, digest.text.length);
    else this.core.graphs.committedHash(digest.hash);
    return started;
  }

  async startRuns(runs: readonly t.NewRun[]): Promise<t.RunRow[]> {
    this.driver.assertOpen();
    if (runs.some((r) => r.key !== null)) {
      throw new ValidationError('STOKER_CONFIG_INVALID', 'startRuns takes runs without keys; start keyed runs one by one');
    }
    if (runs.length === 0) return [];
    if (this.parts.startMany) return this.parts.startMany(runs);
    const rows = await this.driver.transaction('start runs', async (s) => {
      const out: t.RunRow[] = [];
      for (const r of runs) out.push((await startRunOn(this.core, s, r, true)).run);
      return out;
    });
    for (const r of runs) this.core.graphs.committedHash(graphDigest(r.graph).hash);
    return rows;
  }

  async claimAtoms(engineId: string, limit: number, options?: t.ClaimOptions): Promise<t.ClaimedAtom[]> {
    if (limit <= 0) return [];
    return this.parts.claimAtoms(engineId, limit, options);
  }

  /**
   * {@inheritDoc RunProtocol.runTransaction}
   *
   * On PostgreSQL and MySQL a deadlock or serialization failure rolls the transaction back
   * and `fn` runs again from the start (up to the driver's attempts).
   */
  runTransaction<T>(runIds: readonly string[], fn: (tx: RunTx) => Promise<T>): Promise<T> {
    const ids = [...new Set(runIds)].sort();
    return this.driver.transaction('run transaction', async (s, state) => {
      const runs = await lockRuns(this.core.d, s, ids);
      try {
        return await fn(new SqlRunTx(this.core, s, runs, state));
      } finally {
        state.done = true;
      }
    });
  }

  sendSignal(runId: string, name: string, payload: JsonValue): Promise<number> {
    const { d } = this.core;
    return this.driver.transaction('send a signal', async (s) => {
      // Locking the run row serialises with the run's own transactions: an atom that is
      // being parked on this signal right now is either seen WAITING here, or its
      // transaction (which locks the run first) sees the stored signal. No lost wake-up.
      const locked = await lockRun(d, s, 'lock the run of a signal', runId, 'status');
      if (!locked) throw new StoreError('STOKER_RUN_NOT_FOUND', `no run ${runId}`, { details: { runId } });
      // judged under the run lock: a run that ended can no longer be signalled (nothing is stored)
      const status = String(locked.status) as RunStatus;
      if (isTerminalRun(status)) {
        throw new ConflictError('STOKER_RUN_NOT_ACTIVE', `run ${runId} already ended ${status}: it takes no more signals`, {
          details: { runId, status },
        });
      }
      const signal = statement(
        d,
        (b) =>
          `INSERT INTO {p}signals (run_id, name, payload, at) VALUES (${b.bind(runId)}, ${b.bind(name)}, ${d.json(b, JSON.stringify(payload))}, ${d.now})`,
      );
      await s.exec('store a signal', signal.text, signal.params);
      const wake = statement(
        d,
        (b) =>
          `UPDATE {p}atoms SET ready_at = ${d.now}, updated_at = ${d.now}
           WHERE run_id = ${b.bind(runId)} AND state = 'WAITING' AND wait_kind = 'signal' AND wait_ref = ${b.bind(name)}`,
      );
      const woke = await s.exec('wake atoms waiting for a signal', wake.text, wake.params);
      await this.core.insertEvents(s, [{ runId, atom: null, kind: 'run.signal', data: { name, woke } }]);
      // like a start, a signal comes from outside: wake idle engines at commit (protocol 6)
      if (woke > 0) await this.core.forms.announce?.(s);
      return woke;
    });
  }

  async wakeAtom(runId: string, index: number): Promise<void> {
    const { d } = this.core;
    await this.driver.transaction('wake an atom', async (s) => {
      // Lock the run first (see sendSignal): the parent may be parking this atom right now.
      // (SQLite: its write lock is enough.)
      if (d.forUpdate !== '') await lockRun(d, s, 'lock the run of a waiting atom', runId, '1');
      const st = statement(
        d,
        (b) =>
          `UPDATE {p}atoms SET ready_at = ${d.now}, updated_at = ${d.now} WHERE run_id = ${b.bind(runId)} AND idx = ${b.bind(index)} AND state = 'WAITING'`,
      );
      await s.exec('wake an atom', st.text, st.params);
    });
  }

  // ---------------------------------------------------------------- reads

  /** Runs one read statement built with the dialect's binder, for its first row. */
  private async readRow(purpose: string, build: Parameters<typeof statement>[1]): Promise<Record<string, unknown> | undefined> {
    const st = statement(this.core.d, build);
    return this.driver.read(purpose, (s) => s.row(purpose, st.text, st.params));
  }

  /** Runs one read statement built with the dialect's binder. */
  private readRows(purpose: string, build: Parameters<typeof statement>[1]): Promise<Record<string, unknown>[]> {
    const st = statement(this.core.d, build);
    return this.driver.read(purpose, (s) => s.rows(purpose, st.text, st.params));
  }

  async getRun(id: string): Promise<t.RunRow | null> {
    const r = await this.readRow('read a run', (b) => `SELECT ${runColumns(this.core.d)} FROM {p}runs WHERE id = ${b.bind(id)}`);
    return r ? runFromRow(r) : null;
  }

  async getRuns(ids: readonly string[]): Promise<t.RunRow[]> {
    if (ids.length === 0) return [];
    return this.byIdChunks('read runs', ids, runColumns(this.core.d), runFromRow);
  }

  async getRunStatuses(ids: readonly string[]): Promise<Map<string, RunStatus>> {
    if (ids.length === 0) return new Map();
    const rows = await this.byIdChunks('read run statuses', ids, 'id, status', (r) => r);
    return new Map(rows.map((r) => [String(r.id), r.status as RunStatus]));
  }

  /** `SELECT columns FROM runs WHERE id IN …`, in chunks where the dialect limits a list. */
  private byIdChunks<T>(purpose: string, ids: readonly string[], columns: string, map: (r: Record<string, unknown>) => T): Promise<T[]> {
    const d = this.core.d;
    return this.driver.read(purpose, async (s: SqlSession) => {
      const out: T[] = [];
      for (const chunk of chunks(ids, d.maxInList)) {
        const st = statement(d, (b) => `SELECT ${columns} FROM {p}runs WHERE ${d.inList(b, 'id', chunk, 'text')}`);
        for (const r of await s.rows(purpose, st.text, st.params)) out.push(map(r));
      }
      return out;
    });
  }

  async getRunGraph(id: string): Promise<FlowGraph | null> {
    const d = this.core.d;
    return this.driver.read('read a run graph', async (s) => {
      const r = await s.row('read a run graph', `SELECT graph_hash FROM {p}runs WHERE id = ${d.placeholder(1)}`, [id]);
      if (!r) return null;
      const hash = String(r.graph_hash);
      const known = this.core.graphs.get(hash);
      if (known) return known;
      const g = await s.row('read a flow graph', `SELECT graph FROM {p}graphs WHERE hash = ${d.placeholder(1)}`, [hash]);
      if (!g) {
        throw new StoreError('STOKER_STORE_QUERY_FAILED', `run ${id} refers to graph ${hash}, which is not stored`, {
          details: { runId: id, hash },
        });
      }
      const graph = jsonColumn<FlowGraph>(g.graph)!;
      this.core.graphs.remember(hash, graph, typeof g.graph === 'string' ? g.graph.length : JSON.stringify(graph).length);
      return graph;
    });
  }

  async listRuns(filter: t.RunFilter = {}): Promise<t.RunRow[]> {
    const d = this.core.d;
    const rows = await this.readRows('list runs', (b) => {
      const where: string[] = [];
      if (filter.status && filter.status.length > 0) where.push(d.inList(b, 'status', filter.status, 'text'));
      if (filter.flow !== undefined) where.push(`flow = ${b.bind(filter.flow)}`);
      if (filter.key !== undefined) where.push(`${d.keyColumn} = ${b.bind(filter.key)}`);
      if (filter.parentRunId !== undefined) where.push(`parent_run_id = ${b.bind(filter.parentRunId)}`);
      if (filter.before !== undefined)
        where.push(`(created_at, id) < (SELECT created_at, id FROM {p}runs WHERE id = ${b.bind(filter.before)})`);
      return `SELECT ${runColumns(d)} FROM {p}runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT ${b.bind(filter.limit ?? 100)}`;
    });
    return rows.map(runFromRow);
  }

  async getAtoms(runId: string): Promise<t.AtomRow[]> {
    return (
      await this.readRows('read the atoms of a run', (b) => `SELECT * FROM {p}atoms WHERE run_id = ${b.bind(runId)} ORDER BY idx`)
    ).map(atomFromRow);
  }

  async getAtomResults(runId: string, indexes: readonly number[]): Promise<Map<number, JsonValue | null>> {
    if (indexes.length === 0) return new Map();
    return this.driver.read('read atom results', (s) => getAtomResults(this.core.d, s, runId, indexes));
  }

  async listEvents(filter: t.EventFilter = {}): Promise<t.EventRow[]> {
    const afterId = filter.afterId ?? 0;
    const limit = filter.limit ?? 10_000;
    const rows = await this.readRows('list events', (b) =>
      filter.runId === undefined
        ? `SELECT * FROM {p}events WHERE id > ${b.bind(afterId)} ORDER BY id LIMIT ${b.bind(limit)}`
        : `SELECT * FROM {p}events WHERE run_id = ${b.bind(filter.runId)} AND id > ${b.bind(afterId)} ORDER BY id LIMIT ${b.bind(limit)}`,
    );
    return rows.map(eventFromRow);
  }

  async getSignals(runId: string): Promise<t.SignalRow[]> {
    return (await this.readRows('read signals', (b) => `SELECT * FROM {p}signals WHERE run_id = ${b.bind(runId)} ORDER BY id`)).map(
      signalFromRow,
    );
  }

  /** {@inheritDoc Retention.pruneRuns} One transaction; the runs it takes are locked (SKIP LOCKED: two pruners take different runs). */
  async pruneRuns(options: t.PruneOptions): Promise<t.PruneResult> {
    this.driver.assertOpen();
    const request = { ...checkPruneOptions(options), dryRun: options.dryRun === true };
    return this.parts.prune ? this.parts.prune(request) : pruneRuns(this.core, this.driver, request);
  }

  // ---------------------------------------------------------------- engines (protocol 4)

  async registerEngine(e: t.EngineRegistration): Promise<void> {
    this.driver.assertOpen();
    if (this.sessionLocks) await this.sessionLocks.register(e, (session) => this.insertEngine(e, session));
    else await this.insertEngine(e, null);
  }

  /** the engine row; `lockSession` is the session holding its lock where the sweep compares it (MySQL) */
  private insertEngine(e: t.EngineRegistration, lockSession: number | null): Promise<number> {
    const d = this.core.d;
    const st = statement(d, (b) => {
      const columns = 'id, host, pid, version, state, started_at, heartbeat_at, lease_expires_at';
      const values = `${b.bind(e.id)}, ${b.bind(e.host)}, ${b.bind(e.pid)}, ${b.bind(e.version)}, 'alive', ${d.now}, ${d.now}, ${d.nowPlusMs(b, Math.round(e.leaseMs))}`;
      return lockSession === null
        ? `INSERT INTO {p}engines (${columns}) VALUES (${values})`
        : `INSERT INTO {p}engines (${columns}, lock_session) VALUES (${values}, ${b.bind(lockSession)})`;
    });
    return this.driver.write('register an engine', (s) => s.exec('register an engine', st.text, st.params));
  }

  private async engineWrite(purpose: string, build: Parameters<typeof statement>[1]): Promise<number> {
    const st = statement(this.core.d, build);
    return this.driver.write(purpose, (s) => s.exec(purpose, st.text, st.params));
  }

  async heartbeat(engineId: string, leaseMs: number, report?: t.EngineReport): Promise<boolean> {
    this.driver.assertOpen();
    if (this.sessionLocks?.isLost(engineId)) {
      // Others may already treat it as dead: it must not renew, whatever the row says.
      await this.sessionLocks.markDead(engineId).catch(() => undefined);
      return false;
    }
    const d = this.core.d;
    const matched = await this.engineWrite(
      'renew an engine lease',
      (b) =>
        `UPDATE {p}engines SET heartbeat_at = ${d.now}, lease_expires_at = ${d.nowPlusMs(b, Math.round(leaseMs))}${
          report
            ? `, remote_queued = ${b.bind(report.remoteQueued)}, remote_oldest_ms = ${b.bind(report.remoteOldestMs === null ? null : Math.round(report.remoteOldestMs))}`
            : ''
        } WHERE id = ${b.bind(engineId)} AND state <> 'dead'`,
    );
    return matched === 1;
  }

  async appendEvents(events: readonly t.EventInput[]): Promise<void> {
    if (events.length === 0) return;
    await this.driver.write('record engine events', (s) => this.core.insertEvents(s, events));
  }

  async setEngineState(engineId: string, state: 'alive' | 'draining' | 'dead'): Promise<void> {
    await this.engineWrite('set an engine state', (b) => `UPDATE {p}engines SET state = ${b.bind(state)} WHERE id = ${b.bind(engineId)}`);
  }

  async deregisterEngine(engineId: string): Promise<void> {
    await this.engineWrite('deregister an engine', (b) => `DELETE FROM {p}engines WHERE id = ${b.bind(engineId)}`);
    // ending the session releases the lock
    await this.sessionLocks?.release(engineId);
  }

  async listEngines(): Promise<t.EngineRow[]> {
    const d = this.core.d;
    const rows = await this.readRows(
      'list engines',
      () =>
        `SELECT e.id, e.host, e.pid, e.version, e.started_at, e.heartbeat_at, e.lease_expires_at,
           ${d.msSince('e.heartbeat_at')} AS lease_age_ms,
           CASE WHEN e.state <> 'dead' AND e.lease_expires_at < ${d.now} THEN 'dead' ELSE e.state END AS state,
           (SELECT count(*) FROM {p}atoms a WHERE a.claimed_by = e.id AND a.state IN ('RUNNING', 'REVERTING')) AS atoms_held,
           e.remote_queued, e.remote_oldest_ms
         FROM {p}engines e ORDER BY e.started_at, e.id`,
    );
    return rows.map(engineFromRow);
  }

  requeueExpired(options: t.RequeueOptions = {}): Promise<{ runId: string; index: number; engineId: string | null }[]> {
    return this.parts.sweeps.requeueExpired(options);
  }

  requeueEngine(engineId: string): Promise<number> {
    return this.parts.sweeps.requeueEngine(engineId);
  }

  watchEngine(engineId: string, options: t.WatchOptions): Promise<'free' | 'held' | 'aborted'> {
    return this.parts.sweeps.watchEngine(engineId, options);
  }

  // ---------------------------------------------------------------- locks (protocol 10; statements in <dialect>/locks.ts)

  acquireLock(name: string, holder: string, ttlMs: number): Promise<t.AcquiredLock | null> {
    return this.parts.locks.acquireLock(name, holder, ttlMs);
  }

  extendLock(name: string, token: number, ttlMs: number): Promise<boolean> {
    return this.parts.locks.extendLock(name, token, ttlMs);
  }

  releaseLock(name: string, token: number): Promise<boolean> {
    return this.parts.locks.releaseLock(name, token);
  }

  getLock(name: string): Promise<t.LockRow | null> {
    return this.parts.locks.getLock(name);
  }

  listLocks(filter?: t.LockFilter): Promise<t.LockRow[]> {
    return this.parts.locks.listLocks(filter);
  }
}
