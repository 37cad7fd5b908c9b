/**
 * The guards of a run transaction, now one implementation for every dialect
 * (src/store/sql/run-tx.ts): a RunTx used after its transaction ended is refused, and after
 * a database error inside the transaction every later call fails with that first error and
 * the transaction rolls back, even when the callback caught the error and went on.
 */
import { expect, it } from 'vitest';
import type { RunTx } from '../../../src/store/store.js';
import { describeEachDialect } from '../../helpers/databases.js';
import { newRun } from '../../helpers/graphs.js';

const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => null,
    (e: unknown) => e,
  );

await describeEachDialect('run transaction guards', (ctx) => {
  it('refuses a RunTx used after its transaction ended', async () => {
    const s = await ctx.db.open({ tablePrefix: 'g1_' });
    const { run } = await s.startRun(newRun());
    let kept: RunTx | undefined;
    await s.runTransaction([run.id], async (tx) => {
      kept = tx;
    });
    const err = await failure(kept!.updateRun(run.id, { status: 'RUNNING' }));
    expect(err).toMatchObject({
      code: 'STOKER_STORE_QUERY_FAILED',
      message: expect.stringMatching(/updateRun was called after its transaction ended/) as string,
    });
    expect((await s.getRun(run.id))!.status).toBe('PENDING');
  });

  it('after a failed statement, every later call fails with that error and nothing commits', async () => {
    const s = await ctx.db.open({ tablePrefix: 'g2_' });
    const { run } = await s.startRun(newRun());
    let first: unknown;
    const err = await failure(
      s.runTransaction([run.id], async (tx) => {
        await tx.updateRun(run.id, { status: 'RUNNING' });
        // a second run with the same id: the primary key refuses it
        first = await failure(tx.startRun(newRun({ id: run.id })));
        expect(first).toMatchObject({ code: 'STOKER_STORE_QUERY_FAILED' });
        expect(await failure(tx.getAtoms(run.id, [0]))).toBe(first);
        return 'went on';
      }),
    );
    expect(err).toBe(first);
    expect((await s.getRun(run.id))!.status).toBe('PENDING');
  });
});
