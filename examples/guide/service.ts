import { Engine, FlowRegistry, linear, openStore, task } from 'stoker';

// An engine as a service: run() starts it and resolves once it has stopped. On SIGTERM or
// SIGINT it drains in-flight atoms, hands the rest back and removes its row, as `stoker
// engine` does. Here the process sends itself SIGTERM once its one run is done.
const ping = linear('ping', [task({ name: 'pong', provides: 'pong', execute: () => 'pong' })]);
const store = await openStore(process.env.STOKER_STORE ?? 'sqlite:./stoker.db');
await store.migrate();
const flows = new FlowRegistry();
flows.register(ping);
const engine = new Engine({ store, flows });
engine.on('run.finished', ({ status }) => {
  console.log('run finished', status);
  process.kill(process.pid, 'SIGTERM');
});
const serving = engine.run();
await engine.startRun('ping', {});
await serving;
console.log('engine stopped; engines left:', (await store.listEngines()).length);
await store.close();
