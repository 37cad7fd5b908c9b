/**
 * `stoker signal RUN NAME --payload JSON`: sends a named signal to a run. It is stored, so
 * an atom that waits for it later (ctx.waitForSignal) receives it too.
 */
import type { Command } from 'commander';
import type { JsonValue } from '../../core/json.js';
import type { CliContext } from '../context.js';
import { formatJson, formatRecord } from '../format.js';
import { parseJsonFlag } from '../json-input.js';
import { openRuntime } from '../open-runtime.js';
import {
  sizeLimits,
  withAmqpOption,
  withCommonOptions,
  withSizeLimitOptions,
  type CommonOptions,
  type SizeLimitOptions,
} from '../options.js';

interface SignalOptions extends CommonOptions, SizeLimitOptions {
  amqp?: string;
  payload?: string;
}

export function registerSignalCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('signal')
    .summary('send a named signal with a JSON payload to a run')
    .description(
      'Send signal NAME with a JSON payload to a run. Atoms waiting for it (ctx.waitForSignal(NAME)) wake up; the signal is ' +
        'stored, so an atom that asks for it later receives it too. A run that has ended refuses it (STOKER_RUN_NOT_ACTIVE, exit 8).',
    )
    .argument('<runId>', 'id of the run')
    .argument('<name>', 'signal name ([A-Za-z][A-Za-z0-9_.-]*)')
    .option('--payload <json>', 'JSON payload, or @FILE to read it from a file', 'null');
  withSizeLimitOptions(cmd, { args: false, results: true });
  withCommonOptions(withAmqpOption(cmd)).addHelpText(
    'after',
    `\nExamples:\n  $ stoker signal 0b6f2c1e-… approval --payload '{"approvedBy": "ann"}'`,
  );
  cmd.action(async (runId: string, name: string, o: SignalOptions) => {
    const payload: JsonValue = parseJsonFlag('--payload', o.payload ?? 'null');
    const runtime = await openRuntime(o, { engines: 0, ...sizeLimits(o) });
    try {
      const woke = await runtime.client.signal(runId, name, payload);
      if (o.format === 'json') ctx.out(formatJson({ runId, name, payload, woke }));
      else
        ctx.out(
          formatRecord([
            ['run', runId],
            ['signal', name],
            ['payload', JSON.stringify(payload)],
            ['woke', `${woke} waiting atom${woke === 1 ? '' : 's'}`],
          ]),
        );
    } finally {
      await runtime.stop();
    }
  });
}
