/**
 * How an engine finds the code of an atom. An atom names what executes it (src/flow/graph.ts):
 * a step type with parameters (graphs generated at run time, e.g. a stack action), or else
 * the task of the run's registered flow that has the atom's name. The engine is given a
 * resolver, so a layer above can bring its own step types without the engine knowing them.
 */
import type { FailureRecord, TaskFn } from '../flow/types.js';
import type { AtomSpec } from '../flow/graph.js';
import type { StepTypeRegistry } from '../flow/step-type.js';
import type { EngineRunContext } from './run-cache.js';

/** The code of one atom: what its execution and its revert call. */
export interface AtomCode {
  execute: TaskFn;
  revert?: TaskFn | undefined;
}

/**
 * What a resolver found for an atom:
 * - `code`: run it;
 * - `elsewhere`: this engine cannot run it, another may (its flow or step type is not
 *   registered here, say in a rolling deploy): hand the atom back and look again later;
 * - `missing`: nobody can (the run's flow has no task of that name): the atom fails.
 */
export type Resolution = { kind: 'code'; code: AtomCode } | { kind: 'elsewhere' } | { kind: 'missing'; failure: FailureRecord };

export interface StepResolver {
  resolve(run: EngineRunContext, atom: AtomSpec): Resolution;
}

const ELSEWHERE: Resolution = Object.freeze({ kind: 'elsewhere' });

/**
 * The resolver an engine uses unless it is given another: step types from `steps`, tasks
 * from the run's registered flow.
 *
 * @example
 * ```ts
 * const resolver = new DefaultStepResolver(new StepTypeRegistry().register(createResource));
 * ```
 */
export class DefaultStepResolver implements StepResolver {
  constructor(private readonly steps: StepTypeRegistry | null) {}

  resolve(run: EngineRunContext, atom: AtomSpec): Resolution {
    const step = atom.step;
    if (step !== undefined) {
      const type = this.steps?.find(step.type);
      if (!type) return ELSEWHERE;
      const params = step.params;
      return {
        kind: 'code',
        code: {
          execute: (inputs, ctx) => type.execute(params, inputs, ctx),
          revert: type.revert ? (inputs, ctx) => type.revert!(params, inputs, ctx) : undefined,
        },
      };
    }
    if (run.flow === null) return ELSEWHERE;
    const task = run.flow.tasks.get(atom.name);
    if (task) return { kind: 'code', code: task };
    return {
      kind: 'missing',
      failure: {
        type: 'StokerError',
        code: 'STOKER_TASK_NOT_FOUND',
        message: `flow ${run.flow.name}@${run.flow.version} has no task ${atom.name}`,
        retryable: false,
      },
    };
  }
}
