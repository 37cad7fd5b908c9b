/**
 * `stoker stack …`: Heat stacks with the commands, flags and output of the `openstack stack`
 * client (create, update, delete, cancel, show, list, check, suspend, resume, resources,
 * events, outputs, template, environment). A request is read and validated in full before
 * anything is stored; `--wait` runs an engine in this process until the action ends,
 * printing its events on stderr, and exits 3 when the stack ends `*_FAILED`.
 */
import { Option, type Command } from 'commander';
import type { JsonObject, JsonValue } from '../../core/json.js';
import { StokerError } from '../../errors.js';
import type { Orchestrator, StackRow, StackRequest } from '../../orchestration/stacks/index.js';
import {
  EVENT_LIST_COLUMNS,
  RESOURCE_LIST_COLUMNS,
  STACK_LIST_COLUMNS,
  eventListRow,
  eventLogLine,
  resourceJson,
  resourceListRow,
  stackJson,
  stackListRow,
  stackStatus,
} from '../../orchestration/stacks/views.js';
import { pyYamlDump } from '../../orchestration/resources/index.js';
import type { Runtime } from '../../runtime/create-runtime.js';
import { loadPluginsModule } from '../../runtime/load-plugins.js';
import type { CliContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { parseJsonFlag } from '../json-input.js';
import { openRuntime } from '../open-runtime.js';
import {
  outputOptions,
  printList,
  printShow,
  withListOutputOptions,
  withShowOutputOptions,
  type ListFormat,
  type OutputFlags,
  type ShowFormat,
} from '../openstack-output.js';
import { intOption, withCommonOptions, type CommonOptions } from '../options.js';
import { watchShutdown } from '../shutdown.js';
import { readStackFiles } from '../template-request.js';

interface StackOptions extends Omit<CommonOptions, 'format'>, OutputFlags {
  format: ShowFormat & ListFormat;
  project: string;
  plugins?: string;
  allowLocalCommands?: boolean;
  maxResourcesPerStack?: number;
}

interface ActionOptions extends StackOptions {
  template?: string;
  environment?: string[];
  parameter?: string[];
  timeout?: number;
  disableRollback?: boolean;
  rollback?: boolean;
  existing?: boolean;
  dryRun?: boolean;
  showNested?: boolean;
  clearParameter?: string[];
  tags?: string;
  wait?: boolean;
  yes?: boolean;
}

/** `--max-resources-per-stack` (Heat's max_resources_per_stack), for the CLI and the engine alike */
export function maxResourcesOption(): Option {
  return new Option('--max-resources-per-stack <n>', 'resources one stack may hold (default 1000, as Heat)')
    .argParser(intOption(1, 100_000))
    .env('STOKER_MAX_RESOURCES_PER_STACK');
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const WAIT_POLL_MS = 100;

/** The flags every stack command has: the store, the project, the output format. */
function stackCommand(parent: Command, name: string, description: string, kind: 'show' | 'list' | 'log' = 'show'): Command {
  const cmd = parent.command(name).description(description);
  if (kind === 'show') withShowOutputOptions(cmd, 'table');
  else withListOutputOptions(cmd, 'table');
  withCommonOptions(cmd, { format: false });
  return cmd
    .option('--project <name>', 'the project the stacks belong to', process.env['STOKER_PROJECT'] ?? 'default')
    .addOption(
      new Option('--plugins <module>', 'a module default-exporting an array of resource types (as the engines load)').env('STOKER_PLUGINS'),
    )
    .addOption(maxResourcesOption());
}

function withWait(cmd: Command): Command {
  return cmd
    .option('--wait', 'run an engine in this process until the action ends, printing its events on stderr; exit 3 when it fails')
    .option('--allow-local-commands', 'with --wait: let Stoker::Local::Command run its commands');
}

/** `stack create|update` flags shared by both */
function withRequestFlags(cmd: Command): Command {
  return cmd
    .option('-e, --environment <file>', 'an environment file; repeat to merge several, later ones winning', collect)
    .option('--parameter <key=value>', 'a parameter value ("k1=v1;k2=v2" sets several); repeat for more', collect)
    .option('--timeout <minutes>', 'the stack action timeout in minutes', intOption(1, 100_000))
    .option('--tags <tags>', 'comma-separated stack tags');
}

export function registerStackCommand(program: Command, ctx: CliContext): void {
  const stack = program
    .command('stack')
    .summary('Heat stacks: create, update, delete, show … (as `openstack stack`)')
    .description(
      'Heat-compatible stacks run by Stoker engines: every action is a run whose atoms are resource steps, so any ' +
        'engine executes them and a newer action supersedes an older one. Commands, flags and output follow the ' +
        '`openstack stack` client.',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ stoker stack create web -t web.yaml -e prod.yaml --parameter count=3 --wait
  $ stoker stack update web --existing --parameter count=5 --dry-run
  $ stoker stack show web -f json
  $ stoker stack resource list web --nested-depth 2
  $ stoker stack delete web --yes --wait`,
    );

  const create = withWait(withRequestFlags(stackCommand(stack, 'create', 'Create a stack from a template.')))
    .argument('<name>', 'the stack name (unique in the project)')
    .requiredOption('-t, --template <file>', 'the template (HOT, YAML or JSON)')
    .option('--disable-rollback', 'keep what was created when the create fails (default: roll back)');
  create.action((name: string, o: ActionOptions) =>
    withStacks(o, ctx, async (rt, stacks) => {
      const request = await buildRequest(o);
      let row = await stacks.create(name, { ...request, disableRollback: o.disableRollback === true }, o.project);
      if (o.wait) row = await waitForAction(rt, stacks, row, ctx, o);
      await showStack(stacks, row, o, ctx, false);
      failIfFailed(row, ctx);
    }),
  );

  const update = withWait(withRequestFlags(stackCommand(stack, 'update', 'Update a stack to a new template, environment or parameters.')))
    .argument('<name>', 'the stack name or id')
    .option('-t, --template <file>', 'the new template (with --existing: optional)')
    .option('--existing', 'patch: reuse the stored template, environment, files and parameters, changing only what is given')
    .option('--clear-parameter <name>', 'with --existing: reset this parameter to its default; repeat for more', collect)
    .option('--rollback', 'roll back to the previous template when the update fails (default: no rollback, as Heat)')
    .option('--dry-run', 'show what the update would add, update, replace, delete or leave unchanged, and change nothing')
    .option('--show-nested', 'with --dry-run: also the resources of nested stacks (<resource>/<nested resource>)');
  update.action((name: string, o: ActionOptions) =>
    withStacks(o, ctx, async (rt, stacks) => {
      const request = { ...(await buildRequest(o)), existing: o.existing === true, disableRollback: o.rollback !== true };
      if (o.clearParameter) request.clearParameters = o.clearParameter;
      if (o.showNested) request.showNested = true;
      if (o.dryRun) {
        const preview = await stacks.preview(name, request, o.project);
        const record: JsonObject = {
          added: preview.added,
          deleted: preview.deleted,
          replaced: preview.replaced,
          unchanged: preview.unchanged,
          updated: preview.updated,
        };
        printShow(record, o.format, { ...outputOptions(o), out: ctx.out, tableComplex: 'yaml' });
        return;
      }
      let row = await stacks.update(name, request, o.project);
      if (o.wait) row = await waitForAction(rt, stacks, row, ctx, o);
      await showStack(stacks, row, o, ctx, false);
      failIfFailed(row, ctx);
    }),
  );

  const del = withWait(stackCommand(stack, 'delete', 'Delete stacks, with their resources in reverse dependency order.', 'list'))
    .argument('<names...>', 'stack names or ids')
    .option('-y, --yes', 'do not ask for confirmation');
  del.action((names: string[], o: ActionOptions) =>
    withStacks(o, ctx, async (rt, stacks) => {
      if (!o.yes) {
        if (!process.stdin.isTTY) throw new StokerError('STOKER_CLI_USAGE', 'stack delete needs --yes when stdin is not a terminal');
        const answer = await ask(`Are you sure you want to delete stack(s) ${names.join(', ')} [y/N]? `);
        if (!/^y(es)?$/i.test(answer.trim())) {
          ctx.note('nothing deleted');
          return;
        }
      }
      const rows: StackRow[] = [];
      for (const n of names) rows.push(await stacks.delete(n, o.project));
      let failed = false;
      for (let row of rows) {
        if (o.wait) row = await waitForAction(rt, stacks, row, ctx, o);
        if (row.status === 'FAILED') failed = true;
        ctx.note(`stack ${row.name} ${stackStatus(row)}`);
      }
      if (failed) ctx.exitCode = ExitCode.RUN_UNSUCCESSFUL;
    }),
  );

  const cancel = withWait(stackCommand(stack, 'cancel', 'Cancel the create or update in progress: roll it back, or only stop it.'))
    .argument('<name>', 'the stack name or id')
    .option('--no-rollback', 'stop the action without rolling back what it did');
  cancel.action((name: string, o: ActionOptions) =>
    withStacks(o, ctx, async (rt, stacks) => {
      let row = await stacks.cancel(name, { rollback: o.rollback !== false }, o.project);
      if (o.wait) row = await waitForAction(rt, stacks, row, ctx, o);
      await showStack(stacks, row, o, ctx, false);
    }),
  );

  for (const action of ['check', 'suspend', 'resume'] as const) {
    const cmd = withWait(stackCommand(stack, action, `${action[0]!.toUpperCase()}${action.slice(1)} every resource of a stack.`)).argument(
      '<name>',
      'the stack name or id',
    );
    cmd.action((name: string, o: ActionOptions) =>
      withStacks(o, ctx, async (rt, stacks) => {
        let row = await stacks.lifecycle(name, action.toUpperCase() as 'CHECK' | 'SUSPEND' | 'RESUME', o.project);
        if (o.wait) row = await waitForAction(rt, stacks, row, ctx, o);
        await showStack(stacks, row, o, ctx, false);
        failIfFailed(row, ctx);
      }),
    );
  }

  stackCommand(stack, 'show', 'Show a stack: status, parameters (hidden ones masked), outputs.')
    .argument('<name>', 'the stack name or id')
    .action((name: string, o: StackOptions) =>
      withStacks(o, ctx, async (_rt, stacks) => showStack(stacks, await stacks.get(name, o.project, { deleted: true }), o, ctx, true)),
    );

  stackCommand(stack, 'list', 'List the stacks of the project.', 'list')
    .option('--nested', 'also list nested stacks')
    .action((o: StackOptions & { nested?: boolean }) =>
      withStacks(o, ctx, async (_rt, stacks) => {
        const rows = await stacks.list(o.project, { nested: o.nested === true });
        printList(STACK_LIST_COLUMNS, rows.map(stackListRow), o.format, { ...outputOptions(o), out: ctx.out });
      }),
    );

  registerResourceCommands(stack, ctx);
  registerEventAndOutputCommands(stack, ctx);
}

function registerResourceCommands(stack: Command, ctx: CliContext): void {
  const resource = stack.command('resource').description('The resources of a stack.');
  stackCommand(resource, 'list', 'List the current resources of a stack.', 'list')
    .argument('<name>', 'the stack name or id')
    .option('-n, --nested-depth <n>', 'also list the resources of nested stacks this deep', intOption(0, 100), 0)
    .action((name: string, o: StackOptions & { nestedDepth: number }) =>
      withStacks(o, ctx, async (_rt, stacks) => {
        const row = await stacks.get(name, o.project);
        const rows = await stacks.resources(row, o.nestedDepth);
        const columns = o.nestedDepth > 0 ? [...RESOURCE_LIST_COLUMNS, 'stack_name'] : RESOURCE_LIST_COLUMNS;
        const values = rows.map((r) => resourceListRow(r.row, o.nestedDepth > 0 ? r.stack.name : undefined));
        printList(columns, values, o.format, { ...outputOptions(o), out: ctx.out });
      }),
    );

  stackCommand(resource, 'show', 'Show one resource of a stack, with its attributes.')
    .argument('<name>', 'the stack name or id')
    .argument('<resource>', 'the resource name')
    .action((name: string, res: string, o: StackOptions) =>
      withStacks(o, ctx, async (_rt, stacks) => {
        const row = await stacks.get(name, o.project);
        const r = await stacks.resourceRow(row, res);
        const instance = await stacks.instance(row);
        const requiredBy = instance?.hasResource(res) ? instance.resource(res).requiredBy : [];
        const description = instance?.hasResource(res) ? instance.resource(res).description : null;
        const attributes = { ...(r.attributes ?? {}) };
        printShow(resourceJson(row, r, requiredBy, attributes, description), o.format, { ...outputOptions(o), out: ctx.out });
      }),
    );

  stackCommand(resource, 'signal', 'Send a signal to a resource (a WaitConditionHandle).')
    .argument('<name>', 'the stack name or id')
    .argument('<resource>', 'the resource name')
    .option('-D, --data <json>', 'the signal body as JSON, e.g. {"status": "SUCCESS", "data": "ok"}')
    .action((name: string, res: string, o: StackOptions & { data?: string }) =>
      withStacks(o, ctx, async (_rt, stacks) => {
        const data: JsonValue = o.data === undefined ? null : parseJsonFlag('--data', o.data);
        await stacks.signal(name, res, data, o.project);
      }),
    );

  stackCommand(resource, 'mark-unhealthy', 'Mark a resource unhealthy (CHECK_FAILED): the next update replaces it.')
    .argument('<name>', 'the stack name or id')
    .argument('<resource>', 'the resource name')
    .argument('[reason]', 'why', '')
    .action((name: string, res: string, reason: string, o: StackOptions) =>
      withStacks(o, ctx, async (_rt, stacks) => stacks.markUnhealthy(name, res, reason, o.project)),
    );
}

function registerEventAndOutputCommands(stack: Command, ctx: CliContext): void {
  const event = stack.command('event').description('The events of a stack.');
  const list = stackCommand(event, 'list', 'List the events of a stack (one line each by default).', 'list')
    .argument('<name>', 'the stack name or id')
    .option('--resource <name>', 'only the events of this resource');
  list.action((name: string, o: StackOptions & { resource?: string }) =>
    withStacks(o, ctx, async (_rt, stacks) => {
      const row = await stacks.get(name, o.project, { deleted: true });
      const events = await stacks.events(row, o.resource !== undefined ? { resource: o.resource } : {});
      printList(EVENT_LIST_COLUMNS, events.map(eventListRow), o.format, { ...outputOptions(o), out: ctx.out });
    }),
  );

  const output = stack.command('output').description('The outputs of a stack.');
  stackCommand(output, 'list', 'List the outputs of a stack.', 'list')
    .argument('<name>', 'the stack name or id')
    .action((name: string, o: StackOptions) =>
      withStacks(o, ctx, async (_rt, stacks) => {
        const outputs = await stacks.outputs(await stacks.get(name, o.project));
        printList(
          ['output_key', 'description'],
          outputs.map((x) => [x.output_key, x.description]),
          o.format,
          { ...outputOptions(o), out: ctx.out },
        );
      }),
    );
  stackCommand(output, 'show', 'Show one output of a stack (or all with --all).')
    .argument('<name>', 'the stack name or id')
    .argument('[key]', 'the output name')
    .option('--all', 'show every output')
    .action((name: string, key: string | undefined, o: StackOptions & { all?: boolean }) =>
      withStacks(o, ctx, async (_rt, stacks) => {
        const outputs = await stacks.outputs(await stacks.get(name, o.project));
        if (o.all) {
          printShow(Object.fromEntries(outputs.map((x) => [x.output_key, x as unknown as JsonValue])), o.format, {
            ...outputOptions(o),
            out: ctx.out,
          });
          return;
        }
        if (key === undefined) throw new StokerError('STOKER_CLI_USAGE', 'name the output to show, or pass --all');
        const found = outputs.find((x) => x.output_key === key);
        if (!found) throw new StokerError('STOKER_CLI_USAGE', `Output ${key} not found.`);
        printShow({ ...found } as unknown as JsonObject, o.format, { ...outputOptions(o), out: ctx.out });
      }),
    );

  const template = stack.command('template').description('The template of a stack.');
  stackCommand(template, 'show', 'Show the template the stack was last created or updated with.')
    .argument('<name>', 'the stack name or id')
    .action((name: string, o: StackOptions) =>
      withStacks(o, ctx, async (_rt, stacks) => {
        const instance = await stacks.instance(await stacks.get(name, o.project));
        if (!instance) throw new StokerError('STOKER_STACK_NOT_FOUND', `stack ${name} has no template`);
        emitDocument(instance.template.source as JsonObject, o, ctx);
      }),
    );
  const environment = stack.command('environment').description('The environment of a stack.');
  stackCommand(environment, 'show', 'Show the environment the stack was last created or updated with (merged).')
    .argument('<name>', 'the stack name or id')
    .action((name: string, o: StackOptions) =>
      withStacks(o, ctx, async (_rt, stacks) => {
        const row = await stacks.get(name, o.project);
        const body = row.templateSet ? await stacks.setBody(row.templateSet) : null;
        const env = body?.environment;
        const record: JsonObject = {
          parameters: env?.parameters ?? {},
          parameter_defaults: env?.parameterDefaults ?? {},
          resource_registry: (env?.resourceRegistry as unknown as JsonObject) ?? { resources: {} },
          event_sinks: env?.eventSinks ?? [],
        };
        emitDocument(record, o, ctx);
      }),
    );
}

/** A document (template, environment): YAML by default, JSON with -f json. */
function emitDocument(doc: JsonObject, o: StackOptions, ctx: CliContext): void {
  if (o.format === 'json') ctx.out(`${JSON.stringify(doc, null, o.noindent ? undefined : 2)}\n`);
  else ctx.out(pyYamlDump(doc));
}

async function showStack(stacks: Orchestrator, row: StackRow, o: StackOptions, ctx: CliContext, withOutputs: boolean): Promise<void> {
  const live = row.deletedAt === null;
  const instance = live ? await stacks.instance(row) : null;
  const outputs = withOutputs && live && row.status === 'COMPLETE' ? await stacks.outputs(row) : withOutputs ? [] : null;
  printShow(stackJson(row, instance, outputs), o.format, { ...outputOptions(o), out: ctx.out });
}

function failIfFailed(row: StackRow, ctx: CliContext): void {
  if (row.status === 'FAILED') {
    ctx.note(`stack ${row.name} ${stackStatus(row)}: ${row.statusReason}`);
    ctx.exitCode = ExitCode.RUN_UNSUCCESSFUL;
  }
}

/** The request of `create`/`update` from the flags: files read next to the template, environments in order. */
async function buildRequest(o: ActionOptions): Promise<StackRequest> {
  const files = readStackFiles(o.template, o.environment ?? []);
  const request: StackRequest = {
    files: files.files,
    environments: files.environments,
    parameters: parseParameters(o.parameter ?? []),
  };
  if (files.template !== undefined) request.template = files.template;
  if (o.timeout !== undefined) request.timeoutMins = o.timeout;
  if (o.tags !== undefined)
    request.tags = o.tags
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
  return request;
}

/** `--parameter k=v` (and heatclient's `k1=v1;k2=v2`) */
export function parseParameters(values: readonly string[]): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const value of values) {
    for (const part of value.split(';')) {
      if (part.trim() === '') continue;
      const eq = part.indexOf('=');
      if (eq <= 0) throw new StokerError('STOKER_CLI_USAGE', `--parameter expects key=value, got ${JSON.stringify(part)}`);
      out[part.slice(0, eq).trim()] = part.slice(eq + 1);
    }
  }
  return out;
}

/** Runs `fn` with a runtime on the store (an engine only with --wait), stopped afterwards. */
async function withStacks(
  o: StackOptions & { wait?: boolean },
  ctx: CliContext,
  fn: (rt: Runtime, stacks: Orchestrator) => Promise<void>,
): Promise<void> {
  const plugins = o.plugins ? await loadPluginsModule(o.plugins) : [];
  const runtime = await openRuntime(
    { ...o, format: 'table' },
    {
      engines: o.wait ? 1 : 0,
      orchestration: {
        plugins,
        ...(o.allowLocalCommands ? { allowLocalCommands: true } : {}),
        ...(o.maxResourcesPerStack !== undefined ? { limits: { maxResourcesPerStack: o.maxResourcesPerStack } } : {}),
      },
    },
    o.wait ? 'stack-wait' : 'cli',
  );
  try {
    await fn(runtime, runtime.stacks!);
  } finally {
    await runtime.stop({ timeoutMs: 5_000 });
  }
}

/** Runs an engine here and prints the stack's new events on stderr until its action ends. */
async function waitForAction(rt: Runtime, stacks: Orchestrator, row: StackRow, ctx: CliContext, o: StackOptions): Promise<StackRow> {
  const shutdown = watchShutdown(ctx, 'stopping the engine of this process (the stack action goes on elsewhere)');
  await rt.start();
  let seen = 0;
  const known = await stacks.events(row);
  seen = known.filter((e) => e.status.endsWith('IN_PROGRESS') && e.resourceName === row.name).pop()?.id ?? 0;
  seen = Math.max(0, seen - 1);
  let interrupted = false;
  void shutdown.requested.then(() => (interrupted = true));
  for (;;) {
    for (const e of await stacks.stacks.sql.read('list stack events', (s) => stacks.stacks.events(s, row.id, { afterId: seen }))) {
      ctx.note(eventLogLine(e, row.name));
      seen = e.id;
    }
    const current = await stacks.get(row.id, o.project, { deleted: true });
    if (current.status !== 'IN_PROGRESS') {
      shutdown.dispose?.();
      return current;
    }
    if (interrupted) {
      throw new StokerError(
        'STOKER_RUN_WAIT_TIMEOUT',
        `stopped waiting for stack ${row.name} (${stackStatus(current)}); it goes on when an engine runs`,
      );
    }
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

function ask(question: string): Promise<string> {
  return new Promise((resolve) => {
    process.stderr.write(question);
    process.stdin.setEncoding('utf8');
    process.stdin.once('data', (d) => {
      process.stdin.pause();
      resolve(String(d));
    });
  });
}
