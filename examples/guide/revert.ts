import { createRuntime, linear, task } from 'stoker';

// Shipping is refused for good, so what was done is undone in reverse order: the charge is
// refunded, then the stock released. The run ends REVERTED.
const log: string[] = [];
const order = linear('order', [
  task({
    name: 'reserve',
    requires: ['sku'],
    provides: 'reservation',
    execute: ({ sku }) => (log.push(`reserve ${String(sku)}`), 'r-1'),
    revert: ({ sku }) => void log.push(`release ${String(sku)}`),
  }),
  task({
    name: 'charge',
    requires: ['reservation'],
    provides: 'payment',
    execute: () => (log.push('charge'), 'p-1'),
    revert: ({ reservation }, ctx) => void log.push(`refund (${String(reservation)}, after: ${ctx.failure?.message ?? 'none'})`),
  }),
  task({
    name: 'ship',
    requires: ['payment'],
    execute: () => {
      throw Object.assign(new Error('address refused'), { retryable: false });
    },
  }),
]);

const runtime = await createRuntime({ store: process.env.STOKER_STORE ?? 'sqlite:./stoker.db', flows: [order] });
await runtime.start();
const { run } = await runtime.client.startRun('order', { sku: 'kettle' });
const done = await runtime.client.waitForRun(run.id);
console.log(done.status, done.failure?.message);
console.log(log.join(' → '));
await runtime.stop();
