import { assertFitsShape, genomeKey, type Genome, type GenomeShape } from './genome-vector.js';
import type { CmaesState } from './cmaes.js';
import type { GaState } from './ga.js';
import type { Nsga2State } from './nsga2.js';
import type { RandomState } from './random-search.js';
import type { RngState } from './rng.js';

/**
 * The one ask/tell interface every optimizer implements (style.md §6, after optuna's samplers):
 * the runner asks for genomes, evaluates them however it likes (in any order, some perhaps
 * failed), tells the results, and saves the state after each generation. Optimizers MAXIMIZE
 * every objective; the runner negates the ones the user minimizes. Randomness comes only from
 * the RngStreams passed in, and its state is part of saveState(), so
 * `fromState(JSON.parse(JSON.stringify(o.saveState())))` asks exactly what `o` would have.
 */

/** One evaluated genome as told to an optimizer. */
export interface Evaluated {
  readonly genome: Genome;
  /** One value per objective, higher is better. Non-finite values (a failed build or evaluation) count as the worst possible. */
  readonly objectives: readonly number[];
  /** Optional standard errors aligned with `objectives`; recorded in the state (non-finite → Number.MAX_VALUE), not used for selection yet. */
  readonly uncertainty?: readonly number[];
}

export type OptimizerKind = 'ga' | 'nsga2' | 'cmaes' | 'random';

export interface Optimizer {
  readonly kind: OptimizerKind;
  /**
   * Up to `n` new genomes to evaluate. ga, nsga2 and random never return a genome (or, with a
   * keyOf hook, a recipe) they returned or were told before; they return fewer than `n` only when
   * they cannot find new ones (a small, exhausted space).
   */
  ask(n: number): Genome[];
  /**
   * Results of evaluated genomes: call once per generation with every result of that
   * generation's ask (ga replaces its population and cmaes updates its distribution per call).
   * Genomes never asked are accepted too (warm starts).
   */
  tell(results: readonly Evaluated[]): void;
  /** The number of genomes a generation asks for now (population, λ, population − elitism, ...). */
  nextBatchSize(): number;
  /** JSON-serializable state, including the random streams. */
  saveState(): OptimizerState;
}

/** Runtime hooks that cannot live in a saved state; pass the same ones to create and fromState. */
export interface OptimizerHooks {
  /**
   * Identity used for duplicate elimination. Default: the genome vector itself (genomeKey). The
   * runner passes the recipe hash, so genomes that decode to the same config count as one.
   */
  readonly keyOf?: (g: Genome) => string;
}

/** An evaluated genome as optimizers keep it: sanitized objectives and its scalar fitness. */
export interface Member {
  readonly genome: Genome;
  readonly objectives: readonly number[];
  readonly uncertainty?: readonly number[];
  /** Σ weight·objective (ga, cmaes, random); nsga2 keeps it for reports only. */
  readonly fitness: number;
}

/** The worst value, standing in for failed (non-finite) objectives so states stay JSON. */
export const WORST_OBJECTIVE = -Number.MAX_VALUE;

function finiteOrWorst(v: number): number {
  return Number.isFinite(v) ? v : WORST_OBJECTIVE;
}

/** Σ wᵢ·oᵢ over sanitized objectives, saturating at ±Number.MAX_VALUE; weights default to 1 each. */
export function scalarFitness(objectives: readonly number[], weights: readonly number[] | null): number {
  let s = 0;
  objectives.forEach((o, i) => {
    s += (weights?.[i] ?? 1) * finiteOrWorst(o);
  });
  return Number.isFinite(s) ? s : s > 0 ? Number.MAX_VALUE : WORST_OBJECTIVE;
}

/** A told result as a Member; throws RangeError on an objective count mismatch. */
export function toMember(r: Evaluated, objectiveCount: number | null, weights: readonly number[] | null): Member {
  if (objectiveCount !== null && r.objectives.length !== objectiveCount) {
    throw new RangeError(`tell: expected ${objectiveCount} objectives, got ${r.objectives.length}`);
  }
  const objectives = r.objectives.map(finiteOrWorst);
  return {
    genome: { continuous: [...r.genome.continuous], categorical: [...r.genome.categorical] },
    objectives,
    // An unknown (non-finite) standard error is recorded as the largest one, never as certainty.
    ...(r.uncertainty ? { uncertainty: r.uncertainty.map((u) => (Number.isFinite(u) ? u : Number.MAX_VALUE)) } : {}),
    fitness: scalarFitness(objectives, weights),
  };
}

/**
 * Told results as Members, every genome checked against `shape` before any is kept; the objective
 * count is that of `known` (a member kept already) or else of the first result.
 */
export function toldMembers(results: readonly Evaluated[], shape: GenomeShape, known: Member | null | undefined, weights: readonly number[] | null, what: OptimizerKind): Member[] {
  const objectiveCount = known?.objectives.length ?? results[0]?.objectives.length ?? null;
  return results.map((r) => {
    assertFitsShape(r.genome, shape, `${what}: told genome`);
    return toMember(r, objectiveCount, weights);
  });
}

/** Throws RangeError unless the option `population` is an integer ≥ `min`. */
export function assertPopulationSize(population: number, min: 1 | 2, what: OptimizerKind): void {
  if (Number.isInteger(population) && population >= min) return;
  throw new RangeError(`${what}: population must be ${min === 1 ? 'a positive integer' : `an integer ≥ ${min}`}, got ${population}`);
}

/** Throws RangeError unless `state` is a version-1 state of `kind`. */
export function assertRestorable(state: { readonly kind: string; readonly version: number }, kind: OptimizerKind): void {
  if (state.kind !== kind || state.version !== 1) throw new RangeError(`${kind}: cannot restore a ${state.kind} state of version ${state.version}`);
}

/** The key function in force: the hook's, else the genome vector. */
export function keyFunction(hooks: OptimizerHooks | undefined): (g: Genome) => string {
  return hooks?.keyOf ?? genomeKey;
}

/** Fields every saved state has. */
export interface StateHeader {
  readonly version: 1;
  readonly shape: GenomeShape;
  readonly rng: RngState;
  /** Results told so far. */
  readonly evaluations: number;
}

/**
 * Members sorted by fitness, best first; ties keep their order (Array.prototype.sort is stable),
 * so selection never depends on engine details.
 */
export function byFitness(members: readonly Member[]): Member[] {
  return [...members].sort((a, b) => b.fitness - a.fitness);
}

/** The saved state of any optimizer; `kind` tells which fromState restores it. */
export type OptimizerState = GaState | Nsga2State | CmaesState | RandomState;
