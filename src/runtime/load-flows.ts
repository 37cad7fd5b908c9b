/**
 * Loading a *flows module*: the file `--flows` names, which default-exports an array of
 * root flows (README.md). `.js`/`.mjs` files are imported as they are;
 * `.ts`/`.mts` files go through tsx's ESM loader, registered once per process, so users
 * need no build step for their flows.
 */
import { spawnSync } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StokerError, isStokerError } from '../errors.js';
import { isCompiledFlow, isFlowDefinition, isRetryController, isTaskDefinition } from '../flow/guards.js';
import { FlowRegistry } from '../flow/registry.js';
import type { CompiledFlow } from '../flow/types.js';

/** Extensions a flows module may have. */
export const FLOWS_MODULE_EXTENSIONS: readonly string[] = ['.js', '.mjs', '.ts', '.mts'];

const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts']);

let tsxRegistered: Promise<void> | null = null;

/** Registers tsx's ESM hooks once, so that `import()` of a `.ts` file works under plain node. */
function registerTypeScript(): Promise<void> {
  // Both hooks: in a package without "type": "module", Node loads a .ts file as CommonJS, and
  // the ESM hooks alone hand its source to Node untransformed (a type annotation is then a
  // syntax error).
  tsxRegistered ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    esm.register();
    cjs.register();
  });
  return tsxRegistered;
}

function invalid(
  file: string,
  problem: string,
  options: { cause?: unknown; details?: Record<string, string | number | null> } = {},
): StokerError {
  return new StokerError('STOKER_FLOWS_MODULE_INVALID', `flows module ${file} ${problem}`, {
    cause: options.cause,
    details: { file, ...options.details },
  });
}

/** A short, human description of a value that is not a flow. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isTaskDefinition(value)) return `a task (${JSON.stringify(value.name)}), not a flow: wrap it, e.g. linear('my-flow', [thatTask])`;
  if (isRetryController(value)) return 'a retry controller, not a flow';
  if (typeof value === 'object') {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof ctor === 'string' && ctor !== 'Object' ? `a ${ctor} object` : 'a plain object that is not a flow';
  }
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}: export the flow it returns, not the function`;
  return `a ${typeof value} (${JSON.stringify(value)?.slice(0, 40) ?? String(value)})`;
}

/**
 * Imports a user module (`.js`, `.mjs`, `.ts`, `.mts`; TypeScript through tsx), turning
 * every problem (missing file, extension, syntax error with its line, an error thrown while
 * loading) into the error `invalid` builds, with a message naming the file.
 */
export async function importUserModule(
  path: string,
  invalid: (problem: string, options?: { cause?: unknown; details?: Record<string, string | number | null> }) => StokerError,
): Promise<Record<string, unknown>> {
  const absolute = resolve(path);
  const ext = extname(absolute).toLowerCase();
  try {
    const info = await stat(absolute);
    if (!info.isFile()) throw invalid('is not a file');
  } catch (e) {
    if (isStokerError(e)) throw e;
    throw invalid(`was not found (looked for ${absolute})`, { cause: e });
  }
  if (!FLOWS_MODULE_EXTENSIONS.includes(ext)) {
    throw invalid(`has an unsupported extension "${ext}" (use one of ${FLOWS_MODULE_EXTENSIONS.join(', ')})`);
  }
  let mod: Record<string, unknown>;
  try {
    if (TYPESCRIPT_EXTENSIONS.has(ext)) await registerTypeScript();
    mod = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const tsSyntax = TYPESCRIPT_EXTENSIONS.has(ext) ? await typeScriptSyntaxError(absolute) : null;
    if (tsSyntax) {
      throw invalid(
        `has a syntax error at line ${tsSyntax.line}, column ${tsSyntax.column} (${JSON.stringify(tsSyntax.text.trim().slice(0, 80))}): ${tsSyntax.message}`,
        {
          cause: e,
          details: { line: tsSyntax.line },
        },
      );
    }
    if (e instanceof SyntaxError) {
      const at = syntaxErrorLocation(e, absolute, ext);
      const where = at ? ` at line ${at.line} (${JSON.stringify(at.text.trim().slice(0, 80))})` : '';
      throw invalid(`has a syntax error${where}: ${firstLine(message)}`, { cause: e, details: { line: at?.line ?? null } });
    }
    // tsx compiles with esbuild, which reports "Transform failed with 1 error:\n<file>:<line>:<col>: ERROR: <text>"
    const esbuild = /^.*:(\d+):(\d+): ERROR: (.*)$/m.exec(message);
    if (esbuild) {
      throw invalid(`has a syntax error at line ${esbuild[1]}, column ${esbuild[2]}: ${esbuild[3]}`, {
        cause: e,
        details: { line: Number(esbuild[1]) },
      });
    }
    const at = thrownAt(e);
    throw invalid(`failed to load: ${firstLine(message)}${at ? ` (thrown at ${at}; --log-level debug shows the stack)` : ''}`, {
      cause: e,
      details: { thrownAt: at },
    });
  }

  // A TypeScript module Node loaded as CommonJS (its package has no "type": "module") comes
  // back as { default: module.exports }, with its own exports one level down.
  const inner = mod.default as { __esModule?: unknown } | null | undefined;
  if (typeof inner === 'object' && inner !== null && inner.__esModule === true) return inner as Record<string, unknown>;
  return mod;
}

/**
 * Imports a flows module and registers each root flow of its default export in
 * `registry` (a new one when omitted). Returns the registered compiled flows, in the
 * order of the array.
 *
 * Every problem is a StokerError `STOKER_FLOWS_MODULE_INVALID` whose message names the
 * file: not found, unsupported extension, an error while loading (its message is
 * included and it is the `cause`), no default export, a default export that is not an
 * array, an element that is not a flow, or a flow that does not compile or register.
 *
 * @example
 * ```ts
 * const flows = new FlowRegistry();
 * const loaded = await loadFlowsModule('./flows/orders.ts', flows);
 * loaded.map((f) => f.name); // ['order', 'order-express']
 * ```
 */
export async function loadFlowsModule(path: string, registry: FlowRegistry = new FlowRegistry()): Promise<CompiledFlow[]> {
  const mod = await importUserModule(path, (problem, options) => invalid(path, problem, options));
  if (!('default' in mod) || mod.default === undefined) {
    const named = Object.keys(mod).filter((k) => k !== 'default');
    const hint = named.length > 0 ? ` (it exports ${named.slice(0, 10).join(', ')})` : '';
    throw invalid(path, `has no default export${hint}; add \`export default [myFlow, …]\``);
  }
  const list = mod.default;
  if (!Array.isArray(list)) {
    throw invalid(path, `must default-export an array of flows, but its default export is ${describe(list)}`);
  }
  if (list.length === 0) throw invalid(path, 'default-exports an empty array: export at least one flow');

  const compiled: CompiledFlow[] = [];
  list.forEach((item: unknown, i) => {
    if (!isFlowDefinition(item) && !isCompiledFlow(item)) {
      throw invalid(path, `default export element ${i} is ${describe(item)}`, { details: { element: i } });
    }
    try {
      compiled.push(registry.register(item));
    } catch (e) {
      const code = isStokerError(e) ? ` (${e.code})` : '';
      const message = e instanceof Error ? e.message : String(e);
      throw invalid(path, `element ${i}, flow ${JSON.stringify(item.name)}, cannot be registered: ${message}${code}`, {
        cause: e,
        details: { element: i, flow: item.name },
      });
    }
  });
  return compiled;
}

/**
 * The first syntax error of a TypeScript file, by esbuild (the compiler tsx uses, so it is
 * always installed next to tsx). Asked only after an import failed: depending on how tsx
 * loads a file (ESM or CommonJS), a syntax error can surface as an unrelated loader error.
 */
async function typeScriptSyntaxError(absolute: string): Promise<{ line: number; column: number; text: string; message: string } | null> {
  try {
    const requireFromTsx = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'));
    const esbuild = requireFromTsx('esbuild') as {
      transformSync(code: string, options: { loader: 'ts'; sourcefile: string; format: 'esm' }): unknown;
    };
    esbuild.transformSync(await readFile(absolute, 'utf8'), { loader: 'ts', sourcefile: absolute, format: 'esm' });
    return null;
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { line: number; column: number; lineText: string } | null }[] }).errors?.[0];
    if (!first?.location) return null;
    return { line: first.location.line, column: first.location.column + 1, text: first.location.lineText, message: first.text };
  }
}

/**
 * Where a syntax error is. tsx (and CommonJS) put `file:line` and the source line at the
 * top of the stack; Node's ESM loader does not, so for .js/.mjs files `node --check`
 * (a child process, only on this error path) reports it.
 */
function syntaxErrorLocation(error: SyntaxError, absolute: string, ext: string): { line: number; text: string } | null {
  const fromStack = (stack: string): { line: number; text: string } | null => {
    const lines = stack.split('\n');
    const i = lines.findIndex((l) => /:(\d+)$/.test(l) && (l.includes(absolute) || l.startsWith('file:')));
    if (i < 0) return null;
    return { line: Number(/:(\d+)$/.exec(lines[i]!)![1]), text: lines[i + 1] ?? '' };
  };
  const found = fromStack(error.stack ?? '');
  if (found || TYPESCRIPT_EXTENSIONS.has(ext)) return found;
  const check = spawnSync(process.execPath, ['--check', absolute], { encoding: 'utf8', timeout: 10_000 });
  return typeof check.stderr === 'string' ? fromStack(check.stderr) : null;
}

/**
 * Where an error thrown while a module loaded comes from: the first frame of its stack in a
 * file outside Node's internals and node_modules, as `path:line:column` relative to the
 * working directory (docs/errors.md, STOKER_FLOWS_MODULE_INVALID). Null when there is none.
 */
function thrownAt(error: unknown): string | null {
  if (!(error instanceof Error) || typeof error.stack !== 'string') return null;
  for (const line of error.stack.split('\n').slice(1)) {
    const m = /^\s*at (?:.*\()?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?$/.exec(line);
    if (!m || m[1]!.includes('/node_modules/')) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    const rel = relative(process.cwd(), file);
    return `${rel.startsWith('..') ? file : rel}:${m[2]}:${m[3]}`;
  }
  return null;
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim().length > 0) ?? text;
  return line.trim();
}
