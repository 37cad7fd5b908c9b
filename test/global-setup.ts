/**
 * Vitest global setup: gives the run one folder for the built CLI that the end-to-end files
 * share (test/e2e/cli/harness.ts). The first file that needs the CLI compiles it there; the
 * others wait for that build instead of each running tsc again (~13 s of CPU each). The
 * folder is removed when the run ends, and replaced before a watch-mode rerun so that a rerun
 * compiles the current sources.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** an empty folder, per run, where the first end-to-end file builds the CLI for all of them */
    stokerSharedBuild: string;
  }
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function freshFolder(): string {
  const base = join(ROOT, 'node_modules', '.cache', 'stoker-e2e');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, 'run-'));
}

export default function setup(project: TestProject): () => void {
  let folder = freshFolder();
  project.provide('stokerSharedBuild', folder);
  project.onTestsRerun(() => {
    rmSync(folder, { recursive: true, force: true });
    folder = freshFolder();
    project.provide('stokerSharedBuild', folder);
  });
  return () => rmSync(folder, { recursive: true, force: true });
}
