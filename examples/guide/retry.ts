import { createRuntime, linear, task } from 'stoker';

// The gateway times out twice. The task's policy allows 4 attempts, 50 ms apart and doubling
// (with jitter); an error with `retryable: false` would end the retries at once.
let calls = 0;
const pay = linear('pay', [
  task({
    name: 'charge',
    requires: ['amount'],
    provides: 'receipt',
    retry: { attempts: 4, backoffMs: 50, factor: 2 },
    execute: ({ amount }, ctx) => {
      calls += 1;
      if (calls <= 2) throw Object.assign(new Error('gateway timeout'), { retryable: true });
      return { amount, attempt: ctx.attempt, key: ctx.idempotencyKey.split('/').slice(1).join('/') };
    },
  }),
]);

const runtime = await createRuntime({ store: process.env.STOKER_STORE ?? 'sqlite:./stoker.db', flows: [pay], pollMs: 50 });
await runtime.start();
const { run } = await runtime.client.startRun('pay', { amount: 12 });
const done = await runtime.client.waitForRun(run.id);
console.log(done.status, JSON.stringify(done.result));
await runtime.stop();
