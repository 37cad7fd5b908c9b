import { createInterface } from 'node:readline/promises';

/**
 * What a command needs from the process, passed in rather than reached for: where to
 * write, and the exit code to end with. `main.ts` makes one per invocation.
 */
export interface CliContext {
  /** writes to stdout (the command's result) */
  out(text: string): void;
  /** writes one line to stderr (progress, notes) prefixed with `stoker: ` */
  note(line: string): void;
  /** the exit code when the command returns normally (0 unless a command sets it) */
  exitCode: number;
  /** the program name to show in hints, e.g. `stoker` or `node dist/cli/main.js` */
  readonly programName: string;
  /** true when a person can answer a question: stdin is a terminal */
  readonly interactive: boolean;
  /** asks a yes/no question on stderr and reads the answer from stdin; anything but y/yes is no */
  confirm(question: string): Promise<boolean>;
}

/** A context on the process's stdout and stderr. */
export function processContext(programName: string): CliContext {
  return {
    out: (text) => void process.stdout.write(text),
    note: (line) => void process.stderr.write(`stoker: ${line}\n`),
    exitCode: 0,
    programName,
    interactive: process.stdin.isTTY === true,
    async confirm(question) {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return /^\s*y(es)?\s*$/i.test(await rl.question(`${question} [y/N] `));
      } finally {
        rl.close();
      }
    },
  };
}
