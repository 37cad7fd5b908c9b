/**
 * A start made by a run client with a relay (AMQP, docs/amqp.md "Wake-ups"): the relay's
 * message goes out first. On MySQL/MariaDB the store's own wake-up (a PROCESSLIST scan and
 * a `KILL QUERY` per listener, `Wakeups.deferInStarts`) would otherwise run inside the
 * start's call, delaying the relay's message by its length; there the start goes without it
 * and the client sends it STORE_FOLLOW_UP_MS after the relay's (`flush` at once), one for the
 * starts of that window. Elsewhere the store's wake-up stays in the start (PostgreSQL's
 * NOTIFY at commit, SQLite's wake file). Either way an engine listening only to the store is
 * still woken by the start.
 */
import { expect, it } from 'vitest';
import { RunClient, STORE_FOLLOW_UP_MS } from '../../../src/engine/run-client.js';
import { WakeHub, type WakeRelay } from '../../../src/engine/wake-hub.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import { describeEachDialect } from '../../helpers/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function flows(): FlowRegistry {
  const registry = new FlowRegistry();
  registry.register(linear('one', [task({ name: 'only', execute: () => null })]));
  return registry;
}

await describeEachDialect('relay-first wake-up of a start', (ctx) => {
  it('the relay hears a start before the store is asked to wake its listeners, and store listeners still wake', async () => {
    const starter = await ctx.db.open();
    const listener = await ctx.db.open();
    const order: string[] = [];
    // what the run client asks of the store's wake-ups, in order with the relay's announcements
    const wakeups = starter.wakeups!;
    const notify = wakeups.notify.bind(wakeups);
    wakeups.notify = () => {
      order.push('store');
      return notify();
    };
    const relay: WakeRelay = { notify: () => order.push('relay'), subscribe: () => () => undefined };
    const hub = new WakeHub();
    const detach = hub.attach(relay);
    let woken = 0;
    const unsubscribe = await listener.wakeups!.subscribe(() => (woken += 1));
    try {
      await sleep(200); // the listener's first wait is on the server
      const client = new RunClient({ store: starter, flows: flows(), wakeHub: hub });
      const before = woken;
      await client.startRun('one', {});
      await client.startRun('one', {});
      // deferred where the store's wake-up is slow (MySQL/MariaDB), in the start elsewhere:
      // not yet sent when the start returns, then one for both starts
      expect(order).toEqual(['relay', 'relay']);
      const deferred = ctx.dialect === 'mysql';
      for (let i = 0; i < 2000 && order.length < (deferred ? 3 : 2); i++) await sleep(1);
      await sleep(STORE_FOLLOW_UP_MS * 3);
      expect(order).toEqual(deferred ? ['relay', 'relay', 'store'] : ['relay', 'relay']);
      for (let i = 0; i < 2000 && woken === before; i++) await sleep(1);
      expect(woken).toBeGreaterThan(before);

      // flush sends a waiting one at once (the runtime and engines do when they stop)
      order.length = 0;
      await client.startRun('one', {});
      await client.flush();
      expect(order).toEqual(deferred ? ['relay', 'store'] : ['relay']);

      // without a relay, every dialect wakes in the start itself, as before
      order.length = 0;
      const plain = new RunClient({ store: starter, flows: flows() });
      const before2 = woken;
      await plain.startRun('one', {});
      expect(order).toEqual([]);
      for (let i = 0; i < 2000 && woken === before2; i++) await sleep(1);
      expect(woken).toBeGreaterThan(before2);

      // a keyed start (the shared transaction) follows the same rule
      order.length = 0;
      await client.startRun('one', {}, { key: 'k1' });
      await client.flush();
      expect(order).toEqual(deferred ? ['relay', 'store'] : ['relay']);
    } finally {
      detach();
      await unsubscribe();
    }
  });
});
