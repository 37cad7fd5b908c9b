/**
 * {@link ModuleSql} over a store's driver: the statements of other schema modules
 * (orchestration) run on the same connections, transactions and error rules as the core
 * ones. Their text uses `?` placeholders; PostgreSQL's are numbered here, once per text.
 */
import { createHash } from 'node:crypto';
import type { ModuleSession, ModuleSql, ModuleWriteOptions } from '../ports.js';
import type { DialectName } from '../types.js';
import type { Raw, SqlDriver, SqlSession } from './driver.js';

/** distinct texts prepared by name (the stack layer's hot statements are a handful) */
const MAX_PREPARED = 64;

export class DriverModuleSql implements ModuleSql {
  private readonly numbered = new Map<string, string>();
  private readonly names = new Map<string, string>();

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
      rows: async (purpose, text, params, options) =>
        (await s.rows(purpose, this.text(text), params, options?.prepared ? this.nameOf(text) : undefined)).map(decodeRow),
      exec: (purpose, text, params) => s.exec(purpose, this.text(text), params),
    };
  }

  /**
   * The name of a prepared statement: one per text (a name used once with another text
   * would be refused by the connection that prepared it). Unnamed beyond
   * {@link MAX_PREPARED} texts, so that statements built with varying text cannot grow
   * every connection's set without bound.
   */
  private nameOf(text: string): string | undefined {
    if (this.dialect !== 'postgres') return undefined;
    let name = this.names.get(text);
    if (name === undefined && this.names.size < MAX_PREPARED) {
      name = `m${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      this.names.set(text, name);
    }
    return name;
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
