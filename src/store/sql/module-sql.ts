/**
 * {@link ModuleSql} over a store's driver: the statements of other schema modules
 * (orchestration) run on the same connections, transactions and error rules as the core
 * ones. Their text uses `?` placeholders; PostgreSQL's are numbered here, once per text.
 */
import type { ModuleSession, ModuleSql, ModuleWriteOptions } from '../ports.js';
import type { DialectName } from '../types.js';
import type { Raw, SqlDriver, SqlSession } from './driver.js';

export class DriverModuleSql implements ModuleSql {
  private readonly numbered = new Map<string, string>();

  constructor(
    private readonly driver: SqlDriver,
    readonly dialect: DialectName,
  ) {}

  read<T>(purpose: string, fn: (s: ModuleSession) => Promise<T>): Promise<T> {
    return this.driver.read(purpose, (s) => fn(this.session(s)));
  }

  transaction<T>(purpose: string, fn: (s: ModuleSession) => Promise<T>, options?: ModuleWriteOptions): Promise<T> {
    return this.driver.transaction(purpose, (s) => fn(this.session(s)), options);
  }

  write<T>(purpose: string, fn: (s: ModuleSession) => Promise<T>, options?: ModuleWriteOptions): Promise<T> {
    return this.driver.write(purpose, (s) => fn(this.session(s)), options);
  }

  private session(s: SqlSession): ModuleSession {
    return {
      rows: async (purpose, text, params) => (await s.rows(purpose, this.text(text), params)).map(decodeRow),
      exec: (purpose, text, params) => s.exec(purpose, this.text(text), params),
    };
  }

  /** `?` → `$n` on PostgreSQL (cached per text) */
  private text(text: string): string {
    if (this.dialect !== 'postgres') return text;
    let out = this.numbered.get(text);
    if (out === undefined) {
      let n = 0;
      out = text.replace(/\?/g, () => `$${++n}`);
      this.numbered.set(text, out);
    }
    return out;
  }
}

/** MySQL's binary columns come back as Buffers, 64-bit integers as strings (node-postgres): plain values for callers. */
function decodeRow(row: Raw): Raw {
  for (const key of Object.keys(row)) {
    const v = row[key];
    if (Buffer.isBuffer(v)) row[key] = v.toString('utf8');
    else if (typeof v === 'bigint') row[key] = Number(v);
  }
  return row;
}
