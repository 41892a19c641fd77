import type { Genome, GenomeShape } from './genome-vector.js';
import { assertPopulationSize, assertRestorable, byFitness, keyFunction, toldMembers, type Evaluated, type Member, type Optimizer, type OptimizerHooks, type StateHeader } from './optimizer.js';
import { RngStreams } from './rng.js';
import { askBred, SeenGenomes, type SeenState } from './unseen-asks.js';
import { resolveVariation, type VariationOptions, type VariationSettings } from './variation.js';

/**
 * A generational genetic algorithm on a scalar fitness (Σ weight·objective): tournament
 * selection, SBX + polynomial mutation on continuous genes, uniform crossover + resampling on
 * categorical ones, elitism, and duplicate elimination by key (the recipe hash when the runner
 * passes one), so no candidate is asked twice.
 *
 * A generation: ask(nextBatchSize()) children, evaluate, tell. The next population is the
 * `elitism` best of the previous one plus everything told, truncated to `population` by fitness.
 */

export interface GaOptions extends VariationSettings {
  /** Population size. */
  readonly population: number;
  /** Best members carried into the next population unchanged (they are not re-evaluated). */
  readonly elitism: number;
  /** Contestants per tournament (drawn with replacement). */
  readonly tournamentSize: number;
  /** Scalarization weights of the objectives; null: 1 each. */
  readonly objectiveWeights: readonly number[] | null;
  /** Genomes asked first, before random ones (e.g. an encoded known-good recipe). Default: []. */
  readonly initial?: readonly Genome[];
}

export interface GaState extends StateHeader, SeenState {
  readonly kind: 'ga';
  readonly options: GaOptions;
  readonly population: readonly Member[];
  readonly generation: number;
}

export class GaOptimizer implements Optimizer {
  readonly kind = 'ga' as const;
  readonly #shape: GenomeShape;
  readonly #opts: GaOptions;
  readonly #rng: RngStreams;
  readonly #seen: SeenGenomes;
  readonly #variation: VariationOptions;
  #population: Member[];
  #generation: number;
  #evaluations: number;

  constructor(shape: GenomeShape, options: GaOptions, rng: RngStreams, hooks?: OptimizerHooks) {
    assertPopulationSize(options.population, 2, 'ga');
    if (!Number.isInteger(options.elitism) || options.elitism < 0 || options.elitism >= options.population) {
      throw new RangeError(`ga: elitism must be an integer in [0, population), got ${options.elitism}`);
    }
    if (!Number.isInteger(options.tournamentSize) || options.tournamentSize < 1) throw new RangeError(`ga: tournamentSize must be a positive integer, got ${options.tournamentSize}`);
    this.#seen = new SeenGenomes(shape, keyFunction(hooks), options.initial ?? [], 'ga');
    this.#shape = shape;
    this.#opts = options;
    this.#rng = rng;
    this.#variation = resolveVariation(options, shape);
    this.#population = [];
    this.#generation = 0;
    this.#evaluations = 0;
  }

  static fromState(state: GaState, hooks?: OptimizerHooks): GaOptimizer {
    assertRestorable(state, 'ga');
    const o = new GaOptimizer(state.shape, { ...state.options, initial: [] }, RngStreams.fromState(state.rng), hooks);
    o.#population = state.population.map((m) => ({ ...m }));
    o.#seen.restore(state);
    o.#generation = state.generation;
    o.#evaluations = state.evaluations;
    return o;
  }

  /** The current population, best first. */
  population(): readonly Member[] {
    return this.#population;
  }

  nextBatchSize(): number {
    return this.#population.length === 0 ? this.#opts.population : this.#opts.population - this.#opts.elitism;
  }

  ask(n: number): Genome[] {
    return askBred(n, this.#seen, this.#shape, this.#variation, this.#rng, { populationSize: this.#population.length, tournament: () => this.#tournament() });
  }

  #tournament(): Genome {
    const rng = this.#rng.stream('selection');
    let best: Member | undefined;
    for (let i = 0; i < this.#opts.tournamentSize; i++) {
      const m = this.#population[rng.int(this.#population.length)];
      if (m && (!best || m.fitness > best.fitness)) best = m;
    }
    if (!best) throw new RangeError('ga: tournament on an empty population');
    return best.genome;
  }

  tell(results: readonly Evaluated[]): void {
    if (results.length === 0) return;
    const told = toldMembers(results, this.#shape, this.#population[0], this.#opts.objectiveWeights, 'ga');
    // Keys can be recipe hashes (a decode and a SHA-256 each): compute each once.
    const toldKeys = told.map((m) => this.#seen.keyOf(m.genome));
    for (const k of toldKeys) this.#seen.addKey(k);
    const elites = this.#population.slice(0, this.#opts.elitism);
    const eliteKeys = new Set(elites.map((m) => this.#seen.keyOf(m.genome)));
    const fresh = told.filter((_, i) => !eliteKeys.has(toldKeys[i] ?? ''));
    this.#population = byFitness([...elites, ...fresh]).slice(0, this.#opts.population);
    this.#generation++;
    this.#evaluations += results.length;
  }

  saveState(): GaState {
    return {
      kind: 'ga',
      version: 1,
      shape: this.#shape,
      rng: this.#rng.saveState(),
      evaluations: this.#evaluations,
      options: { ...this.#opts, initial: [] },
      population: this.#population,
      ...this.#seen.saveState(),
      generation: this.#generation,
    };
  }
}
