/**
 * RabbitMQ wake-ups (docs/amqp.md, "Wake-ups"), issue 12's first benchmark: idle start
 * latency on MariaDB, from `startRun` in this process to the task starting to execute in
 * an idle engine process, with the engine polling every second (the default) and either
 * AMQP wake-ups or none, in the same run. MariaDB has no push of its own, so without AMQP
 * the figure is about half the poll interval.
 *
 *   node --import tsx bench/amqp.ts [--quick] [--dialects mysql,sqlite]
 *
 * Needs RabbitMQ on 127.0.0.1:5672 with rabbitmqctl (a virtual host is made and deleted).
 * Writes bench/results/amqp-<date>.{json,md}. The remote-worker scenarios of issue 12
 * (1,000 no-op tasks through 1, 2, 4 workers; 2,000 sleeping tasks) are not written yet.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RunClient } from '../src/engine/run-client.js';
import { WakeHub } from '../src/engine/wake-hub.js';
import { FlowRegistry } from '../src/flow/index.js';
import { openAmqp } from '../src/runtime/amqp.js';
import { EngineProc, percentile, readEffects, sleep } from '../test/chaos/harness.js';
import chaosFlows from '../test/fixtures/chaos-flows.js';
import { createTestStore, type Dialect } from '../test/helpers/databases.js';
import { createTestVhost } from '../test/helpers/rabbitmq.js';
import { progressFor, writeResults } from './common.js';

const progress = progressFor('amqp');
const wallMs = (): number => performance.timeOrigin + performance.now();

export interface AmqpIdleRow {
  dialect: Dialect;
  mode: 'amqp' | 'poll';
  n: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
}

async function idleLatency(dialect: Dialect, withAmqp: boolean, amqpUrl: string, starts: number): Promise<AmqpIdleRow | null> {
  const db = await createTestStore(dialect);
  if (!db) return null;
  const dir = mkdtempSync(join(tmpdir(), 'stoker-bench-amqp-'));
  const log = join(dir, 'effects.jsonl');
  const engine = new EngineProc(db.url, {
    concurrency: 4,
    leaseMs: 10_000,
    env: { ENGINE_POLL_MS: '1000', ...(withAmqp ? { ENGINE_AMQP: amqpUrl } : {}) },
  });
  const amqp = withAmqp ? await openAmqp({ url: amqpUrl }) : null;
  try {
    await engine.ready;
    await sleep(1500);
    const flows = new FlowRegistry();
    for (const f of chaosFlows) flows.register(f);
    const hub = new WakeHub();
    if (amqp) hub.attach(amqp.wakeups);
    const client = new RunClient({ store: db.store, flows, wakeHub: hub });
    const ms: number[] = [];
    for (let i = 0; i < starts; i++) {
      const t0 = wallMs();
      const { run } = await client.startRun('chaosHold', { log, holdMs: 0 });
      for (;;) {
        const line = readEffects(log).find((l) => l.run === run.id && l.phase === 'start');
        if (line) {
          ms.push(line.hr - t0);
          break;
        }
        await sleep(1);
      }
      // starts at random points of the engine's poll cycle
      await sleep(50 + Math.random() * 1200);
    }
    const sorted = [...ms].sort((a, b) => a - b);
    return {
      dialect,
      mode: withAmqp ? 'amqp' : 'poll',
      n: ms.length,
      medianMs: Math.round(percentile(sorted, 50) * 10) / 10,
      p99Ms: Math.round(percentile(sorted, 99) * 10) / 10,
      maxMs: Math.round(Math.max(...ms) * 10) / 10,
    };
  } finally {
    engine.signal('SIGKILL');
    await engine.exited;
    await amqp?.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Idle start latency with and without AMQP wake-ups, per dialect. */
export async function benchAmqp(options: { quick: boolean; dialects: readonly Dialect[] }): Promise<AmqpIdleRow[]> {
  const broker = await createTestVhost();
  if (!broker) return [];
  const rows: AmqpIdleRow[] = [];
  try {
    for (const d of options.dialects) {
      for (const withAmqp of [true, false]) {
        progress(`${d}: idle starts ${withAmqp ? 'with AMQP wake-ups' : 'polling (1 s)'}`);
        const row = await idleLatency(d, withAmqp, broker.url, options.quick ? 20 : 100);
        if (row) rows.push(row);
      }
    }
  } finally {
    await broker.drop();
  }
  return rows;
}

export function amqpMarkdown(rows: readonly AmqpIdleRow[]): string {
  return [
    '| dialect | wake-up | idle startRun → task executing: median / p99 / max (ms) | n |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.dialect} | ${r.mode === 'amqp' ? 'AMQP' : 'poll 1 s'} | ${r.medianMs} / ${r.p99Ms} / ${r.maxMs} | ${r.n} |`),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const dialects = (args.includes('--dialects') ? args[args.indexOf('--dialects') + 1]! : 'mysql').split(',') as Dialect[];
  const rows = await benchAmqp({ quick, dialects });
  const md = `# AMQP wake-ups\n\n${amqpMarkdown(rows)}\n`;
  console.log(md);
  writeResults('amqp-', { quick, rows }, md);
}
