/**
 * The three ways to compose tasks and flows, after TaskFlow's patterns:
 *
 * - `linear`: children run one after the other (a nested flow as a whole);
 * - `unordered`: children are independent and may run in parallel;
 * - `graph`: children are ordered by explicit links plus links inferred from data flow
 *   (a child that requires a value runs after the child that provides it).
 *
 * Only direct children are checked here; what needs the whole tree (unique names across
 * nesting levels, data flow, cycles, limits) is checked by `compileFlow`.
 */
import { ValidationError } from '../errors.js';
import { checkKnownKeys } from './check-options.js';
import { isFlowDefinition, isRetryController, isTaskDefinition } from './guards.js';
import { checkName, checkVersion, quoteName } from './names.js';
import type { FlowDefinition, FlowOptions, Link, PatternKind, TaskDefinition } from './types.js';

/** A child of a flow: a task or a nested flow. */
export type FlowChild = TaskDefinition | FlowDefinition;

/** Version of a root flow defined without `options.version`. */
export const DEFAULT_FLOW_VERSION = '1';

/**
 * A flow whose children run in order: each child starts when the previous one (all of it,
 * for a nested flow) has finished. A child may require values provided by earlier
 * children, never by later ones.
 *
 * @example
 * ```ts
 * const deploy = linear('deploy', [build, upload, unordered('notify', [mail, chat])], {
 *   version: '2',
 *   retry: times(2),
 * });
 * ```
 */
export function linear(name: string, children: readonly FlowChild[], options: FlowOptions = {}): FlowDefinition {
  return makeFlow('linear', name, children, [], options);
}

/**
 * A flow whose children are independent and may run in parallel. A child may not require
 * a value that a sibling provides (use `linear` or `graph` for that).
 *
 * @example
 * ```ts
 * const fetchAll = unordered('fetch-all', [fetchUsers, fetchOrders]);
 * ```
 */
export function unordered(name: string, children: readonly FlowChild[], options: FlowOptions = {}): FlowDefinition {
  return makeFlow('unordered', name, children, [], options);
}

/**
 * A flow ordered by `links` (by child name; a link to or from a nested flow means its
 * first or last atoms) plus links inferred from data flow: a child that requires a value
 * runs after the child that provides it. A link may carry a `decider`: when it returns
 * false at run time the target is skipped.
 *
 * @example
 * ```ts
 * const order = graph('order', [reserve, charge, ship, refund], [
 *   { from: 'charge', to: 'ship', decider: (paid) => paid === true },
 * ]);
 * // reserve → charge is inferred when charge requires what reserve provides
 * ```
 */
export function graph(
  name: string,
  children: readonly FlowChild[],
  links: readonly Link[] = [],
  options: FlowOptions = {},
): FlowDefinition {
  return makeFlow('graph', name, children, links, options);
}

function makeFlow(
  pattern: PatternKind,
  name: string,
  children: readonly FlowChild[],
  links: readonly Link[],
  options: FlowOptions,
): FlowDefinition {
  const flowName = checkName(name, `${pattern} flow name`);
  const where = `${pattern} flow ${quoteName(flowName)}`;
  const invalid: (message: string) => never = (message) => {
    throw new ValidationError('STOKER_FLOW_INVALID', message, { details: { flow: flowName } });
  };

  const given = checkKnownKeys(options, ['retry', 'version'], `options of ${where}`);
  if (given.retry !== undefined && !isRetryController(given.retry)) {
    invalid(`The retry option of ${where} must be a retry controller (times, forEach, parameterizedForEach, alwaysRevert, revertAll).`);
  }
  const version = given.version === undefined ? DEFAULT_FLOW_VERSION : checkVersion(given.version, where);

  if (!Array.isArray(children)) invalid(`The children of ${where} must be an array.`);
  if (children.length === 0) invalid(`The ${where} has no children.`);
  const index = new Map<string, number>();
  children.forEach((child, i) => {
    if (!isTaskDefinition(child) && !isFlowDefinition(child)) {
      invalid(`Child ${i} of ${where} is neither a task (from task()) nor a flow (from linear, unordered or graph).`);
    }
    const previous = index.get(child.name);
    if (previous !== undefined) {
      throw new ValidationError(
        'STOKER_FLOW_DUPLICATE_NAME',
        `The ${where} has two children named ${quoteName(child.name)} (children ${previous} and ${i}).`,
        { details: { flow: flowName, name: child.name } },
      );
    }
    index.set(child.name, i);
  });

  if (!Array.isArray(links)) invalid(`The links of ${where} must be an array.`);
  const seen = new Map<string, Link>();
  const copies: Link[] = [];
  links.forEach((link, i) => {
    const raw = checkKnownKeys(link, ['from', 'to', 'decider'], `link ${i} of ${where}`);
    for (const end of ['from', 'to'] as const) {
      if (typeof raw[end] !== 'string' || !index.has(raw[end])) {
        invalid(
          `Link ${i} of ${where} names unknown child ${quoteName(raw[end])} as '${end}'; children are: ${[...index.keys()].join(', ')}.`,
        );
      }
    }
    const from = raw.from as string;
    const to = raw.to as string;
    if (from === to) {
      throw new ValidationError('STOKER_FLOW_CYCLE', `Link ${i} of ${where} links ${quoteName(from)} to itself.`, {
        details: { flow: flowName, cycle: [from, from] },
      });
    }
    if (raw.decider !== undefined && typeof raw.decider !== 'function') {
      invalid(`The decider of link ${i} (${from} → ${to}) of ${where} must be a function.`);
    }
    const key = `${from}\u0000${to}`;
    const twin = seen.get(key);
    if (twin !== undefined) {
      // The same link written twice is harmless; two different guards on one link are not.
      if (twin.decider !== raw.decider) invalid(`The ${where} links ${from} → ${to} twice with different deciders.`);
      return;
    }
    const copy: Link = raw.decider === undefined ? { from, to } : { from, to, decider: raw.decider as Link['decider'] };
    seen.set(key, copy);
    copies.push(Object.freeze(copy));
  });

  return Object.freeze({
    type: 'flow',
    pattern,
    name: flowName,
    version,
    children: Object.freeze([...children]),
    links: Object.freeze(copies),
    retry: given.retry as FlowDefinition['retry'],
  });
}
