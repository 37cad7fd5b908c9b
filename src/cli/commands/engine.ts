/**
 * `stoker engine [--flows MODULE] [--plugins MODULE]`: runs engines in this process until
 * SIGINT/SIGTERM; they execute the runs of the flows module's flows and the steps of stack
 * actions (with the built-in resource types and the plugins module's). The
 * first signal stops gracefully (in-flight atoms finish and are recorded, up to
 * --drain-ms; the rest is handed back to other engines at once); a second exits at once.
 */
import { Option, type Command } from 'commander';
import { FlowRegistry } from '../../flow/registry.js';
import { loadFlowsModule } from '../../runtime/load-flows.js';
import { loadPluginsModule } from '../../runtime/load-plugins.js';
import type { CliContext } from '../context.js';
import { durationText } from '../format.js';
import { openRuntime } from '../open-runtime.js';
import {
  intOption,
  nameListOption,
  parseAge,
  redactUrl,
  sizeLimits,
  usageError,
  withAmqpKeyOption,
  withAmqpOption,
  withCommonOptions,
  withFlowsOption,
  withSizeLimitOptions,
  type CommonOptions,
  type SizeLimitOptions,
} from '../options.js';
import { watchShutdown } from '../shutdown.js';
import { maxResourcesOption } from './stack.js';

interface EngineOptions extends CommonOptions, SizeLimitOptions {
  amqp?: string;
  amqpKey?: string;
  remoteTasks?: string[];
  remoteConcurrency?: number;
  flows?: string;
  plugins?: string;
  allowLocalCommands?: boolean;
  maxResourcesPerStack?: number;
  concurrency: number;
  engines: number;
  pollMs?: number;
  leaseMs?: number;
  drainMs: number;
  statsMs: number;
  localSupervisor: boolean;
  watchPeers: boolean;
  retention?: number;
}

export function registerEngineCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('engine')
    .summary('run an engine that executes runs until stopped')
    .description(
      'Run an engine in this process: it claims ready atoms of runs in the store and executes them with the flows of the ' +
        'flows module (if any) and the steps of stack actions (built-in resource types, plus a plugins module), until ' +
        'SIGINT or SIGTERM (graceful: in-flight atoms finish; a second signal exits at once). Start as many engines as ' +
        'you like, on any host that reaches the database.',
    );
  withAmqpKeyOption(withAmqpOption(withFlowsOption(cmd)))
    .addOption(
      new Option(
        '--remote-tasks <names>',
        'comma-separated task names executed by stoker worker processes although not marked remote (needs --amqp and --amqp-key)',
      )
        .argParser(nameListOption)
        .env('STOKER_REMOTE_TASKS'),
    )
    .addOption(
      new Option(
        '--remote-concurrency <n>',
        'remote atoms out with stoker worker processes at once, per engine, on top of --concurrency (default 256)',
      ).argParser(intOption(0, 100_000)),
    )
    .addOption(new Option('--plugins <module>', 'a module default-exporting an array of resource types for stacks').env('STOKER_PLUGINS'))
    .addOption(maxResourcesOption())
    .addOption(
      new Option(
        '--allow-local-commands',
        'let Stoker::Local::Command resources run their commands on this host (off by default: a template author could run anything)',
      ),
    )
    .addOption(
      new Option('--concurrency <n>', 'atoms executed at once, per engine (lower it for CPU-bound tasks)')
        .argParser(intOption(1, 10_000))
        .env('STOKER_CONCURRENCY')
        .default(64),
    )
    .addOption(new Option('--engines <n>', 'engines in this process (sharing one store connection)').argParser(intOption(1, 64)).default(1))
    .addOption(new Option('--poll-ms <n>', 'claim poll interval when idle (jittered ±20 %)').argParser(intOption(10)).env('STOKER_POLL_MS'))
    .addOption(
      new Option(
        '--lease-ms <n>',
        'engine lease (default 10000): a frozen engine is taken over after about this long; renewed every third of it',
      )
        .argParser(intOption(1000))
        .env('STOKER_LEASE_MS'),
    )
    .addOption(new Option('--drain-ms <n>', 'on stop, how long in-flight atoms may take to finish').argParser(intOption(0)).default(30_000))
    .addOption(
      new Option(
        '--no-local-supervisor',
        'SQLite: do not SIGKILL a stopped engine process of this host that stalls every engine by holding the write lock (after 2 leases)',
      ),
    )
    .addOption(
      new Option(
        '--no-watch-peers',
        'do not watch another engine process (PostgreSQL, MySQL: its session lock, on one connection; SQLite: its pid); its crash is then found by the reapers (~0.5 s) instead of at once',
      ),
    )
    .addOption(
      new Option(
        '--retention <duration>',
        'delete runs (with their atoms, events and signals) that ended more than this long ago, checked every 10 minutes: 30d, 12h… (default: keep everything)',
      )
        .argParser(parseAge)
        .env('STOKER_RETENTION'),
    )
    .addOption(
      new Option('--stats-ms <n>', 'print a one-line summary this often when something changed (0 = never)')
        .argParser(intOption(0))
        .default(60_000),
    );
  withSizeLimitOptions(cmd, { args: true, results: true });
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Examples:
  $ stoker engine --flows ./flows.ts --store postgres://stoker:secret@db.internal/stoker --concurrency 50
  $ STOKER_FLOWS=dist/flows.js STOKER_STORE=sqlite:./data/stoker.db stoker engine
  $ stoker engine --plugins ./resource-types.ts     (stack steps only)
  $ STOKER_AMQP_KEY=… stoker engine --flows ./flows.ts --store mysql://stoker@db/stoker --amqp amqp://stoker:secret@mq:5672/prod`,
  );
  cmd.action(async (o: EngineOptions) => {
    const flows = new FlowRegistry();
    const loaded = o.flows !== undefined ? await loadFlowsModule(o.flows, flows) : [];
    const plugins = o.plugins !== undefined ? await loadPluginsModule(o.plugins) : [];
    const runtime = await openRuntime(
      o,
      {
        // an engine creates or upgrades the schema, as `stoker migrate` does
        migrate: true,
        flows,
        orchestration: {
          plugins,
          ...(o.allowLocalCommands ? { allowLocalCommands: true, localCommandEnv: { ...process.env } } : {}),
          ...(o.maxResourcesPerStack !== undefined ? { limits: { maxResourcesPerStack: o.maxResourcesPerStack } } : {}),
        },
        engines: o.engines,
        concurrency: o.concurrency,
        ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
        ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
        ...sizeLimits(o),
        localSupervisor: o.localSupervisor,
        watchPeers: o.watchPeers,
        ...(o.retention !== undefined ? { retentionMs: checkRetention(o.retention) } : {}),
        ...(o.remoteTasks !== undefined ? { remoteTasks: o.remoteTasks } : {}),
        ...(o.remoteConcurrency !== undefined ? { remoteConcurrency: o.remoteConcurrency } : {}),
      },
      'engine',
    );
    const shutdown = watchShutdown(ctx, `stopping: in-flight atoms may finish for up to ${durationText(o.drainMs)}`);
    let statsTimer: NodeJS.Timeout | null = null;
    try {
      await runtime.start();
      const ids = runtime.engines.map((e) => e.id).join(', ');
      const names = loaded.length > 0 ? loaded.map((f) => `${f.name}@${f.version}`).join(', ') : 'none';
      const types = plugins.length > 0 ? `, plugins: ${plugins.map((p) => p.type).join(', ')}` : '';
      ctx.note(
        `engine ${ids} started on ${redactUrl(o.store)}${runtime.amqp ? ` with AMQP ${runtime.amqp.connection.url}` : ''} (pid ${process.pid}, concurrency ${o.concurrency}, flows: ${names}, stacks: on${types}${o.allowLocalCommands ? ', local commands allowed' : ''})`,
      );
      if (o.statsMs > 0) {
        let last = '';
        statsTimer = setInterval(() => {
          const total = { claimed: 0, executed: 0, commits: 0, fencedWrites: 0 };
          for (const e of runtime.engines) {
            total.claimed += e.stats.claimed;
            total.executed += e.stats.executed;
            total.commits += e.stats.commits;
            total.fencedWrites += e.stats.fencedWrites;
          }
          const line = `claimed ${total.claimed}, executed ${total.executed}, commits ${total.commits}, fenced writes ${total.fencedWrites}`;
          if (line !== last) ctx.note(`engine ${ids}: ${line}`);
          last = line;
        }, o.statsMs);
        statsTimer.unref();
      }
      const signal = await shutdown.requested;
      await runtime.stop({ timeoutMs: o.drainMs });
      const w = runtime.amqp?.wakeups.stats;
      const amqp = w ? ` (AMQP wake-ups: ${w.received} received, ${w.published} published)` : '';
      const sum = (k: 'claimed' | 'executed' | 'claims' | 'emptyClaims' | 'wakeups') => runtime.engines.reduce((n, e) => n + e.stats[k], 0);
      // what the engines did, as the worker's line says: wasted claims and wake-ups show here (bench/claim-probe.ts reads it)
      const counts = `claimed ${sum('claimed')}, executed ${sum('executed')}, claim statements ${sum('claims')} (${sum('emptyClaims')} empty), wake-ups heard ${sum('wakeups')}`;
      ctx.note(`engine ${ids} stopped after ${signal} (${counts})${amqp}`);
    } finally {
      if (statsTimer) clearInterval(statsTimer);
      shutdown.dispose();
      await runtime.stop({ drain: false });
    }
  });
}

/** Retention under a minute would delete runs about as soon as they end: a slip, not a policy. */
function checkRetention(ms: number): number {
  if (ms < 60_000) {
    throw usageError(`--retention ${durationText(ms)} would delete runs almost as soon as they end: use at least 1m (for example 30d)`);
  }
  return ms;
}
