import type { Genome, GenomeShape } from './genome-vector.js';
import { assertPopulationSize, assertRestorable, keyFunction, toldMembers, type Evaluated, type Member, type Optimizer, type OptimizerHooks, type StateHeader } from './optimizer.js';
import { crowdingDistance, nonDominatedSort } from './pareto.js';
import { RngStreams } from './rng.js';
import { askBred, SeenGenomes, type SeenState } from './unseen-asks.js';
import { resolveVariation, type VariationOptions, type VariationSettings } from './variation.js';

/**
 * NSGA-II (Deb et al. 2002) for two or more maximized objectives: children are bred from binary
 * tournaments on (rank, crowding distance); the next population is the best `population` of
 * parents ∪ children by non-dominated front, the last front cut by crowding distance. Rank and
 * crowding are recomputed on the surviving population, so a restored state selects exactly as
 * the original would.
 */

export interface Nsga2Options extends VariationSettings {
  readonly population: number;
  /** Weights for each member's scalar `fitness` (reports only; selection ignores it). Null: 1 each. */
  readonly objectiveWeights: readonly number[] | null;
  /** Genomes asked first, before random ones. Default: []. */
  readonly initial?: readonly Genome[];
}

export interface Nsga2State extends StateHeader, SeenState {
  readonly kind: 'nsga2';
  readonly options: Nsga2Options;
  readonly population: readonly Member[];
  readonly generation: number;
}

export class Nsga2Optimizer implements Optimizer {
  readonly kind = 'nsga2' as const;
  readonly #shape: GenomeShape;
  readonly #opts: Nsga2Options;
  readonly #rng: RngStreams;
  readonly #seen: SeenGenomes;
  readonly #variation: VariationOptions;
  #population: Member[] = [];
  /** Keys of #population, aligned with it. */
  #popKeys: string[] = [];
  #rank: number[] = [];
  #crowding: number[] = [];
  #generation = 0;
  #evaluations = 0;

  constructor(shape: GenomeShape, options: Nsga2Options, rng: RngStreams, hooks?: OptimizerHooks) {
    assertPopulationSize(options.population, 2, 'nsga2');
    this.#seen = new SeenGenomes(shape, keyFunction(hooks), options.initial ?? [], 'nsga2');
    this.#shape = shape;
    this.#opts = options;
    this.#rng = rng;
    this.#variation = resolveVariation(options, shape);
  }

  static fromState(state: Nsga2State, hooks?: OptimizerHooks): Nsga2Optimizer {
    assertRestorable(state, 'nsga2');
    const o = new Nsga2Optimizer(state.shape, { ...state.options, initial: [] }, RngStreams.fromState(state.rng), hooks);
    const population = state.population.map((m) => ({ ...m }));
    o.#setPopulation(population, population.map((m) => o.#seen.keyOf(m.genome)));
    o.#seen.restore(state);
    o.#generation = state.generation;
    o.#evaluations = state.evaluations;
    return o;
  }

  /** The current population's non-dominated members (rank 0). */
  front(): readonly Member[] {
    return this.#population.filter((_, i) => this.#rank[i] === 0);
  }

  /** The current population with each member's front rank (0 = best) and crowding distance. */
  population(): readonly { readonly member: Member; readonly rank: number; readonly crowding: number }[] {
    return this.#population.map((member, i) => ({ member, rank: this.#rank[i] ?? 0, crowding: this.#crowding[i] ?? 0 }));
  }

  nextBatchSize(): number {
    return this.#opts.population;
  }

  #setPopulation(members: Member[], keys: string[]): void {
    this.#population = members;
    this.#popKeys = keys;
    const points = members.map((m) => m.objectives);
    this.#rank = new Array<number>(members.length).fill(0);
    this.#crowding = new Array<number>(members.length).fill(0);
    nonDominatedSort(points).forEach((front, r) => {
      const cd = crowdingDistance(points, front);
      front.forEach((i, k) => {
        this.#rank[i] = r;
        this.#crowding[i] = cd[k] ?? 0;
      });
    });
  }

  /** Binary tournament: lower rank wins, then larger crowding distance, then a coin flip. */
  #tournament(): Genome {
    const rng = this.#rng.stream('selection');
    const n = this.#population.length;
    const a = rng.int(n);
    const b = rng.int(n);
    const ra = this.#rank[a] ?? 0;
    const rb = this.#rank[b] ?? 0;
    const ca = this.#crowding[a] ?? 0;
    const cb = this.#crowding[b] ?? 0;
    const coin = rng.next() < 0.5;
    const pick = ra !== rb ? (ra < rb ? a : b) : ca !== cb ? (ca > cb ? a : b) : coin ? a : b;
    const m = this.#population[pick];
    if (!m) throw new RangeError('nsga2: tournament on an empty population');
    return m.genome;
  }

  ask(n: number): Genome[] {
    return askBred(n, this.#seen, this.#shape, this.#variation, this.#rng, { populationSize: this.#population.length, tournament: () => this.#tournament() });
  }

  tell(results: readonly Evaluated[]): void {
    if (results.length === 0) return;
    const told = toldMembers(results, this.#shape, this.#population[0], this.#opts.objectiveWeights, 'nsga2');
    const keys = new Set(this.#popKeys);
    const pool = [...this.#population];
    const poolKeys = [...this.#popKeys];
    for (const m of told) {
      const k = this.#seen.keyOf(m.genome);
      this.#seen.addKey(k);
      if (!keys.has(k)) {
        keys.add(k);
        pool.push(m);
        poolKeys.push(k);
      }
    }
    const points = pool.map((m) => m.objectives);
    const chosen: number[] = [];
    for (const front of nonDominatedSort(points)) {
      const room = this.#opts.population - chosen.length;
      if (room <= 0) break;
      if (front.length <= room) {
        chosen.push(...front);
        continue;
      }
      const cd = crowdingDistance(points, front);
      const order = front.map((i, k) => ({ i, d: cd[k] ?? 0, k })).sort((x, y) => y.d - x.d || x.k - y.k);
      for (const { i } of order.slice(0, room)) chosen.push(i);
    }
    this.#setPopulation(
      chosen.flatMap((i) => (pool[i] ? [pool[i]] : [])),
      chosen.map((i) => poolKeys[i] ?? ''),
    );
    this.#generation++;
    this.#evaluations += results.length;
  }

  saveState(): Nsga2State {
    return {
      kind: 'nsga2',
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
