/**
 * Batched remote requests (docs/amqp.md, "Remote tasks"): the calls of one task an engine
 * makes in one turn go in one request message (`more`), each with its own id, reply, epoch
 * and cancel; a worker acknowledges the message once every reply of it is confirmed. Also:
 * a batch that is forged, oversized or malformed is rejected whole and never executed; the
 * cancel of one call of a batch aborts that call only; an engine whose batch was answered
 * by a worker of the previous version (no `readsBatches`) sends the other calls again.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { linear, task } from '../../../src/flow/index.js';
import type { Runtime } from '../../../src/runtime/create-runtime.js';
import type { Worker } from '../../../src/runtime/worker.js';
import { MAX_BATCHED_REQUESTS } from '../../../src/transport/amqp/remote-protocol.js';
import { MessageCodec } from '../../../src/transport/amqp/signed-messages.js';
import { describeEachDialect } from '../../helpers/databases.js';
import type { TestVhost } from '../../helpers/rabbitmq.js';
import { closeRemoteRuntime, openRemoteRuntime, rawRemoteClient, requestCall } from '../../helpers/remote-runtime.js';

const KEY = 'test-key-0123456789abcdef';
/** bHold: executions wait here until released, by tag; aborted ones are noted */
const holding = new Map<string, () => void>();
const aborted: string[] = [];

const flows = [
  linear('bQuickFlow', [task({ name: 'bQuick', requires: ['i'], remote: true, execute: ({ i }) => (i as number) * 10 })]),
  linear('bHoldFlow', [
    task({
      name: 'bHold',
      requires: ['tag'],
      remote: true,
      execute: ({ tag }, ctx) =>
        new Promise((resolve) => {
          holding.set(String(tag), () => resolve(`done ${String(tag)}`));
          ctx.signal.addEventListener('abort', () => {
            aborted.push(String(tag));
            resolve('aborted');
          });
        }),
    }),
  ]),
  // consumed by no Worker: the tests answer it themselves, as a worker of the previous version would
  linear('bOldFlow', [task({ name: 'bOld', requires: ['i'], remote: true, execute: () => null })]),
];

const call = (id: string, task: string, i: number) =>
  requestCall(id, task, task === 'bQuick' ? 'bQuickFlow' : 'bHoldFlow', task === 'bQuick' ? { i } : { tag: id });

await describeEachDialect('batched remote requests', (d) => {
  let broker: TestVhost | null = null;
  let runtime: Runtime | null = null;
  let worker: Worker | null = null;

  beforeAll(async () => {
    ({ broker, runtime, worker } = await openRemoteRuntime(
      d.store,
      flows,
      KEY,
      { pollMs: 200, concurrency: 16 },
      { tasks: ['bQuick', 'bHold'], concurrency: 8 },
    ));
  }, 60_000);

  afterAll(async () => {
    for (const go of holding.values()) go();
    await closeRemoteRuntime({ broker, runtime, workers: [worker] });
  }, 60_000);

  /** a raw connection to the broker, with a reply queue whose messages it collects */
  const rawClient = () => rawRemoteClient(broker!.url, KEY);

  it('runs of one task started together: their calls share request messages, each recorded once', async (ctx) => {
    if (!runtime?.amqp?.remote || !worker) return ctx.skip();
    const remote = runtime.amqp.remote;
    const before = remote.snapshot();
    const executed = worker.stats.executed!;
    const runs = await runtime.client.startRuns(
      'bQuickFlow',
      Array.from({ length: 32 }, (_, i) => ({ i })),
    );
    for (const [i, run] of runs.entries()) {
      const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
      expect(done.status).toBe('SUCCESS');
      expect(done.result).toEqual({});
      const [atom] = await d.store.getAtoms(run.id);
      expect(atom!.result).toBe(i * 10);
    }
    const after = remote.snapshot();
    expect(after.published - before.published).toBe(32);
    expect(worker.stats.executed! - executed).toBe(32);
    // 32 calls claimed in a statement or two: a message carries several of them
    expect(after.requestMessages - before.requestMessages).toBeLessThan(16);
    expect(after.unbatched - before.unbatched).toBe(0);
  }, 30_000);

  it('a worker reads a batch: each call executed and answered on its own, the message acknowledged once', async (ctx) => {
    if (!worker || !broker) return ctx.skip();
    const c = await rawClient();
    try {
      const executed = worker.stats.executed!;
      const [first, ...more] = [0, 1, 2].map((i) => call(`${d.dialect}-read-${i}`, 'bQuick', i));
      await c.send('stoker.task.bQuick', c.codec.seal({ type: 'request', replyTo: c.replyTo, batchReplies: true, ...first!, more }));
      await expect
        .poll(() => c.got.flatMap((m) => (m.type === 'replies' ? (m.replies as unknown[]) : m.type === 'reply' ? [m] : [])).length, {
          timeout: 10_000,
        })
        .toBe(3);
      const replies = c.got.flatMap((m) =>
        m.type === 'replies' ? (m.replies as Record<string, unknown>[]) : m.type === 'reply' ? [m] : [],
      );
      expect(replies.map((r) => [r.id, r.epoch, r.outcome]).sort()).toEqual(
        [0, 1, 2].map((i) => [`${d.dialect}-read-${i}`, 2, { ok: true, result: i * 10 }]),
      );
      expect(c.got.every((m) => m.readsBatches === true)).toBe(true);
      expect(worker.stats.executed! - executed).toBe(3);
      // acknowledged: nothing left in the queue, nothing unacknowledged
      await expect.poll(async () => (await c.ch.checkQueue('stoker.task.bQuick')).messageCount, { timeout: 5_000 }).toBe(0);
    } finally {
      await c.conn.close();
    }
  }, 30_000);

  it('a forged, tampered, oversized or malformed batch is rejected whole and never executed', async (ctx) => {
    if (!worker || !broker) return ctx.skip();
    const c = await rawClient();
    try {
      const before = worker.stats;
      const batch = (tag: string, n: number, task = 'bQuick') => {
        const [first, ...more] = Array.from({ length: n }, (_, i) => call(`${d.dialect}-${tag}-${i}`, task, i));
        return { type: 'request', replyTo: c.replyTo, batchReplies: true, ...first!, more };
      };
      const forged = new MessageCodec({ key: 'another-key-0123456789' }).seal(batch('forged', 3));
      await c.send('stoker.task.bQuick', forged);
      const tampered = c.codec.seal(batch('tampered', 3));
      await c.send('stoker.task.bQuick', {
        body: Buffer.from(tampered.body.toString().replace('"i":2', '"i":7')),
        headers: tampered.headers,
      });
      // a follower of another task, too many calls, a follower without its fields, a repeated id
      const mixed = batch('mixed', 3);
      mixed.more[1] = call(`${d.dialect}-mixed-x`, 'bHold', 0);
      await c.send('stoker.task.bQuick', c.codec.seal(mixed));
      await c.send('stoker.task.bQuick', c.codec.seal(batch('many', MAX_BATCHED_REQUESTS + 1)));
      const hollow = batch('hollow', 2);
      await c.send('stoker.task.bQuick', c.codec.seal({ ...hollow, more: [{ id: 'x' }] }));
      const twice = batch('twice', 2);
      await c.send('stoker.task.bQuick', c.codec.seal({ ...twice, more: [{ ...twice.more[0]!, id: twice.id }] }));
      // larger than the 4 MiB a receiver accepts
      const big = batch('big', 5);
      for (const m of [big, ...big.more]) m.request.inputs = { i: 1, pad: 'x'.repeat(900_000) } as never;
      await c.send('stoker.task.bQuick', c.codec.seal(big));
      const counts = () => {
        const s = worker!.stats;
        return ['forged', 'malformed', 'oversized'].map((k) => s[k]! - before[k]!);
      };
      await expect.poll(counts, { timeout: 10_000 }).toEqual([2, 4, 1]);
      expect(worker.stats.executed! - before.executed!).toBe(0);
      expect(c.got.filter((m) => m.type !== 'started')).toEqual([]);
      await expect.poll(async () => (await c.ch.checkQueue('stoker.task.bQuick')).messageCount, { timeout: 5_000 }).toBe(0);
    } finally {
      await c.conn.close();
    }
  }, 30_000);

  it('cancelling one run of a batch aborts its call on the worker; the others of the batch finish', async (ctx) => {
    if (!runtime?.amqp?.remote || !worker) return ctx.skip();
    const remote = runtime.amqp.remote;
    const before = remote.snapshot();
    const tags = Array.from({ length: 8 }, (_, i) => `${d.dialect}-cancel-${i}`);
    const runs = await runtime.client.startRuns(
      'bHoldFlow',
      tags.map((tag) => ({ tag })),
    );
    await expect.poll(() => tags.filter((t) => holding.has(t)).length, { timeout: 20_000 }).toBe(8);
    // the eight calls went out together: fewer messages than calls
    expect(remote.snapshot().requestMessages - before.requestMessages).toBeLessThan(8);
    await runtime.client.cancel(runs[3]!.id, 'test');
    await expect.poll(() => aborted.includes(tags[3]!), { timeout: 20_000 }).toBe(true);
    expect((await runtime.client.waitForRun(runs[3]!.id, { timeoutMs: 20_000 })).status).toBe('CANCELLED');
    expect(aborted.filter((t) => tags.includes(t))).toEqual([tags[3]]);
    for (const [i, tag] of tags.entries()) if (i !== 3) holding.get(tag)!();
    for (const [i, run] of runs.entries()) {
      if (i === 3) continue;
      expect((await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 })).status).toBe('SUCCESS');
    }
  }, 40_000);

  it('a batch answered by a worker of the previous version: its other calls are sent again alone, and every later request too', async (ctx) => {
    if (!runtime?.amqp?.remote || !broker) return ctx.skip();
    const remote = runtime.amqp.remote;
    const c = await rawClient();
    try {
      // an old worker: reads the first call of each message and ignores `more`, replies without `readsBatches`
      const seen: { id: string; more: number }[] = [];
      await c.ch.assertQueue('stoker.task.bOld', { durable: true });
      await c.ch.consume('stoker.task.bOld', (msg) => {
        const opened = c.codec.open(msg!.content, msg!.properties.headers, msg!.fields.redelivered);
        if (!opened.ok) return;
        const m = opened.message as unknown as {
          id: string;
          replyTo: string;
          more?: unknown[];
          request: { runId: string; atom: number; epoch: number };
        };
        seen.push({ id: m.id, more: m.more?.length ?? 0 });
        const { id, request } = m;
        void c.send(
          m.replyTo,
          c.codec.seal({
            type: 'reply',
            id,
            runId: request.runId,
            atom: request.atom,
            epoch: request.epoch,
            outcome: { ok: true, result: 'old' },
          }),
        );
        c.ch.ack(msg!);
      });
      const before = remote.snapshot();
      const runs = await runtime.client.startRuns(
        'bOldFlow',
        Array.from({ length: 8 }, (_, i) => ({ i })),
      );
      for (const run of runs) expect((await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 })).status).toBe('SUCCESS');
      expect(seen.some((s) => s.more > 0)).toBe(true);
      expect(remote.snapshot().unbatched - before.unbatched).toBeGreaterThanOrEqual(1);
      // from then on, one call per message
      const later = seen.length;
      const more = await runtime.client.startRuns(
        'bOldFlow',
        Array.from({ length: 8 }, (_, i) => ({ i })),
      );
      for (const run of more) expect((await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 })).status).toBe('SUCCESS');
      expect(seen.slice(later).every((s) => s.more === 0)).toBe(true);
    } finally {
      await c.conn.close();
    }
  }, 40_000);
});
