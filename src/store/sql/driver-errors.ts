/** What the PostgreSQL and MySQL drivers' errors have in common (each adds its own codes: `<dialect>/*-errors.ts`). */

/** Node socket errors that mean the database cannot be reached from here. */
export const NETWORK_ERROR_CODES: readonly string[] = [
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
];

/** The messages of an AggregateError as one line (Node's AggregateError for ECONNREFUSED has an empty message); undefined for anything else. */
export function aggregateMessage(e: unknown): string | undefined {
  if (!(e instanceof AggregateError) || e.errors.length === 0) return undefined;
  return [...new Set(e.errors.map((x: unknown) => (x instanceof Error ? x.message : String(x))))].join('; ');
}
