/**
 * The order in which vitest hands test files to its two workers: longest first, so that no
 * long file starts last while the other worker has nothing left to do.
 *
 * Vitest orders by the durations it recorded in node_modules/.vite, but CI starts from a
 * clean clone (`npm ci`), where it has none and falls back to file size: chaos files are
 * short to read and long to run, and the two smallest files of the suite, the server
 * restarts C3 and C4 (23–26 s each), came last, each on a worker of its own, after ~100 unit
 * files of a few milliseconds. Here each file's recorded duration is used when vitest has
 * one, else the figure below, else 0. Files that failed last time still come first, and
 * files of equal weight keep vitest's order (by recorded duration or size).
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each file took on the 2-core CI machine (7 December 2026: alone, or with the other
 * files of its folder on two workers), files of 10 s or more; a file missing here counts 0
 * and runs after these, in vitest's order. A stale figure only costs balance, never a test.
 */
export const KNOWN_SECONDS: Readonly<Record<string, number>> = {
  'test/chaos/c9-reset-latency.test.ts': 71,
  'test/chaos/amqp-broker-restart.test.ts': 69,
  'test/chaos/c9-partition.test.ts': 65,
  'test/chaos/c8-slow-database.test.ts': 61,
  'test/e2e/cli/stacks.test.ts': 58,
  'test/e2e/cli/commands.test.ts': 51,
  'test/chaos/amqp-remote.test.ts': 45,
  'test/integration/store/liveness.test.ts': 43,
  'test/chaos/supersede-across-engines.test.ts': 42,
  'test/chaos/c1-kill.test.ts': 39,
  'test/chaos/c12-sqlite.test.ts': 35,
  'test/chaos/c13-graceful.test.ts': 34,
  'test/chaos/c16-read-only.test.ts': 28,
  'test/chaos/c3-pg-restart.test.ts': 26,
  'test/chaos/amqp-wake-ups.test.ts': 25,
  'test/e2e/cli/errors.test.ts': 23,
  'test/chaos/c2-zombie.test.ts': 23,
  'test/chaos/c4-mariadb-restart.test.ts': 23,
  'test/e2e/cli/json-shapes.test.ts': 22,
  'test/chaos/c7-clock-skew.test.ts': 22,
  'test/integration/orchestration/stacks.test.ts': 20,
  'test/integration/amqp/remote-waits.test.ts': 18,
  'test/chaos/locks-zombie.test.ts': 18,
  'test/e2e/cli/orchestration.test.ts': 17,
  'test/integration/engine/engine.test.ts': 17,
  'test/chaos/c11-ambiguous-commit.test.ts': 16,
  'test/chaos/c6-connection-drops.test.ts': 16,
  'test/chaos/crash-recovery.test.ts': 16,
  'test/chaos/peer-watch.test.ts': 14,
  'test/integration/engine/locks.test.ts': 12,
  'test/e2e/cli/amqp.test.ts': 12,
  'test/chaos/c14-restart-all.test.ts': 12,
  'test/e2e/guide/examples.test.ts': 12,
};

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const ordered = await super.sort(files);
    const root = this.ctx.config.root;
    const weight = new Map<TestSpecification, number>();
    for (const file of ordered) {
      const path = relative(root, file.moduleId).split('\\').join('/');
      const recorded = this.ctx.cache.getFileTestResults(`${file.project.name}:${path}`);
      const seconds = recorded ? recorded.duration / 1000 : (KNOWN_SECONDS[path] ?? 0);
      weight.set(file, recorded?.failed ? Number.MAX_SAFE_INTEGER : seconds);
    }
    // Array.prototype.sort is stable: equal weights keep vitest's order
    return ordered.sort((a, b) => weight.get(b)! - weight.get(a)!);
  }
}
