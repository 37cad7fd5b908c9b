/**
 * Reading the syntactic shape of an argument: Heat checks many arguments with
 * `isinstance(args, list)` / `Mapping` before evaluating them, and an argument may be a list
 * expression, a map expression or a collapsed literal.
 */
import type { Expr } from './expression.js';

/**
 * The items of a syntactic list (a list expression or a literal array), else undefined.
 *
 * @example
 * ```ts
 * listItems({ kind: 'literal', value: [1, 2] })?.length; // 2
 * ```
 */
export function listItems(expr: Expr): Expr[] | undefined {
  if (expr.kind === 'list') return expr.items;
  if (expr.kind === 'literal' && Array.isArray(expr.value)) return expr.value.map((value) => ({ kind: 'literal', value }));
  return undefined;
}

/**
 * The entries of a syntactic mapping (a map expression or a literal object), else undefined.
 *
 * @example
 * ```ts
 * mapEntries({ kind: 'literal', value: { a: 1 } })?.get('a'); // { kind: 'literal', value: 1 }
 * ```
 */
export function mapEntries(expr: Expr): Map<string, Expr> | undefined {
  if (expr.kind === 'map') return new Map(expr.entries);
  if (expr.kind === 'literal' && expr.value !== null && typeof expr.value === 'object' && !Array.isArray(expr.value)) {
    return new Map(Object.entries(expr.value).map(([k, value]) => [k, { kind: 'literal', value }]));
  }
  return undefined;
}
