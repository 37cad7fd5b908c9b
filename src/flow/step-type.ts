/**
 * Step types: code that executes the atoms of graphs built at run time (build-graph.ts) by
 * type name, given each atom's stored parameters. A layer above the engine (orchestration:
 * "create this resource", "delete that one") registers its step types and starts runs of
 * the graphs it generates; every engine given the same registry can execute any of their
 * atoms. An engine that does not know a step type hands the atom back to one that does.
 */
import type { JsonValue } from '../core/json.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { checkName, quoteName } from './names.js';
import type { TaskContext } from './types.js';

/** The code of one step type. `params` are the atom's stored parameters; `inputs` come from the graph's links. */
export interface StepType {
  readonly type: string;
  execute(params: JsonValue, inputs: Record<string, JsonValue>, ctx: TaskContext): Promise<JsonValue | void> | JsonValue | void;
  /** undoes `execute` on the revert path (atoms built with `revert: true` only) */
  revert?(params: JsonValue, inputs: Record<string, JsonValue>, ctx: TaskContext): Promise<JsonValue | void> | JsonValue | void;
}

/**
 * The step types an engine can execute, by name. Not a singleton: each runtime owns one.
 *
 * @example
 * ```ts
 * const steps = new StepTypeRegistry();
 * steps.register({ type: 'http.get', execute: async ({ url }) => (await fetch(String(url))).status });
 * new Engine({ store, steps });
 * ```
 */
export class StepTypeRegistry {
  private readonly byType = new Map<string, StepType>();

  /** Registers a step type; registering the same object again is a no-op, another one under a taken name is a conflict. */
  register(step: StepType): this {
    const type = checkName(step.type, 'a step type');
    const known = this.byType.get(type);
    if (known && known !== step) {
      throw new ConflictError('STOKER_STEP_TYPE_CONFLICT', `Another step type is already registered as ${quoteName(type)}.`, {
        details: { type },
      });
    }
    this.byType.set(type, step);
    return this;
  }

  /** the step type, or undefined when none is registered under that name */
  find(type: string): StepType | undefined {
    return this.byType.get(type);
  }

  /** the step type; throws `STOKER_STEP_TYPE_NOT_FOUND` when none is registered under that name */
  get(type: string): StepType {
    const step = this.byType.get(type);
    if (!step) {
      throw new NotFoundError('STOKER_STEP_TYPE_NOT_FOUND', `No step type ${quoteName(type)} is registered.`, {
        details: { type, known: [...this.byType.keys()].sort() },
      });
    }
    return step;
  }

  /** the registered names, sorted */
  types(): string[] {
    return [...this.byType.keys()].sort();
  }
}
