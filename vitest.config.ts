import { defineConfig } from 'vitest/config';
import LongestFirst from './test/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration suites share three database servers on a 2-core machine; keep
    // parallelism modest so timing-sensitive lease tests are not starved.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // one folder per run where the end-to-end files share a single build of the CLI
    globalSetup: ['test/global-setup.ts'],
    // longest files first, from a clean clone too (test/sequencer.ts)
    sequence: { sequencer: LongestFirst },
  },
});
