import { createRuntime, linear, task } from 'stoker';

// A durable sleep: the atom is parked (WAITING, no claim, no engine slot) and executed again
// when the time is up, on whichever engine claims it; the code before the sleep runs again,
// so it must be idempotent.
let started = 0;
const reminder = linear('reminder', [
  task({
    name: 'wait-then-send',
    provides: 'sent',
    execute: async (_inputs, ctx) => {
      started += 1;
      await ctx.sleep(300);
      return `sent after the sleep (execution ${started})`;
    },
  }),
]);

const runtime = await createRuntime({ store: process.env.STOKER_STORE ?? 'sqlite:./stoker.db', flows: [reminder], pollMs: 50 });
await runtime.start();
const { run } = await runtime.client.startRun('reminder', {});
const done = await runtime.client.waitForRun(run.id);
const took = done.finishedAt!.getTime() - done.createdAt.getTime();
console.log(done.status, JSON.stringify(done.result), took >= 300 ? 'slept' : 'too early');
await runtime.stop();
