import type { Genome } from '../../src/search/genome-vector.js';
import type { Evaluated, Optimizer } from '../../src/search/optimizer.js';

/** Toy objectives with known optima, written as MAXIMIZED functions of a genome. */

/** −Σ(xᵢ − cᵢ)²: optimum 0 at x = c. */
export function sphere(center: readonly number[]): (g: Genome) => number[] {
  return (g) => [-g.continuous.reduce((s, x, i) => s + (x - (center[i] ?? 0)) ** 2, 0)];
}

/** −Σ 10^(6·i/(n−1))·(xᵢ − c)²: condition number 1e6. */
export function ellipsoid(n: number, c: number): (g: Genome) => number[] {
  return (g) => [-g.continuous.reduce((s, x, i) => s + 10 ** ((6 * i) / Math.max(1, n - 1)) * (x - c) ** 2, 0)];
}

/** Schaffer's SCH on x = −10 + 20·u, both objectives negated (Pareto set x ∈ [0, 2]). */
export function sch(g: Genome): number[] {
  const x = -10 + 20 * (g.continuous[0] ?? 0);
  return [-(x * x), -((x - 2) ** 2)];
}

/** ZDT1's g (1 on the Pareto front). */
export function zdt1G(g: Genome): number {
  const xs = g.continuous;
  return 1 + (9 * xs.slice(1).reduce((a, b) => a + b, 0)) / (xs.length - 1);
}

/** ZDT1 negated: front f2 = 1 − √f1 with g = 1. */
export function zdt1(g: Genome): number[] {
  const f1 = g.continuous[0] ?? 0;
  const gg = zdt1G(g);
  return [-f1, -(gg * (1 - Math.sqrt(f1 / gg)))];
}

/**
 * Runs `generations` ask/tell rounds of nextBatchSize() genomes; returns every genome asked, in
 * order, and the best scalar value seen per generation (sum of objectives).
 */
export function run(opt: Optimizer, f: (g: Genome) => number[], generations: number): { asked: Genome[]; bestPerGeneration: number[]; evaluations: number } {
  const asked: Genome[] = [];
  const bestPerGeneration: number[] = [];
  let best = Number.NEGATIVE_INFINITY;
  let evaluations = 0;
  for (let gen = 0; gen < generations; gen++) {
    const batch = opt.ask(opt.nextBatchSize());
    asked.push(...batch);
    const results: Evaluated[] = batch.map((genome) => ({ genome, objectives: f(genome) }));
    evaluations += results.length;
    for (const r of results) best = Math.max(best, r.objectives.reduce((a, b) => a + b, 0));
    opt.tell(results);
    bestPerGeneration.push(best);
  }
  return { asked, bestPerGeneration, evaluations };
}
