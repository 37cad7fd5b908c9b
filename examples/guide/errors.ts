import { FlowRegistry, RunClient, isStokerError, openStore } from 'stoker';

const store = await openStore(process.env.STOKER_STORE ?? 'sqlite:./stoker.db');
await store.migrate();
const client = new RunClient({ store, flows: new FlowRegistry() });
try {
  await client.startRun('order', { orderId: 42 });
} catch (e) {
  if (!isStokerError(e) || e.code !== 'STOKER_FLOW_NOT_FOUND') throw e;
  // e.details says which flow and version were asked for
  console.log(e.code, JSON.stringify(e.details));
} finally {
  await store.close();
}
