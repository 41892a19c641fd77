import { assertFitsShape, randomGenome, type Genome, type GenomeShape } from './genome-vector.js';
import type { RngStreams } from './rng.js';
import { breed, mutate, type VariationOptions } from './variation.js';

/**
 * The bookkeeping ga, nsga2 and random share so that no genome (or, with a keyOf hook, no recipe)
 * is asked twice: the keys of every genome asked or told, the initial genomes not asked yet, and
 * the ask loop that offers candidates until a batch is full or too many offers were seen already.
 * The order of draws here is part of every saved state: a resumed run must ask what the
 * uninterrupted one would have (tests/search/optimizer-pins.test.ts).
 */

/** Failed offers per ask before it returns short, and re-mutations of a seen child before a random genome stands in. */
const MAX_TRIES = 50;

/** The part of a saved state that SeenGenomes owns. */
export interface SeenState {
  /** Keys of every genome asked or told. */
  readonly seen: readonly string[];
  /** Initial genomes not asked yet. */
  readonly initialQueue: readonly Genome[];
}

export class SeenGenomes {
  readonly keyOf: (g: Genome) => string;
  readonly #seen = new Set<string>();
  #initialQueue: Genome[];

  /** `what` names the optimizer in the error about an initial genome that does not fit `shape`. */
  constructor(shape: GenomeShape, keyOf: (g: Genome) => string, initial: readonly Genome[], what: string) {
    for (const g of initial) assertFitsShape(g, shape, `${what}: initial genome`);
    this.keyOf = keyOf;
    this.#initialQueue = [...initial];
  }

  /** Replaces the keys and the queue with saved ones (fromState). */
  restore(state: SeenState): void {
    this.#seen.clear();
    for (const k of state.seen) this.#seen.add(k);
    this.#initialQueue = [...state.initialQueue];
  }

  has(g: Genome): boolean {
    return this.#seen.has(this.keyOf(g));
  }

  /** Records a key as seen (a told genome whose key the caller computed already). */
  addKey(key: string): void {
    this.#seen.add(key);
  }

  saveState(): SeenState {
    return { seen: [...this.#seen], initialQueue: this.#initialQueue };
  }

  /**
   * Up to `n` unseen genomes: initial ones first, then the offers of `offer`, called again while
   * the batch has room and fewer than MAX_TRIES offers were misses.
   */
  ask(n: number, offer: (batch: AskBatch) => void): Genome[] {
    const batch = new AskBatch(n, this.#seen, this.keyOf);
    while (!batch.full() && this.#initialQueue.length > 0) {
      const g = this.#initialQueue.shift();
      if (g) batch.take(g);
    }
    while (!batch.full() && batch.misses < MAX_TRIES) offer(batch);
    return batch.genomes;
  }
}

/** One ask in progress: the genomes taken so far and the offers that were seen already. */
export class AskBatch {
  readonly genomes: Genome[] = [];
  misses = 0;
  readonly #n: number;
  readonly #seen: Set<string>;
  readonly #keyOf: (g: Genome) => string;

  constructor(n: number, seen: Set<string>, keyOf: (g: Genome) => string) {
    this.#n = n;
    this.#seen = seen;
    this.#keyOf = keyOf;
  }

  full(): boolean {
    return this.genomes.length >= this.#n;
  }

  /** Takes `g` when its key is unseen (and marks it seen); false when it was seen. */
  take(g: Genome): boolean {
    const k = this.#keyOf(g);
    if (this.#seen.has(k)) return false;
    this.#seen.add(k);
    this.genomes.push(g);
    return true;
  }
}

/** random's ask: uniformly random genomes from the `sample` stream. */
export function askRandom(n: number, seen: SeenGenomes, shape: GenomeShape, rng: RngStreams): Genome[] {
  const sample = rng.stream('sample');
  return seen.ask(n, (batch) => {
    if (!batch.take(randomGenome(shape, sample))) batch.misses++;
  });
}

/**
 * ga's and nsga2's ask: random genomes (`init` stream) while the population is empty, then pairs
 * of children of tournament winners; a seen child is mutated again (up to MAX_TRIES times) and,
 * if still seen, replaced by a random genome (`variation` stream).
 */
export function askBred(
  n: number,
  seen: SeenGenomes,
  shape: GenomeShape,
  variation: VariationOptions,
  rng: RngStreams,
  breeding: { readonly populationSize: number; readonly tournament: () => Genome },
): Genome[] {
  const init = rng.stream('init');
  const vary = rng.stream('variation');
  return seen.ask(n, (batch) => {
    if (breeding.populationSize === 0) {
      if (!batch.take(randomGenome(shape, init))) batch.misses++;
      return;
    }
    const [c1, c2] = breed(breeding.tournament(), breeding.tournament(), shape, variation, vary);
    for (const child of [c1, c2]) {
      if (batch.full()) break;
      let g = child;
      let tries = 0;
      while (seen.has(g) && tries < MAX_TRIES) {
        g = mutate(g, shape, variation, vary, true);
        tries++;
      }
      if (!batch.take(g) && !batch.take(randomGenome(shape, vary))) batch.misses++;
    }
  });
}
