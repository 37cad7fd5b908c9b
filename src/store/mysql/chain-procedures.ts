/**
 * Migration 10 of MySQL/MariaDB: `fast_success` (migration 5, ./procedures.ts) again, with
 * fewer statements for the step of a chain: complete an atom and claim its successor.
 *
 * Why: a linear flow makes this call once per atom, one round trip and one commit each,
 * and the statements the procedure runs inside the server cost CPU on the same 2 cores
 * as the commit and the engine (bench/mysql-call-probe.ts counts them per call).
 * Migration 5's version locked the run, wrote the atom, inserted its event, locked the
 * successor, wrote it, read it back for the claim and inserted the claim's event: nine
 * statements on tables with the run's update. Here the run and the successor to claim are
 * locked by one read, which also returns what the claim needs (nothing is read back), and
 * both events go in one INSERT.
 *
 * What protocols 2 and 3 need is kept as in migration 5 (./procedures.ts says how): the run
 * row is locked first (the join reads the run, then the successor by its primary key, in
 * that order), every check is made on locked rows, the completion's write is conditional
 * on `(epoch, state = 'RUNNING', revert_requested = 0)`, and the successor is claimed only
 * when the locked row shows it PENDING with this atom its last unfinished predecessor.
 */
import {
  COUNT_DOWN_VARIABLES,
  FAST_SUCCESS_HEAD,
  ONE_SUCCESS_COMMITTED,
  RUN_RUNNING,
  TEXT,
  claimJson,
  countDown,
  event,
} from './procedures.js';

export const CHAIN_STATEMENTS: readonly string[] = [
  // One success whose run goes on (FastCompletions.completeSuccess): the same inputs,
  // writes and result as migration 5's fast_success.
  `DROP PROCEDURE IF EXISTS {p}fast_success`,
  `${FAST_SUCCESS_HEAD}${COUNT_DOWN_VARIABLES}
  DECLARE v_hit BOOLEAN DEFAULT FALSE;
  DECLARE v_i INT DEFAULT 0;
  DECLARE v_n INT DEFAULT JSON_LENGTH(p_successors);
  DECLARE v_epoch BIGINT;
  -- the successor to claim (NULL: none), the epoch its claim gives it, the claim as returned
  DECLARE v_claim INT DEFAULT NULL;
  DECLARE v_claim_epoch BIGINT;
  DECLARE v_claimed ${TEXT};
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  -- the successor is claimed when this atom is its last unfinished predecessor
  SELECT r.status, r.pending_atoms, IF(s.pending = 1 AND JSON_CONTAINS(p_successors, CAST(p_claim AS CHAR)), p_claim, NULL),
         s.epoch + 1, JSON_ARRAY(${claimJson("'PENDING'", 's', "'RUNNING'", 's.epoch + 1', 's.execution + 1')})
  INTO v_status, v_pending, v_claim, v_claim_epoch, v_claimed
  FROM {p}runs r LEFT JOIN {p}atoms s ON s.run_id = r.id AND s.idx = p_claim AND s.state = 'PENDING'
  WHERE r.id = p_run FOR UPDATE;
  IF v_status IN ('PENDING', 'RUNNING') AND v_pending > 1 THEN
    -- the fenced write of the success and, when its successor is to be claimed, the claim:
    -- one statement, two primary-key probes; each row's SET takes its own branch of the IFs
    UPDATE {p}atoms SET state = IF(idx = p_idx, 'SUCCESS', 'RUNNING'),
           result = IF(idx = p_idx, p_result, result), journal = IF(idx = p_idx, p_journal, journal),
           claimed_by = IF(idx = p_idx, NULL, p_engine), claimed_at = IF(idx = p_idx, claimed_at, NOW(6)),
           wait_kind = IF(idx = p_idx, NULL, wait_kind), wait_ref = IF(idx = p_idx, NULL, wait_ref),
           pending = IF(idx = p_idx, pending, 0), epoch = IF(idx = p_idx, epoch, epoch + 1),
           execution = IF(idx = p_idx, execution, execution + 1), updated_at = NOW(6)
    WHERE run_id = p_run
      AND (idx = p_idx AND epoch = p_epoch AND state = 'RUNNING' AND revert_requested = 0 OR idx = v_claim AND state = 'PENDING');
    -- the successor's row is locked and PENDING: one row fewer than asked means the fence missed
    SET v_hit = ROW_COUNT() = IF(v_claim IS NULL, 1, 2);
  END IF;
  IF NOT v_hit THEN
    ROLLBACK;
    SELECT 0 AS done, 0 AS made_ready, '[]' AS next;
  ELSE
    ${RUN_RUNNING}
    IF v_claim IS NOT NULL THEN
      SET v_next = v_claimed;
      INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
      VALUES (p_run, p_idx, 'atom.success', 'RUNNING', 'SUCCESS', p_engine, p_epoch, NULL, NOW(6)),
             (p_run, p_claim, 'atom.claimed', 'PENDING', 'RUNNING', p_engine, v_claim_epoch, '{"local":true}', NOW(6));
    ELSE
      ${event('p_run', 'p_idx', 'atom.success', 'RUNNING', 'SUCCESS', 'p_epoch')}
    END IF;
    -- the other successors as in migration 5 (the claimed one is done)
    WHILE v_i < v_n DO
      SET v_succ = JSON_EXTRACT(p_successors, CONCAT('$[', v_i, ']'));
      IF v_claim IS NULL OR v_succ <> v_claim THEN${countDown('FALSE')}
      END IF;
      SET v_i = v_i + 1;
    END WHILE;
    ${ONE_SUCCESS_COMMITTED}
  END IF;
END`,
];
