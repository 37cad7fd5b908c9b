/**
 * `stoker engines list`: the engines registered in the store with their leases.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ENGINE_COLUMNS, formatJson, formatTable } from '../format.js';
import { engineJson } from '../../views/json.js';
import { openRuntime } from '../open-runtime.js';
import { withCommonOptions, type CommonOptions } from '../options.js';

export function registerEnginesCommand(program: Command, ctx: CliContext): void {
  const engines = program
    .command('engines')
    .summary('list the engines registered in the store')
    .description('Look at the engines that share the store.')
    .addHelpText('after', '\nExamples:\n  $ stoker engines list');
  const list = engines
    .command('list')
    .description('List the engines registered in the store: id, host, pid, version, age of the last lease renewal, atoms held, state.');
  withCommonOptions(list).addHelpText(
    'after',
    '\nExamples:\n  $ stoker engines list --store postgres://stoker@db/stoker\n  $ stoker engines list -f json',
  );
  list.action(async (o: CommonOptions) => {
    const runtime = await openRuntime(o, { engines: 0 });
    try {
      const rows = await runtime.store.listEngines();
      if (o.format === 'json') ctx.out(formatJson(rows.map(engineJson)));
      else if (rows.length === 0) ctx.out('no engines registered\n');
      else ctx.out(formatTable(ENGINE_COLUMNS, rows));
    } finally {
      await runtime.stop();
    }
  });
}
