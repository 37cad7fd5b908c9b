// ESLint flat config for Stoker.
//
// Two jobs:
// 1. Typed lint: typescript-eslint's `recommended` set plus the few type-aware rules that
//    catch real bugs in async code (a promise nobody awaits, a promise passed where a
//    callback's return value is ignored, `await` on a non-promise).
// 2. Layering (ARCHITECTURE.md, "Folders"): one `no-restricted-imports` entry per folder.
//    ESLint matches import *specifiers* as written, not resolved paths, so the patterns
//    below match folder names after any run of `./` / `../`. Folder names under src/ are
//    unique, which makes that precise enough for editor feedback; the exact check (resolved
//    paths, imports of src/index.ts from inside src/, and "importing the root never loads a
//    driver") is test/unit/layering.test.ts. ESLint does not see dynamic `import()`.
//
// Flat config replaces a rule's options per matching object rather than merging them, so
// each folder's entry below carries its *complete* list, composed from the building blocks.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------------------
// Building blocks for no-restricted-imports

/** A relative specifier that reaches a top-level src/ folder (or file) by name. */
const toSrc = (names) => `^(?:\\.\\.?/)+(?:${names.join('|')})(?:/|\\.js$|$)`;

const upward = (names, why) => ({ regex: toSrc(names), message: why });

const DRIVER_FOLDERS = {
  regex: '^(?:\\.\\.?/)+(?:store/)?(?:sqlite|postgres|mysql)(?:/|$)',
  message: 'Driver adapters (src/store/sqlite|postgres|mysql) are loaded only by src/runtime/ and src/store/open-store.ts, lazily.',
};
const AMQP_FOLDER = {
  regex: '^(?:\\.\\.?/)+(?:transport/)?amqp(?:/|$)',
  message: 'The AMQP transport is wired only by src/runtime/.',
};
const driverPackage = (names) => ({
  regex: `^(?:${names.join('|')})(?:/.*)?$`,
  message:
    'Database and AMQP drivers are imported only by their adapter folder (src/store/<dialect>/, src/transport/amqp/) and src/runtime/.',
});
const ALL_DRIVERS = ['pg(?:-[\\w-]+)?', 'mysql2', 'better-sqlite3', 'amqplib'];
const SQL = {
  regex: '^(?:\\.\\.?/)+(?:store/)?sql(?:/|$)',
  message: 'SQL belongs to src/store/ (its shared statements in src/store/sql/); other layers go through the Store ports.',
};
const NODE_IO = {
  regex:
    '^(?:node:)?(?:fs|fs/promises|net|http|https|http2|child_process|dgram|dns|dns/promises|tls|cluster|worker_threads|os|readline|readline/promises|process|timers|timers/promises|perf_hooks|inspector|vm|v8)$',
  message: 'src/flow/ is pure: no I/O, no timers, no process access.',
};
const ENGINE = {
  // the run and atom states are the store's own (src/store/states.ts): nothing below imports the engine
  regex: '^(?:\\.\\.?/)+engine(?:/|\\.js$|$)',
  message: 'Layers below the engine (store, transport) do not import it: imports point down.',
};

const ABOVE_STORE = upward(
  ['orchestration', 'runtime', 'api', 'cli', 'web', 'views'],
  'src/store/ knows SQL, not scheduling, templates or wiring: imports point down.',
);

/** The layering rule for one folder: files (and ignores) plus its complete pattern list. */
const layer = (files, patterns, ignores = []) => ({
  files,
  ignores,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

const layering = [
  layer(
    ['src/core/**/*.ts', 'src/errors.ts'],
    [
      upward(
        ['flow', 'store', 'engine', 'transport', 'orchestration', 'runtime', 'api', 'cli', 'web', 'views'],
        'src/core/ and src/errors.ts are the bottom layer.',
      ),
      driverPackage(ALL_DRIVERS),
    ],
  ),
  layer(
    ['src/flow/**/*.ts'],
    [
      upward(
        ['store', 'engine', 'transport', 'orchestration', 'runtime', 'api', 'cli', 'web', 'views'],
        'src/flow/ may import only src/flow, src/core and src/errors.',
      ),
      driverPackage(ALL_DRIVERS),
      SQL,
      NODE_IO,
    ],
  ),
  layer(['src/store/**/*.ts'], [ENGINE, ABOVE_STORE, DRIVER_FOLDERS, AMQP_FOLDER, driverPackage(ALL_DRIVERS)]),
  // open-store.ts picks an adapter from a URL: the one place in store/ that names them all.
  layer(['src/store/open-store.ts'], [ENGINE, ABOVE_STORE, AMQP_FOLDER, driverPackage(ALL_DRIVERS)]),
  ...[
    ['sqlite', 'better-sqlite3'],
    ['postgres', 'pg(?:-[\\w-]+)?'],
    ['mysql', 'mysql2'],
  ].map(([dialect, own]) =>
    layer(
      [`src/store/${dialect}/**/*.ts`],
      [
        ENGINE,
        ABOVE_STORE,
        { ...DRIVER_FOLDERS, message: 'A dialect adapter does not import another dialect.' },
        AMQP_FOLDER,
        driverPackage(ALL_DRIVERS.filter((d) => d !== own)),
      ],
    ),
  ),
  layer(
    ['src/engine/**/*.ts'],
    [
      upward(
        ['orchestration', 'runtime', 'api', 'cli', 'web', 'views'],
        'src/engine/ knows scheduling, not templates, wiring or interfaces: imports point down.',
      ),
      { ...DRIVER_FOLDERS, message: 'src/engine/ talks to the database only through the Store port (src/store/store.ts).' },
      AMQP_FOLDER,
      driverPackage(ALL_DRIVERS),
      SQL,
    ],
  ),
  layer(
    ['src/transport/**/*.ts'],
    [
      ENGINE,
      upward(['orchestration', 'runtime', 'api', 'cli', 'web', 'views'], 'src/transport/ sits beside src/store/: imports point down.'),
      DRIVER_FOLDERS,
      AMQP_FOLDER,
      driverPackage(ALL_DRIVERS),
    ],
    ['src/transport/amqp/**'],
  ),
  layer(
    ['src/transport/amqp/**/*.ts'],
    [
      ENGINE,
      upward(['orchestration', 'runtime', 'api', 'cli', 'web', 'views'], 'src/transport/ sits beside src/store/: imports point down.'),
      DRIVER_FOLDERS,
      driverPackage(ALL_DRIVERS.filter((d) => d !== 'amqplib')),
    ],
  ),
  layer(
    ['src/orchestration/**/*.ts'],
    [
      upward(['runtime', 'api', 'cli', 'web'], 'src/orchestration/ is a user of the engine: imports point down.'),
      DRIVER_FOLDERS,
      AMQP_FOLDER,
      driverPackage(ALL_DRIVERS),
      SQL,
    ],
  ),
  layer(
    ['src/views/**/*.ts'],
    [
      upward(
        ['engine', 'transport', 'orchestration', 'runtime', 'api', 'cli', 'web'],
        'src/views/ turns stored rows into JSON for every interface: it imports rows and core types only.',
      ),
      DRIVER_FOLDERS,
      AMQP_FOLDER,
      driverPackage(ALL_DRIVERS),
    ],
  ),
  // runtime/ is the one place that wires drivers and transports together.
  layer(['src/runtime/**/*.ts'], [upward(['api', 'cli', 'web'], 'src/runtime/ is wired by the interfaces, never the reverse.')]),
  layer(
    ['src/api/**/*.ts'],
    [
      upward(['cli', 'web'], 'src/api/ does not import the CLI; the dashboard talks to it over HTTP only.'),
      DRIVER_FOLDERS,
      AMQP_FOLDER,
      driverPackage(ALL_DRIVERS),
    ],
  ),
  layer(
    ['src/cli/**/*.ts'],
    [upward(['web'], 'The dashboard talks to the server over HTTP only.'), DRIVER_FOLDERS, AMQP_FOLDER, driverPackage(ALL_DRIVERS)],
  ),
  // The public entry point: importing 'stoker' must never load a driver.
  layer(
    ['src/index.ts'],
    [
      upward(['cli', 'web'], 'The public API does not export the command line.'),
      { ...DRIVER_FOLDERS, message: 'src/index.ts must not statically import a driver adapter: drivers are loaded lazily.' },
      AMQP_FOLDER,
      driverPackage(ALL_DRIVERS),
    ],
  ),
];

// ---------------------------------------------------------------------------------------
// Determinism in the engine (docs/reliability.md, "The simulation"): time, randomness and timers are injected
// through src/core/clock.ts and src/core/ids.ts, so a simulation can drive the engine.

const NO_ENV = {
  object: 'process',
  property: 'env',
  message: 'Library code never reads process.env; the CLI does (flags > STOKER_* > config file > defaults).',
};
const INJECT = 'Inject it (Clock / Rng / IdGenerator from src/core/) so tests and simulations can drive the engine.';
const engineDeterminism = {
  files: ['src/engine/**/*.ts'],
  rules: {
    'no-restricted-globals': [
      'error',
      ...['setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'performance', 'crypto'].map((name) => ({
        name,
        message: `${name}: ${INJECT}`,
      })),
    ],
    'no-restricted-properties': [
      'error',
      NO_ENV,
      ...[
        ['Date', 'now'],
        ['Math', 'random'],
        ['performance', 'now'],
        ['crypto', 'randomUUID'],
        ['crypto', 'getRandomValues'],
        ['globalThis', 'setTimeout'],
        ['globalThis', 'setInterval'],
        ['globalThis', 'setImmediate'],
        ['globalThis', 'performance'],
        ['globalThis', 'crypto'],
      ].map(([object, property]) => ({ object, property, message: `${object}.${property}: ${INJECT}` })),
    ],
    'no-restricted-syntax': [
      'error',
      { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: `new Date() reads the wall clock: ${INJECT}` },
    ],
    'no-restricted-imports': [
      'error',
      {
        paths: [
          { name: 'node:crypto', importNames: ['randomUUID', 'randomBytes', 'randomInt', 'getRandomValues'], message: INJECT },
          { name: 'node:timers', message: INJECT },
          { name: 'node:timers/promises', message: INJECT },
          { name: 'node:perf_hooks', message: INJECT },
        ],
        // the engine's layering patterns, repeated: this object replaces the one above
        patterns: layering.find((l) => l.files[0] === 'src/engine/**/*.ts').rules['no-restricted-imports'][1].patterns,
      },
    ],
  },
};

// ---------------------------------------------------------------------------------------

/** Globals of Node 20 used by plain .js files (config, bench, examples). */
const nodeGlobals = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'URLSearchParams',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'clearImmediate',
    'queueMicrotask',
    'structuredClone',
    'performance',
    'fetch',
    'AbortController',
    'AbortSignal',
    'TextEncoder',
    'TextDecoder',
    'globalThis',
  ].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/peers/node_modules/', 'coverage/', 'bench/results/', '.stoker/', 'web/dist/', '.prof/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `_`-prefixed parameters and variables are deliberately unused (interface conformance).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      // The store adapters build their RunTx as an object literal with method shorthand,
      // where `this` is the literal; `const store = this` names the adapter explicitly.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['store'] }],
    },
  },
  {
    ...tseslint.configs.disableTypeChecked,
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: nodeGlobals },
  },
  // Library code: no console (an injected logger instead), no process.env.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-console': 'error',
      'no-restricted-properties': ['error', NO_ENV],
    },
  },
  ...layering,
  engineDeterminism,
  // Tests, benchmarks and examples may print and may read the environment.
  {
    files: ['test/**/*.ts', 'bench/**', 'examples/**'],
    rules: { 'no-console': 'off' },
  },
);
