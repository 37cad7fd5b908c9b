/**
 * The dialect-fragment builder (src/store/sql/dialect.ts, dialects.ts): what each dialect
 * writes for each fragment and which parameters it binds, then the same fragments run on
 * every dialect's database, so the text is not only what we expect but what the server
 * accepts and means.
 */
import { describe, expect, it } from 'vitest';
import type { SqlDialect } from '../../../src/store/sql/dialect.js';
import { Binder, statement } from '../../../src/store/sql/binder.js';
import { MYSQL, POSTGRES, SQLITE, sqlDialect } from '../../../src/store/sql/dialects.js';
import type { SqlDriver } from '../../../src/store/sql/driver.js';
import { runColumns } from '../../../src/store/sql/runs.js';
import type { Store } from '../../../src/store/store.js';
import { describeEachDialect } from '../../helpers/databases.js';
import { newRun } from '../../helpers/graphs.js';

/** The text and parameters of one fragment on a fresh binder. */
const fragment = (d: SqlDialect, build: (b: Binder) => string) => statement(d, build);

describe('SQL fragments per dialect', () => {
  it('binds parameters as $n on PostgreSQL and ? elsewhere, in text order', () => {
    expect(fragment(POSTGRES, (b) => `a = ${b.bind(1)} AND b = ${b.bind('x')}`)).toEqual({ text: 'a = $1 AND b = $2', params: [1, 'x'] });
    expect(fragment(MYSQL, (b) => `a = ${b.bind(1)} AND b = ${b.bind('x')}`)).toEqual({ text: 'a = ? AND b = ?', params: [1, 'x'] });
    expect(fragment(SQLITE, (b) => `a = ${b.bind(1)} AND b = ${b.bind('x')}`)).toEqual({ text: 'a = ? AND b = ?', params: [1, 'x'] });
  });

  it('now, and now plus or minus a bound number of milliseconds (microseconds on MySQL)', () => {
    expect([POSTGRES.now, MYSQL.now, SQLITE.now]).toEqual(['now()', 'NOW(6)', `CAST(unixepoch('subsec') * 1000 AS INTEGER)`]);
    expect(fragment(POSTGRES, (b) => POSTGRES.nowPlusMs(b, 1500))).toEqual({
      text: `now() + $1::bigint * interval '1 millisecond'`,
      params: [1500],
    });
    expect(fragment(MYSQL, (b) => MYSQL.nowPlusMs(b, 1500))).toEqual({
      text: 'DATE_ADD(NOW(6), INTERVAL ? MICROSECOND)',
      params: [1_500_000],
    });
    expect(fragment(SQLITE, (b) => SQLITE.nowPlusMs(b, 1500))).toEqual({ text: `${SQLITE.now} + ?`, params: [1500] });
    expect(fragment(POSTGRES, (b) => POSTGRES.nowMinusMs(b, 7))).toEqual({
      text: `now() - $1::bigint * interval '1 millisecond'`,
      params: [7],
    });
    expect(fragment(MYSQL, (b) => MYSQL.nowMinusMs(b, 7))).toEqual({ text: 'DATE_SUB(NOW(6), INTERVAL ? MICROSECOND)', params: [7000] });
    expect(fragment(SQLITE, (b) => SQLITE.nowMinusMs(b, 7))).toEqual({ text: `${SQLITE.now} - ?`, params: [7] });
    expect(POSTGRES.msSince('t')).toBe('floor(extract(epoch FROM now() - t) * 1000)::bigint');
    expect(MYSQL.msSince('t')).toBe('TIMESTAMPDIFF(MICROSECOND, t, NOW(6)) DIV 1000');
    expect(SQLITE.msSince('t')).toBe(`${SQLITE.now} - t`);
  });

  it('IN lists: ANY of an array on PostgreSQL, one array parameter on MySQL, one parameter each on SQLite; chunk sizes', () => {
    const states = ['READY', 'WAITING'];
    expect(fragment(POSTGRES, (b) => `${b.bind('r')} AND ${POSTGRES.inList(b, 'state', states, 'text')}`)).toEqual({
      text: '$1 AND state = ANY($2::text[])',
      params: ['r', states],
    });
    expect(fragment(POSTGRES, (b) => POSTGRES.inList(b, 'idx', [1, 2], 'integer')).text).toBe('idx = ANY($1::integer[])');
    expect(fragment(MYSQL, (b) => MYSQL.inList(b, 'state', states, 'text'))).toEqual({ text: 'state IN (?)', params: [states] });
    expect(fragment(SQLITE, (b) => SQLITE.inList(b, 'state', states, 'text'))).toEqual({ text: 'state IN (?, ?)', params: states });
    expect([POSTGRES.maxInList, MYSQL.maxInList, SQLITE.maxInList]).toEqual([Number.POSITIVE_INFINITY, 1000, 500]);
    // any number of ids in one parameter (SQLite: a JSON array)
    expect(fragment(SQLITE, (b) => SQLITE.inIdSet(b, 'run_id', ['a', 'b']))).toEqual({
      text: 'run_id IN (SELECT value FROM json_each(?))',
      params: ['["a","b"]'],
    });
    expect(fragment(POSTGRES, (b) => POSTGRES.inIdSet(b, 'run_id', ['a']))).toEqual({ text: 'run_id = ANY($1::text[])', params: [['a']] });
    expect(fragment(MYSQL, (b) => MYSQL.inIdSet(b, 'run_id', ['a']))).toEqual({ text: 'run_id IN (?)', params: [['a']] });
  });

  it('JSON, booleans and integers as parameters', () => {
    expect(fragment(POSTGRES, (b) => POSTGRES.json(b, '{"a":1}'))).toEqual({ text: '$1::jsonb', params: ['{"a":1}'] });
    expect(fragment(MYSQL, (b) => MYSQL.json(b, '{"a":1}'))).toEqual({ text: '?', params: ['{"a":1}'] });
    expect(fragment(SQLITE, (b) => SQLITE.json(b, null))).toEqual({ text: '?', params: [null] });
    expect([POSTGRES.bool(true), MYSQL.bool(true), SQLITE.bool(false)]).toEqual([true, 1, 0]);
    expect(fragment(POSTGRES, (b) => `n + ${POSTGRES.int(b, -1)}`)).toEqual({ text: 'n + $1::integer', params: [-1] });
    expect(fragment(MYSQL, (b) => `n + ${MYSQL.int(b, -1)}`)).toEqual({ text: 'n + ?', params: [-1] });
  });

  it('insert-ignore, RETURNING, row locks and the key column', () => {
    const rest = '(hash) VALUES (?)';
    expect(POSTGRES.insertIgnore('t', rest, 'hash')).toBe('INSERT INTO t (hash) VALUES (?) ON CONFLICT (hash) DO NOTHING');
    expect(MYSQL.insertIgnore('t', rest, 'hash')).toBe('INSERT IGNORE INTO t (hash) VALUES (?)');
    expect(SQLITE.insertIgnore('t', rest, 'hash')).toBe('INSERT OR IGNORE INTO t (hash) VALUES (?)');
    expect([POSTGRES.returning, MYSQL.returning, SQLITE.returning]).toEqual([true, false, true]);
    expect([POSTGRES.forUpdate, MYSQL.forUpdate, SQLITE.forUpdate]).toEqual([' FOR UPDATE', ' FOR UPDATE', '']);
    expect([POSTGRES.skipLocked, MYSQL.skipLocked, SQLITE.skipLocked]).toEqual([' FOR UPDATE SKIP LOCKED', ' FOR UPDATE SKIP LOCKED', '']);
    expect(runColumns(MYSQL)).toMatch(/^id, flow, version, `key`, status,/);
    expect(runColumns(POSTGRES)).toMatch(/^id, flow, version, key, status,/);
    expect([POSTGRES.rowsPerInsert, MYSQL.rowsPerInsert, SQLITE.rowsPerInsert]).toEqual([1000, 200, 1]);
  });

  it('column types for schemas written once', () => {
    expect(POSTGRES.types).toMatchObject({ id: 'text COLLATE "C"', json: 'jsonb', bool: 'boolean', time: 'timestamptz', tableOptions: '' });
    expect(MYSQL.types).toMatchObject({ id: 'VARBINARY(255)', json: 'LONGTEXT', bool: 'TINYINT(1)', time: 'DATETIME(6)' });
    expect(MYSQL.types.tableOptions).toContain('ENGINE=InnoDB');
    expect(SQLITE.types).toMatchObject({
      id: 'TEXT',
      json: 'TEXT',
      bool: 'INTEGER',
      time: 'INTEGER',
      serialKey: 'INTEGER PRIMARY KEY AUTOINCREMENT',
    });
  });
});

await describeEachDialect('SQL fragments run', (ctx) => {
  const d = (): SqlDialect => sqlDialect(ctx.dialect);
  /** the store's driver (not part of the port: reached for the test) */
  const driver = (s: Store): SqlDriver => (s as unknown as { driver: SqlDriver }).driver;
  const rows = async (s: Store, build: (b: Binder) => string) => {
    const st = statement(d(), build);
    return driver(s).read('test', (x) => x.rows('test', st.text, st.params));
  };

  it('now plus and minus milliseconds, and milliseconds since', async () => {
    const s = await ctx.db.open();
    const [r] = await rows(
      s,
      (b) => `SELECT ${d().nowPlusMs(b, 60_000)} AS later, ${d().now} AS now, ${d().nowMinusMs(b, 1_000)} AS earlier`,
    );
    const ms = (v: unknown) => (v instanceof Date ? v.getTime() : Number(v));
    expect(ms(r!.later) - ms(r!.now)).toBe(60_000);
    expect(ms(r!.now) - ms(r!.earlier)).toBe(1_000);
  });

  it('IN lists and id sets select what they name; JSON and booleans bind; tableExists', async () => {
    const s = await ctx.db.open({ tablePrefix: 'frag_' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await s.startRun(newRun())).run.id);
    const byList = await rows(s, (b) => `SELECT id FROM frag_runs WHERE ${d().inList(b, 'id', ids.slice(0, 2), 'text')} ORDER BY id`);
    expect(byList.map((r) => r.id)).toEqual(ids.slice(0, 2).sort());
    const bySet = await rows(s, (b) => `SELECT id FROM frag_runs WHERE ${d().inIdSet(b, 'id', ids)} ORDER BY id`);
    expect(bySet.map((r) => r.id)).toEqual([...ids].sort());
    const [j] = await rows(s, (b) => `SELECT count(*) AS n FROM frag_runs WHERE args = ${d().json(b, '{}')}`);
    expect(Number(j!.n)).toBe(3);
    const [flag] = await rows(s, (b) => `SELECT count(*) AS n FROM frag_atoms WHERE skip = ${b.bind(d().bool(false))}`);
    expect(Number(flag!.n)).toBe(3);
    const [yes] = await rows(s, (b) => d().tableExists(b, 'frag_runs'));
    const [no] = await rows(s, (b) => d().tableExists(b, 'frag_nothing'));
    expect([Number(yes!.n), Number(no!.n)]).toEqual([1, 0]);
  });

  it('insert-ignore inserts once', async () => {
    const s = await ctx.db.open({ tablePrefix: 'ign_' });
    for (let i = 0; i < 2; i++) {
      const st = statement(d(), (b) =>
        d().insertIgnore(
          '{p}graphs',
          `(hash, graph, created_at) VALUES (${b.bind('h1')}, ${d().json(b, '{"atoms":[]}')}, ${d().now})`,
          'hash',
        ),
      );
      const n = await driver(s).write('test', (x) => x.exec('test', st.text, st.params));
      expect(n).toBe(i === 0 ? 1 : 0);
    }
  });
});
