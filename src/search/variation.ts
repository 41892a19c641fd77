import { clamp01, type Genome, type GenomeShape } from './genome-vector.js';
import type { Rng } from './rng.js';

/**
 * Crossover and mutation suited to each gene kind, shared by ga.ts and nsga2.ts. Continuous genes
 * live in [0, 1]: simulated binary crossover (SBX) and polynomial mutation in their bounded forms
 * (Deb & Agrawal 1995; Deb & Goyal 1996), so children never leave the box. Categorical genes:
 * uniform crossover and resampling to a different choice.
 */

export interface VariationOptions {
  /** Probability that a pair of parents is crossed at all. */
  readonly crossoverRate: number;
  /** Per-gene mutation probability of continuous genes. */
  readonly mutationRate: number;
  /** Per-gene resampling probability of categorical genes. */
  readonly categoricalMutationRate: number;
  /** SBX distribution index. */
  readonly sbxEta: number;
  /** Polynomial mutation distribution index. */
  readonly mutationEta: number;
}

/** Variation as ga and nsga2 take it in their options: null rates mean defaultRates(shape). */
export interface VariationSettings {
  readonly crossoverRate: number;
  /** Per-gene mutation probability of continuous genes; null: 1 / (continuous genes). */
  readonly mutationRate: number | null;
  /** Per-gene resampling probability of categorical genes; null: 1 / (categorical genes). */
  readonly categoricalMutationRate: number | null;
  readonly sbxEta: number;
  readonly mutationEta: number;
}

/** The settings with their null rates filled from the shape. */
export function resolveVariation(settings: VariationSettings, shape: GenomeShape): VariationOptions {
  const rates = defaultRates(shape);
  return {
    crossoverRate: settings.crossoverRate,
    mutationRate: settings.mutationRate ?? rates.mutationRate,
    categoricalMutationRate: settings.categoricalMutationRate ?? rates.categoricalMutationRate,
    sbxEta: settings.sbxEta,
    mutationEta: settings.mutationEta,
  };
}

/** Default per-gene rates: one mutated gene per genome on average, for each kind. */
export function defaultRates(shape: GenomeShape): { mutationRate: number; categoricalMutationRate: number } {
  return {
    mutationRate: shape.continuous > 0 ? 1 / shape.continuous : 0,
    categoricalMutationRate: shape.categorical.length > 0 ? 1 / shape.categorical.length : 0,
  };
}

function sbxSpread(u: number, beta: number, eta: number): number {
  const alpha = 2 - beta ** -(eta + 1);
  return u <= 1 / alpha ? (u * alpha) ** (1 / (eta + 1)) : (1 / (2 - u * alpha)) ** (1 / (eta + 1));
}

/** Bounded SBX of one gene pair in [0, 1]. */
export function sbxPair(a: number, b: number, eta: number, rng: Rng): [number, number] {
  if (Math.abs(a - b) < 1e-14) return [a, b];
  const y1 = Math.min(a, b);
  const y2 = Math.max(a, b);
  const u = rng.next();
  const c1 = 0.5 * (y1 + y2 - sbxSpread(u, 1 + (2 * y1) / (y2 - y1), eta) * (y2 - y1));
  const c2 = 0.5 * (y1 + y2 + sbxSpread(u, 1 + (2 * (1 - y2)) / (y2 - y1), eta) * (y2 - y1));
  const lo = clamp01(c1);
  const hi = clamp01(c2);
  return rng.next() < 0.5 ? [hi, lo] : [lo, hi];
}

/** Bounded polynomial mutation of one gene in [0, 1]. */
export function polynomialMutation(x: number, eta: number, rng: Rng): number {
  const u = rng.next();
  const mp = 1 / (eta + 1);
  let dq: number;
  if (u < 0.5) {
    const val = 2 * u + (1 - 2 * u) * (1 - x) ** (eta + 1);
    dq = val ** mp - 1;
  } else {
    const val = 2 * (1 - u) + 2 * (u - 0.5) * x ** (eta + 1);
    dq = 1 - val ** mp;
  }
  return clamp01(x + dq);
}

/** Two children of two parents: crossover (with probability crossoverRate) then mutation. */
export function breed(p1: Genome, p2: Genome, shape: GenomeShape, opts: VariationOptions, rng: Rng): [Genome, Genome] {
  const a = [...p1.continuous];
  const b = [...p2.continuous];
  const ca = [...p1.categorical];
  const cb = [...p2.categorical];
  if (rng.next() < opts.crossoverRate) {
    for (let i = 0; i < a.length; i++) {
      if (rng.next() < 0.5) {
        const [x, y] = sbxPair(a[i] ?? 0, b[i] ?? 0, opts.sbxEta, rng);
        a[i] = x;
        b[i] = y;
      }
    }
    for (let i = 0; i < ca.length; i++) {
      if (rng.next() < 0.5) {
        const t = ca[i] ?? 0;
        ca[i] = cb[i] ?? 0;
        cb[i] = t;
      }
    }
  }
  return [mutate({ continuous: a, categorical: ca }, shape, opts, rng), mutate({ continuous: b, categorical: cb }, shape, opts, rng)];
}

/** Mutates each gene with its kind's probability; `force` mutates one random gene at least. */
export function mutate(g: Genome, shape: GenomeShape, opts: VariationOptions, rng: Rng, force = false): Genome {
  const continuous = [...g.continuous];
  const categorical = [...g.categorical];
  let changed = false;
  for (let i = 0; i < continuous.length; i++) {
    if (rng.next() < opts.mutationRate) {
      continuous[i] = polynomialMutation(continuous[i] ?? 0, opts.mutationEta, rng);
      changed = true;
    }
  }
  for (let i = 0; i < categorical.length; i++) {
    const n = shape.categorical[i] ?? 1;
    if (n > 1 && rng.next() < opts.categoricalMutationRate) {
      categorical[i] = resample(categorical[i] ?? 0, n, rng);
      changed = true;
    }
  }
  if (force && !changed) {
    const total = continuous.length + categorical.length;
    if (total > 0) {
      const i = rng.int(total);
      if (i < continuous.length) continuous[i] = polynomialMutation(continuous[i] ?? 0, opts.mutationEta, rng);
      else {
        const j = i - continuous.length;
        categorical[j] = resample(categorical[j] ?? 0, shape.categorical[j] ?? 1, rng);
      }
    }
  }
  return { continuous, categorical };
}

/** A choice other than `current` (when there is one). */
function resample(current: number, n: number, rng: Rng): number {
  if (n <= 1) return current;
  const k = rng.int(n - 1);
  return k >= current ? k + 1 : k;
}
