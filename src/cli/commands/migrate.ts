/**
 * `stoker migrate`: applies the store's pending migrations (creating a SQLite file and its
 * folder if needed). `stoker engine` and `stoker demo` also migrate on start; every other
 * command only checks the schema and fails with `STOKER_STORE_NOT_MIGRATED` (docs/errors.md).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatJson } from '../format.js';
import { orchestrationSchema } from '../../orchestration/stacks/index.js';
import { openRuntime } from '../open-runtime.js';
import { redactUrl, withCommonOptions, type CommonOptions } from '../options.js';

export function registerMigrateCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('migrate')
    .summary('create or upgrade the tables in the store')
    .description('Apply the pending schema migrations to the store and print which were applied (or "up to date").');
  withCommonOptions(cmd).addHelpText(
    'after',
    '\nExamples:\n  $ stoker migrate --store postgres://stoker:secret@db.internal/stoker\n  $ STOKER_STORE=sqlite:./data/stoker.db stoker migrate -f json',
  );
  cmd.action(async (o: CommonOptions) => {
    const runtime = await openRuntime(o, { engines: 0, migrate: false });
    try {
      const applied = await runtime.store.migrate({ modules: [orchestrationSchema] });
      if (o.format === 'json') ctx.out(formatJson({ store: redactUrl(o.store), applied }));
      else if (applied.length === 0) ctx.out(`${redactUrl(o.store)}: up to date\n`);
      else for (const m of applied) ctx.out(`${redactUrl(o.store)}: applied migration ${m.version} (${m.module}: ${m.name})\n`);
    } finally {
      await runtime.stop();
    }
  });
}
