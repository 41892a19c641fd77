import { EvoError } from '../errors.js';
import { raceGeneration } from './racing.js';
import type { RaceOutcome, RacingOptions } from './racing.js';
import type { Candidate, EvalSplit, Evaluator, InferenceBackend } from './types.js';

/**
 * Successive halving of one generation on one evaluator: the glue between the pure scheduler
 * (racing.ts) and an evaluator that can slice its items (`subsetOrder`). Every candidate answers
 * prefixes of the same seeded order; before each slice the backend is pointed at the candidate.
 */

export interface RaceBudget {
  /** Items of a full evaluation (the last rung). */
  readonly limit: number;
  /** The generation's subset seed (`generationSeed(runSeed, generation)`). */
  readonly seed: number;
  /** Default: 'search'. */
  readonly split?: EvalSplit;
}

export async function raceEvaluator(
  candidates: readonly Candidate[],
  evaluator: Evaluator,
  backend: InferenceBackend | undefined,
  budget: RaceBudget,
  options: RacingOptions = {},
  signal?: AbortSignal,
): Promise<RaceOutcome<Candidate>> {
  if (evaluator.subsetOrder === undefined) {
    throw new EvoError('NOT_RACEABLE', `evaluator ${evaluator.name} does not enumerate its items, so it cannot be raced; evaluate it with a plain limit instead`);
  }
  const split = budget.split ?? 'search';
  const order = await evaluator.subsetOrder(split, budget.seed);
  let loaded: string | undefined;
  return raceGeneration(
    candidates,
    order,
    budget.limit,
    async (candidate, itemIds) => {
      if (backend !== undefined && evaluator.needs === 'backend' && loaded !== candidate.id) {
        await backend.useModel({ id: candidate.id, dir: candidate.dir, gguf: candidate.gguf }, signal);
        loaded = candidate.id;
      }
      const result = await evaluator.evaluate(candidate, { limit: itemIds.length, seed: budget.seed, split, itemIds }, { backend, signal });
      return result.items;
    },
    options,
  );
}
