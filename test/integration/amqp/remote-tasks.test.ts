/**
 * Remote tasks end to end (docs/amqp.md, "Remote tasks") on a real RabbitMQ, a virtual host
 * per dialect: an engine claims and records, a Worker (no store) executes. Linear,
 * unordered and mixed local + remote flows, the revert of remote tasks, cancellation
 * reaching a running remote task, a remote task with no worker timing out, and messages
 * that are unsigned, forged, replayed or not JSON being rejected and counted, never
 * executed or recorded.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { linear, task, unordered } from '../../../src/flow/index.js';
import type { Runtime } from '../../../src/runtime/create-runtime.js';
import type { Worker } from '../../../src/runtime/worker.js';
import { MessageCodec, SIGNATURE_HEADER } from '../../../src/transport/amqp/signed-messages.js';
import { describeEachDialect } from '../../helpers/databases.js';
import type { TestVhost } from '../../helpers/rabbitmq.js';
import { closeRemoteRuntime, openRemoteRuntime } from '../../helpers/remote-runtime.js';

const KEY = 'test-key-0123456789abcdef';
const reverted: string[] = [];
const aborted: string[] = [];
const started: string[] = [];
/** rBatch: every execution waits until `batchOf` of them have started, so that all end in the same turn */
let batchOf = 0;
const arrived: (() => void)[] = [];

const flows = [
  linear('rLinear', [
    task({ name: 'rA', requires: ['n'], provides: 'x', remote: true, execute: ({ n }) => (n as number) + 1 }),
    task({
      name: 'rB',
      requires: ['x'],
      provides: 'y',
      remote: true,
      execute: ({ x }, ctx) => ({ v: (x as number) * 2, key: ctx.idempotencyKey }),
    }),
    task({ name: 'lC', requires: ['y'], provides: 'z', execute: ({ y }) => `local ${(y as { v: number }).v}` }),
  ]),
  unordered(
    'rUnordered',
    Array.from({ length: 12 }, (_, i) => task({ name: `u${i}`, provides: `v${i}`, remote: true, execute: () => i })),
  ),
  linear('rRevert', [
    task({ name: 'rv1', requires: ['tag'], remote: true, execute: () => 1, revert: ({ tag }) => void reverted.push(`rv1:${String(tag)}`) }),
    task({ name: 'rv2', requires: ['tag'], remote: true, execute: () => 2, revert: ({ tag }) => void reverted.push(`rv2:${String(tag)}`) }),
    task({
      name: 'boom',
      retry: 1,
      execute: () => {
        throw Object.assign(new Error('boom'), { retryable: false });
      },
    }),
  ]),
  linear('rCancel', [
    task({
      name: 'rWait',
      requires: ['tag'],
      remote: true,
      execute: ({ tag }, ctx) =>
        new Promise((resolve) => {
          started.push(String(tag));
          ctx.signal.addEventListener('abort', () => {
            aborted.push(String(tag));
            resolve('aborted');
          });
        }),
    }),
  ]),
  linear('rBatchFlow', [
    task({
      name: 'rBatch',
      requires: ['i'],
      remote: true,
      execute: ({ i }) =>
        new Promise((resolve) => {
          arrived.push(() => resolve(i));
          if (arrived.length === batchOf) for (const go of arrived.splice(0)) go();
        }),
    }),
  ]),
  linear('rNobody', [task({ name: 'rNoWorker', remote: true, timeoutMs: 300, retry: 1, execute: () => 'never here' })]),
];

await describeEachDialect('remote tasks over AMQP', (d) => {
  let broker: TestVhost | null = null;
  let runtime: Runtime | null = null;
  let worker: Worker | null = null;

  beforeAll(async () => {
    // every remote task but rNoWorker: nobody consumes that queue
    ({ broker, runtime, worker } = await openRemoteRuntime(
      d.store,
      flows,
      KEY,
      { pollMs: 200 },
      { tasks: ['rA', 'rB', ...Array.from({ length: 12 }, (_, i) => `u${i}`), 'rv1', 'rv2', 'rWait', 'rBatch'], concurrency: 8 },
    ));
  }, 60_000);

  afterAll(async () => {
    await closeRemoteRuntime({ broker, runtime, workers: [worker] });
  }, 60_000);

  it('linear, mixing remote and local tasks: the worker executes the remote ones, the engine records them', async (ctx) => {
    if (!runtime || !worker) return ctx.skip();
    const before = worker.stats.executed!;
    const { run } = await runtime.client.startRun('rLinear', { n: 20 });
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('SUCCESS');
    expect(done.result).toMatchObject({ x: 21, y: { v: 42, key: `${run.id}/rB/1` }, z: 'local 42' });
    expect(worker.stats.executed! - before).toBe(2);
    const atoms = await d.store.getAtoms(run.id);
    expect(atoms.map((a) => a.state)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
  }, 30_000);

  it('unordered: twelve remote tasks at once', async (ctx) => {
    if (!runtime || !worker) return ctx.skip();
    const before = worker.stats.executed!;
    const { run } = await runtime.client.startRun('rUnordered', {});
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('SUCCESS');
    expect(done.result).toEqual(Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`v${i}`, i])));
    expect(worker.stats.executed! - before).toBe(12);
  }, 30_000);

  it('revert: remote tasks are reverted by the worker, in reverse order', async (ctx) => {
    if (!runtime || !worker) return ctx.skip();
    const tag = `${d.dialect}-${Date.now()}`;
    const { run } = await runtime.client.startRun('rRevert', { tag });
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('REVERTED');
    expect(reverted.filter((r) => r.endsWith(tag))).toEqual([`rv2:${tag}`, `rv1:${tag}`]);
  }, 30_000);

  it('cancelling the run aborts the remote task running on the worker', async (ctx) => {
    if (!runtime || !worker) return ctx.skip();
    const tag = `${d.dialect}-${Date.now()}`;
    const { run } = await runtime.client.startRun('rCancel', { tag });
    await expect.poll(() => started.includes(tag), { timeout: 20_000 }).toBe(true);
    await runtime.client.cancel(run.id, 'test');
    await expect.poll(() => aborted.includes(tag), { timeout: 20_000 }).toBe(true);
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('CANCELLED');
    expect(worker.stats.cancelled).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('a remote task no worker takes waits in its queue and fails by its timeout', async (ctx) => {
    if (!runtime || !worker) return ctx.skip();
    const { run } = await runtime.client.startRun('rNobody', {});
    const done = await runtime.client.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).not.toBe('SUCCESS');
    const [atom] = await d.store.getAtoms(run.id);
    expect(JSON.stringify(atom!.failure)).toContain('STOKER_TASK_TIMEOUT');
  }, 30_000);

  it('unsigned, forged, non-JSON and replayed requests are rejected and counted, never executed', async (ctx) => {
    if (!runtime || !worker || !broker) return ctx.skip();
    const conn = await amqp.connect(broker.url);
    try {
      const ch = await conn.createConfirmChannel();
      const queue = 'stoker.task.rA';
      const send = (body: Buffer, headers: Record<string, string>) =>
        new Promise<void>((resolve, reject) =>
          ch.sendToQueue(queue, body, { headers }, (e: unknown) => (e ? reject(e as Error) : resolve())),
        );
      const good = new MessageCodec({ key: KEY });
      const request = (id: string) => ({
        type: 'request',
        id,
        replyTo: 'stoker.reply.nobody',
        request: {
          kind: 'execute',
          task: 'rA',
          flow: 'rLinear',
          version: '1',
          runId: 'not-a-run',
          atom: 0,
          epoch: 1,
          attempt: 1,
          execution: 1,
          idempotencyKey: 'k',
          fencingToken: 't',
          inputs: { n: 1 },
          retryValue: null,
          failure: null,
          timeoutMs: null,
        },
      });
      const before = worker.stats;
      const sealed = good.seal(request('r-unsigned'));
      await send(sealed.body, {}); // unsigned
      const forged = new MessageCodec({ key: 'another-key-0123456789' }).seal(request('r-forged'));
      await send(forged.body, forged.headers); // signed with another key
      const tampered = good.seal(request('r-tampered'));
      await send(Buffer.from(tampered.body.toString().replace('"n":1', '"n":2')), tampered.headers); // changed after signing
      const notJson = Buffer.from('{"type": "request", oops');
      const { createHmac } = await import('node:crypto');
      await send(notJson, { [SIGNATURE_HEADER]: createHmac('sha256', KEY).update(notJson).digest('hex') });
      const replay = good.seal(request('r-replay'));
      await send(replay.body, replay.headers); // valid: executed once (its reply is undeliverable)
      await send(replay.body, replay.headers); // the same bytes again: a replay
      await expect
        .poll(
          () => {
            const s = worker!.stats;
            return (
              s.unsigned! -
              before.unsigned! +
              (s.forged! - before.forged!) +
              (s.notJson! - before.notJson!) +
              (s.replayed! - before.replayed!)
            );
          },
          { timeout: 10_000 },
        )
        .toBe(5);
      const s = worker.stats;
      expect(s.unsigned! - before.unsigned!).toBe(1);
      expect(s.forged! - before.forged!).toBe(2);
      expect(s.notJson! - before.notJson!).toBe(1);
      expect(s.replayed! - before.replayed!).toBe(1);
      await expect.poll(() => worker!.stats.undeliverable! - before.undeliverable!, { timeout: 10_000 }).toBe(1);
      expect(worker.stats.executed! - before.executed!).toBe(1);
    } finally {
      await conn.close();
    }
  }, 30_000);

  it('replies finished in one turn go to an engine that reads them in one message, one by one to an engine that does not', async (ctx) => {
    if (!worker || !broker) return ctx.skip();
    const conn = await amqp.connect(broker.url);
    try {
      const ch = await conn.createConfirmChannel();
      const { queue: replyTo } = await ch.assertQueue('', { exclusive: true });
      const codec = new MessageCodec({ key: KEY });
      const got: { type: string; replies?: unknown[]; id?: string }[] = [];
      await ch.consume(
        replyTo,
        (msg) => {
          const opened = codec.open(msg!.content, msg!.properties.headers, false);
          if (opened.ok && opened.message.type !== 'started') got.push(opened.message as (typeof got)[number]);
        },
        { noAck: true },
      );
      const request = (id: string, i: number, batchReplies: boolean) =>
        codec.seal({
          type: 'request',
          id,
          replyTo,
          ...(batchReplies ? { batchReplies } : {}),
          request: {
            kind: 'execute',
            task: 'rBatch',
            flow: 'rBatchFlow',
            version: '1',
            runId: `batch-${id}`,
            atom: 0,
            epoch: 3,
            attempt: 1,
            execution: 1,
            idempotencyKey: id,
            fencingToken: 't',
            inputs: { i },
            retryValue: null,
            failure: null,
            timeoutMs: null,
          },
        });
      const send = (m: { body: Buffer; headers: Record<string, string> }) =>
        new Promise<void>((resolve, reject) =>
          ch.sendToQueue('stoker.task.rBatch', m.body, { headers: m.headers }, (e: unknown) => (e ? reject(e as Error) : resolve())),
        );
      for (const batchReplies of [true, false]) {
        got.length = 0;
        batchOf = 5;
        for (let i = 0; i < 5; i++) await send(request(`${d.dialect}-${String(batchReplies)}-${i}`, i, batchReplies));
        if (batchReplies) {
          // the five end in the same turn: one message, each reply with its own call, claim and result
          await expect.poll(() => got.length, { timeout: 10_000 }).toBe(1);
          expect(got[0]!.type).toBe('replies');
          const replies = got[0]!.replies as { id: string; runId: string; epoch: number; outcome: { ok: boolean; result: unknown } }[];
          expect(replies.map((r) => [r.runId, r.epoch, r.outcome]).sort()).toEqual(
            Array.from({ length: 5 }, (_, i) => [`batch-${d.dialect}-true-${i}`, 3, { ok: true, result: i }]),
          );
        } else {
          // an engine that did not say it reads `replies` gets each reply alone
          await expect.poll(() => got.length, { timeout: 10_000 }).toBe(5);
          expect(got.map((m) => m.type)).toEqual(Array(5).fill('reply'));
        }
      }
    } finally {
      batchOf = 0;
      await conn.close();
    }
  }, 30_000);

  it('a forged or unknown reply to the engine is dropped and counted', async (ctx) => {
    if (!runtime?.amqp?.remote || !broker) return ctx.skip();
    const remote = runtime.amqp.remote;
    const conn = await amqp.connect(broker.url);
    try {
      const ch = await conn.createConfirmChannel();
      const send = (m: { body: Buffer; headers: Record<string, string> }) =>
        new Promise<void>((resolve, reject) =>
          ch.sendToQueue(remote.replyQueueName, m.body, { headers: m.headers }, (e: unknown) => (e ? reject(e as Error) : resolve())),
        );
      const reply = { type: 'reply', id: 'no-such-call', runId: 'r', atom: 0, epoch: 7, outcome: { ok: true, result: 1 } };
      const before = remote.snapshot();
      await send(new MessageCodec({ key: 'another-key-0123456789' }).seal(reply));
      await send(new MessageCodec({ key: KEY }).seal(reply));
      await send({ body: Buffer.from('not json at all'), headers: {} });
      // several replies in one message: each is checked on its own
      const { type: _, ...one } = reply;
      await send(new MessageCodec({ key: KEY }).seal({ type: 'replies', replies: [one, { ...one, id: 'another' }, { id: 'no outcome' }] }));
      await send(new MessageCodec({ key: KEY }).seal({ type: 'replies', replies: [] }));
      const b = before as unknown as Record<string, number>;
      const counts = () => {
        const after = remote.snapshot() as unknown as Record<string, number>;
        return ['unknownReplies', 'forged', 'unsigned', 'malformed', 'replyMessages'].map((k) => after[k]! - b[k]!);
      };
      await expect.poll(counts, { timeout: 10_000 }).toEqual([3, 1, 1, 2, 2]);
    } finally {
      await conn.close();
    }
  }, 30_000);
});
