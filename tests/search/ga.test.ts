import { describe, expect, it } from 'vitest';
import { GaOptimizer, type GaOptions } from '../../src/search/ga.js';
import type { Genome, GenomeShape } from '../../src/search/genome-vector.js';
import { RngStreams } from '../../src/search/rng.js';
import { polynomialMutation, sbxPair } from '../../src/search/variation.js';
import { run } from './problems.js';

const SHAPE: GenomeShape = { continuous: 12, categorical: [4, 4, 4, 4] };
const TARGET = Array.from({ length: 12 }, (_, i) => 0.1 + 0.07 * i);
const TARGET_CAT = [3, 1, 0, 2];

/** Toy objective mixing both gene kinds: 0 at the optimum, −0.25 per wrong categorical gene. */
function toy(g: Genome): number[] {
  const c = g.continuous.reduce((s, x, i) => s + (x - (TARGET[i] ?? 0)) ** 2, 0);
  const k = g.categorical.reduce((s, v, i) => s + (v === TARGET_CAT[i] ? 0 : 0.25), 0);
  return [-(c + k)];
}

function ga(seed: number, extra: Partial<GaOptions> = {}, shape = SHAPE): GaOptimizer {
  return new GaOptimizer(
    shape,
    { population: 20, elitism: 2, tournamentSize: 3, crossoverRate: 0.9, mutationRate: null, categoricalMutationRate: null, sbxEta: 15, mutationEta: 20, objectiveWeights: null, ...extra },
    new RngStreams(seed),
  );
}

describe('GaOptimizer', () => {
  it('improves a toy objective far beyond its random start; elites keep the best', () => {
    const opt = ga(1);
    const popBest: number[] = [];
    for (let gen = 0; gen < 100; gen++) {
      const batch = opt.ask(opt.nextBatchSize());
      opt.tell(batch.map((genome) => ({ genome, objectives: toy(genome) })));
      popBest.push(opt.population()[0]?.fitness ?? Number.NEGATIVE_INFINITY);
    }
    expect(popBest[0]).toBeLessThan(-0.5);
    expect(popBest.at(-1)).toBeGreaterThan(-0.02);
    // The population's best never gets worse, thanks to the elites.
    for (let i = 1; i < popBest.length; i++) expect(popBest[i] ?? 0).toBeGreaterThanOrEqual(popBest[i - 1] ?? 0);
    expect(opt.population()[0]?.genome.categorical).toEqual(TARGET_CAT);
  });

  it('asks population, then population − elitism per generation, never the same genome twice', () => {
    const opt = ga(2);
    expect(opt.nextBatchSize()).toBe(20);
    const { asked } = run(opt, toy, 10);
    expect(asked.length).toBe(20 + 9 * 18);
    expect(new Set(asked.map((g) => JSON.stringify(g))).size).toBe(asked.length);
    expect(opt.population().length).toBe(20);
  });

  it('eliminates duplicates by the key hook (e.g. the recipe hash) and stops when the space is exhausted', () => {
    // Key: only the first categorical gene matters, so there are 3 distinct candidates.
    const opt = ga(3, { population: 4, elitism: 1 }, { continuous: 2, categorical: [3, 5] });
    const keyed = new GaOptimizer(
      { continuous: 2, categorical: [3, 5] },
      { population: 4, elitism: 1, tournamentSize: 2, crossoverRate: 0.9, mutationRate: null, categoricalMutationRate: null, sbxEta: 15, mutationEta: 20, objectiveWeights: null },
      new RngStreams(3),
      { keyOf: (g) => String(g.categorical[0]) },
    );
    const first = keyed.ask(4);
    expect(first.length).toBe(3);
    expect(new Set(first.map((g) => g.categorical[0])).size).toBe(3);
    keyed.tell(first.map((genome) => ({ genome, objectives: [genome.categorical[0] ?? 0] })));
    expect(keyed.ask(4)).toEqual([]);
    expect(opt.ask(4).length).toBe(4);
  });

  it('asks initial genomes first', () => {
    const seedGenome: Genome = { continuous: TARGET, categorical: TARGET_CAT };
    const opt = ga(4, { initial: [seedGenome] });
    const batch = opt.ask(20);
    expect(batch[0]).toEqual(seedGenome);
    expect(batch.length).toBe(20);
  });

  it('scalarizes several objectives with their weights', () => {
    const opt = ga(5, { objectiveWeights: [1, -2], population: 2, elitism: 0 });
    const [a, b] = opt.ask(2);
    if (!a || !b) throw new Error('ask returned too few');
    opt.tell([
      { genome: a, objectives: [3, 1] }, // 3 − 2 = 1
      { genome: b, objectives: [1, -1] }, // 1 + 2 = 3
    ]);
    expect(opt.population().map((m) => m.fitness)).toEqual([3, 1]);
    expect(() => opt.tell([{ genome: a, objectives: [1] }])).toThrow(RangeError);
  });

  it('is deterministic and restores from JSON to the same future', () => {
    const a = ga(7);
    const b = ga(7);
    run(a, toy, 4);
    run(b, toy, 4);
    const restored = GaOptimizer.fromState(JSON.parse(JSON.stringify(a.saveState())));
    const ra = run(a, toy, 6).asked;
    expect(run(restored, toy, 6).asked).toEqual(ra);
    expect(run(b, toy, 6).asked).toEqual(ra);
    expect(run(ga(8), toy, 1).asked).not.toEqual(run(ga(7), toy, 1).asked);
  });

  it('rejects bad options', () => {
    expect(() => ga(1, { population: 1 })).toThrow(RangeError);
    expect(() => ga(1, { elitism: 20 })).toThrow(RangeError);
    expect(() => ga(1, { initial: [{ continuous: [2], categorical: [] }] })).toThrow(RangeError);
  });
});

describe('variation operators', () => {
  const rng = new RngStreams(11).stream('v');
  it('SBX children stay in [0, 1] and keep the parents’ mean on average', () => {
    let drift = 0;
    for (let i = 0; i < 4000; i++) {
      const a = 0.3 + 0.4 * rng.next();
      const b = 0.3 + 0.4 * rng.next();
      const [c, d] = sbxPair(a, b, 15, rng);
      expect(c >= 0 && c <= 1 && d >= 0 && d <= 1).toBe(true);
      drift += c + d - (a + b);
    }
    // Bounded SBX spreads each child with its own β, so only the average is preserved.
    expect(Math.abs(drift / 4000)).toBeLessThan(0.005);
    for (let i = 0; i < 1000; i++) {
      const [c, d] = sbxPair(rng.next(), rng.next(), 2, rng);
      expect(c >= 0 && c <= 1 && d >= 0 && d <= 1).toBe(true);
    }
    expect(sbxPair(0.4, 0.4, 15, rng)).toEqual([0.4, 0.4]);
  });
  it('polynomial mutation stays in [0, 1], mostly near its parent', () => {
    let near = 0;
    for (let i = 0; i < 2000; i++) {
      const x = rng.next();
      const y = polynomialMutation(x, 20, rng);
      expect(y >= 0 && y <= 1).toBe(true);
      if (Math.abs(y - x) < 0.1) near++;
    }
    expect(near).toBeGreaterThan(1600);
  });
});
