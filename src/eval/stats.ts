import { mean, sampleStandardDeviation } from 'simple-statistics';
import { EvoError } from '../errors.js';
import type { ItemResult } from './types.js';

/**
 * Confidence intervals for evaluation scores. Right/wrong items get the Wilson score interval
 * (it stays inside [0, 1] and is honest at 0/n and n/n, where the normal approximation claims
 * zero uncertainty); items with graded scores get the normal interval of their mean.
 */

/** z for a two-sided 95% interval, to full double precision. */
export const Z_95 = 1.959963984540054;

export class StatsError extends EvoError {
  constructor(message: string) {
    super('BAD_STATISTIC', message);
    this.name = 'StatsError';
  }
}

// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
const A = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
const B = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
const C = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];

function poly(coefficients: readonly number[], x: number): number {
  let acc = 0;
  for (const c of coefficients) acc = acc * x + c;
  return acc;
}

/** The standard normal quantile Φ⁻¹(p) for p in (0, 1). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new StatsError(`normal quantile needs p in (0, 1), got ${p}`);
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(C, q) / (poly(D, q) * q + 1);
  }
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -poly(C, q) / (poly(D, q) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return (poly(A, r) * q) / (poly(B, r) * r + 1);
}

/** z of a two-sided interval at `confidence` (e.g. 0.95 → 1.95996…). */
export function zForConfidence(confidence: number): number {
  if (!(confidence > 0 && confidence < 1)) throw new StatsError(`confidence must be in (0, 1), got ${confidence}`);
  if (confidence === 0.95) return Z_95;
  return normalQuantile(1 - (1 - confidence) / 2);
}

/**
 * Wilson score interval of a proportion: successes out of n at the given confidence
 * (default 0.95). n = 0 gives the uninformative [0, 1].
 */
export function wilsonInterval(successes: number, n: number, confidence = 0.95): [number, number] {
  if (!Number.isInteger(n) || n < 0) throw new StatsError(`n must be a non-negative integer, got ${n}`);
  if (!(successes >= 0 && successes <= n)) throw new StatsError(`successes must be in [0, ${n}], got ${successes}`);
  if (n === 0) return [0, 1];
  const z = zForConfidence(confidence);
  const p = successes / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n));
  // Exact at the edges (the formula gives 0 and 1 there up to rounding).
  return [successes === 0 ? 0 : Math.max(0, centre - half), successes === n ? 1 : Math.min(1, centre + half)];
}

/** Standard error of a proportion, √(p(1−p)/n); 0 for n = 0. */
export function proportionStderr(successes: number, n: number): number {
  if (n === 0) return 0;
  const p = successes / n;
  return Math.sqrt((p * (1 - p)) / n);
}

/** Mean of graded scores with its normal-approximation interval (clamped to [lo, hi] bounds). */
export function meanInterval(values: readonly number[], confidence = 0.95, bounds: readonly [number, number] = [0, 1]): { mean: number; stderr: number; ci: [number, number] } {
  if (values.length === 0) return { mean: 0, stderr: 0, ci: [bounds[0], bounds[1]] };
  const m = mean([...values]);
  const se = values.length > 1 ? sampleStandardDeviation([...values]) / Math.sqrt(values.length) : 0;
  const z = zForConfidence(confidence);
  return { mean: m, stderr: se, ci: [Math.max(bounds[0], m - z * se), Math.min(bounds[1], m + z * se)] };
}

/** A score summary: value, standard error, 95% interval and n. */
export interface ScoreSummary {
  readonly score: number;
  readonly stderr: number;
  readonly ci: [number, number];
  readonly n: number;
  /** Right answers, when every item is right/wrong; else null. */
  readonly correct: number | null;
}

/**
 * Summarizes item results: accuracy with a Wilson interval when every item is right/wrong,
 * else the mean score with a normal interval.
 */
export function summarizeItems(items: readonly ItemResult[], confidence = 0.95): ScoreSummary {
  const n = items.length;
  if (items.every((i) => i.correct !== null)) {
    const correct = items.reduce((acc, i) => acc + (i.correct === true ? 1 : 0), 0);
    return { score: n === 0 ? 0 : correct / n, stderr: proportionStderr(correct, n), ci: wilsonInterval(correct, n, confidence), n, correct };
  }
  const m = meanInterval(items.map((i) => i.score), confidence);
  return { score: m.mean, stderr: m.stderr, ci: m.ci, n, correct: null };
}

/**
 * Macro average of group accuracies (each group weighs the same) with a normal interval. Each
 * group's variance is Agresti–Coull's p̃(1−p̃)/ñ (ñ = n + z², p̃ = (k + z²/2)/ñ), not the plug-in
 * p(1−p)/n, which is 0 for a group that is all right or all wrong: with one or two items per
 * subject (small stratified subsets) the plug-in would claim no uncertainty at all.
 * Groups with no items are left out.
 */
export function macroAverage(groups: readonly { readonly correct: number; readonly n: number }[], confidence = 0.95): { score: number; stderr: number; ci: [number, number]; groups: number } {
  const used = groups.filter((g) => g.n > 0);
  if (used.length === 0) return { score: 0, stderr: 0, ci: [0, 1], groups: 0 };
  const z = zForConfidence(confidence);
  const g = used.length;
  const score = used.reduce((acc, x) => acc + x.correct / x.n, 0) / g;
  const variance =
    used.reduce((acc, x) => {
      const nt = x.n + z * z;
      const pt = (x.correct + (z * z) / 2) / nt;
      return acc + (pt * (1 - pt)) / nt;
    }, 0) /
    (g * g);
  const se = Math.sqrt(variance);
  return { score, stderr: se, ci: [Math.max(0, score - z * se), Math.min(1, score + z * se)], groups: g };
}

/** Whether two closed intervals share a point. */
export function intervalsOverlap(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] <= b[1] && b[0] <= a[1];
}
