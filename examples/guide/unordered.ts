import { createRuntime, linear, task, unordered } from 'stoker';

// Three lookups with no order between them (an engine may run them at once), then one step
// that needs all three results.
const quote = linear('quote', [
  unordered('lookups', [
    task({ name: 'price', requires: ['sku'], provides: 'price', execute: () => 40 }),
    task({ name: 'tax', requires: ['country'], provides: 'rate', execute: ({ country }) => (country === 'NL' ? 0.21 : 0.2) }),
    task({ name: 'shipping', requires: ['country'], provides: 'shipping', execute: () => 5 }),
  ]),
  task({
    name: 'total',
    requires: ['price', 'rate', 'shipping'],
    provides: 'total',
    execute: ({ price, rate, shipping }) => Number(price) * (1 + Number(rate)) + Number(shipping),
  }),
]);

const runtime = await createRuntime({ store: process.env.STOKER_STORE ?? 'sqlite:./stoker.db', flows: [quote] });
await runtime.start();
const { run } = await runtime.client.startRun('quote', { sku: 'kettle', country: 'NL' });
const done = await runtime.client.waitForRun(run.id);
console.log(done.status, JSON.stringify(done.result));
await runtime.stop();
