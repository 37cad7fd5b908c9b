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
  /** `$n` placeholders (PostgreSQL), else `?` */
  private readonly numbered: boolean;

  constructor(readonly dialect: SqlDialect) {
    this.numbered = dialect.placeholder(1) !== '?';
  }

  /** appends `value` and returns its placeholder */
  bind(value: unknown): string {
    const n = this.params.push(value);
    return this.numbered ? this.dialect.placeholder(n) : '?';
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

/**
 * A cache of statement texts whose shape depends on the dialect and a small key only, so a
 * hot statement is not rebuilt on every call (and the driver's statement caches look up the
 * same string each time). The builder is run once per dialect and key with a binder whose
 * values are only labels: the caller passes the parameters, in placeholder order.
 *
 * @example
 * ```ts
 * const texts = textCache();
 * const text = texts(d, 'by id', (b) => `SELECT status FROM {p}runs WHERE id = ${b.bind('runId')}`);
 * await s.row('read a status', text, [runId]);
 * ```
 */
export function textCache(): (d: SqlDialect, key: string | number, build: (b: Binder) => string) => string {
  const byDialect = new Map<string, Map<string | number, string>>();
  return (d, key, build) => {
    let texts = byDialect.get(d.name);
    if (!texts) {
      texts = new Map();
      byDialect.set(d.name, texts);
    }
    let text = texts.get(key);
    if (text === undefined) {
      text = build(new Binder(d));
      texts.set(key, text);
    }
    return text;
  };
}
