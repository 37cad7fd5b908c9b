/**
 * A start announced before its commit (docs/amqp.md, "Wake-ups"; src/engine/run-client.ts):
 * on MySQL/MariaDB, whose one-call start sends the run's row before its COMMIT, a run
 * client with an AMQP relay publishes the wake-up then, naming the run, and a claim given
 * that name waits for the commit (src/store/mysql/visible-claims.ts) where a plain one
 * skips the uncommitted rows and misses the run. Here the start procedure is made to pause
 * half a second before its COMMIT (in the test's own database), so "before the commit" is
 * not a matter of timing. Elsewhere the message follows the commit and names nothing.
 *
 * And the message as a hint from the network: a name that is not a run id as the tables
 * hold them is heard as no name at all.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RunClient } from '../../../src/engine/run-client.js';
import { WakeHub, type WakeHint } from '../../../src/engine/wake-hub.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import { openAmqp, type Amqp } from '../../../src/runtime/amqp.js';
import { withPrefix } from '../../../src/store/migration.js';
import { START_AND_CLAIM_STATEMENTS } from '../../../src/store/mysql/procedures.js';
import type { ClaimedAtom } from '../../../src/store/store.js';
import { QUIET_MS } from '../../../src/transport/amqp/amqp-wakeups.js';
import { describeEachDialect } from '../../helpers/databases.js';
import { createTestVhost, type TestVhost } from '../../helpers/rabbitmq.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

await describeEachDialect('a start announced before its commit', (ctx) => {
  let broker: TestVhost | null = null;
  let starter: Amqp | null = null;
  let engines: Amqp | null = null;

  beforeAll(async () => {
    broker = await createTestVhost();
    if (!broker) return;
    starter = await openAmqp({ url: broker.url });
    engines = await openAmqp({ url: broker.url });
  }, 60_000);

  afterAll(async () => {
    await starter?.close();
    await engines?.close();
    await broker?.drop();
  }, 60_000);

  it('MySQL/MariaDB: the wake-up names the run before its commit, and only a claim that waits for the commit gets it', async (t) => {
    if (!broker || !starter || !engines) return t.skip();
    const mysql = ctx.dialect === 'mysql';
    const startRun = START_AND_CLAIM_STATEMENTS.find((s) => s.startsWith('CREATE PROCEDURE {p}start_run('))!;
    const pausing = startRun.replace('\n  COMMIT;\nEND', '\n  DO SLEEP(0.5);\n  COMMIT;\nEND');
    const define = async (text: string) => {
      await ctx.db.exec(withPrefix('DROP PROCEDURE IF EXISTS {p}start_run', 'stoker_'));
      await ctx.db.exec(withPrefix(text, 'stoker_'));
    };
    if (mysql) {
      expect(pausing).not.toBe(startRun);
      await define(pausing);
    }
    const flows = new FlowRegistry();
    flows.register(linear('one', [task({ name: 'only', execute: () => null })]));
    const other = await ctx.db.open();
    const heard: { hint: WakeHint | undefined; at: number }[] = [];
    let claims: Promise<[ClaimedAtom[], ClaimedAtom[]]> | null = null;
    const off = engines.wakeups.subscribe((hint) => {
      heard.push({ hint, at: performance.now() });
      // as an engine's claim loop would: with the name (waits for the commit), and without
      if (hint && !claims) {
        claims = Promise.all([other.claimAtoms('plain', 4), other.claimAtoms('waiting', 4, { after: hint.startingRun })]);
      }
    });
    const hub = new WakeHub();
    const detach = hub.attach(starter.wakeups);
    try {
      await until('the queue bound', () => engines!.wakeups.listening && heard.length > 0);
      heard.length = 0;
      await sleep(QUIET_MS + 5);
      const client = new RunClient({ store: ctx.store, flows, wakeHub: hub });
      const { run } = await client.startRun('one', {});
      const returnedAt = performance.now();
      await until('the wake-up', () => heard.length > 0);
      await sleep(50);
      expect(heard).toHaveLength(1);
      if (mysql) {
        expect(heard[0]!.hint).toEqual({ startingRun: run.id });
        // heard while the start still paused before its commit
        expect(heard[0]!.at).toBeLessThan(returnedAt - 200);
        const [plain, waiting] = await claims!;
        expect(plain).toEqual([]);
        expect(waiting.map((c) => [c.runId, c.index])).toEqual([[run.id, 0]]);
      } else {
        expect(heard[0]!.hint).toBeUndefined();
        expect(claims).toBeNull();
      }
    } finally {
      off();
      detach();
      if (mysql) await define(startRun);
    }
  });

  it.runIf(ctx.dialect === 'mysql')('a name that is not a run id as the tables hold them is heard as no name', async (t) => {
    if (!broker || !engines) return t.skip();
    const hints: (WakeHint | undefined)[] = [];
    const off = engines.wakeups.subscribe((hint) => hints.push(hint));
    const admin = await amqp.connect(broker.url);
    try {
      // bound since the first test; a first subscription would also be woken once on binding
      await until('the queue bound', () => engines!.wakeups.listening);
      await sleep(50);
      hints.length = 0;
      const ch = await admin.createChannel();
      const send = (body: unknown) => ch.publish('stoker.wake', '', Buffer.from(JSON.stringify(body)));
      send({ from: 'elsewhere', run: 42 });
      send({ from: 'elsewhere', run: 'é'.repeat(128) }); // 256 bytes
      send({ from: 'elsewhere', run: '' });
      send({ from: 'elsewhere', run: 'r-1' });
      await until('four wake-ups', () => hints.length === 4);
      expect(hints).toEqual([undefined, undefined, undefined, { startingRun: 'r-1' }]);
    } finally {
      off();
      await admin.close();
    }
  });
});
