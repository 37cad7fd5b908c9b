/**
 * `stoker runs list|show|cancel|prune`: what the store holds about runs. None of these needs
 * a flows module: a run carries its own graph, and cancel only uses that graph.
 */
import type { Command } from 'commander';
import { RunStatus } from '../../store/states.js';
import { NotFoundError } from '../../errors.js';
import { pruneInBatches } from '../../store/prune.js';
import type { RunFilter } from '../../store/store.js';
import type { CliContext } from '../context.js';
import { ATOM_COLUMNS, RUN_COLUMNS, durationText, eventColumns, formatJson, formatTable, runRecord } from '../format.js';
import { atomJson, eventJson, runJson } from '../../views/json.js';
import { openRuntime } from '../open-runtime.js';
import { intOption, parseAge, usageError, withCommonOptions, type CommonOptions } from '../options.js';

const STATUSES = Object.values(RunStatus);

function parseStatuses(text: string): RunStatus[] {
  const list = text
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter((s) => s.length > 0);
  for (const s of list) {
    if (!(STATUSES as string[]).includes(s))
      throw usageError(`--status ${JSON.stringify(s)} is not a run status (use ${STATUSES.join(', ')})`);
  }
  return list as RunStatus[];
}

interface ListOptions extends CommonOptions {
  status?: string;
  flow?: string;
  key?: string;
  limit: number;
  before?: string;
}

interface ShowOptions extends CommonOptions {
  events?: boolean;
  eventLimit: number;
}

interface CancelOptions extends CommonOptions {
  reason?: string;
}

interface PruneCliOptions extends CommonOptions {
  olderThan?: number;
  batch: number;
  dryRun?: boolean;
  force?: boolean;
  yes?: boolean;
}

/** Below this age a prune needs --force: it would take runs that just ended, as a slip of the unit does. */
const MIN_PRUNE_AGE_MS = 60_000;

export function registerRunsCommand(program: Command, ctx: CliContext): void {
  const runs = program
    .command('runs')
    .summary('list, show, cancel and prune runs')
    .description('Look at the runs the store holds, cancel one, or delete old finished ones.')
    .addHelpText('after', '\nExamples:\n  $ stoker runs list --status RUNNING\n  $ stoker runs show 0b6f…  --events');

  const list = runs
    .command('list')
    .description('List runs, newest first.')
    .option('--status <statuses>', `only runs in these statuses, comma-separated (${STATUSES.join(', ')})`)
    .option('--flow <name>', 'only runs of this flow')
    .option('--key <key>', 'only runs with this key')
    .option('--limit <n>', 'at most N runs', intOption(1, 10_000), 50)
    .option('--before <runId>', 'only runs created before this run (next page)');
  withCommonOptions(list).addHelpText(
    'after',
    '\nExamples:\n  $ stoker runs list --status REVERTED,FAILED --limit 10\n  $ stoker runs list --flow order -f json',
  );
  list.action(async (o: ListOptions) => {
    const filter: RunFilter = { limit: o.limit };
    if (o.status !== undefined) filter.status = parseStatuses(o.status);
    if (o.flow !== undefined) filter.flow = o.flow;
    if (o.key !== undefined) filter.key = o.key;
    if (o.before !== undefined) filter.before = o.before;
    const runtime = await openRuntime(o, { engines: 0 });
    try {
      const rows = await runtime.store.listRuns(filter);
      if (o.format === 'json') ctx.out(formatJson(rows.map(runJson)));
      else if (rows.length === 0) ctx.out('no runs\n');
      else ctx.out(formatTable(RUN_COLUMNS, rows));
    } finally {
      await runtime.stop();
    }
  });

  const show = runs
    .command('show')
    .description('Show one run with its atoms (and with --events, its event history).')
    .argument('<runId>', 'id of the run')
    .option('--events', 'also show the events recorded for the run')
    .option('--event-limit <n>', 'with --events: at most N events', intOption(1, 100_000), 1000);
  withCommonOptions(show).addHelpText(
    'after',
    '\nExamples:\n  $ stoker runs show 0b6f2c1e-… --events\n  $ stoker runs show 0b6f2c1e-… -f json | jq .atoms',
  );
  show.action(async (runId: string, o: ShowOptions) => {
    const runtime = await openRuntime(o, { engines: 0 });
    try {
      const run = await runtime.store.getRun(runId);
      if (!run) throw new NotFoundError('STOKER_RUN_NOT_FOUND', `no run ${runId} in this store`, { details: { runId } });
      const atoms = await runtime.store.getAtoms(runId);
      const events = o.events ? await runtime.store.listEvents({ runId: runId, limit: o.eventLimit }) : null;
      const names = new Map(atoms.map((a) => [a.index, a.name]));
      if (o.format === 'json') {
        ctx.out(
          formatJson({
            ...runJson(run),
            atoms: atoms.map(atomJson),
            ...(events ? { events: events.map((e) => eventJson(e, e.atom === null ? undefined : names.get(e.atom))) } : {}),
          }),
        );
        return;
      }
      let text = `${runRecord(run)}\nAtoms\n${formatTable(ATOM_COLUMNS, atoms)}`;
      if (events) text += `\nEvents (time since the run was created)\n${formatTable(eventColumns(names, run.createdAt), events)}`;
      ctx.out(text);
    } finally {
      await runtime.stop();
    }
  });

  const cancel = runs
    .command('cancel')
    .description('Cancel an active run: no new atoms start; running ones see their abort signal. Child runs are cancelled too.')
    .argument('<runId>', 'id of the run')
    .option('--reason <text>', 'stored with the cancellation', 'cancelled from the command line');
  withCommonOptions(cancel).addHelpText('after', '\nExamples:\n  $ stoker runs cancel 0b6f2c1e-… --reason "customer called"');
  cancel.action(async (runId: string, o: CancelOptions) => {
    const runtime = await openRuntime(o, { engines: 0 });
    try {
      // An empty registry is enough: cancel only reads the run's stored graph.
      const run = await runtime.client.cancel(runId, o.reason);
      ctx.out(o.format === 'json' ? formatJson(runJson(run)) : runRecord(run));
    } finally {
      await runtime.stop();
    }
  });

  const prune = runs
    .command('prune')
    .description(
      'Delete runs that ended more than --older-than ago (database clock), with their atoms, events and signals, in ' +
        'batches of one transaction each; a run whose parent or child is still active is kept. Also deletes the rows ' +
        'of engines whose lease ran out that long ago and that hold nothing. Active runs are never touched.',
    )
    .option('--older-than <age>', 'age of the runs to delete, counted from when they ended, with a unit: 30d, 12h, 90m, 45s', parseAge)
    .option('--batch <n>', 'runs deleted per transaction', intOption(1, 100_000), 1000)
    .option('--dry-run', 'count what one batch would delete, delete nothing')
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .option('--force', 'allow --older-than under 1m (runs that ended moments ago)');
  withCommonOptions(prune).addHelpText(
    'after',
    '\nOn a terminal, the command shows what the first batch would delete and asks before deleting (--yes skips the question).\n' +
      '\nExamples:\n  $ stoker runs prune --older-than 30d --dry-run\n  $ stoker runs prune --older-than 7d --yes --store postgres://…/stoker -f json',
  );
  prune.action(async (o: PruneCliOptions) => {
    if (o.olderThan === undefined)
      throw usageError('runs prune needs --older-than (for example --older-than 30d): nothing is deleted by default');
    const olderThanMs = o.olderThan;
    if (olderThanMs < MIN_PRUNE_AGE_MS && o.force !== true) {
      throw usageError(
        `--older-than ${durationText(olderThanMs)} would delete runs that ended moments ago: pass --force to do that, or give an age of at least 1m`,
      );
    }
    const runtime = await openRuntime(o, { engines: 0 });
    try {
      if (!o.dryRun && o.yes !== true && ctx.interactive) {
        const would = await runtime.store.pruneRuns({ olderThanMs, limit: o.batch, dryRun: true });
        if (would.runs === 0) {
          ctx.note(`no run ended more than ${durationText(olderThanMs)} ago: nothing to delete`);
        } else {
          const more = would.runs === o.batch ? ` in the first batch (of ${o.batch}; more may follow)` : '';
          const ok = await ctx.confirm(
            `stoker: delete ${would.runs} runs${more} that ended more than ${durationText(olderThanMs)} ago, with ${would.atoms} atoms, ${would.events} events and ${would.signals} signals?`,
          );
          if (!ok) {
            ctx.note('nothing deleted');
            return;
          }
        }
      }
      const total = o.dryRun
        ? await runtime.store.pruneRuns({ olderThanMs, limit: o.batch, dryRun: true })
        : await pruneInBatches(runtime.store, {
            olderThanMs,
            batch: o.batch,
            onBatch: (n, r, sum) => ctx.note(`batch ${n}: ${r.runs} runs deleted (${sum.runs} so far)`),
          });
      if (o.format === 'json') ctx.out(formatJson({ dryRun: o.dryRun === true, olderThanMs, ...total }));
      else
        ctx.out(
          `${o.dryRun ? 'would delete (first batch of at most ' + o.batch + ' runs)' : 'deleted'}: ${total.runs} runs, ${total.atoms} atoms, ` +
            `${total.events} events, ${total.signals} signals, ${total.engines} engine rows (ended more than ${durationText(olderThanMs)} ago)\n`,
        );
    } finally {
      await runtime.stop();
    }
  });
}
