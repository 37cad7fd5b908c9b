/**
 * Migration 11 of MySQL/MariaDB: `claim_atoms_early`, the claim (protocol 2) whose rows
 * reach the engine before its COMMIT, so that the claimed tasks start while the commit is
 * being made durable (ARCHITECTURE.md, "Claims seen before their commit").
 *
 * Why: after a quiet spell a commit costs this server about a millisecond more than the
 * statements before it (bench/amqp.ts measures both: a one-row UPDATE committed after a
 * pause against the same rolled back). An idle engine's first task waited for two such
 * commits in turn, its run's start and its own claim; the claim's no longer delays it.
 *
 * Given a run whose start may still be committing (`p_after`: an AMQP wake-up sent before
 * that commit named it, src/engine/run-client.ts), it first waits for that commit: a claim
 * skips locked rows, so without the wait it would miss the run's atoms and the engine would
 * sleep until its poll. The wait is a locking read of the run's row, which the starting
 * transaction holds, bounded to a second (a stalled start, or a forged name: the engine
 * then claims what it finds).
 *
 * The procedure claims exactly as migration 5's `claim_into` does (the same pick, in
 * `ready_at` order, SKIP LOCKED; the same conditional write and event), then, still inside
 * the transaction, sends the row of each run claimed from (one result set each) and last
 * the claims (a result set of one row, column `claims`), and only then commits. The server
 * sends each result set as the procedure makes it, so the caller holds the claims while
 * the COMMIT runs (./mysql-driver.ts, `callEarly`). Until then the claimed rows stay locked:
 * no other claim or completion can see or take them, and a completion of one of these
 * atoms waits for the commit. If the commit is not confirmed, the claims may never have
 * existed: the engine aborts what it started and gives its id up (src/engine/claim-loop.ts),
 * so that nothing it does under these epochs is ever written.
 *
 * The pick and the loop are `claim_into`'s (./procedures.ts, `CLAIM_DECLARATIONS` and
 * `claimLoop`); `claim_into` stays as migration 5 made it, for the completions' claims for
 * freed slots, which come after their own commit.
 */
import { CLAIM_DECLARATIONS, TEXT, claimLoop, runRowsOfClaims } from './procedures.js';

export const VISIBLE_CLAIM_STATEMENTS: readonly string[] = [
  `DROP PROCEDURE IF EXISTS {p}claim_atoms_early`,
  `CREATE PROCEDURE {p}claim_atoms_early(IN p_engine VARBINARY(255), IN p_limit INT, IN p_after VARBINARY(255))
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE v_out ${TEXT} DEFAULT '[]';
  DECLARE v_seen ${TEXT} DEFAULT '[]';
  DECLARE v_key ${TEXT};
  DECLARE v_k INT DEFAULT 0;
  DECLARE v_n INT;
  DECLARE v_wait INT;
${CLAIM_DECLARATIONS}
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  IF p_after IS NOT NULL THEN
    -- a run whose start may still be committing: a locking read of its row waits for that
    -- commit (its row is locked by the inserting transaction), at most a second, in a
    -- statement of its own (autocommit: the lock goes with it)
    SET v_wait = @@SESSION.innodb_lock_wait_timeout;
    SET SESSION innodb_lock_wait_timeout = 1;
    BEGIN
      DECLARE CONTINUE HANDLER FOR 1205 BEGIN END;
      SELECT COUNT(*) INTO v_n FROM {p}runs WHERE id = p_after LOCK IN SHARE MODE;
    END;
    SET SESSION innodb_lock_wait_timeout = v_wait;
  END IF;
  START TRANSACTION;
${claimLoop('v_out')}
${runRowsOfClaims('v_key')}
  -- the last result set before the commit: the caller may start the claims from here on
  SELECT v_out AS claims;
  COMMIT;
END`,
];
