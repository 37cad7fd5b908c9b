/**
 * `stoker demo` (what `npm start` runs): a first look. Starts an engine in this process on
 * a fresh SQLite file, runs the two order flows of demo-flows.ts, prints each state change
 * as the events table records it, then shows what the store holds and what to try next.
 */
import { existsSync, rmSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { isTerminalRun } from '../../store/states.js';
import { StokerError } from '../../errors.js';
import type { AtomRow, EventRow, RunRow } from '../../store/store.js';
import type { Runtime } from '../../runtime/create-runtime.js';
import type { CliContext } from '../context.js';
import demoFlows, { DEMO_ARGS } from '../demo-flows.js';
import { ExitCode } from '../exit-codes.js';
import { ATOM_COLUMNS, durationText, eventColumns, failureText, formatJson, formatTable, jsonCell } from '../format.js';
import { atomJson, eventJson, runJson } from '../../views/json.js';
import { openRuntime } from '../open-runtime.js';
import { intOption, redactUrl, withCommonOptions, type CommonOptions } from '../options.js';
import { watchShutdown } from '../shutdown.js';

export const DEMO_STORE_URL = 'sqlite:./.stoker/demo.db';

/** examples/order-flows.ts relative to the working directory, when this is a checkout of the repository. */
function examplesPath(): string {
  // dist/cli/commands/demo.js and src/cli/commands/demo.ts are both three levels below the root
  const file = fileURLToPath(new URL('../../../examples/order-flows.ts', import.meta.url));
  if (!existsSync(file)) return './my-flows.ts';
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

interface DemoOptions extends CommonOptions {
  timeoutMs: number;
}

interface Tracked {
  run: RunRow;
  label: string;
  names: Map<number, string>;
  lastEventId: number;
  events: EventRow[];
}

/** Arguments for the `run` the demo suggests next: a new order. */
const TRY_ARGS = {
  orderId: 'A-2001',
  customer: 'you@example.com',
  items: [{ sku: 'kettle' }],
  address: { city: 'Utrecht', country: 'NL' },
};

/** Event kinds that only restate what the next event says; left out of the live view. */
const QUIET_KINDS = new Set(['atom.ready', 'atom.claimed', 'atom.revert_pending', 'atom.revert_ready']);

export function registerDemoCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('demo')
    .summary('the quick start: run two order flows and show what is stored')
    .description(
      `Run the quick start: an engine in this process executes two order flows on a fresh SQLite file (${DEMO_STORE_URL}): ` +
        'one that succeeds after a payment retry, and one whose shipping fails so that refund and release run in reverse ' +
        'order. Prints each state change, then the stored runs, atoms and events, and the commands to try next.',
    )
    .addOption(new Option('--timeout-ms <n>', 'give up after N ms').argParser(intOption(1000)).default(60_000));
  // The demo ignores STOKER_STORE on purpose: it must not write demo runs into a real store by accident.
  withCommonOptions(cmd, { store: DEMO_STORE_URL, storeEnv: false, logLevel: 'error' }).addHelpText(
    'after',
    `\nExamples:\n  $ stoker demo\n  $ npm start\n  $ stoker demo --store sqlite:/tmp/try.db -f json`,
  );
  cmd.action(async (o: DemoOptions) => {
    const json = o.format === 'json';
    const say = (text = ''): void => {
      if (!json) ctx.out(`${text}\n`);
    };
    const freshFile = o.store === DEMO_STORE_URL;
    if (freshFile) {
      const path = DEMO_STORE_URL.slice('sqlite:'.length);
      for (const suffix of ['', '-wal', '-shm', '-journal', '-stoker_wake']) rmSync(`${path}${suffix}`, { force: true });
    }
    const runtime = await openRuntime(o, { migrate: true, flows: demoFlows, engines: 1, concurrency: 4, pollMs: 100 }, 'demo');
    const shutdown = watchShutdown(ctx, 'stopping the demo engine');
    const t0 = Date.now();
    try {
      await runtime.start();
      const p = ctx.programName;
      say(`Stoker demo: an engine in this process (${runtime.engines[0]!.id.slice(0, 8)}) executes two runs;`);
      say(`every state is stored in ${redactUrl(o.store)}${freshFile ? ' (a fresh file)' : ''}.`);
      say('');
      say('Flows (src/cli/demo-flows.ts, the same as examples/order-flows.ts):');
      for (const f of runtime.flows.list()) {
        const chain = f.graph.atoms.map((a) => a.name).join(' → ');
        say(`  ${f.name.padEnd(14)} ${chain}`);
      }
      say('  charge-payment times out on its first attempt and is retried ({attempts: 3, backoffMs: 200});');
      say('  in order-express the courier refuses the address, so refund and release run in reverse order.');
      say('');

      const tracked: Tracked[] = [];
      for (const [flow, args] of Object.entries(DEMO_ARGS)) {
        const { run } = await runtime.client.startRun(flow, args);
        const names = new Map(runtime.flows.get(flow).graph.atoms.map((a) => [a.index, a.name]));
        tracked.push({ run, label: flow, names, lastEventId: 0, events: [] });
        say(`Started run ${run.id} (${flow}, order ${args.orderId})`);
      }
      say('');
      say('Live, as the events table records it:');
      const width = Math.max(...tracked.map((t) => t.label.length));
      const deadline = t0 + o.timeoutMs;
      for (;;) {
        const batch: { t: Tracked; e: EventRow }[] = [];
        for (const t of tracked) {
          const events = await runtime.store.listEvents({ runId: t.run.id, afterId: t.lastEventId });
          for (const e of events) {
            t.lastEventId = Math.max(t.lastEventId, e.id);
            t.events.push(e);
            batch.push({ t, e });
          }
        }
        batch.sort((a, b) => a.e.at.getTime() - b.e.at.getTime() || a.e.id - b.e.id);
        for (const { t, e } of batch) {
          if (QUIET_KINDS.has(e.kind)) continue;
          say(`  ${`+${durationText(e.at.getTime() - t0)}`.padStart(9)}  ${t.label.padEnd(width)}  ${progressLine(e, t.names)}`);
        }
        const rows = await Promise.all(tracked.map((t) => runtime.store.getRun(t.run.id)));
        rows.forEach((r, i) => {
          if (r) tracked[i]!.run = r;
        });
        if (tracked.every((t) => isTerminalRun(t.run.status)) && batch.length === 0) break;
        if (shutdown.received()) {
          ctx.note('demo interrupted; what ran so far is in the store');
          ctx.exitCode = ExitCode.INTERRUPTED;
          return;
        }
        if (Date.now() > deadline)
          throw new StokerError('STOKER_RUN_WAIT_TIMEOUT', `the demo runs did not finish within ${o.timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const elapsed = Date.now() - t0;
      const atoms = await Promise.all(tracked.map((t) => runtime.store.getAtoms(t.run.id)));

      if (json) {
        ctx.out(
          formatJson({
            store: redactUrl(o.store),
            runs: tracked.map((t, i) => ({
              ...runJson(t.run),
              atoms: atoms[i]!.map(atomJson),
              events: t.events.map((e) => eventJson(e, e.atom === null ? undefined : t.names.get(e.atom))),
            })),
          }),
        );
      } else {
        say('');
        say(`Both runs ended in ${durationText(elapsed)}. What the store holds now:`);
        tracked.forEach((t, i) => showRun(say, t, atoms[i]!));
        say('Try next:');
        const storeFlag = ` --store ${o.store}`;
        say(`  ${p} runs list${storeFlag}`);
        say(`  ${p} runs show ${tracked[1]!.run.id}${storeFlag} --events`);
        say(`  ${p} runs show ${tracked[0]!.run.id}${storeFlag} -f json`);
        const examples = examplesPath();
        say(`  ${p} run order --flows ${examples} --args '${JSON.stringify(TRY_ARGS)}' --wait${storeFlag}`);
        say(`  ${p} engine --flows ${examples}${storeFlag}      # an engine that keeps running; Ctrl-C stops it`);
        say(`  ${p} --help`);
      }
      const expected = tracked[0]!.run.status === 'SUCCESS' && tracked[1]!.run.status === 'REVERTED';
      if (!expected) {
        ctx.note(
          `the demo runs ended ${tracked.map((t) => `${t.label} ${t.run.status}`).join(', ')}; expected order SUCCESS and order-express REVERTED`,
        );
        ctx.exitCode = ExitCode.FAILURE;
      }
    } finally {
      shutdown.dispose();
      await stopQuietly(runtime);
    }
  });
}

async function stopQuietly(runtime: Runtime): Promise<void> {
  await runtime.stop({ timeoutMs: 5000 });
}

function progressLine(e: EventRow, names: ReadonlyMap<number, string>): string {
  const who = e.atom === null ? '(run)' : (names.get(e.atom) ?? `#${e.atom}`);
  const data = (e.data ?? {}) as Record<string, unknown>;
  const move = e.fromState || e.toState ? `${e.fromState ?? '-'} → ${e.toState ?? '-'}` : e.kind;
  let note = '';
  if (e.kind === 'atom.retry_scheduled')
    note = `${String(data.failure)}; attempt ${String(data.attempt)} in ${durationText(Number(data.delayMs))}`;
  else if (typeof data.failure === 'string') note = data.failure;
  else if (e.kind === 'run.created') note = 'started';
  else if (e.fromState === 'REVERTING' && e.toState === 'REVERTED') note = 'its revert ran (compensation)';
  else if (e.fromState === 'REVERT_PENDING' && e.toState === 'REVERTED') note = 'nothing to undo (no revert)';
  return `${who.padEnd(18)} ${move.padEnd(26)}${note ? ` ${note}` : ''}`.trimEnd();
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function showRun(say: (text?: string) => void, t: Tracked, atoms: AtomRow[]): void {
  const r = t.run;
  say('');
  say(`Run ${r.id}  ${r.flow}@${r.version}  ${r.status}`);
  if (r.result !== null) say(`  result:  ${cut(jsonCell(r.result), 150)}`);
  if (r.failure) say(`  failure: ${failureText(r.failure)}`);
  say('  atoms:');
  for (const line of formatTable(ATOM_COLUMNS, atoms).trimEnd().split('\n')) say(`    ${line}`);
  const story = t.events.filter((e) => !QUIET_KINDS.has(e.kind));
  const shown = story.slice(0, 16);
  say(`  events (${shown.length} of ${t.events.length}; all with: runs show ${r.id.slice(0, 8)}… --events):`);
  for (const line of formatTable(eventColumns(t.names, r.createdAt), shown).trimEnd().split('\n')) say(`    ${line}`);
  say('');
}
