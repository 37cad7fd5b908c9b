/**
 * `compileFlow`: turns a tree of flow definitions into the plain-JSON {@link FlowGraph}
 * stored with every run.
 *
 * The steps, each one pass over the tree or the atoms, none recursive (flows may be built
 * by code, and a stack overflow is not an error message):
 *
 * 1. walk the tree in definition order, numbering atoms (retry controllers first in their
 *    scope, then the children) so every scope is one contiguous range of numbers, and
 *    checking names, shapes and limits;
 * 2. resolve every input to a run argument, an atom's result or a constant, recording a
 *    data-flow edge (provider → consumer) at the innermost flow containing both;
 * 3. from the innermost flow outwards, add pattern edges, links and data-flow edges, then
 *    the controller's edges to the scope's first atoms; an edge leaving a retry scope is
 *    moved to leave from all of the scope's last atoms;
 * 4. order the atoms topologically (ties in definition order) and renumber.
 *
 * Why one file of about 650 lines: the four passes are one `Compiler` over shared tables
 * (scopes, atoms, names, providers, edges in both directions); split into files, each pass
 * would take and hand back all of them. The passes are marked by the method order below.
 */
import type { JsonValue } from '../core/json.js';
import { ValidationError } from '../errors.js';
import { isFlowDefinition, isRetryController, isTaskDefinition } from './guards.js';
import { GRAPH_FORMAT, type AtomSpec, type FlowGraph, type InputSource, type RetryControllerSpec, type ScopeSpec } from './graph.js';
import { checkName, checkVersion, quoteName } from './names.js';
import { checkedController } from './retry.js';
import { checkedTask } from './task.js';
import { topologicalOrder } from './topological-order.js';
import type { CompiledFlow, Decider, FlowDefinition, RetryController, TaskDefinition } from './types.js';

/** Size limits of one flow; a flow beyond them fails with `STOKER_FLOW_TOO_LARGE`. */
export const FLOW_LIMITS = Object.freeze({
  /** tasks plus retry controllers: every atom is a row written when a run starts */
  maxAtoms: 10_000,
  /** nesting levels of flows, the root being level 1 */
  maxDepth: 64,
  /**
   * dependency edges after de-duplication: `linear` of two wide `unordered` flows links
   * every atom of the first to every atom of the second, so edges grow as a product
   */
  maxEdges: 1_000_000,
});

/**
 * Compiles a root flow into its graph and the code the graph refers to.
 *
 * Throws a ValidationError on any problem: `STOKER_FLOW_DUPLICATE_NAME` (two tasks or
 * flows anywhere in the tree share a name), `STOKER_FLOW_DUPLICATE_PROVIDER` (two atoms
 * provide one value), `STOKER_FLOW_MISSING_REQUIREMENT` (a value is provided only by an
 * atom that cannot run first: a later step of a linear flow, a sibling in an unordered
 * flow, or an atom inside the scope of the retry controller that needs it),
 * `STOKER_FLOW_CYCLE` (with one concrete cycle, `a → b → a`), `STOKER_FLOW_TOO_LARGE`
 * (see {@link FLOW_LIMITS}) and `STOKER_FLOW_INVALID` (malformed definitions, unknown
 * link ends). Values no atom provides are run arguments, not errors: the engine checks
 * them when a run starts.
 *
 * Rules worth knowing:
 * - an input read from an atom that provides several names carries `key` = the value
 *   name (see `InputSource`); from a single-name provider it has no `key`;
 * - a retry controller is an atom named `<flow>.retry`; its `provides` value is visible
 *   only inside its flow and is not a run output (`outputs` lists task values only);
 * - a link with a decider guards every edge it becomes (each sink of `from` to each
 *   source of `to`), and keeps its guard when the edge is moved to leave a retry scope;
 *   if data flow infers the same edge, the guard still applies.
 *
 * @example
 * ```ts
 * const compiled = compileFlow(linear('order', [reserve, charge]));
 * compiled.graph.atoms.map((a) => a.name); // ['reserve', 'charge']
 * compiled.graph.arguments;                 // e.g. ['orderId']
 * ```
 */
export function compileFlow(root: FlowDefinition): CompiledFlow {
  if (!isFlowDefinition(root)) {
    const hint = isTaskDefinition(root) ? ' (got a task: wrap it in linear())' : '';
    throw new ValidationError('STOKER_FLOW_INVALID', `compileFlow() needs a flow made by linear, unordered or graph${hint}.`);
  }
  return new Compiler(root).compile();
}

type ChildRef = { kind: 'task'; atom: number } | { kind: 'scope'; scope: number };

interface ScopeNode {
  index: number;
  flow: FlowDefinition;
  parent: number | null;
  /** the root is level 1 */
  depth: number;
  /** position among the parent's children; -1 for the root */
  childIndex: number;
  /** this scope's atoms are the definition ids start..end-1 */
  start: number;
  end: number;
  controller: number | null;
  /** the flow's retry controller, checked */
  retry: RetryController | undefined;
  children: ChildRef[];
  /** decider id of each of `flow.links` (undefined for an unguarded link) */
  linkDeciders: (string | undefined)[];
  /** provider → consumer pairs whose innermost common flow is this one */
  dataEdges: [number, number][];
  /** atoms of the scope without predecessor / successor inside it (set once complete) */
  sources: number[];
  sinks: number[];
}

interface AtomNode {
  name: string;
  kind: 'task' | 'retry';
  scope: number;
  /** position among its flow's children; -1 for a retry controller */
  childIndex: number;
  task: TaskDefinition | undefined;
  retry: RetryController | undefined;
  /** argument → source, with atoms as definition ids until renumbering */
  inputs: Record<string, InputSource>;
  controllerSpec: RetryControllerSpec | undefined;
}

class Compiler {
  private readonly scopes: ScopeNode[] = [];
  private readonly atoms: AtomNode[] = [];
  /** every name in the tree → who uses it, for duplicate messages */
  private readonly names = new Map<string, string>();
  /** value name → task atom providing it */
  private readonly providers = new Map<string, number>();
  private readonly deciders = new Map<string, Decider>();
  /** edges by definition id: successors, and predecessor → decider id (null: unguarded) */
  private readonly outgoing: Set<number>[] = [];
  private readonly incoming: Map<number, string | null>[] = [];
  private edgeCount = 0;
  private readonly rootLabel: string;

  constructor(private readonly root: FlowDefinition) {
    this.rootLabel = `flow ${quoteName(root.name)}`;
  }

  compile(): CompiledFlow {
    checkVersion(this.root.version, this.rootLabel);
    this.walk();
    this.checkControllerValues();
    this.atoms.forEach((_, id) => this.resolveInputs(id));
    for (let id = 0; id < this.atoms.length; id++) {
      this.outgoing.push(new Set());
      this.incoming.push(new Map());
    }
    for (let s = this.scopes.length - 1; s >= 0; s--) this.link(this.scope(s));
    return this.assemble();
  }

  // ---- step 1: the walk -------------------------------------------------------------

  private walk(): void {
    const rootScope = this.openScope(this.root, null, 1, -1);
    const stack: { scope: ScopeNode; next: number }[] = [{ scope: rootScope, next: 0 }];
    for (let frame = stack.at(-1); frame !== undefined; frame = stack.at(-1)) {
      const children = frame.scope.flow.children;
      if (frame.next >= children.length) {
        frame.scope.end = this.atoms.length;
        stack.pop();
        continue;
      }
      const i = frame.next++;
      const child: unknown = children[i];
      if (isTaskDefinition(child)) {
        const definition = checkedTask(child);
        const id = this.addAtom({
          name: definition.name,
          kind: 'task',
          scope: frame.scope.index,
          childIndex: i,
          task: definition,
          retry: undefined,
          inputs: {},
          controllerSpec: undefined,
        });
        this.claimName(definition.name, `task ${quoteName(definition.name)} in flow ${quoteName(frame.scope.flow.name)}`);
        for (const value of definition.provides) this.addProvider(value, id);
        frame.scope.children.push({ kind: 'task', atom: id });
      } else if (isFlowDefinition(child)) {
        const scope = this.openScope(child, frame.scope.index, frame.scope.depth + 1, i);
        frame.scope.children.push({ kind: 'scope', scope: scope.index });
        stack.push({ scope, next: 0 });
      } else {
        this.invalid(
          `Child ${i} of flow ${quoteName(frame.scope.flow.name)} is neither a task (from task()) nor a flow (from linear, unordered or graph).`,
        );
      }
    }
  }

  private openScope(flow: FlowDefinition, parent: number | null, depth: number, childIndex: number): ScopeNode {
    const name = checkName(flow.name, 'flow name');
    if (depth > FLOW_LIMITS.maxDepth) {
      throw new ValidationError(
        'STOKER_FLOW_TOO_LARGE',
        `The ${this.rootLabel} nests flows more than ${FLOW_LIMITS.maxDepth} levels deep (flow ${quoteName(name)} is at level ${depth}).`,
        { details: { flow: this.root.name, limit: FLOW_LIMITS.maxDepth, at: name } },
      );
    }
    const parentName = parent === null ? undefined : this.scope(parent).flow.name;
    this.claimName(
      name,
      parentName === undefined ? `root flow ${quoteName(name)}` : `flow ${quoteName(name)} in flow ${quoteName(parentName)}`,
    );
    if (flow.children.length === 0) this.invalid(`The flow ${quoteName(name)} has no children.`);
    if (flow.pattern !== 'graph' && flow.links.length > 0) {
      this.invalid(`The ${flow.pattern} flow ${quoteName(name)} has links; only graph flows may have links.`);
    }
    const scope: ScopeNode = {
      index: this.scopes.length,
      flow,
      parent,
      depth,
      childIndex,
      start: this.atoms.length,
      end: this.atoms.length,
      controller: null,
      retry: undefined,
      children: [],
      linkDeciders: flow.links.map((link) => {
        if (link.decider === undefined) return undefined;
        if (typeof link.decider !== 'function') {
          this.invalid(`A link decider in flow ${quoteName(name)} is not a function.`);
        }
        const id = `d${this.deciders.size}`;
        this.deciders.set(id, link.decider);
        return id;
      }),
      dataEdges: [],
      sources: [],
      sinks: [],
    };
    this.scopes.push(scope);
    const retry: unknown = flow.retry;
    if (retry !== undefined) {
      if (!isRetryController(retry)) {
        this.invalid(`The retry option of flow ${quoteName(name)} is not a retry controller.`);
      }
      scope.retry = checkedController(retry, `flow ${quoteName(name)}`);
      const controllerName = `${name}.retry`;
      this.claimName(controllerName, `the retry controller of flow ${quoteName(name)}`);
      scope.controller = this.addAtom({
        name: controllerName,
        kind: 'retry',
        scope: scope.index,
        childIndex: -1,
        task: undefined,
        retry: scope.retry,
        inputs: {},
        controllerSpec: scope.retry.spec,
      });
    }
    return scope;
  }

  private addAtom(atom: AtomNode): number {
    if (this.atoms.length >= FLOW_LIMITS.maxAtoms) {
      throw new ValidationError(
        'STOKER_FLOW_TOO_LARGE',
        `The ${this.rootLabel} has more than ${FLOW_LIMITS.maxAtoms} atoms (tasks plus retry controllers).`,
        { details: { flow: this.root.name, limit: FLOW_LIMITS.maxAtoms } },
      );
    }
    this.atoms.push(atom);
    return this.atoms.length - 1;
  }

  private claimName(name: string, user: string): void {
    const first = this.names.get(name);
    if (first !== undefined) {
      throw new ValidationError(
        'STOKER_FLOW_DUPLICATE_NAME',
        `The name ${quoteName(name)} is used twice in ${this.rootLabel}: by ${first} and by ${user}.`,
        { details: { flow: this.root.name, name, first, second: user } },
      );
    }
    this.names.set(name, user);
  }

  private addProvider(value: string, id: number): void {
    const other = this.providers.get(value);
    if (other !== undefined) {
      const a = this.atom(other).name;
      const b = this.atom(id).name;
      throw new ValidationError(
        'STOKER_FLOW_DUPLICATE_PROVIDER',
        `The value ${quoteName(value)} is provided by both ${quoteName(a)} and ${quoteName(b)} in ${this.rootLabel}.`,
        { details: { flow: this.root.name, value, providers: [a, b] } },
      );
    }
    this.providers.set(value, id);
  }

  /**
   * A controller's value is visible inside its scope only, so it may not share a name with
   * a task's value (which is visible everywhere) nor with an enclosing controller's value
   * (a silent shadowing would hide the outer one). Sibling scopes may reuse a name.
   */
  private checkControllerValues(): void {
    for (const scope of this.scopes) {
      const value = scope.retry?.provides;
      if (value === undefined) continue;
      const mine = `the retry controller of flow ${quoteName(scope.flow.name)}`;
      const task = this.providers.get(value);
      let other = task === undefined ? undefined : `task ${quoteName(this.atom(task).name)}`;
      for (let s = scope.parent; other === undefined && s !== null; s = this.scope(s).parent) {
        const outer = this.scope(s);
        if (outer.retry?.provides === value) {
          other = `the retry controller of enclosing flow ${quoteName(outer.flow.name)}`;
        }
      }
      if (other !== undefined) {
        throw new ValidationError(
          'STOKER_FLOW_DUPLICATE_PROVIDER',
          `The value ${quoteName(value)} is provided by both ${other} and ${mine} in ${this.rootLabel}.`,
          { details: { flow: this.root.name, value, providers: [other, mine] } },
        );
      }
    }
  }

  // ---- step 2: inputs and data flow -------------------------------------------------

  private resolveInputs(id: number): void {
    const atom = this.atom(id);
    if (atom.task !== undefined) {
      const { requires, rebind, inject } = atom.task;
      for (const argument of requires) {
        atom.inputs[argument] = Object.hasOwn(inject, argument)
          ? { from: 'value', value: inject[argument] as JsonValue }
          : this.resolve(id, Object.hasOwn(rebind, argument) ? (rebind[argument] as string) : argument);
      }
      for (const [argument, value] of Object.entries(inject)) {
        if (!Object.hasOwn(atom.inputs, argument)) atom.inputs[argument] = { from: 'value', value };
      }
    } else if (atom.controllerSpec?.kind === 'parameterizedForEach') {
      const from = atom.controllerSpec.valuesFrom;
      // Definition time records the value *name* as an argument source; resolve it now.
      const name = from.from === 'arg' ? from.name : undefined;
      if (name !== undefined) {
        const source = this.resolve(id, name);
        atom.inputs[name] = source;
        atom.controllerSpec = { kind: 'parameterizedForEach', valuesFrom: source };
      }
    }
  }

  private resolve(consumer: number, value: string): InputSource {
    const atom = this.atom(consumer);
    // Controller values are visible inside their scope; a controller itself sits in the
    // scope it controls but reads from outside it.
    let s: number | null = atom.kind === 'retry' ? this.scope(atom.scope).parent : atom.scope;
    for (; s !== null; s = this.scope(s).parent) {
      const scope = this.scope(s);
      if (scope.controller !== null && scope.retry?.provides === value) return { from: 'atom', atom: scope.controller };
    }
    const provider = this.providers.get(value);
    if (provider === undefined) return { from: 'arg', name: value };
    this.addDataEdge(provider, consumer, value);
    const provides = this.atom(provider).task?.provides ?? [];
    return provides.length > 1 ? { from: 'atom', atom: provider, key: value } : { from: 'atom', atom: provider };
  }

  private addDataEdge(provider: number, consumer: number, value: string): void {
    const p = this.atom(provider);
    const c = this.atom(consumer);
    if (provider === consumer) {
      throw new ValidationError(
        'STOKER_FLOW_CYCLE',
        `The ${this.rootLabel} has a dependency cycle: ${c.name} → ${c.name} (task ${quoteName(c.name)} requires ${quoteName(value)}, which it provides itself).`,
        { details: { flow: this.root.name, cycle: [c.name, c.name], value } },
      );
    }
    let lca = c.scope;
    while (!this.contains(lca, provider)) lca = this.scope(lca).parent ?? 0;
    const flow = this.scope(lca).flow;
    const missing: (why: string) => never = (why) => {
      throw new ValidationError(
        'STOKER_FLOW_MISSING_REQUIREMENT',
        `${c.kind === 'retry' ? 'The retry controller' : 'Task'} ${quoteName(c.name)} requires ${quoteName(value)}, but its only provider ${quoteName(p.name)} ${why}.`,
        { details: { flow: this.root.name, atom: c.name, value, provider: p.name } },
      );
    };
    if (c.kind === 'retry' && lca === c.scope) {
      missing(`runs inside the flow ${quoteName(flow.name)} that the controller retries`);
    }
    if (flow.pattern === 'linear' && this.childOf(lca, provider) > this.childOf(lca, consumer)) {
      missing(`runs later in linear flow ${quoteName(flow.name)}`);
    }
    if (flow.pattern === 'unordered') {
      missing(`is its sibling in unordered flow ${quoteName(flow.name)}, whose children must be independent (use linear or graph)`);
    }
    this.scope(lca).dataEdges.push([provider, consumer]);
  }

  /** Position, among the children of flow `scope`, of the child that contains atom `id`. */
  private childOf(scope: number, id: number): number {
    const atom = this.atom(id);
    if (atom.scope === scope) return atom.childIndex;
    let s = atom.scope;
    for (let parent = this.scope(s).parent; parent !== null && parent !== scope; parent = this.scope(s).parent) {
      s = parent;
    }
    return this.scope(s).childIndex;
  }

  // ---- step 3: edges ----------------------------------------------------------------

  private link(scope: ScopeNode): void {
    const { flow, children } = scope;
    const entry = (ref: ChildRef): number[] => (ref.kind === 'task' ? [ref.atom] : this.scope(ref.scope).sources);
    const exit = (ref: ChildRef): number[] => (ref.kind === 'task' ? [ref.atom] : this.scope(ref.scope).sinks);
    const connect = (from: ChildRef, to: ChildRef, decider: string | undefined): void => {
      for (const u of exit(from)) for (const v of entry(to)) this.addEdge(scope, u, v, decider);
    };

    if (flow.pattern === 'linear') {
      for (let i = 1; i < children.length; i++) {
        connect(children[i - 1] as ChildRef, children[i] as ChildRef, undefined);
      }
    } else if (flow.pattern === 'graph') {
      const byName = new Map<string, ChildRef>();
      flow.children.forEach((child, i) => byName.set(child.name, children[i] as ChildRef));
      flow.links.forEach((link, i) => {
        const from = byName.get(link.from);
        const to = byName.get(link.to);
        if (from === undefined || to === undefined) {
          const unknown = from === undefined ? link.from : link.to;
          this.invalid(
            `Link ${i} of graph flow ${quoteName(flow.name)} names unknown child ${quoteName(unknown)}; children are: ${[...byName.keys()].join(', ')}.`,
          );
        }
        if (link.from === link.to) {
          throw new ValidationError(
            'STOKER_FLOW_CYCLE',
            `Link ${i} of graph flow ${quoteName(flow.name)} links ${quoteName(link.from)} to itself.`,
            {
              details: { flow: this.root.name, cycle: [link.from, link.from] },
            },
          );
        }
        connect(from as ChildRef, to as ChildRef, scope.linkDeciders[i]);
      });
    }
    for (const [provider, consumer] of scope.dataEdges) this.addEdge(scope, provider, consumer, undefined);

    if (scope.controller !== null) {
      // The controller runs first: everything in the scope that waits for nothing in the
      // scope now waits for it.
      for (let a = scope.start; a < scope.end; a++) {
        if (a !== scope.controller && !this.hasPredecessorIn(scope, a)) {
          this.addFinalEdge(scope.controller, a, undefined);
        }
      }
    }
    for (let a = scope.start; a < scope.end; a++) {
      if (!this.hasPredecessorIn(scope, a)) scope.sources.push(a);
      if (!this.hasSuccessorIn(scope, a)) scope.sinks.push(a);
    }
  }

  /**
   * Adds `u → v` for flow `scope`. If `u` is inside a retry scope that `v` is not, `v`
   * would start while the rest of that scope may still fail and be retried or reverted
   * under it; so the edge leaves from every last atom of the outermost such scope instead.
   */
  private addEdge(scope: ScopeNode, u: number, v: number, decider: string | undefined): void {
    let exitScope: ScopeNode | undefined;
    for (let s: number | null = this.atom(u).scope; s !== null && s !== scope.index; s = this.scope(s).parent) {
      const inner = this.scope(s);
      if (inner.controller !== null && !this.contains(s, v)) exitScope = inner;
    }
    if (exitScope === undefined) this.addFinalEdge(u, v, decider);
    else for (const sink of exitScope.sinks) this.addFinalEdge(sink, v, decider);
  }

  private addFinalEdge(u: number, v: number, decider: string | undefined): void {
    const into = this.incoming[v] as Map<number, string | null>;
    const existing = into.get(u);
    if (existing === undefined) {
      if (this.edgeCount >= FLOW_LIMITS.maxEdges) {
        throw new ValidationError(
          'STOKER_FLOW_TOO_LARGE',
          `The ${this.rootLabel} has more than ${FLOW_LIMITS.maxEdges} dependency edges; put a task between two wide unordered flows to join them.`,
          { details: { flow: this.root.name, limit: FLOW_LIMITS.maxEdges } },
        );
      }
      this.edgeCount++;
      into.set(u, decider ?? null);
      this.outgoing[u]?.add(v);
      return;
    }
    if (decider === undefined || existing === decider) return;
    // A guarded link and an unguarded dependency on the same pair: the guard still applies.
    if (existing === null) {
      into.set(u, decider);
      return;
    }
    if (this.deciders.get(existing) !== this.deciders.get(decider)) {
      this.invalid(`The ${this.rootLabel} guards the dependency ${this.atom(u).name} → ${this.atom(v).name} with two different deciders.`);
    }
  }

  private hasPredecessorIn(scope: ScopeNode, a: number): boolean {
    for (const u of (this.incoming[a] as Map<number, string | null>).keys()) {
      if (this.contains(scope.index, u)) return true;
    }
    return false;
  }

  private hasSuccessorIn(scope: ScopeNode, a: number): boolean {
    for (const v of this.outgoing[a] as Set<number>) if (this.contains(scope.index, v)) return true;
    return false;
  }

  // ---- step 4: order and output -----------------------------------------------------

  private assemble(): CompiledFlow {
    const sorted = topologicalOrder(this.outgoing);
    if (!sorted.ok) {
      const path = sorted.cycle.map((id) => this.atom(id).name);
      throw new ValidationError('STOKER_FLOW_CYCLE', `The ${this.rootLabel} has a dependency cycle: ${path.join(' → ')}.`, {
        details: { flow: this.root.name, cycle: path },
      });
    }
    const order = sorted.order;
    const newIndex = new Array<number>(order.length).fill(0);
    order.forEach((id, index) => (newIndex[id] = index));
    const renumber = (id: number): number => newIndex[id] ?? id;
    const byIndex = (a: number, b: number): number => a - b;

    const usedDeciders = new Map<string, Decider>();
    const atoms: AtomSpec[] = order.map((id, index) => {
      const atom = this.atom(id);
      const inputs: Record<string, InputSource> = {};
      for (const [argument, source] of Object.entries(atom.inputs)) inputs[argument] = remapSource(source, renumber);
      const spec: AtomSpec = {
        index,
        name: atom.name,
        kind: atom.kind,
        scope: atom.scope,
        inputs,
        provides: atom.task !== undefined ? [...atom.task.provides] : atom.retry?.provides !== undefined ? [atom.retry.provides] : [],
        predecessors: [...(this.incoming[id] as Map<number, string | null>).keys()].map(renumber).sort(byIndex),
        successors: [...(this.outgoing[id] as Set<number>)].map(renumber).sort(byIndex),
        hasRevert: atom.task?.revert !== undefined,
      };
      const guarded = [...(this.incoming[id] as Map<number, string | null>)].filter(([, d]) => d !== null);
      if (guarded.length > 0) {
        spec.deciders = {};
        for (const [u, d] of guarded.sort(([a], [b]) => renumber(a) - renumber(b))) {
          spec.deciders[String(renumber(u))] = d as string;
          usedDeciders.set(d as string, this.deciders.get(d as string) as Decider);
        }
      }
      if (atom.task?.retry !== undefined) spec.retry = { ...atom.task.retry };
      if (atom.task?.timeoutMs !== undefined) spec.timeoutMs = atom.task.timeoutMs;
      if (atom.controllerSpec !== undefined) spec.controller = remapController(atom.controllerSpec, renumber);
      return spec;
    });

    const scopes: ScopeSpec[] = this.scopes.map((scope) => {
      const members: number[] = [];
      for (let a = scope.start; a < scope.end; a++) members.push(renumber(a));
      return {
        index: scope.index,
        name: scope.flow.name,
        parent: scope.parent,
        controller: scope.controller === null ? null : renumber(scope.controller),
        atoms: members.sort(byIndex),
      };
    });

    const args = new Set<string>();
    const outputs: Record<string, InputSource> = {};
    for (const atom of atoms) {
      for (const source of Object.values(atom.inputs)) if (source.from === 'arg') args.add(source.name);
      if (atom.kind !== 'task') continue;
      for (const value of atom.provides) {
        outputs[value] = atom.provides.length > 1 ? { from: 'atom', atom: atom.index, key: value } : { from: 'atom', atom: atom.index };
      }
    }

    const graph: FlowGraph = {
      format: GRAPH_FORMAT,
      flow: this.root.name,
      version: this.root.version,
      atoms,
      scopes,
      arguments: [...args].sort(),
      outputs,
    };
    const tasks = new Map<string, TaskDefinition>();
    for (const atom of this.atoms) if (atom.task !== undefined) tasks.set(atom.name, atom.task);
    const deciders = new Map([...usedDeciders].sort(([a], [b]) => Number(a.slice(1)) - Number(b.slice(1))));
    return Object.freeze({
      name: this.root.name,
      version: this.root.version,
      graph: deepFreeze(graph),
      tasks,
      deciders,
    });
  }

  // ---- helpers ----------------------------------------------------------------------

  private contains(scope: number, id: number): boolean {
    const s = this.scope(scope);
    return s.start <= id && id < s.end;
  }

  private scope(index: number): ScopeNode {
    return this.scopes[index] as ScopeNode;
  }

  private atom(id: number): AtomNode {
    return this.atoms[id] as AtomNode;
  }

  private invalid(message: string): never {
    throw new ValidationError('STOKER_FLOW_INVALID', message, { details: { flow: this.root.name } });
  }
}

function remapSource(source: InputSource, renumber: (id: number) => number): InputSource {
  if (source.from !== 'atom') return source;
  return source.key === undefined
    ? { from: 'atom', atom: renumber(source.atom) }
    : { from: 'atom', atom: renumber(source.atom), key: source.key };
}

function remapController(spec: RetryControllerSpec, renumber: (id: number) => number): RetryControllerSpec {
  switch (spec.kind) {
    case 'times':
      return { kind: 'times', attempts: spec.attempts };
    case 'forEach':
      return { kind: 'forEach', values: spec.values };
    case 'parameterizedForEach':
      return { kind: 'parameterizedForEach', valuesFrom: remapSource(spec.valuesFrom, renumber) };
    case 'alwaysRevert':
    case 'revertAll':
      return { kind: spec.kind };
  }
}

/** Freezes a JSON tree without recursion (constants inside are already frozen copies). */
function deepFreeze<T extends object>(value: T): T {
  const stack: object[] = [value];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (Object.isFrozen(item)) continue;
    Object.freeze(item);
    for (const child of Object.values(item)) {
      if (typeof child === 'object' && child !== null) stack.push(child as object);
    }
  }
  return value;
}
