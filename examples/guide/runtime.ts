import { createRuntime, linear, task } from 'stoker';

// createRuntime wires a store (opened and migrated from its URL), a flow registry, engines and
// a run client. `engines: 0` gives a client only: a web handler that starts runs for engines
// elsewhere. stop() drains the engines and closes the store.
const hello = linear('hello', [task({ name: 'say', requires: ['who'], provides: 'text', execute: ({ who }) => `hi ${String(who)}` })]);
const store = process.env.STOKER_STORE ?? 'sqlite:./stoker.db';

const workers = await createRuntime({ store, flows: [hello], engines: 2, concurrency: 4 });
await workers.start();
const client = await createRuntime({ store, flows: [hello], engines: 0, migrate: 'check' });
const { run } = await client.client.startRun('hello', { who: 'bob' }, { key: 'hello-bob' });
const again = await client.client.startRun('hello', { who: 'bob' }, { key: 'hello-bob' });
const done = await client.client.waitForRun(run.id);
console.log(done.status, JSON.stringify(done.result), again.created ? 'a second run' : 'same run for the same key');
await client.stop();
await workers.stop();
