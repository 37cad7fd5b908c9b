import { describe, expect, it } from 'vitest';
import { coalesced } from '../../../src/store/sql/coalesced.js';

/** A send whose calls stay in flight until released, one by one. */
function gatedSend(): { send: () => Promise<void>; sent: () => number; release: () => void } {
  const pending: (() => void)[] = [];
  let sent = 0;
  return {
    send: () =>
      new Promise<void>((resolve) => {
        sent += 1;
        pending.push(resolve);
      }),
    sent: () => sent,
    release: () => pending.shift()?.(),
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('coalesced announcements', () => {
  it('sends at once when idle, and once more for all the calls made while one was in flight', async () => {
    const g = gatedSend();
    const notify = coalesced(g.send);
    const first = notify();
    expect(g.sent()).toBe(1);
    const during = [notify(), notify(), notify()];
    await turn();
    expect(g.sent()).toBe(1);
    g.release();
    await first;
    await turn();
    // one follow-up for the three: their commits may postdate the first send
    expect(g.sent()).toBe(2);
    g.release();
    await Promise.all(during);
    // idle again: the next call sends at once
    void notify();
    expect(g.sent()).toBe(3);
    g.release();
  });

  it('a failed send still lets the follow-up go, and its caller gets the failure', async () => {
    let calls = 0;
    const notify = coalesced(async () => {
      calls += 1;
      if (calls === 1) throw new Error('down');
    });
    const first = notify();
    const second = notify();
    await expect(first).rejects.toThrow('down');
    await expect(second).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });
});
