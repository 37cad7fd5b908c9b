/**
 * Migration 5 of MySQL/MariaDB's core schema: the stored procedures that make a claim and
 * the common completions one round trip each (./fast-success.ts calls them; why, with the
 * measurements: there). Applied migrations never change (their checksums are checked):
 * a procedure that has to change gets a new migration that drops and creates it again.
 *
 * What every procedure keeps from the general path (protocols 2 and 3, ARCHITECTURE.md;
 * docs/reliability.md):
 * - sessions run READ COMMITTED (./mysql-driver.ts), so `SELECT … FOR UPDATE` and every
 *   UPDATE judge the newest committed row: the run is locked first (the general path's lock
 *   order), its status and counter are checked on the locked row, and the fenced write is
 *   conditional on `(epoch, state = 'RUNNING', revert_requested = 0)`;
 * - when the fence or a check misses, the transaction rolls back and nothing is written:
 *   the caller takes the general path, which records why;
 * - any error rolls the transaction back before it is raised again (`EXIT HANDLER … ROLLBACK;
 *   RESIGNAL`), so a deadlock or lock wait timeout leaves nothing behind and the call can
 *   simply be made again;
 * - claims for the slots a completion frees come after its COMMIT, in a transaction of
 *   their own (the claim's scan of claimable atoms never holds the run locks; and a claim
 *   that fails only means no extra claims: the engine's claim loop claims again).
 *
 * Ids are VARBINARY, as in the tables; JSON and text parameters say their character set,
 * so they do not take the database's default. Lists come as JSON arrays; each atom or run
 * is read and written by its primary key, never through a scan of its run's atoms. Results
 * come back as JSON arrays of claims `[run_id, idx, state, epoch, attempt, execution,
 * journal, failure, from_state]` (journal and failure as JSON text).
 */

export const TEXT = 'LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin';

/**
 * The JSON array of one claim row: of atom row `a` as it is (`src` = the state it left), or
 * with the given state, epoch and execution (`t` = the row before its claim).
 */
export const claimJson = (src: string, t = 'a', state = `${t}.state`, epoch = `${t}.epoch`, execution = `${t}.execution`): string =>
  `JSON_ARRAY(CONVERT(${t}.run_id USING utf8mb4), ${t}.idx, ${state}, ${epoch}, ${t}.attempt, ${execution}, ${t}.journal, ${t}.failure, ${src})`;

/**
 * The body shared by the per-successor count-down of fast_success and fast_successes:
 * `v_succ` (an atom of run `p_run`) loses one pending predecessor; at zero it becomes
 * READY, or RUNNING claimed by `p_engine` when `claimIt` holds (local continuation), with
 * its event. Appends a claim to `v_next`, counts READY ones in `v_ready`.
 */
export const countDown = (claimIt: string): string => `
      SET v_left = NULL;
      SELECT pending INTO v_left FROM {p}atoms WHERE run_id = p_run AND idx = v_succ AND state = 'PENDING' FOR UPDATE;
      IF v_left = 1 AND (${claimIt}) THEN
        UPDATE {p}atoms SET pending = 0, state = 'RUNNING', claimed_by = p_engine, claimed_at = NOW(6),
               epoch = epoch + 1, execution = execution + 1, updated_at = NOW(6)
        WHERE run_id = p_run AND idx = v_succ;
        SELECT JSON_ARRAY_APPEND(v_next, '$', ${claimJson("'PENDING'")}), a.epoch INTO v_next, v_epoch
        FROM {p}atoms a WHERE a.run_id = p_run AND a.idx = v_succ;
        INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
        VALUES (p_run, v_succ, 'atom.claimed', 'PENDING', 'RUNNING', p_engine, v_epoch, '{"local":true}', NOW(6));
      ELSEIF v_left = 1 THEN
        UPDATE {p}atoms SET pending = 0, state = 'READY', ready_at = NOW(6), updated_at = NOW(6)
        WHERE run_id = p_run AND idx = v_succ;
        SET v_ready = v_ready + 1;
        INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
        VALUES (p_run, v_succ, 'atom.ready', 'PENDING', 'READY', p_engine, NULL, NULL, NOW(6));
      ELSEIF v_left > 1 THEN
        UPDATE {p}atoms SET pending = pending - 1, updated_at = NOW(6) WHERE run_id = p_run AND idx = v_succ;
      END IF;`;

/** The variables of {@link countDown} (and of the run's status and count), declared. */
export const COUNT_DOWN_VARIABLES = `
  DECLARE v_status VARCHAR(16) DEFAULT NULL;
  DECLARE v_pending INT DEFAULT 0;
  DECLARE v_ready INT DEFAULT 0;
  DECLARE v_next ${TEXT} DEFAULT '[]';
  DECLARE v_succ INT;
  DECLARE v_left INT;`;

/**
 * The start of fast_success and fast_successes: the variables of {@link countDown}, the
 * handlers (an error rolls back, then is raised again), and the run row locked first.
 */
const LOCK_THE_RUN = `${COUNT_DOWN_VARIABLES}
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  SELECT status, pending_atoms INTO v_status, v_pending FROM {p}runs WHERE id = p_run FOR UPDATE;`;

/** The fenced write of one success (atom `v_idx` of run `p_run` under epoch `v_epoch`); sets `v_hit`. */
const fencedSuccess = (result: string, journal: string): string => `
      UPDATE {p}atoms SET state = 'SUCCESS', result = ${result}, journal = ${journal}, claimed_by = NULL,
             wait_kind = NULL, wait_ref = NULL, updated_at = NOW(6)
      WHERE run_id = p_run AND idx = v_idx AND epoch = v_epoch AND state = 'RUNNING' AND revert_requested = 0;
      SET v_hit = ROW_COUNT();`;

/** an event row of the run `run` (atom `atom`, or NULL for the run's own), by `p_engine` */
export const event = (run: string, atom: string, kind: string, from: string, to: string, epoch: string): string =>
  `INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
        VALUES (${run}, ${atom}, '${kind}', '${from}', '${to}', p_engine, ${epoch}, NULL, NOW(6));`;

/** The head of fast_success (migrations 5 and 10): its parameters, up to its BEGIN. */
export const FAST_SUCCESS_HEAD = `CREATE PROCEDURE {p}fast_success(IN p_run VARBINARY(255), IN p_idx INT, IN p_epoch BIGINT, IN p_result ${TEXT},
  IN p_journal ${TEXT}, IN p_successors ${TEXT}, IN p_claim INT, IN p_engine VARBINARY(255))
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN`;

/** A run's first completion moves it PENDING → RUNNING (the UPDATE of the run follows): its event. */
export const RUN_RUNNING = `IF v_status = 'PENDING' THEN
      ${event('p_run', 'NULL', 'run.running', 'PENDING', 'RUNNING', 'NULL')}
    END IF;`;

/**
 * The end of fast_success once its writes are made: the run counts one atom less (and is
 * RUNNING), the commit, and the answer (`v_ready` successors made READY, `v_next` the claim).
 */
export const ONE_SUCCESS_COMMITTED = `UPDATE {p}runs SET status = 'RUNNING', pending_atoms = pending_atoms - 1, row_version = row_version + 1, updated_at = NOW(6)
    WHERE id = p_run;
    COMMIT;
    SELECT 1 AS done, v_ready AS made_ready, v_next AS next;`;

/**
 * Claims for the slots a committed completion freed, in their own transaction; a failure
 * there (a deadlock, a lock wait timeout) only means no claims (`v_more` stays '[]').
 */
const claimsAfterCommit = `
  SET v_more = '[]';
  IF p_claim_more > 0 THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION SET v_more = '[]';
      CALL {p}claim_into(p_engine, p_claim_more, v_more);
    END;
  END IF;`;

/**
 * Protocol 2's pick and claim, shared by `claim_into` (migration 5) and `claim_atoms_early`
 * (migration 11, ./visible-claims.ts): the variables and the cursor, which picks up to
 * p_limit claimable atoms in ready_at order (SKIP LOCKED: concurrent claimers take different
 * rows; its rows are read and locked when it opens), then the loop that claims each picked
 * atom, writes its event and appends its claim to `out`. No transaction control: the caller
 * begins and commits. (The text is migration 5's, whose checksum must not change.)
 */
export const CLAIM_DECLARATIONS = `  DECLARE v_run VARBINARY(255);
  DECLARE v_idx INT;
  DECLARE v_from VARCHAR(16);
  DECLARE v_epoch BIGINT;
  DECLARE v_end INT DEFAULT 0;
  DECLARE picked CURSOR FOR
    SELECT run_id, idx, state FROM {p}atoms
    WHERE state IN ('READY', 'WAITING', 'REVERT_READY') AND ready_at <= NOW(6)
    ORDER BY ready_at LIMIT p_limit FOR UPDATE SKIP LOCKED;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_end = 1;`;

/** {@link CLAIM_DECLARATIONS}' loop: the claims appended to `out`. */
export const claimLoop = (out: string): string => `  OPEN picked;
  claims: LOOP
    FETCH picked INTO v_run, v_idx, v_from;
    IF v_end = 1 THEN LEAVE claims; END IF;
    UPDATE {p}atoms SET state = IF(v_from = 'REVERT_READY', 'REVERTING', 'RUNNING'),
           execution = IF(v_from = 'REVERT_READY', execution, execution + 1),
           claimed_by = p_engine, claimed_at = NOW(6), epoch = epoch + 1, ready_at = NULL, updated_at = NOW(6)
    WHERE run_id = v_run AND idx = v_idx AND state = v_from;
    -- the row is locked since the pick: the state check only makes the write conditional
    -- on what was picked, as every claim-related write is
    IF ROW_COUNT() = 1 THEN
      SELECT JSON_ARRAY_APPEND(${out}, '$', ${claimJson('v_from')}), a.epoch INTO ${out}, v_epoch
      FROM {p}atoms a WHERE a.run_id = v_run AND a.idx = v_idx;
      INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
      VALUES (v_run, v_idx, 'atom.claimed', v_from, IF(v_from = 'REVERT_READY', 'REVERTING', 'RUNNING'), p_engine, v_epoch, NULL, NOW(6));
    END IF;
  END LOOP;
  CLOSE picked;`;

// Every procedure runs with its caller's rights (SQL SECURITY INVOKER), never those of the
// user who ran the migration: a definer that holds READ_ONLY ADMIN (root on MariaDB) would
// let an engine's claims and completions through while the server refuses writes (C16 in
// docs/reliability.md: 4 claims committed in the read-only window).
export const PROCEDURE_STATEMENTS: readonly string[] = [
  // Protocol 2: picks up to p_limit claimable atoms, claims each, writes its event; the
  // claims in p_out (CLAIM_DECLARATIONS, claimLoop), in a transaction of its own.
  `DROP PROCEDURE IF EXISTS {p}claim_into`,
  `CREATE PROCEDURE {p}claim_into(IN p_engine VARBINARY(255), IN p_limit INT, OUT p_out ${TEXT})
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
${CLAIM_DECLARATIONS}
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  SET p_out = '[]';
  START TRANSACTION;
${claimLoop('p_out')}
  COMMIT;
END`,
  `DROP PROCEDURE IF EXISTS {p}claim_atoms`,
  `CREATE PROCEDURE {p}claim_atoms(IN p_engine VARBINARY(255), IN p_limit INT)
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE v_out ${TEXT};
  CALL {p}claim_into(p_engine, p_limit, v_out);
  SELECT v_out AS claims;
END`,
  // One success whose run goes on (FastCompletions.completeSuccess): lock the run, fence
  // and complete the atom, count its successors down (claiming p_claim when it reaches
  // zero), move the run PENDING → RUNNING on its first completion, events. Nothing when
  // the run is not PENDING/RUNNING, the atom would finish it, or the fence misses.
  `DROP PROCEDURE IF EXISTS {p}fast_success`,
  `${FAST_SUCCESS_HEAD}
  DECLARE v_idx INT DEFAULT p_idx;
  DECLARE v_epoch BIGINT DEFAULT p_epoch;
  DECLARE v_hit INT DEFAULT 0;
  DECLARE v_i INT DEFAULT 0;
  DECLARE v_n INT DEFAULT JSON_LENGTH(p_successors);${LOCK_THE_RUN}
  IF v_status IN ('PENDING', 'RUNNING') AND v_pending > 1 THEN${fencedSuccess('p_result', 'p_journal')}
  END IF;
  IF v_hit <> 1 THEN
    ROLLBACK;
    SELECT 0 AS done, 0 AS made_ready, '[]' AS next;
  ELSE
    ${RUN_RUNNING}
    ${event('p_run', 'p_idx', 'atom.success', 'RUNNING', 'SUCCESS', 'p_epoch')}
    WHILE v_i < v_n DO
      SET v_succ = JSON_EXTRACT(p_successors, CONCAT('$[', v_i, ']'));${countDown('v_succ = p_claim')}
      SET v_i = v_i + 1;
    END WHILE;
    ${ONE_SUCCESS_COMMITTED}
  END IF;
END`,
  // Several successes of one run (FastCompletions.completeSuccesses). p_batch: JSON
  // [[idx, epoch, result text, journal text, [successor, …]], …]; p_claim: the successors
  // to claim when they reach zero. Writes only the successes whose fence holds; nothing
  // when the run is not PENDING/RUNNING or the batch would finish it. Then claims for
  // p_claim_more freed slots.
  `DROP PROCEDURE IF EXISTS {p}fast_successes`,
  `CREATE PROCEDURE {p}fast_successes(IN p_run VARBINARY(255), IN p_batch ${TEXT}, IN p_claim ${TEXT},
  IN p_claim_more INT, IN p_engine VARBINARY(255))
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE v_n INT DEFAULT JSON_LENGTH(p_batch);
  DECLARE v_k INT DEFAULT 0;
  DECLARE v_idx INT;
  DECLARE v_epoch BIGINT;
  DECLARE v_hit INT DEFAULT 0;
  DECLARE v_count INT DEFAULT 0;
  DECLARE v_written ${TEXT} DEFAULT '[]';
  DECLARE v_at ${TEXT} DEFAULT '[]';
  DECLARE v_more ${TEXT} DEFAULT '[]';
  DECLARE v_succs ${TEXT};
  DECLARE v_i INT;${LOCK_THE_RUN}
  IF v_status IN ('PENDING', 'RUNNING') AND v_pending > v_n THEN
    WHILE v_k < v_n DO
      SET v_idx = JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][0]')), v_epoch = JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][1]'));${fencedSuccess(
        "JSON_UNQUOTE(JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][2]')))",
        "JSON_UNQUOTE(JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][3]')))",
      )}
      IF v_hit = 1 THEN
        SET v_count = v_count + 1, v_written = JSON_ARRAY_APPEND(v_written, '$', v_idx), v_at = JSON_ARRAY_APPEND(v_at, '$', v_k);
      END IF;
      SET v_k = v_k + 1;
    END WHILE;
  END IF;
  IF v_count = 0 THEN
    ROLLBACK;
    SELECT '[]' AS written, 0 AS made_ready, '[]' AS next, '[]' AS more;
  ELSE
    ${RUN_RUNNING}
    SET v_k = 0;
    WHILE v_k < v_count DO
      SET v_i = JSON_EXTRACT(v_at, CONCAT('$[', v_k, ']'));
      ${event(
        'p_run',
        "JSON_EXTRACT(p_batch, CONCAT('$[', v_i, '][0]'))",
        'atom.success',
        'RUNNING',
        'SUCCESS',
        "JSON_EXTRACT(p_batch, CONCAT('$[', v_i, '][1]'))",
      )}
      SET v_k = v_k + 1;
    END WHILE;
    SET v_k = 0;
    WHILE v_k < v_count DO
      SET v_succs = JSON_EXTRACT(p_batch, CONCAT('$[', JSON_EXTRACT(v_at, CONCAT('$[', v_k, ']')), '][4]')), v_i = 0;
      WHILE v_i < JSON_LENGTH(v_succs) DO
        SET v_succ = JSON_EXTRACT(v_succs, CONCAT('$[', v_i, ']'));${countDown('JSON_CONTAINS(p_claim, CAST(v_succ AS CHAR))')}
        SET v_i = v_i + 1;
      END WHILE;
      SET v_k = v_k + 1;
    END WHILE;
    UPDATE {p}runs SET status = 'RUNNING', pending_atoms = pending_atoms - v_count, row_version = row_version + 1, updated_at = NOW(6)
    WHERE id = p_run;
    COMMIT;${claimsAfterCommit}
    SELECT v_written AS written, v_ready AS made_ready, v_next AS next, v_more AS more;
  END IF;
END`,
  // Successes that finish their runs (FastCompletions.finishRuns). p_batch: JSON [[run id,
  // idx, epoch, result text, journal text, outputs text], …] in run id order (the lock
  // order). A run is finished only when it is PENDING/RUNNING with this one atom left and
  // no parent to wake, and the fence holds; the others are left as they are. Then claims
  // for p_claim_more freed slots.
  `DROP PROCEDURE IF EXISTS {p}fast_finish`,
  `CREATE PROCEDURE {p}fast_finish(IN p_batch ${TEXT}, IN p_claim_more INT, IN p_engine VARBINARY(255))
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE v_n INT DEFAULT JSON_LENGTH(p_batch);
  DECLARE v_k INT DEFAULT 0;
  DECLARE p_run VARBINARY(255);
  DECLARE v_idx INT;
  DECLARE v_epoch BIGINT;
  DECLARE v_status VARCHAR(16);
  DECLARE v_pending INT;
  DECLARE v_parent VARBINARY(255);
  DECLARE v_hit INT;
  DECLARE v_count INT DEFAULT 0;
  DECLARE v_done ${TEXT} DEFAULT '[]';
  DECLARE v_more ${TEXT} DEFAULT '[]';
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  WHILE v_k < v_n DO
    SET p_run = JSON_UNQUOTE(JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][0]'))),
        v_idx = JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][1]')),
        v_epoch = JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][2]')),
        v_status = NULL, v_pending = NULL, v_parent = NULL, v_hit = 0;
    SELECT status, pending_atoms, parent_run_id INTO v_status, v_pending, v_parent FROM {p}runs WHERE id = p_run FOR UPDATE;
    IF v_status IN ('PENDING', 'RUNNING') AND v_pending = 1 AND v_parent IS NULL THEN${fencedSuccess(
      "JSON_UNQUOTE(JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][3]')))",
      "JSON_UNQUOTE(JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][4]')))",
    )}
    END IF;
    IF v_hit = 1 THEN
      UPDATE {p}runs SET status = 'SUCCESS', result = JSON_UNQUOTE(JSON_EXTRACT(p_batch, CONCAT('$[', v_k, '][5]'))),
             pending_atoms = 0, active_key = NULL, finished_at = NOW(6), updated_at = NOW(6), row_version = row_version + 1
      WHERE id = p_run;
      IF v_status = 'PENDING' THEN
        ${event('p_run', 'NULL', 'run.running', 'PENDING', 'RUNNING', 'NULL')}
      END IF;
      ${event('p_run', 'v_idx', 'atom.success', 'RUNNING', 'SUCCESS', 'v_epoch')}
      ${event('p_run', 'NULL', 'run.success', 'RUNNING', 'SUCCESS', 'NULL')}
      SET v_count = v_count + 1, v_done = JSON_ARRAY_APPEND(v_done, '$', JSON_ARRAY(CONVERT(p_run USING utf8mb4), v_idx));
    END IF;
    SET v_k = v_k + 1;
  END WHILE;
  IF v_count = 0 THEN
    ROLLBACK;
    SELECT '[]' AS done, '[]' AS more;
  ELSE
    COMMIT;${claimsAfterCommit}
    SELECT v_done AS done, v_more AS more;
  END IF;
END`,
];

/** The columns of a run row, as src/store/sql/runs.ts reads them (no graph), of table alias `t`. */
const runColumnsOf = (t: string): string =>
  ['id', 'flow', 'version', '`key`', 'status', 'args', 'result', 'failure', 'parent_run_id', 'parent_atom', 'pending_atoms']
    .concat(['revert_pending', 'atom_count', 'graph_hash', 'created_at', 'updated_at', 'finished_at'])
    .map((c) => `${t}.${c}`)
    .join(', ');

/**
 * One result set per run claimed from, in the order of the claims in `v_out`: its row, read by
 * its primary key (`v_seen`, `v_k`, `v_n` and the text variable `key` declared by the caller).
 */
export const runRowsOfClaims = (key: string): string => `  SET v_n = JSON_LENGTH(v_out);
  WHILE v_k < v_n DO
    SET ${key} = JSON_EXTRACT(v_out, CONCAT('$[', v_k, '][0]'));
    IF NOT JSON_CONTAINS(v_seen, ${key}) THEN
      SET v_seen = JSON_ARRAY_APPEND(v_seen, '$', JSON_UNQUOTE(${key}));
      SELECT ${runColumnsOf('r')} FROM {p}runs r WHERE r.id = CONVERT(JSON_UNQUOTE(${key}) USING binary);
    END IF;
    SET v_k = v_k + 1;
  END WHILE;`;

/**
 * Migration 7 of MySQL/MariaDB: an idle start in two round trips, one on each side
 * (./starts.ts says why, with the measurements):
 * - `start_run`: a run without a key (nothing to look up first) is started in one call, as
 *   PostgreSQL starts it in one statement (src/store/postgres/starts.ts): the graph row
 *   when the caller has not seen it committed, the run row, its atoms and its
 *   `run.created` event, in one transaction, and the run's row back;
 * - `claim_atoms` also returns, as a second result set, the rows of the runs it claimed
 *   from, as PostgreSQL's claim does: the engine needs a run's row before its first task
 *   starts, and reading it cost a round trip of its own.
 */
export const START_AND_CLAIM_STATEMENTS: readonly string[] = [
  // Protocol 1 for a keyless run. p_graph is NULL when the graph row is known to exist;
  // p_atoms: JSON [[idx, name, unfinished predecessors], …]; atoms with none are READY.
  // JSON_TABLE truncates a value too long for its column with a mere warning: the names
  // come out as LONGTEXT, so that a name too long for atoms.name fails the INSERT (strict
  // mode) as it does on the shared path, instead of being stored cut.
  `DROP PROCEDURE IF EXISTS {p}start_run`,
  `CREATE PROCEDURE {p}start_run(IN p_id VARBINARY(255), IN p_flow VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_version VARCHAR(255) CHARACTER SET utf8mb4, IN p_args ${TEXT}, IN p_hash VARBINARY(80), IN p_graph ${TEXT},
  IN p_parent_run VARBINARY(255), IN p_parent_atom INT, IN p_atoms ${TEXT})
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE v_n INT DEFAULT JSON_LENGTH(p_atoms);
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  IF p_graph IS NOT NULL THEN
    INSERT IGNORE INTO {p}graphs (hash, graph, created_at) VALUES (p_hash, p_graph, NOW(6));
  END IF;
  INSERT INTO {p}runs (id, flow, version, \`key\`, active_key, status, args, graph_hash, parent_run_id, parent_atom,
                       pending_atoms, atom_count, created_at, updated_at)
  VALUES (p_id, p_flow, p_version, NULL, NULL, 'PENDING', p_args, p_hash, p_parent_run, p_parent_atom, v_n, v_n, NOW(6), NOW(6));
  INSERT INTO {p}atoms (run_id, idx, name, state, pending, ready_at, updated_at)
  SELECT p_id, t.idx, t.name, IF(t.pending = 0, 'READY', 'PENDING'), t.pending, IF(t.pending = 0, NOW(6), NULL), NOW(6)
  FROM JSON_TABLE(p_atoms, '$[*]' COLUMNS (idx INT PATH '$[0]', name ${TEXT} PATH '$[1]', pending INT PATH '$[2]')) t;
  INSERT INTO {p}events (run_id, atom, kind, from_state, to_state, engine_id, epoch, data, at)
  VALUES (p_id, NULL, 'run.created', NULL, 'PENDING', NULL, NULL, NULL, NOW(6));
  SELECT ${runColumnsOf('r')} FROM {p}runs r WHERE r.id = p_id;
  COMMIT;
END`,
  // Protocol 2 as in migration 5, plus the row of each run claimed from, one result set
  // each, read by its primary key (a join with the claims' JSON_TABLE needs a temporary
  // table for its DISTINCT, which cost more than the reads).
  `DROP PROCEDURE IF EXISTS {p}claim_atoms`,
  `CREATE PROCEDURE {p}claim_atoms(IN p_engine VARBINARY(255), IN p_limit INT)
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE v_out ${TEXT};
  DECLARE v_seen ${TEXT} DEFAULT '[]';
  DECLARE v_run ${TEXT};
  DECLARE v_k INT DEFAULT 0;
  DECLARE v_n INT;
  CALL {p}claim_into(p_engine, p_limit, v_out);
  SELECT v_out AS claims;
${runRowsOfClaims('v_run')}
END`,
];
