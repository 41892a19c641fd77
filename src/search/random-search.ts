import type { Genome, GenomeShape } from './genome-vector.js';
import { assertPopulationSize, assertRestorable, keyFunction, toldMembers, type Evaluated, type Member, type Optimizer, type OptimizerHooks, type StateHeader } from './optimizer.js';
import { RngStreams } from './rng.js';
import { askRandom, SeenGenomes, type SeenState } from './unseen-asks.js';

/**
 * The control: uniformly random genomes, never the same key twice. Any search that does not beat
 * it at equal evaluations has learned nothing.
 */

export interface RandomOptions {
  /** Genomes per generation (nextBatchSize). */
  readonly population: number;
  /** Scalarization weights for `best()`; null: 1 each. */
  readonly objectiveWeights: readonly number[] | null;
  /** Genomes asked first. Default: []. */
  readonly initial?: readonly Genome[];
}

export interface RandomState extends StateHeader, SeenState {
  readonly kind: 'random';
  readonly options: RandomOptions;
  readonly best: Member | null;
}

export class RandomSearch implements Optimizer {
  readonly kind = 'random' as const;
  readonly #shape: GenomeShape;
  readonly #opts: RandomOptions;
  readonly #rng: RngStreams;
  readonly #seen: SeenGenomes;
  #best: Member | null = null;
  #evaluations = 0;

  constructor(shape: GenomeShape, options: RandomOptions, rng: RngStreams, hooks?: OptimizerHooks) {
    assertPopulationSize(options.population, 1, 'random');
    this.#seen = new SeenGenomes(shape, keyFunction(hooks), options.initial ?? [], 'random');
    this.#shape = shape;
    this.#opts = options;
    this.#rng = rng;
  }

  static fromState(state: RandomState, hooks?: OptimizerHooks): RandomSearch {
    assertRestorable(state, 'random');
    const o = new RandomSearch(state.shape, { ...state.options, initial: [] }, RngStreams.fromState(state.rng), hooks);
    o.#seen.restore(state);
    o.#best = state.best;
    o.#evaluations = state.evaluations;
    return o;
  }

  nextBatchSize(): number {
    return this.#opts.population;
  }

  /** Best member told so far, by scalar fitness. */
  best(): Member | null {
    return this.#best;
  }

  ask(n: number): Genome[] {
    return askRandom(n, this.#seen, this.#shape, this.#rng);
  }

  tell(results: readonly Evaluated[]): void {
    for (const m of toldMembers(results, this.#shape, this.#best, this.#opts.objectiveWeights, 'random')) {
      this.#seen.addKey(this.#seen.keyOf(m.genome));
      if (!this.#best || m.fitness > this.#best.fitness) this.#best = m;
    }
    this.#evaluations += results.length;
  }

  saveState(): RandomState {
    return {
      kind: 'random',
      version: 1,
      shape: this.#shape,
      rng: this.#rng.saveState(),
      evaluations: this.#evaluations,
      options: { ...this.#opts, initial: [] },
      ...this.#seen.saveState(),
      best: this.#best,
    };
  }
}
