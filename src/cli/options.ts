/**
 * Flags shared by the commands, and where their values come from: flag > environment
 * variable `STOKER_*` > default (src/cli/options.ts). Only the CLI reads `process.env`; the
 * runtime gets plain values.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ValidationError } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../runtime/create-runtime.js';
import { OUTPUT_FORMATS, type OutputFormat } from './format.js';

/** The store a command uses without `--store` or `STOKER_STORE`. */
export const DEFAULT_STORE_URL = 'sqlite:./.stoker/stoker.db';

/** Options every command accepts. */
export interface CommonOptions {
  store: string;
  format: OutputFormat;
  logLevel: LogLevel;
  tablePrefix?: string;
}

/** Adds `--store`, `-f/--format`, `--table-prefix` and `--log-level` to a command. */
export function withCommonOptions(
  cmd: Command,
  defaults: { store?: string; storeEnv?: boolean; logLevel?: LogLevel; format?: false } = {},
): Command {
  const store = new Option('--store <url>', 'database: sqlite:PATH, postgres://…, mysql://…').default(defaults.store ?? DEFAULT_STORE_URL);
  if (defaults.storeEnv !== false) store.env('STOKER_STORE');
  cmd.addOption(store);
  // commands printing as the openstack client does bring their own -f (openstack-output.ts)
  if (defaults.format !== false)
    cmd.addOption(new Option('-f, --format <format>', 'output format').choices([...OUTPUT_FORMATS]).default('table'));
  return cmd
    .addOption(new Option('--table-prefix <prefix>', "prefix of Stoker's tables (default stoker_)").env('STOKER_TABLE_PREFIX'))
    .addOption(
      new Option('--log-level <level>', 'engine log lines (JSON) on stderr at this level or above')
        .choices([...LOG_LEVELS])
        .env('STOKER_LOG_LEVEL')
        .default(defaults.logLevel ?? 'warn'),
    );
}

/** Adds `--flows MODULE` (env STOKER_FLOWS). */
export function withFlowsOption(
  cmd: Command,
  description = 'flows module (.js, .mjs, .ts, .mts) that default-exports an array of flows',
): Command {
  return cmd.addOption(new Option('--flows <module>', description).env('STOKER_FLOWS'));
}

/**
 * Adds `--amqp URL` (env `STOKER_AMQP`): RabbitMQ for instant wake-ups and remote tasks
 * (docs/amqp.md). Checked and connected before the store is opened: a malformed URL exits 2,
 * an unreachable broker or refused credentials exit 9, within the connect timeout.
 */
export function withAmqpOption(
  cmd: Command,
  description = 'RabbitMQ URL (amqp://user:password@host:5672/vhost): instant wake-ups across processes',
): Command {
  return cmd.addOption(new Option('--amqp <url>', description).env('STOKER_AMQP'));
}

/** Adds `--amqp-key KEY` (env `STOKER_AMQP_KEY`): the key shared by engines and workers to sign remote-task messages. */
export function withAmqpKeyOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('--amqp-key <key>', 'shared key (16+ characters) signing remote-task messages; prefer the environment variable').env(
      'STOKER_AMQP_KEY',
    ),
  );
}

/** A commander parser for a comma-separated list of names (`a,b,c`). */
export function nameListOption(value: string): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError('expected one or more names separated by commas');
  return names;
}

/** A commander parser for an integer flag in [min, max]. */
export function intOption(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        `expected an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}, got "${value}"`,
      );
    }
    return n;
  };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration: a number with a unit (`500ms`, `45s`, `90m`, `12h`, `30d`), or plain
 * milliseconds. Throws a message naming the accepted forms.
 */
export function parseDuration(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']! : NaN;
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(`expected a duration such as 500ms, 45s, 90m, 12h or 30d (or milliseconds), got "${value}"`);
  }
  return Math.round(ms);
}

/**
 * Parses the age of data to delete (`runs prune --older-than`, `engine --retention`): a
 * number with a unit (`45s`, `90m`, `12h`, `30d`). A bare number is refused: read as
 * milliseconds, `--older-than 3` deleted every finished run.
 */
export function parseAge(value: string): number {
  if (!/^\s*\d+(?:\.\d+)?\s*(ms|s|m|h|d)\s*$/.test(value)) {
    throw new InvalidArgumentError(`expected an age with a unit, such as 45s, 90m, 12h or 30d, got "${value}"`);
  }
  return parseDuration(value);
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2 };

/** Bounds of the size flags: the engine's (src/engine/engine.ts, MAX_BYTE_LIMIT). */
const MIN_BYTES = 1024;
const MAX_BYTES = 64 * 1024 * 1024;

/**
 * Parses a size: bytes, or a number with a binary unit (`512KiB`, `4MiB`; `K`/`KB` and `M`/`MB`
 * mean the same), from 1 KiB to 64 MiB.
 */
export function parseBytes(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < MIN_BYTES || bytes > MAX_BYTES) {
    throw new InvalidArgumentError(`expected a size from 1KiB to 64MiB, such as 262144, 512KiB or 4MiB, got "${value}"`);
  }
  return bytes;
}

/** The size limits a command may raise (`--max-args-bytes`, `--max-result-bytes`). */
export interface SizeLimitOptions {
  maxArgsBytes?: number;
  maxResultBytes?: number;
}

/**
 * Adds the size-limit flags (with their STOKER_* variables). Values bigger than the defaults
 * are stored in rows and read back with their runs: prefer references to big data.
 */
export function withSizeLimitOptions(cmd: Command, which: { args: boolean; results: boolean }): Command {
  if (which.args)
    cmd.addOption(
      new Option('--max-args-bytes <size>', 'largest run arguments accepted (default 1MiB; up to 64MiB)')
        .argParser(parseBytes)
        .env('STOKER_MAX_ARGS_BYTES'),
    );
  if (which.results)
    cmd.addOption(
      new Option('--max-result-bytes <size>', 'largest task result or signal payload accepted (default 256KiB; up to 64MiB)')
        .argParser(parseBytes)
        .env('STOKER_MAX_RESULT_BYTES'),
    );
  return cmd;
}

/** The runtime options for the size flags that were given. */
export function sizeLimits(o: SizeLimitOptions): SizeLimitOptions {
  return {
    ...(o.maxArgsBytes !== undefined ? { maxArgsBytes: o.maxArgsBytes } : {}),
    ...(o.maxResultBytes !== undefined ? { maxResultBytes: o.maxResultBytes } : {}),
  };
}

/** A usage error (exit code 2). */
export function usageError(message: string): ValidationError {
  return new ValidationError('STOKER_CLI_USAGE', message);
}

/** The `--flows` value, or a usage error that says how to give it. */
export function requireFlows(flows: string | undefined, command: string): string {
  if (flows === undefined || flows.trim() === '') {
    throw usageError(`${command} needs a flows module: pass --flows MODULE (or set STOKER_FLOWS)`);
  }
  return flows;
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*):[^@/]*@/i, '$1:***@');
}
