/**
 * C4 (docs/reliability.md): MariaDB restarts mid-run, on a private server started for this file
 * (test/chaos/private-server.ts): `mariadb-admin shutdown` (clean) and `kill -9 mariadbd`
 * (a crash: InnoDB recovery on start), each followed by a start after 2–5 s (CHAOS_LONG=1:
 * 5 restarts, 2–10 s down). What is checked and printed: see test/chaos/server-restart.ts.
 * Skipped (SKIP printed) when the MariaDB binaries are missing, failed instead with
 * STOKER_REQUIRE_SERVICES=1.
 */
import { describeServerRestart } from './server-restart.js';

describeServerRestart({
  id: 'C4',
  kind: 'mariadb',
  modes: ['fast', 'kill9'],
  describeMode: (mode) => (mode === 'fast' ? 'mariadb-admin shutdown + start' : 'kill -9 mariadbd + start'),
});
