import { assertFitsShape, genomeKey, type Genome, type GenomeShape } from './genome-vector.js';
import { assertRestorable, byFitness, toldMembers, type Evaluated, type Member, type Optimizer, type StateHeader } from './optimizer.js';
import { RngStreams } from './rng.js';
import { symmetricEigen } from './symmetric-eigen.js';

/**
 * (μ/μ_w, λ)-CMA-ES over the continuous genes (Hansen, "The CMA Evolution Strategy: A Tutorial",
 * 2016): weighted recombination, cumulative step-size adaptation, rank-one and rank-μ covariance
 * updates, and a lazily refreshed eigendecomposition. It is the Sakana / mergekit-evolve
 * baseline: the categorical genes (method per group, slerp partner) are frozen to given values.
 *
 * Bounds: the search runs unconstrained in y ∈ ℝⁿ and a genome's gene is the mirror image of y
 * into [0, 1] (a triangle wave: identity inside, reflected outside), so every sample is valid and
 * the distribution is never distorted inside the box.
 *
 * ask(n) samples n points; tell() updates once with whatever it is given (normally the λ asked),
 * recomputing the recombination weights for that count. Results of genomes it did not ask are
 * used at y = their genes.
 */

export interface CmaesOptions {
  /** Samples per generation; null: 4 + ⌊3 ln n⌋. */
  readonly lambda: number | null;
  /** Initial step size, in gene units (each gene spans [0, 1]). */
  readonly sigma0: number;
  /** Initial mean; null: every gene at 0.5. */
  readonly mean0: readonly number[] | null;
  /** The categorical genes of every genome asked (frozen). */
  readonly frozenCategorical: readonly number[];
  /** Scalarization weights of the objectives; null: 1 each. */
  readonly objectiveWeights: readonly number[] | null;
}

export interface CmaesState extends StateHeader {
  readonly kind: 'cmaes';
  readonly options: CmaesOptions;
  readonly mean: readonly number[];
  readonly sigma: number;
  /** Covariance matrix, row-major n×n. */
  readonly C: readonly number[];
  /** Eigenvectors of C at the last decomposition, as columns, row-major n×n. */
  readonly B: readonly number[];
  /** Square roots of C's eigenvalues at the last decomposition. */
  readonly D: readonly number[];
  readonly pc: readonly number[];
  readonly ps: readonly number[];
  readonly generation: number;
  readonly eigenGeneration: number;
  /** Points asked and not yet told: genome key → y. */
  readonly pending: readonly { readonly key: string; readonly y: readonly number[] }[];
  /** Best member told so far. */
  readonly best: Member | null;
}

/** The mirror image of y in [0, 1]. */
export function mirror01(y: number): number {
  const r = ((y % 2) + 2) % 2;
  return r <= 1 ? r : 2 - r;
}

export function defaultLambda(n: number): number {
  return 4 + Math.floor(3 * Math.log(Math.max(1, n)));
}

interface Strategy {
  readonly mu: number;
  readonly weights: number[];
  readonly mueff: number;
  readonly cs: number;
  readonly ds: number;
  readonly cc: number;
  readonly c1: number;
  readonly cmu: number;
  readonly chiN: number;
}

function strategy(n: number, lambda: number): Strategy {
  const mu = Math.max(1, Math.floor(lambda / 2));
  const raw = Array.from({ length: mu }, (_, i) => Math.log(mu + 0.5) - Math.log(i + 1));
  const sum = raw.reduce((a, b) => a + b, 0);
  const weights = raw.map((w) => w / sum);
  const mueff = 1 / weights.reduce((a, w) => a + w * w, 0);
  const cs = (mueff + 2) / (n + mueff + 5);
  const ds = 1 + 2 * Math.max(0, Math.sqrt((mueff - 1) / (n + 1)) - 1) + cs;
  const cc = (4 + mueff / n) / (n + 4 + (2 * mueff) / n);
  const c1 = 2 / ((n + 1.3) ** 2 + mueff);
  const cmu = Math.min(1 - c1, (2 * (mueff - 2 + 1 / mueff)) / ((n + 2) ** 2 + mueff));
  const chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
  return { mu, weights, mueff, cs, ds, cc, c1, cmu, chiN };
}

export class CmaesOptimizer implements Optimizer {
  readonly kind = 'cmaes' as const;
  readonly #shape: GenomeShape;
  readonly #opts: CmaesOptions;
  readonly #rng: RngStreams;
  readonly #n: number;
  readonly #lambda: number;
  #mean: number[];
  #sigma: number;
  #C: Float64Array;
  #B: Float64Array;
  #D: Float64Array;
  #pc: Float64Array;
  #ps: Float64Array;
  #generation = 0;
  #eigenGeneration = 0;
  #evaluations = 0;
  readonly #pending = new Map<string, number[]>();
  #best: Member | null = null;

  constructor(shape: GenomeShape, options: CmaesOptions, rng: RngStreams) {
    const n = shape.continuous;
    if (n < 1) throw new RangeError('cmaes: the genome has no continuous genes to search');
    if (!(options.sigma0 > 0)) throw new RangeError(`cmaes: sigma0 must be > 0, got ${options.sigma0}`);
    if (options.mean0 && options.mean0.length !== n) throw new RangeError(`cmaes: mean0 must have ${n} values, got ${options.mean0.length}`);
    assertFitsShape({ continuous: new Array<number>(n).fill(0), categorical: options.frozenCategorical }, shape, 'cmaes: frozenCategorical');
    this.#shape = shape;
    this.#opts = options;
    this.#rng = rng;
    this.#n = n;
    this.#lambda = options.lambda ?? defaultLambda(n);
    if (!Number.isInteger(this.#lambda) || this.#lambda < 2) throw new RangeError(`cmaes: lambda must be an integer ≥ 2, got ${this.#lambda}`);
    this.#mean = options.mean0 ? [...options.mean0] : new Array<number>(n).fill(0.5);
    this.#sigma = options.sigma0;
    this.#C = identity(n);
    this.#B = identity(n);
    this.#D = new Float64Array(n).fill(1);
    this.#pc = new Float64Array(n);
    this.#ps = new Float64Array(n);
  }

  static fromState(state: CmaesState): CmaesOptimizer {
    assertRestorable(state, 'cmaes');
    const o = new CmaesOptimizer(state.shape, state.options, RngStreams.fromState(state.rng));
    const n = o.#n;
    const check = (a: readonly number[], len: number, what: string): Float64Array => {
      if (a.length !== len) throw new RangeError(`cmaes: state ${what} must have ${len} values, got ${a.length}`);
      return Float64Array.from(a);
    };
    o.#mean = [...check(state.mean, n, 'mean')];
    o.#sigma = state.sigma;
    o.#C = check(state.C, n * n, 'C');
    o.#B = check(state.B, n * n, 'B');
    o.#D = check(state.D, n, 'D');
    o.#pc = check(state.pc, n, 'pc');
    o.#ps = check(state.ps, n, 'ps');
    o.#generation = state.generation;
    o.#eigenGeneration = state.eigenGeneration;
    o.#evaluations = state.evaluations;
    for (const p of state.pending) o.#pending.set(p.key, [...p.y]);
    o.#best = state.best;
    return o;
  }

  nextBatchSize(): number {
    return this.#lambda;
  }

  /** Current step size and mean (in y space); for tests and reports. */
  distribution(): { readonly sigma: number; readonly mean: readonly number[] } {
    return { sigma: this.#sigma, mean: this.#mean };
  }

  /** Best member told so far, by scalar fitness. */
  best(): Member | null {
    return this.#best;
  }

  ask(n: number): Genome[] {
    const rng = this.#rng.stream('sample');
    const dim = this.#n;
    const out: Genome[] = [];
    for (let k = 0; k < n; k++) {
      const z = Array.from({ length: dim }, () => rng.normal());
      const y = new Array<number>(dim);
      for (let i = 0; i < dim; i++) {
        let s = 0;
        for (let j = 0; j < dim; j++) s += (this.#B[i * dim + j] ?? 0) * (this.#D[j] ?? 0) * (z[j] ?? 0);
        y[i] = (this.#mean[i] ?? 0) + this.#sigma * s;
      }
      const g: Genome = { continuous: y.map(mirror01), categorical: [...this.#opts.frozenCategorical] };
      this.#pending.set(genomeKey(g), y);
      out.push(g);
    }
    return out;
  }

  tell(results: readonly Evaluated[]): void {
    if (results.length === 0) return;
    const n = this.#n;
    const members = toldMembers(results, this.#shape, this.#best, this.#opts.objectiveWeights, 'cmaes');
    const ys = new Map(members.map((m) => [m, this.#pending.get(genomeKey(m.genome)) ?? [...m.genome.continuous]]));
    this.#pending.clear();
    const ranked = byFitness(members);
    const top = ranked[0];
    if (top && (!this.#best || top.fitness > this.#best.fitness)) this.#best = top;
    this.#evaluations += results.length;
    this.#generation++;
    if (ranked.length < 2) return;

    const s = strategy(n, ranked.length);
    const old = [...this.#mean];
    // Steps of the μ best, in units of sigma.
    const steps = ranked.slice(0, s.mu).map((m) => (ys.get(m) ?? []).map((v, i) => (v - (old[i] ?? 0)) / this.#sigma));
    const yw = new Float64Array(n);
    steps.forEach((st, k) => {
      const w = s.weights[k] ?? 0;
      for (let i = 0; i < n; i++) yw[i] = (yw[i] ?? 0) + w * (st[i] ?? 0);
    });
    for (let i = 0; i < n; i++) this.#mean[i] = (old[i] ?? 0) + this.#sigma * (yw[i] ?? 0);

    // ps ← (1−cs)·ps + √(cs(2−cs)μeff)·C^{-1/2}·yw, with C^{-1/2} = B·D⁻¹·Bᵀ.
    const bty = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let i = 0; i < n; i++) v += (this.#B[i * n + j] ?? 0) * (yw[i] ?? 0);
      bty[j] = v / (this.#D[j] ?? 1);
    }
    const csn = Math.sqrt(s.cs * (2 - s.cs) * s.mueff);
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (let j = 0; j < n; j++) v += (this.#B[i * n + j] ?? 0) * (bty[j] ?? 0);
      this.#ps[i] = (1 - s.cs) * (this.#ps[i] ?? 0) + csn * v;
    }
    const psNorm = Math.hypot(...this.#ps);
    const hsig = psNorm / Math.sqrt(1 - (1 - s.cs) ** (2 * this.#generation)) < (1.4 + 2 / (n + 1)) * s.chiN ? 1 : 0;
    const ccn = Math.sqrt(s.cc * (2 - s.cc) * s.mueff);
    for (let i = 0; i < n; i++) this.#pc[i] = (1 - s.cc) * (this.#pc[i] ?? 0) + hsig * ccn * (yw[i] ?? 0);

    // C ← (1 − c1 − cμ + (1−hσ)c1cc(2−cc))·C + c1·pc·pcᵀ + cμ·Σ wₖ yₖyₖᵀ (Σ wₖ = 1).
    const decay = 1 - s.c1 - s.cmu + (1 - hsig) * s.c1 * s.cc * (2 - s.cc);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let rankMu = 0;
        steps.forEach((st, k) => {
          rankMu += (s.weights[k] ?? 0) * (st[i] ?? 0) * (st[j] ?? 0);
        });
        const v = decay * (this.#C[i * n + j] ?? 0) + s.c1 * (this.#pc[i] ?? 0) * (this.#pc[j] ?? 0) + s.cmu * rankMu;
        this.#C[i * n + j] = v;
        this.#C[j * n + i] = v;
      }
    }
    this.#sigma *= Math.exp((s.cs / s.ds) * (psNorm / s.chiN - 1));

    // Refresh B and D once per 1/((c1+cμ)·n·10) generations (Hansen's tutorial counts the same
    // in evaluations): the O(n³) decomposition then costs less than the O(n²) sampling.
    if (this.#generation - this.#eigenGeneration > 1 / (s.c1 + s.cmu) / n / 10) {
      this.#eigenGeneration = this.#generation;
      const { values, vectors } = symmetricEigen(this.#C, n);
      this.#B = vectors;
      this.#D = values.map((v) => Math.sqrt(Math.max(v, 1e-300)));
    }
  }

  saveState(): CmaesState {
    return {
      kind: 'cmaes',
      version: 1,
      shape: this.#shape,
      rng: this.#rng.saveState(),
      evaluations: this.#evaluations,
      options: this.#opts,
      mean: [...this.#mean],
      sigma: this.#sigma,
      C: [...this.#C],
      B: [...this.#B],
      D: [...this.#D],
      pc: [...this.#pc],
      ps: [...this.#ps],
      generation: this.#generation,
      eigenGeneration: this.#eigenGeneration,
      pending: [...this.#pending].map(([key, y]) => ({ key, y })),
      best: this.#best,
    };
  }
}

function identity(n: number): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) m[i * n + i] = 1;
  return m;
}
