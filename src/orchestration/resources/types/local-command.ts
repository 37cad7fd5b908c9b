/**
 * Stoker::Local::Command: runs programs on the engine's own machine, one per action: `create`
 * when the resource is created, `update` when it is updated, `delete` when it is deleted. A
 * command is an argv list (program, then arguments), started directly, never through a shell,
 * so nothing in it is expanded or split. Its trimmed standard output (the first
 * {@link MAX_STDOUT_BYTES} bytes) is the attribute `stdout`; a non-zero exit fails the
 * operation with the exit code and the end of its standard error.
 *
 * Off unless the host enables it (`allowLocalCommands`, the CLI's `--allow-local-commands`):
 * a template that may run commands may do anything the engine's user may. Disabled, the type
 * is still registered (templates validate, `resource type show` shows it) and refuses every
 * operation that would run a command, except the delete of a resource that never got a
 * physical id (its create was refused, so there is nothing to undo and a rollback can finish).
 *
 * The physical id is a UUID derived from the create's idempotency key. A create executed again
 * after an engine crash runs the command again: commands get `STOKER_IDEMPOTENCY_KEY` (the same
 * in both executions) to recognise that, besides `STOKER_ACTION` (CREATE, UPDATE, DELETE),
 * `STOKER_PHYSICAL_ID`, `STOKER_RESOURCE_NAME`, `STOKER_STACK_NAME` and `STOKER_STACK_ID`. The
 * rest of the environment is the host's base environment (`localCommandEnv`; none by default),
 * then the `env` property.
 *
 * Without an `update` command a change of `env` or `cwd` replaces the resource (create runs
 * again for the replacement, then delete for the old one), as does any change of `create`.
 * A timeout or an abort (stack cancel, engine shutdown) sends SIGTERM to the command's process
 * group, then SIGKILL {@link KILL_GRACE_MS} ms later, and the operation ends only once the
 * command has exited. Processes a command leaves running in the background after it exits on
 * its own are not touched.
 */
import { spawn } from 'node:child_process';
import type { JsonObject, JsonValue } from '../../../core/json.js';
import { isMapping, pyStr } from '../../template/python-values.js';
import { abortReason } from '../abortable-sleep.js';
import { deterministicUuid } from '../physical-ids.js';
import { supported, type PropertiesSchema, type PropertySchema } from '../property-schema.js';
import { ResourceFailure } from '../resource-failure.js';
import { REPLACE, type OperationContext, type ResourceType } from '../resource-type.js';
import { heatPath } from '../validate-properties.js';

const TYPE = 'Stoker::Local::Command';
/** How long a command may take to exit after SIGTERM before it (and its process group) gets SIGKILL. */
const KILL_GRACE_MS = 2000;
/** The standard output kept for the `stdout` attribute; the rest is read and dropped. */
const MAX_STDOUT_BYTES = 1024 * 1024;
/** The end of standard error kept for a failure message. */
const STDERR_TAIL_BYTES = 4096;
/** How much of standard error a failure message quotes. */
const EXCERPT_CHARS = 500;
/** After the command exits, how long to wait for its output pipes to close (a background child may hold them). */
const CLOSE_WAIT_MS = 500;
/** Environment variables Stoker sets for every command. */
const RESERVED_ENV = [
  'STOKER_ACTION',
  'STOKER_IDEMPOTENCY_KEY',
  'STOKER_PHYSICAL_ID',
  'STOKER_RESOURCE_NAME',
  'STOKER_STACK_ID',
  'STOKER_STACK_NAME',
] as const;

type Action = 'create' | 'update' | 'delete';

/**
 * Options of {@link localCommandType}, given by the host (createBuiltinRegistry's
 * `allowLocalCommands` and `localCommandEnv`).
 *
 * @example
 * ```ts
 * const options: LocalCommandOptions = { allow: true, env: { PATH: '/usr/bin:/bin', HOME: '/var/lib/stoker' } };
 * ```
 */
export interface LocalCommandOptions {
  /** run the commands; false (the default) refuses every operation that would run one */
  allow?: boolean;
  /** the environment every command starts from (undefined values are left out); default: none */
  env?: Readonly<Record<string, string | undefined>>;
}

const command = (description: string, more: Partial<PropertySchema> = {}): PropertySchema =>
  ({ type: 'list', description, schema: { type: 'string' }, ...more }) as PropertySchema;

const PROPERTIES: PropertiesSchema = {
  create: command(
    'The command run by a create: the program (a path, or a name looked up in PATH), then its arguments. A change replaces the resource.',
    {
      required: true,
      constraints: [{ length: { min: 1 } }],
    },
  ),
  update: command('The command run by an update that changes update, env or cwd; without one, such a change replaces the resource.', {
    updateAllowed: true,
  }),
  delete: command('The command run by a delete; without one, a delete runs nothing.', { updateAllowed: true }),
  env: {
    type: 'map',
    description: 'Environment variables of the commands, name to string value, over the engine-given base environment.',
    updateAllowed: true,
  },
  cwd: {
    type: 'string',
    description: "The working directory of the commands (default: the engine's).",
    updateAllowed: true,
  },
  timeout: {
    type: 'number',
    description: 'Seconds a command may run before it is killed and the operation fails.',
    default: 300,
    updateAllowed: true,
    constraints: [{ range: { min: 0.1 } }],
  },
};

/** An argv from a validated command property; empty when there is none. */
function argvOf(value: JsonValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** An environment value as text: strings as they are, integers and booleans as a string property converts them. */
function envValue(value: JsonValue | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || (typeof value === 'number' && Number.isInteger(value))) return pyStr(value);
  return undefined;
}

const hasNul = (s: string): boolean => s.includes('\0');

/** Whether the update is a replacement: a new create command, or a changed env/cwd that no update command can apply. */
function replaces(changed: ReadonlySet<string>, after: JsonObject): boolean {
  return changed.has('create') || (argvOf(after['update']).length === 0 && (changed.has('env') || changed.has('cwd')));
}

function validate(properties: JsonObject, path: string): string | undefined {
  const at = (...segments: string[]): string => heatPath(path === '' ? 'properties' : `${path}.properties`, segments);
  for (const action of ['create', 'update', 'delete'] as const) {
    const argv = argvOf(properties[action]);
    if (argv.length > 0 && argv[0] === '') return `Property error: ${at(action)}: the program (the first item) must not be empty`;
    if (argv.some(hasNul)) return `Property error: ${at(action)}: a command must not contain NUL characters`;
  }
  const env = properties['env'];
  if (isMapping(env)) {
    for (const [name, value] of Object.entries(env)) {
      if (name === '' || name.includes('=') || hasNul(name)) return `Property error: ${at('env')}: "${name}" is not a valid variable name`;
      if ((RESERVED_ENV as readonly string[]).includes(name)) return `Property error: ${at('env', name)}: Stoker sets ${name} itself`;
      const v = envValue(value);
      if (v === undefined || hasNul(v)) return `Property error: ${at('env', name)}: the value must be a string`;
    }
  }
  const cwd = properties['cwd'];
  if (typeof cwd === 'string' && hasNul(cwd)) return `Property error: ${at('cwd')}: must not contain NUL characters`;
  return undefined;
}

/** Bytes of one output stream: the first `limit` (stdout) or the last `limit` (stderr). */
class Capture {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly limit: number,
    private readonly keep: 'head' | 'tail',
  ) {}

  add(chunk: Buffer): void {
    if (this.keep === 'head') {
      if (this.size >= this.limit) return;
      const piece = chunk.subarray(0, this.limit - this.size);
      this.chunks.push(piece);
      this.size += piece.length;
    } else {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size > this.limit * 2) this.compact();
    }
  }

  text(): string {
    this.compact();
    return Buffer.concat(this.chunks).toString('utf8');
  }

  private compact(): void {
    const all = Buffer.concat(this.chunks);
    const kept = this.keep === 'tail' && all.length > this.limit ? all.subarray(all.length - this.limit) : all;
    this.chunks = [kept];
    this.size = kept.length;
  }
}

/** How a command ended on its own. */
interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunSpec {
  argv: string[];
  env: Record<string, string>;
  cwd: string | undefined;
  timeoutMs: number;
  signal: AbortSignal;
  /** names the command in messages: `create command /usr/bin/node` */
  label: string;
}

/** The last part of stderr for a message: whitespace collapsed, at most {@link EXCERPT_CHARS}. */
function excerpt(stderr: string): string {
  const flat = stderr.replace(/\s+/g, ' ').trim();
  return flat.length <= EXCERPT_CHARS ? flat : `…${flat.slice(flat.length - EXCERPT_CHARS)}`;
}

function startFailure(spec: RunSpec, error: unknown): ResourceFailure {
  const why = error instanceof Error ? error.message : String(error);
  const where = spec.cwd === undefined ? '' : ` in ${spec.cwd}`;
  return new ResourceFailure('CommandError', `${spec.label} could not be started${where}: ${why}`, { cause: error });
}

/**
 * Runs `spec.argv` without a shell, in a process group of its own (POSIX), so that a timeout
 * or an abort can signal the command and whatever it started. Resolves when it exits on its
 * own; rejects with the abort reason, a Timeout failure, or a failure to start it, in every
 * case only after the command has exited.
 */
function execute(spec: RunSpec): Promise<Exit> {
  return new Promise<Exit>((resolve, reject) => {
    if (spec.signal.aborted) return reject(abortReason(spec.signal));
    const group = process.platform !== 'win32';
    const [file, ...args] = spec.argv;
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(file!, args, {
        cwd: spec.cwd,
        env: spec.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: group,
        shell: false,
        windowsHide: true,
      });
    } catch (e) {
      return reject(startFailure(spec, e));
    }
    const stdout = new Capture(MAX_STDOUT_BYTES, 'head');
    const stderr = new Capture(STDERR_TAIL_BYTES, 'tail');
    child.stdout?.on('data', (c: Buffer) => stdout.add(c));
    child.stderr?.on('data', (c: Buffer) => stderr.add(c));

    let stopping: 'abort' | 'timeout' | undefined;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

    const kill = (sig: NodeJS.Signals): void => {
      try {
        if (group && child.pid !== undefined) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // the group is gone already
      }
    };
    const stop = (why: 'abort' | 'timeout'): void => {
      if (stopping !== undefined || exit !== undefined) return;
      stopping = why;
      kill('SIGTERM');
      killTimer = setTimeout(() => kill('SIGKILL'), KILL_GRACE_MS);
    };
    const onAbort = (): void => stop('abort');
    spec.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => stop('timeout'), spec.timeoutMs);

    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      clearTimeout(closeTimer);
      spec.signal.removeEventListener('abort', onAbort);
      child.stdout?.destroy();
      child.stderr?.destroy();
      if (error) return reject(error);
      if (stopping === 'abort') return reject(abortReason(spec.signal));
      if (stopping === 'timeout') {
        const quoted = excerpt(stderr.text());
        return reject(
          new ResourceFailure(
            'Timeout',
            `${spec.label} timed out after ${spec.timeoutMs / 1000} s${quoted === '' ? '' : `; stderr: ${quoted}`}`,
          ),
        );
      }
      resolve({ code: exit?.code ?? null, signal: exit?.signal ?? null, stdout: stdout.text(), stderr: stderr.text() });
    };

    child.on('error', (e) => {
      // no pid: it never started (no such program, no permission, a bad cwd)
      if (child.pid === undefined) finish(startFailure(spec, e));
    });
    child.on('exit', (code, sig) => {
      exit = { code, signal: sig };
      // a stopped command's children go with it, whether or not they heeded SIGTERM
      if (stopping !== undefined) kill('SIGKILL');
      clearTimeout(killTimer);
      closeTimer = setTimeout(() => finish(), CLOSE_WAIT_MS);
    });
    child.on('close', () => {
      if (exit !== undefined) finish();
    });
  });
}

function disabled(action: Action, resourceName: string): ResourceFailure {
  return new ResourceFailure(
    'Forbidden',
    `Local commands are disabled: ${resourceName} (${TYPE}) cannot run its ${action} command. Start the engine with --allow-local-commands (the allowLocalCommands option) to let templates run programs on its machine.`,
  );
}

/** The command's trimmed stdout, after it exited with 0; a failure for anything else. */
async function run(ctx: OperationContext, options: LocalCommandOptions, action: Action, physicalId: string): Promise<string> {
  if (options.allow !== true) throw disabled(action, ctx.resourceName);
  const argv = argvOf(ctx.properties[action]);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.env ?? {})) if (v !== undefined) env[k] = v;
  const own = ctx.properties['env'];
  if (isMapping(own)) {
    for (const [k, v] of Object.entries(own)) {
      const value = envValue(v);
      if (value !== undefined) env[k] = value;
    }
  }
  Object.assign(env, {
    STOKER_ACTION: action.toUpperCase(),
    STOKER_IDEMPOTENCY_KEY: ctx.idempotencyKey,
    STOKER_PHYSICAL_ID: physicalId,
    STOKER_RESOURCE_NAME: ctx.resourceName,
    STOKER_STACK_ID: ctx.stack.id,
    STOKER_STACK_NAME: ctx.stack.name,
  } satisfies Record<(typeof RESERVED_ENV)[number], string>);
  const cwd = ctx.properties['cwd'];
  const secs = ctx.properties['timeout'];
  const label = `${action} command ${argv[0] ?? ''}`;
  const exit = await execute({
    argv,
    env,
    cwd: typeof cwd === 'string' && cwd !== '' ? cwd : undefined,
    timeoutMs: (typeof secs === 'number' && secs > 0 ? secs : 300) * 1000,
    signal: ctx.signal,
    label,
  });
  if (exit.code !== 0) {
    const how = exit.code === null ? `was killed by ${exit.signal ?? 'a signal'}` : `exited with code ${exit.code}`;
    const quoted = excerpt(exit.stderr);
    throw new ResourceFailure('CommandError', `${label} ${how}${quoted === '' ? '' : `; stderr: ${quoted}`}`);
  }
  return exit.stdout.trim();
}

/**
 * The Stoker::Local::Command type; `options.allow` must be true for it to run anything.
 *
 * @example
 * ```ts
 * const type = localCommandType({ allow: true, env: { PATH: '/usr/bin:/bin' } });
 * // in a template:
 * //   dns:
 * //     type: Stoker::Local::Command
 * //     properties:
 * //       create: [/usr/local/bin/dnsctl, add, web.internal, 10.0.0.5]
 * //       delete: [/usr/local/bin/dnsctl, remove, web.internal]
 * //       env: { DNSCTL_ZONE: internal }
 * ```
 */
export function localCommandType(options: LocalCommandOptions = {}): ResourceType {
  return {
    type: TYPE,
    description:
      "Runs a program on the engine's machine on create, update and delete (argv lists, no shell). Disabled unless the engine runs with --allow-local-commands.",
    supportStatus: supported('0.1.0'),
    properties: PROPERTIES,
    attributes: {
      stdout: { description: 'The standard output of the last create or update command, trimmed.', type: 'string' },
    },
    validate(properties, context) {
      return validate(properties, context.path);
    },
    needsReplace(changed, after) {
      return replaces(changed, after);
    },
    async create(ctx) {
      const physicalId = deterministicUuid(ctx.idempotencyKey, TYPE);
      const stdout = await run(ctx, options, 'create', physicalId);
      return { physicalId, data: { stdout } };
    },
    async update(ctx) {
      if (replaces(new Set(ctx.changed), ctx.properties)) return REPLACE;
      const runs = argvOf(ctx.properties['update']).length > 0 && ctx.changed.some((k) => k === 'update' || k === 'env' || k === 'cwd');
      if (!runs) return { physicalId: ctx.physicalId, data: ctx.data };
      const stdout = await run(ctx, options, 'update', ctx.physicalId ?? '');
      return { physicalId: ctx.physicalId, data: { stdout } };
    },
    async delete(ctx) {
      if (argvOf(ctx.properties['delete']).length === 0) return;
      // never created (its create was refused, say): with commands disabled there is nothing to undo
      if (options.allow !== true && ctx.physicalId === null) return;
      await run(ctx, options, 'delete', ctx.physicalId ?? '');
    },
    async attribute(name, ctx) {
      return name === 'stdout' ? (ctx.data['stdout'] ?? null) : null;
    },
  };
}
