import { assertFitsShape, randomGenome, type Genome, type GenomeShape } from './genome-vector.js';
import { byFitness, keyFunction, toMember, type Evaluated, type Member, type Optimizer, type OptimizerHooks, type StateHeader } from './optimizer.js';
import { RngStreams } from './rng.js';
import { breed, defaultRates, mutate, type VariationOptions } from './variation.js';

/**
 * A generational genetic algorithm on a scalar fitness (Σ weight·objective): tournament
 * selection, SBX + polynomial mutation on continuous genes, uniform crossover + resampling on
 * categorical ones, elitism, and duplicate elimination by key (the recipe hash when the runner
 * passes one), so no candidate is asked twice.
 *
 * A generation: ask(nextBatchSize()) children, evaluate, tell. The next population is the
 * `elitism` best of the previous one plus everything told, truncated to `population` by fitness.
 */

export interface GaOptions {
  /** Population size. */
  readonly population: number;
  /** Best members carried into the next population unchanged (they are not re-evaluated). */
  readonly elitism: number;
  /** Contestants per tournament (drawn with replacement). */
  readonly tournamentSize: number;
  readonly crossoverRate: number;
  /** Per-gene mutation probability of continuous genes; null: 1 / (continuous genes). */
  readonly mutationRate: number | null;
  /** Per-gene resampling probability of categorical genes; null: 1 / (categorical genes). */
  readonly categoricalMutationRate: number | null;
  readonly sbxEta: number;
  readonly mutationEta: number;
  /** Scalarization weights of the objectives; null: 1 each. */
  readonly objectiveWeights: readonly number[] | null;
  /** Genomes asked first, before random ones (e.g. an encoded known-good recipe). Default: []. */
  readonly initial?: readonly Genome[];
}

export interface GaState extends StateHeader {
  readonly kind: 'ga';
  readonly options: GaOptions;
  readonly population: readonly Member[];
  /** Keys of every genome asked or told. */
  readonly seen: readonly string[];
  /** Initial genomes not asked yet. */
  readonly initialQueue: readonly Genome[];
  readonly generation: number;
}

/** Attempts at finding an unseen child before falling back to a random genome. */
const MAX_TRIES = 50;

export class GaOptimizer implements Optimizer {
  readonly kind = 'ga' as const;
  readonly #shape: GenomeShape;
  readonly #opts: GaOptions;
  readonly #rng: RngStreams;
  readonly #keyOf: (g: Genome) => string;
  readonly #variation: VariationOptions;
  #population: Member[];
  readonly #seen: Set<string>;
  #initialQueue: Genome[];
  #generation: number;
  #evaluations: number;

  constructor(shape: GenomeShape, options: GaOptions, rng: RngStreams, hooks?: OptimizerHooks) {
    if (!Number.isInteger(options.population) || options.population < 2) throw new RangeError(`ga: population must be an integer ≥ 2, got ${options.population}`);
    if (!Number.isInteger(options.elitism) || options.elitism < 0 || options.elitism >= options.population) {
      throw new RangeError(`ga: elitism must be an integer in [0, population), got ${options.elitism}`);
    }
    if (!Number.isInteger(options.tournamentSize) || options.tournamentSize < 1) throw new RangeError(`ga: tournamentSize must be a positive integer, got ${options.tournamentSize}`);
    for (const g of options.initial ?? []) assertFitsShape(g, shape, 'ga: initial genome');
    this.#shape = shape;
    this.#opts = options;
    this.#rng = rng;
    this.#keyOf = keyFunction(hooks);
    const rates = defaultRates(shape);
    this.#variation = {
      crossoverRate: options.crossoverRate,
      mutationRate: options.mutationRate ?? rates.mutationRate,
      categoricalMutationRate: options.categoricalMutationRate ?? rates.categoricalMutationRate,
      sbxEta: options.sbxEta,
      mutationEta: options.mutationEta,
    };
    this.#population = [];
    this.#seen = new Set();
    this.#initialQueue = [...(options.initial ?? [])];
    this.#generation = 0;
    this.#evaluations = 0;
  }

  static fromState(state: GaState, hooks?: OptimizerHooks): GaOptimizer {
    if (state.kind !== 'ga' || state.version !== 1) throw new RangeError(`ga: cannot restore a ${state.kind} state of version ${state.version}`);
    const o = new GaOptimizer(state.shape, { ...state.options, initial: [] }, RngStreams.fromState(state.rng), hooks);
    o.#population = state.population.map((m) => ({ ...m }));
    for (const k of state.seen) o.#seen.add(k);
    o.#initialQueue = [...state.initialQueue];
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
    const out: Genome[] = [];
    const init = this.#rng.stream('init');
    const vary = this.#rng.stream('variation');
    const take = (g: Genome): boolean => {
      const k = this.#keyOf(g);
      if (this.#seen.has(k)) return false;
      this.#seen.add(k);
      out.push(g);
      return true;
    };
    while (out.length < n && this.#initialQueue.length > 0) {
      const g = this.#initialQueue.shift();
      if (g) take(g);
    }
    let misses = 0;
    while (out.length < n && misses < MAX_TRIES) {
      if (this.#population.length === 0) {
        if (!take(randomGenome(this.#shape, init))) misses++;
        continue;
      }
      const [c1, c2] = breed(this.#tournament(), this.#tournament(), this.#shape, this.#variation, vary);
      for (const child of [c1, c2]) {
        if (out.length >= n) break;
        let g = child;
        let tries = 0;
        while (this.#seen.has(this.#keyOf(g)) && tries < MAX_TRIES) {
          g = mutate(g, this.#shape, this.#variation, vary, true);
          tries++;
        }
        if (!take(g) && !take(randomGenome(this.#shape, vary))) misses++;
      }
    }
    return out;
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
    const objectiveCount = this.#population[0]?.objectives.length ?? results[0]?.objectives.length ?? null;
    const told = results.map((r) => {
      assertFitsShape(r.genome, this.#shape, 'ga: told genome');
      return toMember(r, objectiveCount, this.#opts.objectiveWeights);
    });
    // Keys can be recipe hashes (a decode and a SHA-256 each): compute each once.
    const toldKeys = told.map((m) => this.#keyOf(m.genome));
    for (const k of toldKeys) this.#seen.add(k);
    const elites = this.#population.slice(0, this.#opts.elitism);
    const eliteKeys = new Set(elites.map((m) => this.#keyOf(m.genome)));
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
      seen: [...this.#seen],
      initialQueue: this.#initialQueue,
      generation: this.#generation,
    };
  }
}
