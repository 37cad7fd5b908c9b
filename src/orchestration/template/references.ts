/**
 * Static dependency extraction: which resources (and which of their attributes) an expression
 * refers to through `get_resource`, `get_attr` and CFN `Ref`, the way Heat's
 * `function.dependencies` walks a definition. Names computed by other functions (e.g.
 * `get_attr: [{get_param: which}, value]`) are resolved when the caller can evaluate them
 * from parameters; `if` follows its taken branch when the caller knows the conditions, and
 * both branches otherwise.
 */
import type { JsonValue } from '../../core/json.js';
import type { CallExpr, Expr } from './expression.js';
import { listItems } from './expr-shape.js';
import { Fn } from './versions.js';

/**
 * The references found.
 *
 * @example
 * ```ts
 * collectReferences(expr, { resourceNames }).resources; // Set { 'server' }
 * ```
 */
export interface References {
  resources: Set<string>;
  /** `get_attr` uses: attribute null means "all attributes" (`get_attr: [r]`) */
  attributes: { resource: string; attribute: string | null }[];
  /** true when some reference's resource name could not be determined */
  dynamic: boolean;
}

/**
 * How to walk.
 *
 * @example
 * ```ts
 * const options: ReferenceOptions = { resourceNames: new Set(Object.keys(template.resources)) };
 * ```
 */
export interface ReferenceOptions {
  /** the template's resources (for CFN `Ref`, which may name a parameter instead) */
  resourceNames: ReadonlySet<string>;
  /** the value of an `if` condition, when known */
  conditionOf?: (condition: Expr) => boolean | undefined;
  /** the value of a computed resource name, when it can be evaluated from parameters */
  nameOf?: (expr: Expr) => JsonValue | undefined;
  /** leave out everything inside `if` branches (only references that always hold) */
  skipIfBranches?: boolean;
}

/**
 * Collects the references of one expression (null gives none).
 *
 * @example
 * ```ts
 * const refs = collectReferences(template.resources['web']!.properties, { resourceNames });
 * ```
 */
export function collectReferences(expr: Expr | null, options: ReferenceOptions): References {
  const out: References = { resources: new Set(), attributes: [], dynamic: false };
  if (expr === null) return out;
  const nameOf = (e: Expr | undefined): string | undefined => {
    if (e === undefined) return undefined;
    const v = e.kind === 'literal' ? e.value : options.nameOf?.(e);
    if (typeof v === 'string') return v;
    out.dynamic = true;
    return undefined;
  };
  const stack: Expr[] = [expr];
  while (stack.length > 0) {
    const e = stack.pop()!;
    if (e.kind === 'list') stack.push(...e.items);
    else if (e.kind === 'map') for (const [, v] of e.entries) stack.push(v);
    else if (e.kind === 'call') visitCall(e);
  }
  return out;

  function visitCall(call: CallExpr): void {
    const items = listItems(call.arg);
    switch (call.fn) {
      case Fn.If:
      case Fn.IfNullable: {
        if (!items || options.skipIfBranches) return;
        const taken = options.conditionOf?.(items[0]!);
        if (taken !== false && items[1]) stack.push(items[1]);
        if (taken !== true && items[2]) stack.push(items[2]);
        return;
      }
      case Fn.GetResource: {
        const name = nameOf(call.arg);
        if (name !== undefined) out.resources.add(name);
        break;
      }
      case Fn.GetAttrThenSelect:
      case Fn.GetAttr:
      case Fn.GetAttrAll: {
        const name = nameOf(items?.[0]);
        if (name !== undefined) {
          out.resources.add(name);
          const attr = items?.[1];
          if (attr === undefined || (attr.kind === 'literal' && (attr.value === null || typeof attr.value === 'string'))) {
            out.attributes.push({ resource: name, attribute: attr === undefined ? null : (attr as { value: string | null }).value });
          }
        }
        break;
      }
      case Fn.CfnRef:
        if (call.arg.kind === 'literal' && typeof call.arg.value === 'string' && options.resourceNames.has(call.arg.value)) {
          out.resources.add(call.arg.value);
        }
        break;
      default:
        break;
    }
    stack.push(call.arg);
  }
}
