import { Engine, FlowRegistry, linear, openStore, task } from 'stoker';

// Two steps, one after the other; `greet` reads the value `hello` provides.
const greeting = linear('greeting', [
  task({ name: 'hello', requires: ['who'], provides: 'text', execute: ({ who }) => `hello ${String(who)}` }),
  task({ name: 'shout', requires: ['text'], provides: 'loud', execute: ({ text }) => `${String(text).toUpperCase()}!` }),
]);

const store = await openStore(process.env.STOKER_STORE ?? 'sqlite:./stoker.db');
await store.migrate();
const flows = new FlowRegistry();
flows.register(greeting);
const engine = new Engine({ store, flows });
await engine.start();
const { run } = await engine.startRun('greeting', { who: 'ada' });
const done = await engine.waitForRun(run.id);
console.log(done.status, JSON.stringify(done.result));
await engine.stop();
await store.close();
