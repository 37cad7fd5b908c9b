/**
 * The `stoker` command line: builds the commander program from the commands in
 * `commands/`, runs it, and turns every error into one line on stderr and an exit code
 * (exit-codes.ts).
 */
import { Command, CommanderError } from 'commander';
import { isStokerError } from '../errors.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerEngineCommand } from './commands/engine.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerEnginesCommand } from './commands/engines.js';
import { registerLocksCommand } from './commands/locks.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerOrchestrationCommand } from './commands/orchestration.js';
import { registerRunCommand } from './commands/run.js';
import { registerRunsCommand } from './commands/runs.js';
import { registerSignalCommand } from './commands/signal.js';
import { registerStackCommand } from './commands/stack.js';
import type { CliContext } from './context.js';
import { EXIT_CODE_HELP, ExitCode, exitCodeFor } from './exit-codes.js';
import { DEFAULT_STORE_URL } from './options.js';

/** The version `stoker --version` prints and engines register with. */
export const CLI_VERSION = '0.1.0';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('stoker')
    .description('Durable, distributed task flows with all state in the SQL database you already run.')
    .version(CLI_VERSION, '-V, --version', 'print the version')
    // root options only before the command, so that `run --version 2` is the flow version
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.out(s),
      writeErr: (s) => void process.stderr.write(s),
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true);
  registerDemoCommand(program, ctx);
  registerRunCommand(program, ctx);
  registerRunsCommand(program, ctx);
  registerSignalCommand(program, ctx);
  registerEngineCommand(program, ctx);
  registerWorkerCommand(program, ctx);
  registerEnginesCommand(program, ctx);
  registerLocksCommand(program, ctx);
  registerMigrateCommand(program, ctx);
  registerOrchestrationCommand(program, ctx);
  registerStackCommand(program, ctx);
  program.addHelpText(
    'after',
    `
Every command takes --store URL (else $STOKER_STORE, else ${DEFAULT_STORE_URL}) and
-f json|table. Flags win over environment variables (STOKER_STORE, STOKER_FLOWS,
STOKER_TABLE_PREFIX, STOKER_LOG_LEVEL, STOKER_CONCURRENCY, STOKER_POLL_MS, STOKER_LEASE_MS),
which win over defaults.

Quick start:
  $ stoker demo
  $ stoker run order --flows examples/order-flows.ts --args '{"orderId": "A-1", "customer": "ada@example.com", "items": [{"sku": "kettle"}], "address": {"city": "Utrecht", "country": "NL"}}' --wait

${EXIT_CODE_HELP}`,
  );
  return program;
}

/** `stoker run` for a usage hint: the names of the command and its parents. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  // Remember the deepest command dispatched to, for the "see … --help" hint of a parse error.
  let failed: Command = program;
  const track = (cmd: Command): void => {
    if (cmd.commands.length === 0) return;
    cmd.hook('preSubcommand', (_parent, sub) => void (failed = sub));
    cmd.commands.forEach(track);
  };
  track(program);
  const fail = (message: string, code: string | undefined): void => {
    process.stderr.write(`stoker: error: ${message}${code ? ` (code ${code})` : ''}\n`);
  };
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return ExitCode.OK;
      if (e.code === 'commander.help' || e.code === 'commander.executeSubCommandAsync') return ExitCode.USAGE; // a group without its subcommand: help went to stderr
      const message = e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      fail(`${message}; see '${commandPath(failed)} --help'`, 'STOKER_CLI_USAGE');
      return ExitCode.USAGE;
    }
    if (isStokerError(e)) {
      fail(e.message, e.code);
      if (process.env.STOKER_DEBUG && e.stack) process.stderr.write(`${e.stack}\n`);
      return exitCodeFor(e);
    }
    const err = e instanceof Error ? e : new Error(String(e));
    fail(err.message, undefined);
    process.stderr.write(`${err.stack ?? ''}\n`);
    return ExitCode.FAILURE;
  }
}
