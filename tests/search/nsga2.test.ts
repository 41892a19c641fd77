import { describe, expect, it } from 'vitest';
import { Nsga2Optimizer, type Nsga2Options } from '../../src/search/nsga2.js';
import { RngStreams } from '../../src/search/rng.js';
import { isDominated } from '../../src/search/pareto.js';
import { run, sch, zdt1, zdt1G } from './problems.js';

function nsga2(n: number, population: number, seed: number, extra: Partial<Nsga2Options> = {}): Nsga2Optimizer {
  return new Nsga2Optimizer(
    { continuous: n, categorical: [] },
    { population, crossoverRate: 0.9, mutationRate: null, categoricalMutationRate: null, sbxEta: 15, mutationEta: 20, objectiveWeights: null, ...extra },
    new RngStreams(seed),
  );
}

describe('Nsga2Optimizer', () => {
  it('converges to and spreads over the Pareto set of SCH (x ∈ [0, 2])', () => {
    const opt = nsga2(1, 20, 1);
    run(opt, sch, 40);
    const xs = opt.population().map((p) => -10 + 20 * (p.member.genome.continuous[0] ?? 0));
    expect(xs.every((x) => x > -0.05 && x < 2.05)).toBe(true);
    expect(Math.min(...xs)).toBeLessThan(0.1);
    expect(Math.max(...xs)).toBeGreaterThan(1.9);
    expect(opt.front().length).toBe(20);
  });

  it('converges toward the ZDT1 front (g → 1) and covers it', () => {
    // Inverted generational distance to 101 points of the true front f2 = 1 − √f1.
    const ref = Array.from({ length: 101 }, (_, i) => [i / 100, 1 - Math.sqrt(i / 100)]);
    const igd = (o: Nsga2Optimizer): number => {
      const pts = o.front().map((m) => [-(m.objectives[0] ?? 0), -(m.objectives[1] ?? 0)]);
      return ref.reduce((s, r) => s + Math.min(...pts.map((p) => Math.hypot((p[0] ?? 0) - (r[0] ?? 0), (p[1] ?? 0) - (r[1] ?? 0)))), 0) / ref.length;
    };
    const opt = nsga2(10, 40, 2);
    run(opt, zdt1, 10);
    const early = igd(opt);
    run(opt, zdt1, 140);
    const front = opt.front();
    expect(front.length).toBe(40);
    const meanG = front.reduce((s, m) => s + zdt1G(m.genome), 0) / front.length;
    expect(meanG).toBeLessThan(1.02);
    expect(early).toBeGreaterThan(0.1);
    // 40 points cannot get much closer to 101 evenly spaced ones than ~0.01.
    expect(igd(opt)).toBeLessThan(0.02);
  });

  it('keeps rank and crowding consistent with the population it holds', () => {
    const opt = nsga2(10, 24, 3);
    run(opt, zdt1, 10);
    const pop = opt.population();
    for (const a of pop) {
      const dominators = pop.filter((b) => isDominated([...a.member.objectives], [...b.member.objectives]));
      if (a.rank === 0) expect(dominators).toEqual([]);
      else expect(dominators.some((b) => b.rank === a.rank - 1)).toBe(true);
    }
    const boundary = pop.filter((p) => p.crowding === Number.POSITIVE_INFINITY);
    expect(boundary.length).toBeGreaterThanOrEqual(2);
  });

  it('never asks a genome twice', () => {
    const opt = new Nsga2Optimizer(
      { continuous: 0, categorical: [2, 2, 3] },
      { population: 4, crossoverRate: 0.9, mutationRate: null, categoricalMutationRate: null, sbxEta: 15, mutationEta: 20, objectiveWeights: null },
      new RngStreams(4),
    );
    const { asked } = run(opt, (g) => [g.categorical[0] ?? 0, -(g.categorical[2] ?? 0)], 6);
    const keys = asked.map((g) => JSON.stringify(g));
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(12); // 2·2·3 combinations, then the space is exhausted
    expect(opt.ask(4)).toEqual([]);
  });

  it('is deterministic and restores from JSON to the same future', () => {
    const a = nsga2(6, 12, 7);
    const b = nsga2(6, 12, 7);
    run(a, zdt1, 5);
    run(b, zdt1, 5);
    const restored = Nsga2Optimizer.fromState(JSON.parse(JSON.stringify(a.saveState())));
    const ra = run(a, zdt1, 5).asked;
    expect(run(restored, zdt1, 5).asked).toEqual(ra);
    expect(run(b, zdt1, 5).asked).toEqual(ra);
    expect(run(nsga2(6, 12, 8), zdt1, 1).asked).not.toEqual(run(nsga2(6, 12, 7), zdt1, 1).asked);
  });

  it('treats failed (non-finite) objectives as the worst', () => {
    const opt = nsga2(2, 4, 9);
    const batch = opt.ask(4);
    opt.tell(batch.map((genome, i) => ({ genome, objectives: i === 0 ? [Number.NaN, Number.NaN] : [i, -i] })));
    expect(opt.front().map((m) => m.objectives)).toEqual([[1, -1], [2, -2], [3, -3]]);
    expect(JSON.parse(JSON.stringify(opt.saveState())).population[3].objectives).toEqual([-Number.MAX_VALUE, -Number.MAX_VALUE]);
  });
});
