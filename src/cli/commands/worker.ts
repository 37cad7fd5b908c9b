/**
 * `stoker worker --amqp URL --flows MODULE [--tasks a,b] [--concurrency N]`: executes
 * remote tasks (docs/amqp.md, "Remote tasks") until SIGINT/SIGTERM, with no database: the
 * engines claim the atoms and record the outcomes; this process only runs the task code.
 */
import { Option, type Command } from 'commander';
import { FlowRegistry } from '../../flow/registry.js';
import { LOG_LEVELS, createLogger, type LogLevel } from '../../runtime/create-runtime.js';
import { loadFlowsModule } from '../../runtime/load-flows.js';
import { Worker } from '../../runtime/worker.js';
import type { CliContext } from '../context.js';
import { durationText } from '../format.js';
import {
  intOption,
  nameListOption,
  redactUrl,
  requireFlows,
  usageError,
  withAmqpKeyOption,
  withAmqpOption,
  withFlowsOption,
} from '../options.js';
import { watchShutdown } from '../shutdown.js';

interface WorkerCliOptions {
  amqp?: string;
  amqpKey?: string;
  flows?: string;
  tasks?: string[];
  concurrency: number;
  drainMs: number;
  logLevel: LogLevel;
}

export function registerWorkerCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('worker')
    .summary('execute remote tasks received over RabbitMQ (no database needed)')
    .description(
      'Execute remote tasks: consume the RabbitMQ queues of the tasks marked remote in the flows module (or those named ' +
        'by --tasks), run them, and reply to the engine that claimed them, which records the outcome. Needs the AMQP URL and ' +
        'the signing key shared with the engines, never a database URL. Runs until SIGINT or SIGTERM (running tasks finish, ' +
        'up to --drain-ms; a second signal exits at once).',
    );
  withAmqpKeyOption(withAmqpOption(withFlowsOption(cmd), 'RabbitMQ URL (amqp://user:password@host:5672/vhost); required'))
    .addOption(
      new Option(
        '--tasks <names>',
        'comma-separated task names to execute (default: every task marked remote); a queue shared by several tasks ' +
          '(remote: { queue }) is consumed whole, so name all of its tasks',
      ).argParser(nameListOption),
    )
    .addOption(
      new Option('--concurrency <n>', 'tasks executed at once (and request messages taken from each queue)')
        .argParser(intOption(1, 10_000))
        .env('STOKER_CONCURRENCY')
        .default(10),
    )
    .addOption(new Option('--drain-ms <n>', 'on stop, how long running tasks may take to finish').argParser(intOption(0)).default(30_000))
    .addOption(
      new Option('--log-level <level>', 'log lines (JSON) on stderr at this level or above')
        .choices([...LOG_LEVELS])
        .env('STOKER_LOG_LEVEL')
        .default('warn'),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ STOKER_AMQP_KEY=… stoker worker --amqp amqp://stoker:secret@mq:5672/prod --flows ./flows.ts
  $ stoker worker --amqp amqp://… --flows ./dist/flows.js --tasks charge-payment,ship-order --concurrency 32`,
    );
  cmd.action(async (o: WorkerCliOptions) => {
    if (o.amqp === undefined) throw usageError('stoker worker needs --amqp URL (or STOKER_AMQP)');
    if (o.amqpKey === undefined)
      throw usageError('stoker worker needs the signing key shared with the engines: --amqp-key or STOKER_AMQP_KEY');
    const flows = new FlowRegistry();
    await loadFlowsModule(requireFlows(o.flows, 'stoker worker'), flows);
    const worker = await Worker.open({
      amqp: { url: o.amqp, key: o.amqpKey },
      flows,
      ...(o.tasks ? { tasks: o.tasks } : {}),
      concurrency: o.concurrency,
      logger: createLogger(o.logLevel),
    });
    const shutdown = watchShutdown(ctx, `stopping: running tasks may finish for up to ${durationText(o.drainMs)}`);
    try {
      ctx.note(
        `worker started on ${redactUrl(o.amqp)} (pid ${process.pid}, concurrency ${o.concurrency}, tasks: ${worker.tasks.join(', ')})`,
      );
      const signal = await shutdown.requested;
      await worker.stop({ drainMs: o.drainMs });
      const s = worker.stats;
      ctx.note(
        `worker stopped after ${signal} (executed ${s.executed}, replied ${s.replied} in ${s.replyMessages} messages, acknowledged ${s.acked} requests in ${s.acks} acks, undeliverable ${s.undeliverable}, cancelled ${s.cancelled}, rejected ${rejectedTotal(s)})`,
      );
    } finally {
      shutdown.dispose();
      await worker.stop({ drainMs: 0 }).catch(() => undefined);
    }
  });
}

function rejectedTotal(s: Record<string, number>): number {
  return ['oversized', 'unsigned', 'forged', 'notJson', 'malformed', 'replayed', 'expired'].reduce((n, k) => n + (s[k] ?? 0), 0);
}
