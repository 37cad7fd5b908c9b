/**
 * `stoker locks list|release`: the locks of the locks API (docs/locks.md, ARCHITECTURE.md
 * protocol 10). Release needs the lock's current token, so it can free a lock a crashed
 * holder left behind but never one a newer holder took since.
 */
import type { Command } from 'commander';
import { createLocks } from '../../engine/locks.js';
import { ConflictError } from '../../errors.js';
import type { LockFilter } from '../../store/store.js';
import type { CliContext } from '../context.js';
import { LOCK_COLUMNS, formatJson, formatRecord, formatTable } from '../format.js';
import { lockJson } from '../../views/json.js';
import { openRuntime } from '../open-runtime.js';
import { intOption, withCommonOptions, type CommonOptions } from '../options.js';

interface ListOptions extends CommonOptions {
  held?: boolean;
  after?: string;
  limit: number;
}

interface ReleaseOptions extends CommonOptions {
  token: number;
}

export function registerLocksCommand(program: Command, ctx: CliContext): void {
  const locks = program
    .command('locks')
    .summary('list and release the locks of the locks API')
    .description('Look at the named locks applications take with createLocks() (docs/locks.md), and release one by its token.')
    .addHelpText('after', '\nExamples:\n  $ stoker locks list --held\n  $ stoker locks release reports/nightly --token 7');

  const list = locks
    .command('list')
    .description(
      'List locks in name order: holder, fencing token, state (held, expired, released) and when the lease runs out, by the database clock.',
    )
    .option('--held', 'only locks held now')
    .option('--after <name>', 'only locks after this name (next page)')
    .option('--limit <n>', 'at most N locks', intOption(1, 1000), 100);
  withCommonOptions(list).addHelpText('after', '\nExamples:\n  $ stoker locks list\n  $ stoker locks list --held -f json');
  list.action(async (o: ListOptions) => {
    const filter: LockFilter = { limit: o.limit };
    if (o.held) filter.heldOnly = true;
    if (o.after !== undefined) filter.after = o.after;
    const runtime = await openRuntime(o, { engines: 0 });
    try {
      const rows = await createLocks(runtime.store).list(filter);
      if (o.format === 'json') ctx.out(formatJson(rows.map(lockJson)));
      else if (rows.length === 0) ctx.out('no locks\n');
      else ctx.out(formatTable(LOCK_COLUMNS, rows));
    } finally {
      await runtime.stop();
    }
  });

  const release = locks
    .command('release')
    .description(
      'Release a lock held under TOKEN (see `stoker locks list`), e.g. one a crashed holder left behind. ' +
        'Refused (exit 8, STOKER_LOCK_LOST) when the lock is not held under that token any more.',
    )
    .argument('<name>', 'the lock name')
    .requiredOption('--token <n>', "the lock's current token", intOption(1));
  withCommonOptions(release).addHelpText('after', '\nExamples:\n  $ stoker locks release reports/nightly --token 7');
  release.action(async (name: string, o: ReleaseOptions) => {
    const runtime = await openRuntime(o, { engines: 0 });
    try {
      const api = createLocks(runtime.store);
      if (!(await api.release(name, o.token))) {
        const current = await api.get(name);
        const now = current === null ? 'it was never acquired' : `its token is ${current.token}${current.releasedAt ? ', released' : ''}`;
        throw new ConflictError('STOKER_LOCK_LOST', `lock "${name}" is not held under token ${o.token}: ${now}`, {
          details: { name, token: o.token, ...(current ? { currentToken: current.token } : {}) },
        });
      }
      if (o.format === 'json') ctx.out(formatJson({ name, token: o.token, released: true }));
      else
        ctx.out(
          formatRecord([
            ['lock', name],
            ['token', String(o.token)],
            ['released', 'yes'],
          ]),
        );
    } finally {
      await runtime.stop();
    }
  });
}
