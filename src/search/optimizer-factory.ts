import { CmaesOptimizer } from './cmaes.js';
import { GaOptimizer } from './ga.js';
import type { Genome } from './genome-vector.js';
import { genomeRecipeHash, type GenomeSchema } from './genome.js';
import { Nsga2Optimizer } from './nsga2.js';
import type { Optimizer, OptimizerHooks, OptimizerState } from './optimizer.js';
import { RandomSearch } from './random-search.js';
import type { RngStreams } from './rng.js';

/** Default population of ga, nsga2 and random when the space gives none. */
export const DEFAULT_POPULATION = 16;

/** Hooks that deduplicate by recipe hash: genomes decoding to the same config count as one. */
export function recipeKeyHooks(schema: GenomeSchema): OptimizerHooks {
  return { keyOf: (g) => genomeRecipeHash(schema, g) };
}

/**
 * The optimizer a space asks for (space.optimizer), over the schema's genes. `rng` is owned by
 * the optimizer from now on (its state is saved with it): pass `new RngStreams(space.optimizer.seed)`
 * or a child of the run's streams. `initial` genomes (e.g. encodeConfig of a known recipe) are
 * asked first; for cmaes the first one is the initial mean. `hooks` default to recipeKeyHooks(schema).
 */
export function createOptimizer(schema: GenomeSchema, rng: RngStreams, options?: { readonly hooks?: OptimizerHooks; readonly initial?: readonly Genome[] }): Optimizer {
  const space = schema.space;
  const c = space.optimizer;
  const weights = space.objectives.map((o) => o.weight);
  const hooks = options?.hooks ?? recipeKeyHooks(schema);
  const initial = options?.initial ?? [];
  const population = c.population ?? DEFAULT_POPULATION;
  const variation = {
    crossoverRate: c.crossoverRate,
    mutationRate: c.mutationRate,
    categoricalMutationRate: c.categoricalMutationRate,
    sbxEta: c.sbxEta,
    mutationEta: c.mutationEta,
  };
  switch (c.kind) {
    case 'ga':
      return new GaOptimizer(schema.shape, { population, elitism: c.elitism, tournamentSize: c.tournamentSize, ...variation, objectiveWeights: weights, initial }, rng, hooks);
    case 'nsga2':
      return new Nsga2Optimizer(schema.shape, { population, ...variation, objectiveWeights: weights, initial }, rng, hooks);
    case 'random':
      return new RandomSearch(schema.shape, { population, objectiveWeights: weights, initial }, rng, hooks);
    case 'cmaes': {
      const methods = space.genome.methods;
      const method = Math.max(0, methods.indexOf(c.method ?? methods[0] ?? 'linear'));
      const frozenCategorical = schema.categorical.map((g) => (g.role === 'method' ? method : 0));
      return new CmaesOptimizer(
        schema.shape,
        { lambda: c.population, sigma0: c.sigma0, mean0: initial[0]?.continuous ?? null, frozenCategorical, objectiveWeights: weights },
        rng,
      );
    }
    default: {
      const never: never = c.kind;
      return never;
    }
  }
}

/** Restores any optimizer from its saved state (pass the same hooks it was created with). */
export function optimizerFromState(state: OptimizerState, hooks?: OptimizerHooks): Optimizer {
  switch (state.kind) {
    case 'ga':
      return GaOptimizer.fromState(state, hooks);
    case 'nsga2':
      return Nsga2Optimizer.fromState(state, hooks);
    case 'cmaes':
      return CmaesOptimizer.fromState(state);
    case 'random':
      return RandomSearch.fromState(state, hooks);
    default: {
      const never: never = state;
      return never;
    }
  }
}
