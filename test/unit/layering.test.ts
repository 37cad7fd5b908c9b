/**
 * The layering of src/ (ARCHITECTURE.md, "Folders"), checked over the import
 * lines of every source file, independently of ESLint, so that `npm test` fails too.
 *
 * eslint.config.js carries the same rules as `no-restricted-imports` patterns, which match
 * specifiers as written; this test resolves every relative specifier to a file first, so it
 * is the exact version. It also checks what a pattern cannot: that importing the package
 * root never loads a database or AMQP driver (drivers are loaded lazily).
 */
import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ---------------------------------------------------------------------------------------
// Reading import lines

interface ImportLine {
  /** importing file, relative to the repository root (`src/engine/engine.ts`) */
  file: string;
  line: number;
  specifier: string;
  /** `import type …` / `export type … from` (erased from the emitted JavaScript) */
  typeOnly: boolean;
  /** `import('…')`: loaded lazily, so it does not count as loading at import time */
  dynamic: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(posix.join(ROOT, dir), { withFileTypes: true })) {
    const rel = posix.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(rel));
    else if (/\.(?:ts|mts|cts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out.sort();
}

function importLines(file: string, text = readFileSync(posix.join(ROOT, file), 'utf8')): ImportLine[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: ImportLine[] = [];
  const add = (node: ts.Node, literal: ts.Expression, typeOnly: boolean, dynamic: boolean): void => {
    if (!ts.isStringLiteralLike(literal)) return;
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    out.push({ file, line, specifier: literal.text, typeOnly, dynamic });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.importClause?.isTypeOnly ?? false, false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node, node.moduleSpecifier, node.isTypeOnly, false);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly, false);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0]) {
      add(node, node.arguments[0], false, true);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      // `import('x').T` in a type position: a type-only reference
      add(node, node.argument.literal, true, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

// ---------------------------------------------------------------------------------------
// Resolving a specifier

type Target = { kind: 'module'; path: string } | { kind: 'package'; name: string } | { kind: 'builtin'; name: string };

const BUILTINS = new Set(builtinModules);

function resolveTarget(file: string, specifier: string): Target {
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    const joined = posix.normalize(posix.join(posix.dirname(file), specifier));
    return { kind: 'module', path: toSourcePath(joined) };
  }
  if (specifier.startsWith('node:') || BUILTINS.has(specifier)) {
    return { kind: 'builtin', name: specifier.replace(/^node:/, '') };
  }
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
  return { kind: 'package', name };
}

/** `x.js` → `x.ts` (nodenext specifiers name the emitted file), a folder → its index.ts. */
function toSourcePath(path: string): string {
  const exists = (p: string): boolean => existsSync(posix.join(ROOT, p)) && statSync(posix.join(ROOT, p)).isFile();
  const candidates = [
    path.replace(/\.js$/, '.ts'),
    path.replace(/\.mjs$/, '.mts'),
    path.replace(/\.cjs$/, '.cts'),
    path,
    `${path}.ts`,
    `${path}/index.ts`,
  ];
  return candidates.find(exists) ?? path.replace(/\.js$/, '.ts');
}

// ---------------------------------------------------------------------------------------
// The rules

const under =
  (...dirs: string[]) =>
  (path: string): boolean =>
    dirs.some((d) => path.startsWith(`${d}/`));
const oneOf =
  (...paths: string[]) =>
  (path: string): boolean =>
    paths.includes(path);
const either =
  (...tests: ((path: string) => boolean)[]) =>
  (path: string): boolean =>
    tests.some((t) => t(path));

const DRIVER_FOLDERS = ['src/store/sqlite', 'src/store/postgres', 'src/store/mysql', 'src/transport/amqp'];
/** driver package → the folders that may import it */
const DRIVER_PACKAGES: Record<string, string[]> = {
  'better-sqlite3': ['src/store/sqlite', 'src/runtime'],
  pg: ['src/store/postgres', 'src/runtime'],
  'pg-cursor': ['src/store/postgres', 'src/runtime'],
  'pg-pool': ['src/store/postgres', 'src/runtime'],
  mysql2: ['src/store/mysql', 'src/runtime'],
  amqplib: ['src/transport/amqp', 'src/runtime'],
};
/** Node modules that do I/O, use timers or touch the process: not in the pure flow layer. */
const IMPURE_BUILTINS = new Set([
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'child_process',
  'dgram',
  'dns',
  'dns/promises',
  'tls',
  'cluster',
  'worker_threads',
  'os',
  'readline',
  'readline/promises',
  'process',
  'timers',
  'timers/promises',
  'perf_hooks',
  'inspector',
  'vm',
  'v8',
]);

const isCore = either(under('src/core'), oneOf('src/errors.ts'));

interface Rule {
  /** the importing files this rule governs */
  from: (file: string) => boolean;
  /** true when the import is forbidden */
  forbids: (target: Target, file: string) => boolean;
  why: string;
}

const mod =
  (test: (path: string) => boolean) =>
  (t: Target): boolean =>
    t.kind === 'module' && test(t.path);

const RULES: Rule[] = [
  {
    from: under('src'),
    forbids: mod((p) => !p.startsWith('src/')),
    why: 'src/ never imports from outside src/ (tests, bench, examples are not shipped)',
  },
  {
    from: under('src'),
    forbids: mod(oneOf('src/index.ts')),
    why: 'nothing inside src/ imports the public entry point src/index.ts',
  },
  {
    from: (f) => f.startsWith('src/') && !under('src/cli')(f),
    forbids: mod(under('src/cli')),
    why: 'only src/cli/ imports src/cli/ (exit codes and process handling live there)',
  },
  {
    from: isCore,
    forbids: mod((p) => !isCore(p)),
    why: 'src/core/ and src/errors.ts are the bottom layer: they import only each other',
  },
  {
    from: under('src/flow'),
    forbids: (t) =>
      (t.kind === 'module' && !under('src/flow')(t.path) && !isCore(t.path)) || (t.kind === 'builtin' && IMPURE_BUILTINS.has(t.name)),
    why: 'src/flow/ is pure: it may import only src/flow, src/core and src/errors.ts, and no I/O, timer or SQL module',
  },
  {
    from: under('src/store'),
    forbids: mod(under('src/engine', 'src/orchestration', 'src/runtime', 'src/api', 'src/views')),
    why: 'src/store/ knows SQL, not scheduling: it imports nothing of src/engine/ or above (the states it stores are its own, src/store/states.ts)',
  },
  {
    from: under('src/engine'),
    forbids: (t) => mod(under('src/orchestration', 'src/runtime', 'src/api', 'src/views', 'src/store/sql'))(t),
    why: 'src/engine/ knows scheduling, not templates or wiring, and reaches the database only through the Store port',
  },
  {
    from: under('src/transport'),
    forbids: mod(under('src/engine', 'src/orchestration', 'src/runtime', 'src/api')),
    why: 'src/transport/ sits beside src/store/: imports point down',
  },
  {
    from: under('src/orchestration'),
    forbids: (t) => mod(under('src/runtime', 'src/api', 'src/store/sql'))(t),
    why: 'src/orchestration/ is a user of the engine: imports point down',
  },
  {
    from: under('src/views'),
    forbids: (t) =>
      mod(under('src/engine', 'src/orchestration', 'src/runtime', 'src/api', 'src/cli', 'src/transport'))(t) || t.kind === 'package',
    why: 'src/views/ turns stored rows into JSON for every interface: it imports rows and core types only, no package',
  },
  {
    from: under('src/runtime'),
    forbids: mod(under('src/api')),
    why: 'src/runtime/ is wired by the interfaces (api, cli), never the reverse',
  },
  {
    from: under('src'),
    forbids: (t, file) => {
      if (t.kind !== 'module') return false;
      const folder = DRIVER_FOLDERS.find((d) => t.path.startsWith(`${d}/`));
      if (!folder) return false;
      return !(file.startsWith(`${folder}/`) || under('src/runtime')(file) || file === 'src/store/open-store.ts');
    },
    why: 'driver adapters (src/store/sqlite|postgres|mysql, src/transport/amqp) are imported only by src/runtime/, src/store/open-store.ts and themselves',
  },
  {
    from: under('src'),
    forbids: (t, file) =>
      t.kind === 'package' && t.name in DRIVER_PACKAGES && !(DRIVER_PACKAGES[t.name] ?? []).some((d) => file.startsWith(`${d}/`)),
    why: 'a database or AMQP driver package is imported only by its adapter folder and src/runtime/',
  },
];

interface Violation {
  at: string;
  why: string;
}

function check(line: ImportLine): Violation[] {
  const target = resolveTarget(line.file, line.specifier);
  const shown = target.kind === 'module' ? ` (${target.path})` : '';
  return RULES.filter((r) => r.from(line.file) && r.forbids(target, line.file)).map((r) => ({
    at: `${line.file}:${line.line} imports '${line.specifier}'${shown}`,
    why: r.why,
  }));
}

const format = (vs: Violation[]): string => vs.map((v) => `${v.at}\n    → ${v.why}`).join('\n');

/** Everything `import 'stoker'` loads at once: static, non-type imports, transitively. */
function loadedFrom(entry: string, linesOf: (file: string) => ImportLine[]): { chain: string[]; target: Target }[] {
  const seen = new Set<string>([entry]);
  const out: { chain: string[]; target: Target }[] = [];
  const queue: string[][] = [[entry]];
  while (queue.length > 0) {
    const chain = queue.shift() ?? [];
    const file = chain[chain.length - 1] ?? entry;
    for (const line of linesOf(file)) {
      if (line.typeOnly || line.dynamic) continue;
      const target = resolveTarget(file, line.specifier);
      out.push({ chain, target });
      if (target.kind === 'module' && !seen.has(target.path)) {
        seen.add(target.path);
        queue.push([...chain, target.path]);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------

describe('layering of src/', () => {
  const files = sourceFiles('src');

  it('finds the source files', () => {
    expect(files).toContain('src/errors.ts');
    expect(files.some((f) => f.startsWith('src/engine/'))).toBe(true);
  });

  it('every import points down (ARCHITECTURE.md, "Folders")', () => {
    const violations = files.flatMap((f) => importLines(f)).flatMap(check);
    expect(format(violations), 'layering violations (file:line, import, rule)').toBe('');
  });

  it('importing the package root never loads a driver (they are loaded lazily)', () => {
    if (!existsSync(posix.join(ROOT, 'src/index.ts'))) return; // no public entry point yet
    const loaded = loadedFrom('src/index.ts', (f) => (existsSync(posix.join(ROOT, f)) ? importLines(f) : []));
    const bad = loaded.filter(
      ({ target }) =>
        (target.kind === 'package' && target.name in DRIVER_PACKAGES) ||
        (target.kind === 'module' && DRIVER_FOLDERS.some((d) => target.path.startsWith(`${d}/`))),
    );
    const shown = bad.map(({ chain, target }) => `${chain.join(' → ')} → ${target.kind === 'module' ? target.path : target.name}`);
    expect(shown.join('\n'), 'static import chains from src/index.ts to a driver; use import() instead').toBe('');
  });
});

describe('the layering checker itself', () => {
  const at = (file: string, text: string): string[] =>
    importLines(file, text)
      .flatMap(check)
      .map((v) => v.at);

  it.each([
    ['src/engine/x.ts', `import { SqliteStore } from '../store/sqlite/sqlite-store.js';`],
    ['src/engine/x.ts', `import type { Runtime } from '../runtime/create-runtime.js';`],
    ['src/engine/x.ts', `import { statement } from '../store/sql/dialect.js';`],
    ['src/engine/x.ts', `import pg from 'pg';`],
    ['src/store/x.ts', `import { Engine } from '../engine/engine.js';`],
    ['src/store/sqlite/x.ts', `import type { RunTransition } from '../../engine/transitions.js';`],
    ['src/store/sqlite/x.ts', `import pg from 'pg';`],
    ['src/store/sqlite/x.ts', `export { PostgresStore } from '../postgres/postgres-store.js';`],
    ['src/flow/x.ts', `import { readFileSync } from 'node:fs';`],
    ['src/flow/x.ts', `import { hostname } from 'os';`],
    ['src/flow/x.ts', `import type { Store } from '../store/store.js';`],
    ['src/flow/x.ts', `import { RunStatus } from '../store/states.js';`],
    ['src/core/x.ts', `import type { FlowGraph } from '../flow/graph.js';`],
    ['src/index.ts', `export { SqliteStore } from './store/sqlite/sqlite-store.js';`],
    ['src/index.ts', `import { main } from './cli/main.js';`],
    ['src/cli/x.ts', `import { PostgresStore } from '../store/postgres/postgres-store.js';`],
    ['src/cli/x.ts', `import mysql from 'mysql2/promise';`],
    ['src/runtime/x.ts', `import { command } from '../cli/main.js';`],
    ['src/transport/x.ts', `import amqp from 'amqplib';`],
    ['src/transport/x.ts', `const m = await import('../engine/engine.js');`],
    ['src/store/x.ts', `import { helper } from '../../test/helpers.js';`],
    ['src/api/x.ts', `import * as api from '../index.js';`],
  ])('rejects %s: %s', (file, text) => {
    expect(at(file, text)).toHaveLength(1);
  });

  it.each([
    ['src/store/sqlite/x.ts', `import { TERMINAL_RUN_STATUSES, type RunStatus } from '../states.js';`],
    ['src/store/sqlite/x.ts', `import Database from 'better-sqlite3';`],
    ['src/store/postgres/x.ts', `import pg from 'pg';`],
    ['src/store/x.ts', `import { statement } from './sql/dialect.js';`],
    ['src/store/open-store.ts', `const { SqliteStore } = await import('./sqlite/sqlite-store.js');`],
    ['src/engine/x.ts', `import type { Store } from '../store/store.js';`],
    ['src/engine/x.ts', `import { hostname } from 'node:os';`],
    ['src/flow/x.ts', `import { createHash } from 'node:crypto';`],
    ['src/flow/x.ts', `import { ValidationError } from '../errors.js';`],
    ['src/runtime/x.ts', `import { PostgresStore } from '../store/postgres/postgres-store.js';`],
    ['src/transport/amqp/x.ts', `import amqp from 'amqplib';`],
    ['src/cli/commands/run.ts', `import { createRuntime } from '../../runtime/index.js';`],
    ['src/index.ts', `export { createRuntime } from './runtime/index.js';`],
  ])('accepts %s: %s', (file, text) => {
    expect(at(file, text)).toEqual([]);
  });

  it('follows static imports from the root and skips type-only and dynamic ones', () => {
    const graph: Record<string, string> = {
      'src/index.ts': `export { a } from './a.js';\nimport type { T } from './store/postgres/t.js';\nexport const lazy = () => import('./store/sqlite/s.js');`,
      'src/a.ts': `import { b } from './store/mysql/b.js';`,
    };
    const loaded = loadedFrom('src/index.ts', (f) => (graph[f] === undefined ? [] : importLines(f, graph[f])));
    const modules = loaded.flatMap(({ target }) => (target.kind === 'module' ? [target.path] : []));
    expect(modules).toEqual(['src/a.ts', 'src/store/mysql/b.ts']);
  });
});
