/**
 * The claim loop (protocol 2): while the engine runs and its lease holds, it claims as many
 * ready atoms as it has free slots ({@link freeSlots}), in one statement, and launches them. When it claims
 * nothing it waits for a wake-up (this process's hub, the store's pushed wake-ups), a freed
 * slot, or its poll interval (jittered ±20 %; backing off after failures). A wake-up while
 * it is busy is remembered, never lost.
 *
 * A freed slot wakes the loop only when its last claim was short of slots (it took all it
 * asked for, or had none free): ready work may then be waiting. After a claim that found
 * less than it asked for, all ready work was taken, and whatever becomes ready later is
 * announced by whoever made it ready. Waking for every freed slot cost a linear flow one
 * useless claim statement per atom at the default concurrency, halving its speed.
 */
import type { ClaimedAtom } from '../store/store.js';
import type { EngineCore } from './engine-core.js';
import type { WakeHint } from './wake-hub.js';

/**
 * Atoms the claim loop may claim now: local slots (`concurrency`) not taken by atoms
 * executing here, plus, on an engine with remote workers, the share of its free remote
 * slots (`remoteConcurrency`) that the atoms placed lately suggest will go to workers
 * (`InFlight.remoteShare`); all within a total that also counts the remote atoms out.
 * Whether a claimed atom is remote is known only once it is claimed, so the remote bound is
 * soft (it may be passed by at most `concurrency`), and local atoms claimed beyond
 * `concurrency` wait for a local slot (the executor's gate): local execution never passes it.
 */
export function freeSlots(core: EngineCore, leaving: readonly ClaimedAtom[] = []): number {
  const { concurrency, remoteConcurrency } = core.settings;
  const inflight = core.inflight;
  const remoteLeaving = leaving.filter((c) => inflight.isRemote(c.runId, c.index)).length;
  const local = inflight.local - (leaving.length - remoteLeaving);
  const remoteFree = core.remote ? Math.max(0, remoteConcurrency - (inflight.remote - remoteLeaving)) : 0;
  const expectedRemote = Math.floor(remoteFree * inflight.remoteShare);
  return Math.max(0, Math.min(concurrency - local + expectedRemote, concurrency + remoteConcurrency - (inflight.size - leaving.length)));
}

/**
 * Slots a commit of these completions may fill with continuations and claims in the same
 * transaction: those the batch frees, within {@link freeSlots} once its atoms have left
 * (a remote atom's completion frees no local slot).
 */
export function slotsFreedBy(core: EngineCore, batch: readonly { claim: ClaimedAtom }[]): number {
  return Math.min(
    batch.length,
    freeSlots(
      core,
      batch.map((c) => c.claim),
    ),
  );
}

export class ClaimLoop {
  private wakeResolve: (() => void) | null = null;
  private wakePending = false;
  private done: Promise<void> | null = null;
  /** the last claim took every slot it asked for, or there was none free: work may be left */
  private shortOfSlots = true;
  /** a run whose start was committing when a wake-up named it, for the next claim */
  private startingRun: string | undefined;

  constructor(
    private readonly core: EngineCore,
    private readonly launch: (claim: ClaimedAtom) => void,
  ) {
    core.wake = (hint) => this.wake(hint);
    core.slotFreed = () => {
      if (this.shortOfSlots) this.wake();
    };
  }

  start(): void {
    this.done = this.loop();
  }

  /** resolves once the loop has seen `stopping` and returned */
  async stopped(): Promise<void> {
    this.wake();
    await this.done;
  }

  wake(hint?: WakeHint): void {
    // the next claim waits for the commit of a start that a wake-up named (ClaimOptions.after)
    if (hint) this.startingRun = hint.startingRun;
    const r = this.wakeResolve;
    this.wakeResolve = null;
    // a wake-up while the loop is busy claiming is remembered, not lost
    if (r) r();
    else this.wakePending = true;
  }

  private async loop(): Promise<void> {
    const core = this.core;
    let failures = 0;
    while (!core.stopping) {
      const free = freeSlots(core);
      let claimed = 0;
      // no claim attempted (no free slot, no valid lease) also counts as short: a freed slot
      // or a renewed lease must bring the loop back
      this.shortOfSlots = true;
      if (free > 0 && core.leaseValid()) {
        try {
          // Where the store shows its claims before their commit (MySQL/MariaDB), their tasks
          // start while it is made durable; should the commit then fail, the catch below
          // aborts them and gives the id up, so nothing is written under their epochs
          // (ARCHITECTURE.md, "Claims seen before their commit").
          let launched = false;
          const after = this.startingRun;
          this.startingRun = undefined;
          const claims = await core.store.claimAtoms(core.id, free, {
            ...(after === undefined ? {} : { after }),
            onVisible: (visible) => {
              launched = true;
              for (const c of visible) this.launch(c);
            },
          });
          for (const c of claims) core.faultPoint('after-claim-commit', { runId: c.runId, atom: c.index });
          failures = 0;
          core.stats.claims += 1;
          if (claims.length > 0) core.stats.claimCommits += 1;
          else core.stats.emptyClaims += 1;
          claimed = claims.length;
          this.shortOfSlots = claimed === free;
          core.stats.claimed += claims.length;
          if (!launched) for (const c of claims) this.launch(c);
          // Which of them are remote is known once they are prepared (a few memory reads):
          // wait for that, so that the next claim takes all the slots they left free in one
          // statement instead of one statement per remote atom (docs/amqp.md, "Performance").
          if (claims.length > 0 && core.remote) await core.inflight.placed(claims);
        } catch (e) {
          failures += 1;
          core.emitError(e);
          // The claim may have committed although we got no answer (an ambiguous commit):
          // atoms could now be held under our id that nobody runs. Give the id up; the
          // reapers requeue whatever it holds (found by the simulation: docs/reliability.md C11).
          core.fenceSelf('claim outcome unknown');
        }
      }
      if (claimed > 0 && claimed === free) continue;
      if (this.wakePending || core.stopping) {
        this.wakePending = false;
        continue;
      }
      // idle: wait for a wake-up, a free slot or the jittered poll
      const jitter = 0.8 + core.rng.next() * 0.4;
      const waitMs = failures > 0 ? Math.min(5000, 100 * 2 ** failures) : core.settings.pollMs * jitter;
      await new Promise<void>((resolve) => {
        const timer = core.clock.setTimer(waitMs, () => {
          this.wakeResolve = null;
          resolve();
        });
        this.wakeResolve = () => {
          timer.cancel();
          resolve();
        };
      });
    }
  }
}
