/**
 * `npm run corpus`: drives every case of the Heat acceptance corpus
 * (/work/shared/heat-corpus, README.md there) through the stack layer as a library user
 * would, one fresh database per case, and prints one line per case and a summary:
 *
 * ```
 * PASS 004-update-replace (1.2 s)
 * FAIL 007-update-from-failed step 1: expected stack_status UPDATE_FAILED, got UPDATE_COMPLETE (reason "…")
 * core: 57/59 passed, extended: 12/14 passed
 * ```
 *
 * Options: `--case PATTERN` (substring of the case name), `--core` (core cases only),
 * `--skip-slow`, `--verbose` (each step and what it saw), `--store URL` (a PostgreSQL or
 * MySQL/MariaDB admin URL: each case gets a database of its own there, dropped afterwards;
 * default a SQLite file per case in a temp directory), `--keep-going` (run a case's steps
 * after a failed one), `--strict-errors` (error wording that differs from Heat's fails),
 * `--keep` (keep the SQLite files and logs of failed cases). Exit code 0 only when every
 * core case passed. Cases run one after another.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import pino from 'pino';
import { createRuntime, type Runtime } from '../src/runtime/index.js';
import { loadCases, type Case } from './corpus/cases.js';
import { CaseRun, type StepReport } from './corpus/case-run.js';
import { createCaseDatabase } from './corpus/database.js';
import { startEngineProcesses, stopEngineProcesses, type EngineProcess } from './corpus/engine-processes.js';

const { values: flags } = parseArgs({
  options: {
    case: { type: 'string' },
    core: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    'skip-slow': { type: 'boolean', default: false },
    store: { type: 'string' },
    'keep-going': { type: 'boolean', default: false },
    'strict-errors': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

interface CaseResult {
  passed: boolean;
  line: string;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function runCase(c: Case): Promise<CaseResult> {
  const started = Date.now();
  const db = await createCaseDatabase(c.name, flags.store);
  const logFile = join(db.dir, 'engine.log');
  const killsEngine = c.steps.some((s) => s.op === 'kill_engine');
  let runtime: Runtime | null = null;
  let engines: EngineProcess[] = [];
  let reports: StepReport[] = [];
  let crash: string | null = null;
  try {
    const logger = pino({ level: 'info', base: { pid: process.pid } }, pino.destination({ dest: logFile, sync: true }));
    // the case that kills an engine needs engines in processes of their own: this one only submits
    runtime = await createRuntime({
      store: db.url,
      orchestration: true,
      engines: killsEngine ? 0 : 1,
      concurrency: 16,
      pollMs: 100,
      logger,
    });
    if (killsEngine) engines = await startEngineProcesses(db.url, 2, db.dir);
    await runtime.start();
    const run = new CaseRun(c, {
      orchestrator: runtime.stacks!,
      store: runtime.store,
      dir: db.dir,
      engines,
      keepGoing: flags['keep-going'],
      ...(flags.verbose ? { log: (line: string) => console.log(line) } : {}),
    });
    reports = await run.run();
  } catch (e) {
    crash = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    await stopEngineProcesses(engines).catch(() => undefined);
    await runtime?.stop({ timeoutMs: 5_000 }).catch(() => undefined);
  }
  const failed = reports.filter((r) => r.failures.length > 0 || (flags['strict-errors'] && r.advisories.length > 0));
  const passed = crash === null && failed.length === 0 && reports.length === c.steps.length;
  const keep = !passed && (flags.keep || flags.verbose);
  await db.drop(keep).catch((e: unknown) => console.error(`dropping the database of ${c.name} failed: ${String(e)}`));
  const time = seconds(Date.now() - started);
  const advisories = reports.reduce((n, r) => n + r.advisories.length, 0);
  if (passed) return { passed, line: `PASS ${c.name} (${time})${advisories > 0 ? ` [${advisories} advisory: error wording]` : ''}` };
  const where = keep ? ` [kept: ${db.dir}]` : '';
  if (crash !== null) return { passed, line: `FAIL ${c.name} (${time}): runner crashed: ${crash}${where}` };
  const first = failed[0]!;
  const messages = [...first.failures, ...(flags['strict-errors'] ? first.advisories : [])];
  const more = failed.length > 1 ? ` (+${failed.length - 1} more failing steps)` : '';
  return { passed, line: `FAIL ${c.name} step ${first.index} (${first.op}): ${messages.join('; ')}${more} (${time})${where}` };
}

async function main(): Promise<number> {
  const cases = loadCases();
  const totals = {
    core: cases.filter((c) => c.priority === 'core').length,
    extended: cases.filter((c) => c.priority === 'extended').length,
  };
  const passed = { core: 0, extended: 0 };
  for (const c of cases) {
    if (flags.case !== undefined && !c.name.includes(flags.case)) continue;
    if (flags.core && c.priority !== 'core') continue;
    if (flags['skip-slow'] && c.slow) {
      console.log(`SKIP ${c.name} (slow)`);
      continue;
    }
    if (flags.verbose) console.log(`${c.name} (${c.priority}${c.slow ? ', slow' : ''})`);
    const result = await runCase(c);
    console.log(result.line);
    if (result.passed) passed[c.priority]++;
  }
  console.log(`core: ${passed.core}/${totals.core} passed, extended: ${passed.extended}/${totals.extended} passed`);
  return passed.core === totals.core ? 0 : 1;
}

// the engines' timers are unref'd: this keeps the process up while a case waits on them (a stop that drains)
const keepAlive = setInterval(() => undefined, 1_000);
try {
  process.exitCode = await main();
} finally {
  clearInterval(keepAlive);
}
