/**
 * The `stoker` command line: builds the commander program from the commands in
 * `commands/`, runs it, and turns every error into one line on stderr and an exit code
 * (exit-codes.ts).
 */
import { Command, CommanderError } from 'commander';
import type { JsonValue } from '../core/json.js';
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
STOKER_TABLE_PREFIX, STOKER_LOG_LEVEL, STOKER_CONCURRENCY, STOKER_POLL_MS, STOKER_LEASE_MS,
STOKER_MAX_ARGS_BYTES, STOKER_MAX_RESULT_BYTES),
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

/**
 * The `-f`/`--format` value the command line asks for, read from the raw arguments (for
 * errors commander raises before the command's options are parsed): `-f json`, `-fjson`,
 * `--format json`, `--format=json`; the last one wins, as in commander; nothing after `--`.
 */
export function formatInArgv(argv: readonly string[]): string | undefined {
  let format: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '-f' || a === '--format') format = argv[++i];
    else if (a.startsWith('--format=')) format = a.slice('--format='.length);
    else if (/^-f[^-]/.test(a)) format = a.slice(2);
  }
  return format;
}

/** The stack of an error and of its causes, for `--log-level debug` (or STOKER_DEBUG). */
function stackText(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    parts.push(`${depth > 0 ? 'caused by: ' : ''}${e.stack ?? `${e.name}: ${e.message}`}`);
  }
  return parts.join('\n');
}

/**
 * What a failed command reports: the error code (STOKER_UNEXPECTED for an error that is
 * not one of Stoker's), the message, JSON-safe details, and the stack when it is asked for
 * or the error was not expected. docs/cli-json.md documents the JSON form.
 */
interface Failure {
  code: string;
  message: string;
  details: Record<string, JsonValue>;
  stack?: string;
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
  /**
   * With `-f json` the error is one line of JSON on stderr (after any progress notes), so a
   * script reads it as it reads the output; otherwise one readable line. The options the
   * command parsed decide, else the raw arguments (a parse error stops before them).
   */
  const report = (f: Failure, parsed: boolean): void => {
    const opts = failed.opts<{ format?: unknown; logLevel?: unknown }>();
    const format = parsed && typeof opts.format === 'string' ? opts.format : formatInArgv(argv);
    if (format === 'json') {
      const { stack, ...rest } = f;
      process.stderr.write(`${JSON.stringify(stack === undefined ? rest : { ...rest, stack })}\n`);
      return;
    }
    process.stderr.write(`stoker: error: ${f.message}${f.code !== 'STOKER_UNEXPECTED' ? ` (code ${f.code})` : ''}\n`);
    if (f.stack !== undefined) process.stderr.write(`${f.stack}\n`);
  };
  /** --log-level debug or trace (flag or STOKER_LOG_LEVEL), or STOKER_DEBUG set: show stacks. */
  const wantsStack = (): boolean => {
    const level = failed.opts<{ logLevel?: unknown }>().logLevel ?? process.env.STOKER_LOG_LEVEL;
    return level === 'debug' || level === 'trace' || Boolean(process.env.STOKER_DEBUG);
  };
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return ExitCode.OK;
      const command = commandPath(failed);
      if (e.code === 'commander.help' || e.code === 'commander.executeSubCommandAsync') {
        // a group without its subcommand: its help went to stderr; a script gets the error too
        if (formatInArgv(argv) === 'json')
          report(
            { code: 'STOKER_CLI_USAGE', message: `${command} needs a subcommand; see '${command} --help'`, details: { command } },
            false,
          );
        return ExitCode.USAGE;
      }
      const message = e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      report({ code: 'STOKER_CLI_USAGE', message: `${message}; see '${command} --help'`, details: { command } }, false);
      return ExitCode.USAGE;
    }
    if (isStokerError(e)) {
      report({ code: e.code, message: e.message, details: e.details, ...(wantsStack() ? { stack: stackText(e) } : {}) }, true);
      return exitCodeFor(e);
    }
    const err = e instanceof Error ? e : new Error(String(e));
    report({ code: 'STOKER_UNEXPECTED', message: err.message, details: { type: err.name }, stack: stackText(err) }, true);
    return ExitCode.FAILURE;
  }
}
