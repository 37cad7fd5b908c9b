#!/usr/bin/env node
/**
 * The `stoker` executable (package.json "bin"). Everything happens in program.ts; this
 * file only connects it to the process: argv, stdout/stderr, and the exit code.
 */
import { basename, relative } from 'node:path';
import { processContext } from './context.js';
import { runCli } from './program.js';

/** How to show this program in hints: `stoker` when installed, `node dist/cli/main.js` otherwise. */
function programName(): string {
  const script = process.argv[1] ?? 'stoker';
  if (basename(script) === 'stoker') return 'stoker';
  const rel = relative(process.cwd(), script);
  return `node ${rel.startsWith('..') ? script : rel}`;
}

// `stoker runs list | head` closes stdout early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// Engines use unref'd timers (they never keep a host application alive on their own), so
// the command holds the process open itself until it has finished, stops included.
const keepAlive = setInterval(() => undefined, 1 << 30);
const code = await runCli(process.argv.slice(2), processContext(programName()));
clearInterval(keepAlive);
// Exit once stdout is flushed: a pipe may still hold the output, and a driver's idle
// sockets or timers must not keep a finished command alive.
process.stdout.write('', () => process.exit(code));
