import { createRuntime, linear, task } from 'stoker';

// A task starts a run of another flow and waits for it (parked, holding no slot); the child's
// result is the call's value, a child's failure is thrown as ChildRunFailedError.
const invoice = linear('invoice', [
  task({ name: 'number', requires: ['order'], provides: 'invoice', execute: ({ order }) => `INV-${String(order)}` }),
]);
const order = linear('order', [
  task({
    name: 'bill',
    requires: ['order'],
    provides: 'billed',
    execute: (inputs, ctx) => ctx.runChild('invoice', { order: inputs.order }),
  }),
]);

const runtime = await createRuntime({ store: process.env.STOKER_STORE ?? 'sqlite:./stoker.db', flows: [invoice, order] });
await runtime.start();
const { run } = await runtime.client.startRun('order', { order: 7 });
const done = await runtime.client.waitForRun(run.id);
const children = await runtime.store.listRuns({ parentRunId: run.id });
console.log(done.status, JSON.stringify(done.result), children.map((c) => `${c.flow}:${c.status}`).join(' '));
await runtime.stop();
