/**
 * Parameters collected while a statement's text is built: `b.bind(v)` appends `v` and
 * returns the dialect's placeholder (`$n` on PostgreSQL, `?` elsewhere). With `?` the
 * order of the parameters is the order of the placeholders in the text, so a builder binds
 * in text order (a template literal evaluates its `${}` left to right).
 */
import type { SqlDialect } from './dialect.js';

/** Collects the parameters of one statement while its text is built. */
export class Binder {
  readonly params: unknown[] = [];

  constructor(readonly dialect: SqlDialect) {}

  /** appends `value` and returns its placeholder */
  bind(value: unknown): string {
    this.params.push(value);
    return this.dialect.placeholder(this.params.length);
  }
}

/** A statement ready to run: `{p}` in the text stands for the table prefix. */
export interface Statement {
  text: string;
  params: unknown[];
}

/** Builds one statement: `build` gets a fresh binder and returns the text. */
export function statement(d: SqlDialect, build: (b: Binder) => string): Statement {
  const b = new Binder(d);
  const text = build(b);
  return { text, params: b.params };
}
