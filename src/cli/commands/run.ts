/**
 * `stoker run FLOW`: starts a run; with `--wait` also executes it in this process and
 * prints the finished run.
 *
 * Everything that can be wrong with the command line (JSON, flows module, flow name,
 * arguments) is checked before the store is written, so a failed command leaves no run.
 */
import { Option, type Command } from 'commander';
import { StokerError } from '../../errors.js';
import { FlowRegistry } from '../../flow/registry.js';
import { loadFlowsModule } from '../../runtime/load-flows.js';
import type { CliContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { formatJson, runRecord } from '../format.js';
import { runJson } from '../../views/json.js';
import { parseJsonObjectFlag } from '../json-input.js';
import { openRuntime } from '../open-runtime.js';
import {
  intOption,
  redactUrl,
  requireFlows,
  sizeLimits,
  withAmqpOption,
  withCommonOptions,
  withFlowsOption,
  withSizeLimitOptions,
  type CommonOptions,
  type SizeLimitOptions,
} from '../options.js';
import { watchShutdown } from '../shutdown.js';
import { waitForRun } from '../wait-for-run.js';

interface RunOptions extends CommonOptions, SizeLimitOptions {
  amqp?: string;
  flows?: string;
  args?: string;
  key?: string;
  supersede?: boolean;
  version?: string;
  wait?: boolean;
  timeoutMs?: number;
  concurrency: number;
  pollMs: number;
  leaseMs?: number;
}

export function registerRunCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('run')
    .summary('start a run of a flow (and with --wait, execute it here)')
    .description(
      'Start a run of FLOW from the flows module with JSON arguments and print it. Without --wait an engine elsewhere ' +
        '(stoker engine) executes it; with --wait this process also runs an engine until the run ends, then prints the ' +
        'finished run and exits 0 for SUCCESS or 3 for REVERTED, FAILED, CANCELLED or SUPERSEDED.',
    )
    .argument('<flow>', 'name of a root flow in the flows module');
  withAmqpOption(withFlowsOption(cmd))
    .option('--args <json>', 'run arguments as a JSON object, or @FILE to read them from a file', '{}')
    .option('--key <key>', 'idempotency key: while a run with this key is active, the same start returns it')
    .option('--supersede', 'with --key: mark the active run with that key SUPERSEDED and start a new one')
    .option('--version <version>', 'flow version (default: the latest registered)')
    .option('--wait', 'run an engine in this process until the run ends, then print it')
    .option(
      '--timeout-ms <n>',
      'with --wait: stop waiting after N ms (exit 124); what this process executes is handed back and the run goes on with other engines',
      intOption(1),
    )
    .addOption(new Option('--concurrency <n>', 'with --wait: atoms executed at once').argParser(intOption(1, 10_000)).default(64))
    .addOption(
      new Option('--poll-ms <n>', 'with --wait: engine poll interval when idle (also bounds how late a retry backoff ends)')
        .argParser(intOption(10))
        .default(250),
    )
    .addOption(new Option('--lease-ms <n>', 'with --wait: engine lease').argParser(intOption(1000)));
  withSizeLimitOptions(cmd, { args: true, results: true });
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Examples:
  $ stoker run order --flows examples/order-flows.ts --wait \
      --args '{"orderId": "A-1", "customer": "ada@example.com", "items": [{"sku": "kettle"}], "address": {"city": "Utrecht", "country": "NL"}}'
  $ stoker run order --flows ./dist/flows.js --args @order.json --key order-A-1 -f json`,
  );
  cmd.action(async (flowName: string, o: RunOptions) => {
    const args = parseJsonObjectFlag('--args', o.args ?? '{}');
    if (o.supersede && o.key === undefined)
      throw new StokerError('STOKER_CLI_USAGE', '--supersede needs --key (it supersedes the active run with that key)');
    if (!o.wait && o.timeoutMs !== undefined) throw new StokerError('STOKER_CLI_USAGE', '--timeout-ms only makes sense with --wait');
    const flows = new FlowRegistry();
    await loadFlowsModule(requireFlows(o.flows, 'stoker run'), flows);
    const flow = flows.get(flowName, o.version);
    const missing = flow.graph.arguments.filter((a) => !(a in args));
    if (missing.length > 0) {
      throw new StokerError(
        'STOKER_RUN_MISSING_ARGUMENT',
        `flow ${flow.name}@${flow.version} needs argument${missing.length > 1 ? 's' : ''} ${missing.join(', ')} in --args (it takes ${flow.graph.arguments.join(', ')})`,
        { details: { flow: flow.name, missing } },
      );
    }

    const runtime = await openRuntime(o, {
      flows,
      engines: o.wait ? 1 : 0,
      concurrency: o.concurrency,
      pollMs: o.pollMs,
      ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
      ...sizeLimits(o),
    });
    const shutdown = o.wait ? watchShutdown(ctx, 'stopping the engine of this process (the run goes on elsewhere)') : null;
    try {
      const started = await runtime.client.startRun(flow.name, args, {
        version: flow.version,
        ...(o.key !== undefined ? { key: o.key } : {}),
        ...(o.supersede ? { supersede: true } : {}),
      });
      if (!started.created)
        ctx.note(`an active run with key ${JSON.stringify(o.key)} and the same arguments exists: showing it (no new run)`);
      if (started.superseded) ctx.note(`run ${started.superseded} was superseded by this one`);
      let run = started.run;
      if (o.wait) {
        await runtime.start();
        ctx.note(`run ${run.id} started; executing it with an engine in this process on ${redactUrl(o.store)}`);
        const outcome = await waitForRun(runtime, run.id, {
          ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
          interrupt: shutdown!.requested,
        });
        run = outcome.run;
        if (outcome.kind !== 'finished') {
          // Stop our engine first. At the timeout, at once: what it is executing is aborted and
          // handed back for another engine (a drain waited for the task and returned long after
          // the timeout, issue 11). After an interrupt, in-flight atoms finish and are recorded.
          await runtime.stop(outcome.kind === 'timeout' ? { drain: false } : {});
          ctx.out(o.format === 'json' ? formatJson(runJson(run)) : runRecord(run));
          const resume = `it goes on when an engine runs (${ctx.programName} engine --flows …)`;
          if (outcome.kind === 'timeout') {
            throw new StokerError(
              'STOKER_RUN_WAIT_TIMEOUT',
              `run ${run.id} is still ${run.status} after --timeout-ms ${o.timeoutMs}; ${resume}`,
            );
          }
          ctx.note(`run ${run.id} is still ${run.status}; ${resume}`);
          ctx.exitCode = ExitCode.INTERRUPTED;
          return;
        }
        if (run.status !== 'SUCCESS') ctx.exitCode = ExitCode.RUN_UNSUCCESSFUL;
      }
      ctx.out(o.format === 'json' ? formatJson(runJson(run)) : runRecord(run));
    } finally {
      shutdown?.dispose();
      await runtime.stop();
    }
  });
}
