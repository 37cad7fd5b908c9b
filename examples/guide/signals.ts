import { createRuntime, linear, task } from 'stoker';

// The task parks until a signal named `approve` arrives and gets its payload. Signals are
// stored: one sent before the task asks for it is not lost. `stoker signal RUN approve
// --payload '{"by":"ana"}'` sends one from the command line.
const expense = linear('expense', [
  task({
    name: 'approval',
    requires: ['amount'],
    provides: 'approved',
    execute: async ({ amount }, ctx) => {
      const answer = await ctx.waitForSignal('approve');
      return { amount, answer };
    },
  }),
]);

const runtime = await createRuntime({ store: process.env.STOKER_STORE ?? 'sqlite:./stoker.db', flows: [expense] });
await runtime.start();
const { run } = await runtime.client.startRun('expense', { amount: 80 });
await runtime.client.signal(run.id, 'approve', { by: 'ana' });
const done = await runtime.client.waitForRun(run.id);
console.log(done.status, JSON.stringify(done.result));
await runtime.stop();
