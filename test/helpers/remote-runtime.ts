/**
 * The setup of the AMQP integration suites (docs/amqp.md, "Remote tasks"): a test virtual
 * host, a runtime started on the dialect's store with the signing key, and a `Worker` when
 * asked; and their stop. Everything is null when the broker is unreachable (the test skips).
 *
 * @example
 * ```ts
 * beforeAll(async () => ({ broker, runtime, worker } = await openRemoteRuntime(d.store, flows, KEY, { pollMs: 200 }, { concurrency: 8 })));
 * afterAll(() => closeRemoteRuntime({ broker, runtime, workers: [worker] }));
 * ```
 */
import amqp from 'amqplib';
import type { JsonValue } from '../../src/core/json.js';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime/create-runtime.js';
import { Worker, type WorkerOptions } from '../../src/runtime/worker.js';
import type { Store } from '../../src/store/store.js';
import { MessageCodec } from '../../src/transport/amqp/signed-messages.js';
import { createTestVhost, type TestVhost } from './rabbitmq.js';

export interface RemoteRuntime {
  broker: TestVhost | null;
  runtime: Runtime | null;
  worker: Worker | null;
}

/** A vhost, a started runtime on it, and a worker when `worker` options are given (else null). */
export async function openRemoteRuntime(
  store: Store,
  flows: RuntimeOptions['flows'] & WorkerOptions['flows'],
  key: string,
  runtimeOptions: Partial<RuntimeOptions>,
  workerOptions?: Omit<WorkerOptions, 'amqp' | 'flows'>,
): Promise<RemoteRuntime> {
  const broker = await createTestVhost();
  if (!broker) return { broker: null, runtime: null, worker: null };
  const runtime = await createRuntime({ store, flows, amqp: { url: broker.url, key }, logLevel: 'silent', ...runtimeOptions });
  await runtime.start();
  const worker = workerOptions ? await Worker.open({ amqp: { url: broker.url, key }, flows, ...workerOptions }) : null;
  return { broker, runtime, worker };
}

/** Stops the workers (without draining), the runtime, and drops the vhost. */
export async function closeRemoteRuntime(r: {
  broker: TestVhost | null;
  runtime: Runtime | null;
  workers: readonly (Worker | null)[];
}): Promise<void> {
  for (const w of r.workers) await w?.stop({ drainMs: 0 });
  await r.runtime?.stop({ drain: false });
  await r.broker?.drop();
}

/**
 * One call of a request message as an engine writes it (`id` and `request`), for tests that
 * send requests to a worker themselves: epoch 2, attempt and execution 1, flow version '1'.
 */
export function requestCall(id: string, task: string, flow: string, inputs: Record<string, JsonValue>) {
  return {
    id,
    request: {
      kind: 'execute',
      task,
      flow,
      version: '1',
      runId: `run-${id}`,
      atom: 0,
      epoch: 2,
      attempt: 1,
      execution: 1,
      idempotencyKey: id,
      fencingToken: 't',
      inputs,
      retryValue: null,
      failure: null,
      timeoutMs: null,
    },
  };
}

/**
 * A raw connection to the broker, as an engine of its own: a confirm channel, an exclusive
 * reply queue whose signed messages it collects in `got` (opened with `key`), and `send`,
 * which publishes a sealed message on a queue and waits for the broker's confirm.
 */
export async function rawRemoteClient(url: string, key: string) {
  const conn = await amqp.connect(url);
  const ch = await conn.createConfirmChannel();
  const { queue: replyTo } = await ch.assertQueue('', { exclusive: true });
  const codec = new MessageCodec({ key });
  const got: Record<string, unknown>[] = [];
  await ch.consume(
    replyTo,
    (msg) => {
      const opened = codec.open(msg!.content, msg!.properties.headers, false);
      if (opened.ok) got.push(opened.message);
    },
    { noAck: true },
  );
  const send = (queue: string, m: { body: Buffer; headers: Record<string, string> }) =>
    new Promise<void>((resolve, reject) =>
      ch.sendToQueue(queue, m.body, { headers: m.headers }, (e: unknown) => (e ? reject(e as Error) : resolve())),
    );
  return { conn, ch, replyTo, codec, got, send };
}
