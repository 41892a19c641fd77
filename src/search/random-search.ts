import { assertFitsShape, randomGenome, type Genome, type GenomeShape } from './genome-vector.js';
import { keyFunction, toMember, type Evaluated, type Member, type Optimizer, type OptimizerHooks, type StateHeader } from './optimizer.js';
import { RngStreams } from './rng.js';

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

export interface RandomState extends StateHeader {
  readonly kind: 'random';
  readonly options: RandomOptions;
  readonly seen: readonly string[];
  readonly initialQueue: readonly Genome[];
  readonly best: Member | null;
}

const MAX_TRIES = 50;

export class RandomSearch implements Optimizer {
  readonly kind = 'random' as const;
  readonly #shape: GenomeShape;
  readonly #opts: RandomOptions;
  readonly #rng: RngStreams;
  readonly #keyOf: (g: Genome) => string;
  readonly #seen = new Set<string>();
  #initialQueue: Genome[];
  #best: Member | null = null;
  #evaluations = 0;

  constructor(shape: GenomeShape, options: RandomOptions, rng: RngStreams, hooks?: OptimizerHooks) {
    if (!Number.isInteger(options.population) || options.population < 1) throw new RangeError(`random: population must be a positive integer, got ${options.population}`);
    for (const g of options.initial ?? []) assertFitsShape(g, shape, 'random: initial genome');
    this.#shape = shape;
    this.#opts = options;
    this.#rng = rng;
    this.#keyOf = keyFunction(hooks);
    this.#initialQueue = [...(options.initial ?? [])];
  }

  static fromState(state: RandomState, hooks?: OptimizerHooks): RandomSearch {
    if (state.kind !== 'random' || state.version !== 1) throw new RangeError(`random: cannot restore a ${state.kind} state of version ${state.version}`);
    const o = new RandomSearch(state.shape, { ...state.options, initial: [] }, RngStreams.fromState(state.rng), hooks);
    for (const k of state.seen) o.#seen.add(k);
    o.#initialQueue = [...state.initialQueue];
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
    const rng = this.#rng.stream('sample');
    const out: Genome[] = [];
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
    while (out.length < n && misses < MAX_TRIES) if (!take(randomGenome(this.#shape, rng))) misses++;
    return out;
  }

  tell(results: readonly Evaluated[]): void {
    const objectiveCount = this.#best?.objectives.length ?? results[0]?.objectives.length ?? null;
    for (const r of results) {
      assertFitsShape(r.genome, this.#shape, 'random: told genome');
      const m = toMember(r, objectiveCount, this.#opts.objectiveWeights);
      this.#seen.add(this.#keyOf(m.genome));
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
      seen: [...this.#seen],
      initialQueue: this.#initialQueue,
      best: this.#best,
    };
  }
}
