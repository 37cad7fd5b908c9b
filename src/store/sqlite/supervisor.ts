/**
 * The local supervisor (ARCHITECTURE.md "Local supervisor"; docs/reliability.md R12, C12):
 * a process stopped while it holds SQLite's one write lock stalls every engine, and no
 * lease can end that. An engine that has been unable to write for longer than X finds,
 * with reads only, the engines of its host whose lease ran out more than X ago and whose
 * process is stopped, and SIGKILLs them; the OS then drops the dead process's locks.
 */
import type { LocalSupervisor } from '../ports.js';
import type { LocalEngineKill, SuperviseOptions } from '../types.js';
import { SQLITE } from '../sql/dialects.js';
import type { Raw } from '../sql/driver.js';
import type { SqliteDriver } from './sqlite-driver.js';

const NOW = SQLITE.now;

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

export class SqliteSupervisor implements LocalSupervisor {
  /** engine processes this store killed (pid@registration), not counted twice while they exit */
  private readonly killed = new Set<string>();

  constructor(
    private readonly driver: SqliteDriver,
    /** this host's processes; without them the supervisor finds nothing */
    private readonly procs: LocalProcesses | null,
  ) {}

  /**
   * {@inheritDoc LocalSupervisor.superviseLocalEngines}
   *
   * One statement, run at once: not behind the store's mutex, where queued writes may each
   * wait busy_timeout for the lock the stopped process holds.
   */
  async superviseLocalEngines(options: SuperviseOptions): Promise<LocalEngineKill[]> {
    this.driver.assertOpen();
    const procs = this.procs;
    if (!procs) return [];
    const rows: Raw[] = await this.driver.direct.rows(
      'find stopped engines',
      `SELECT id, host, pid, started_at, ${NOW} - lease_expires_at AS overdue_ms FROM {p}engines
       WHERE id <> ? AND lease_expires_at < ${NOW} - ? ORDER BY lease_expires_at`,
      [options.selfId, Math.max(0, Math.trunc(options.staleMs))],
    );
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
}
