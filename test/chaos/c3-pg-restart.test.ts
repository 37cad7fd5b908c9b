/**
 * C3 (docs/reliability.md): PostgreSQL restarts mid-run, on a private server started for this file
 * (test/chaos/private-server.ts): `pg_ctl stop -m fast` (sessions terminated, checkpoint)
 * and `pg_ctl stop -m immediate` (a crash: recovery from WAL on start), each followed by a
 * start after 2–5 s (CHAOS_LONG=1: 5 restarts, 2–10 s down). What is checked and printed:
 * see test/chaos/server-restart.ts. Skipped (SKIP printed) when the PostgreSQL binaries are
 * missing, failed instead with STOKER_REQUIRE_SERVICES=1.
 */
import { describeServerRestart } from './server-restart.js';

describeServerRestart({
  id: 'C3',
  kind: 'postgres',
  modes: ['fast', 'immediate'],
  describeMode: (mode) => `pg_ctl stop -m ${mode} + start`,
});
