/**
 * The `validate` op (Heat's `POST /validate`) through `stoker orchestration template
 * validate`, as a user runs it: the template, the environment and the file set are written
 * to a directory, and the command prints Heat's JSON. Exit code 2 is a rejected template
 * (a validation error, Heat's 400); any other failure is the runner's problem, not a
 * rejection.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JsonValue } from '../../src/core/json.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type ValidateResult = { ok: true; json: JsonValue } | { ok: false; message: string };

export interface ValidateRequest {
  template: string;
  environment?: string;
  files: Record<string, string>;
  parameters?: Record<string, JsonValue>;
  showNested: boolean;
}

/** Runs the CLI in `dir` (a fresh directory per call). */
export async function validateWithCli(dir: string, request: ValidateRequest): Promise<ValidateResult> {
  mkdirSync(dir, { recursive: true });
  const templatePath = join(dir, 'template.yaml');
  writeFileSync(templatePath, request.template);
  for (const [name, text] of Object.entries(request.files)) {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
  const args = [
    '--import',
    'tsx',
    join(ROOT, 'src/cli/main.ts'),
    'orchestration',
    'template',
    'validate',
    '-t',
    templatePath,
    '-f',
    'json',
  ];
  if (request.environment !== undefined) {
    const envPath = join(dir, 'environment.yaml');
    writeFileSync(envPath, request.environment);
    args.push('-e', envPath);
  }
  for (const [k, v] of Object.entries(request.parameters ?? {}))
    args.push('--parameter', `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  if (request.showNested) args.push('--show-nested');
  const { code, stdout, stderr } = await run(args);
  if (code === 0) return { ok: true, json: JSON.parse(stdout) as JsonValue };
  if (code === 2) return { ok: false, message: stderr.trim() };
  throw new Error(`stoker orchestration template validate exited ${String(code)}: ${stderr.trim().slice(0, 500)}`);
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
