/**
 * Claims seen before their commit (ARCHITECTURE.md; src/store/mysql/visible-claims.ts): on
 * MySQL/MariaDB the claim sends its claims before its COMMIT and the engine starts them at
 * once; other stores have nothing to show before the commit and never call `onVisible`.
 *
 * The second test makes the commit fail for real: the claim procedure is made to pause
 * between its claims and its COMMIT (the test's own database), and the claiming connection
 * is killed there, so the server rolls the claim back after the task has started. The
 * engine must then abort that task and give its id up: its outcome is never written, even
 * once the same atom has been claimed again under the same epoch number and is running.
 */
import { expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import { withPrefix } from '../../../src/store/migration.js';
import { VISIBLE_CLAIM_STATEMENTS } from '../../../src/store/mysql/visible-claims.js';
import type { ClaimedAtom } from '../../../src/store/store.js';
import { describeEachDialect } from '../../helpers/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

await describeEachDialect('claims seen before their commit', (ctx) => {
  it('MySQL/MariaDB shows the claims, with their runs, before the claim returns; other stores never call onVisible', async () => {
    const flows = new FlowRegistry();
    flows.register(linear('two', [task({ name: 'a', execute: () => 1 }), task({ name: 'b', execute: () => 2 })]));
    const engine = new Engine({ store: ctx.store, flows, concurrency: 1 });
    const { run } = await engine.client.startRun('two', {});
    const events: string[] = [];
    let visible: ClaimedAtom[] | null = null;
    const claimed = ctx.store.claimAtoms('visible-test', 4, {
      onVisible: (claims) => {
        events.push('visible');
        visible = claims;
      },
    });
    const claims = await claimed;
    events.push('returned');
    expect(claims.map((c) => [c.runId, c.index, c.epoch])).toEqual([[run.id, 0, 1]]);
    if (ctx.dialect === 'mysql') {
      expect(claims[0]!.run?.id).toBe(run.id);
      expect(events).toEqual(['visible', 'returned']);
      expect(visible).toEqual(claims);
      // nothing to claim: shown as nothing, and returned as nothing
      const none: ClaimedAtom[][] = [];
      expect(await ctx.store.claimAtoms('visible-test', 4, { onVisible: (c) => none.push(c) })).toEqual([]);
      expect(none).toEqual([[]]);
    } else {
      expect(events).toEqual(['returned']);
    }
  });

  it.runIf(ctx.dialect === 'mysql')(
    'a claim whose commit fails after its task started: the task is aborted and its outcome never written',
    async () => {
      const [statement] = VISIBLE_CLAIM_STATEMENTS.filter((s) => s.startsWith('CREATE'));
      const pausing = statement!.replace('  SELECT v_out AS claims;\n  COMMIT;', '  SELECT v_out AS claims;\n  DO SLEEP(30);\n  COMMIT;');
      expect(pausing).not.toBe(statement);
      const define = async (text: string) => {
        await ctx.db.exec(withPrefix('DROP PROCEDURE IF EXISTS {p}claim_atoms_early', 'stoker_'));
        await ctx.db.exec(withPrefix(text, 'stoker_'));
      };
      const executions: { aborted: boolean; result: string }[] = [];
      const flows = new FlowRegistry();
      flows.register(
        linear('one', [
          task({
            name: 'only',
            execute: async (_input, tctx) => {
              const n = executions.length;
              const me = { aborted: false, result: n === 0 ? 'first' : 'second' };
              executions.push(me);
              tctx.signal.addEventListener('abort', () => (me.aborted = true));
              // the first execution returns only once the atom runs again elsewhere in the
              // engine, under the same epoch number: a write of its outcome would then pass
              // the epoch fence, so only the engine's own fencing keeps it out
              if (n === 0) await until('the second execution', () => executions.length > 1, 20_000);
              else await sleep(100);
              return me.result;
            },
          }),
        ]),
      );
      await define(pausing);
      const engine = new Engine({ store: ctx.store, flows, concurrency: 2, pollMs: 50, leaseMs: 3000 });
      // started first: the engine's first claim takes it (every claim now waits 30 s before its commit)
      const { run } = await engine.client.startRun('one', {});
      await engine.start();
      try {
        // the task runs while its claim still waits to commit
        await until('the first execution', () => executions.length === 1);
        const rows = await ctx.db.exec(
          `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(30)%' AND ID <> CONNECTION_ID() AND DB = DATABASE()`,
        );
        expect(rows).toHaveLength(1);
        const [atomBefore] = await ctx.db.exec(`SELECT state, epoch FROM stoker_atoms WHERE run_id = '${run.id}'`);
        expect(atomBefore).toMatchObject({ state: 'READY', epoch: 0 });
        await define(statement!);
        await ctx.db.exec(`KILL CONNECTION ${Number(rows[0]!.id)}`);

        const done = await engine.waitForRun(run.id, { timeoutMs: 30_000 });
        expect(done.status).toBe('SUCCESS');
        expect(executions.map((e) => e.result)).toEqual(['first', 'second']);
        expect(executions[0]!.aborted).toBe(true);
        const [atom] = await ctx.db.exec(`SELECT state, epoch, result FROM stoker_atoms WHERE run_id = '${run.id}'`);
        // the rolled-back claim left no trace: the second claim took epoch 1 again
        expect(atom).toMatchObject({ state: 'SUCCESS', epoch: 1 });
        expect(JSON.parse(String(atom!.result))).toBe('second');
        const claimedEvents = await ctx.db.exec(`SELECT engine_id FROM stoker_events WHERE run_id = '${run.id}' AND kind = 'atom.claimed'`);
        expect(claimedEvents).toHaveLength(1);
      } finally {
        await engine.stop();
      }
    },
    60_000,
  );
});
