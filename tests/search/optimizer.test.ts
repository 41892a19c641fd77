import { describe, expect, it } from 'vitest';
import { fitsShape } from '../../src/search/genome-vector.js';
import { genomeRecipeHash, groupMethods } from '../../src/search/genome.js';
import { createOptimizer, optimizerFromState, recipeKeyHooks } from '../../src/search/optimizer-factory.js';
import { scalarFitness, toMember, WORST_OBJECTIVE, type OptimizerState } from '../../src/search/optimizer.js';
import { RandomSearch } from '../../src/search/random-search.js';
import { RngStreams } from '../../src/search/rng.js';
import { run, sphere } from './problems.js';
import { RICH, schemaOf } from './space-fixtures.js';

const KINDS = ['ga', 'nsga2', 'cmaes', 'random'] as const;

function spaceFor(kind: (typeof KINDS)[number]): string {
  const objectives = 'objectives: [{name: a, evaluator: x}, {name: b, evaluator: y, weight: 0.5}]\n';
  const extra = kind === 'cmaes' ? ', method: della' : kind === 'ga' ? ', elitism: 2' : '';
  return RICH.replace('objectives: [{name: a, evaluator: x}]\n', objectives) + `optimizer: {kind: ${kind}, population: 8, seed: 5${extra}}\n`;
}

/** Two objectives of a genome: closeness to 0.3 and to 0.7 of its continuous genes. */
function twoGoals(g: { continuous: readonly number[] }): number[] {
  return [sphere(g.continuous.map(() => 0.3))({ continuous: g.continuous, categorical: [] })[0] ?? 0, sphere(g.continuous.map(() => 0.7))({ continuous: g.continuous, categorical: [] })[0] ?? 0];
}

describe.each(KINDS)('createOptimizer / optimizerFromState: %s', (kind) => {
  const { schema } = schemaOf(spaceFor(kind), 7);

  it('asks valid genomes of the schema', () => {
    const opt = createOptimizer(schema, new RngStreams(schema.space.optimizer.seed));
    expect(opt.kind).toBe(kind);
    const batch = opt.ask(opt.nextBatchSize());
    expect(batch.length).toBe(8);
    for (const g of batch) expect(fitsShape(g, schema.shape)).toBe(true);
    if (kind === 'cmaes') for (const g of batch) expect(groupMethods(schema, g)).toEqual(['della', 'della', 'della']);
  });

  it('restores from a JSON round trip of its state to the same future', () => {
    const a = createOptimizer(schema, new RngStreams(1));
    const b = createOptimizer(schema, new RngStreams(1));
    run(a, twoGoals, 3);
    run(b, twoGoals, 3);
    const state = JSON.parse(JSON.stringify(a.saveState())) as OptimizerState;
    expect(state.kind).toBe(kind);
    const restored = optimizerFromState(state, recipeKeyHooks(schema));
    const ra = run(a, twoGoals, 3).asked;
    expect(run(restored, twoGoals, 3).asked).toEqual(ra);
    expect(run(b, twoGoals, 3).asked).toEqual(ra);
  });

  it('never asks two genomes with the same recipe (ga, nsga2, random)', () => {
    if (kind === 'cmaes') return;
    const opt = createOptimizer(schema, new RngStreams(2));
    const { asked } = run(opt, twoGoals, 6);
    const hashes = asked.map((g) => genomeRecipeHash(schema, g));
    expect(new Set(hashes).size).toBe(hashes.length);
  });
});

describe('RandomSearch', () => {
  it('draws uniformly, tracks the best, never repeats', () => {
    const opt = new RandomSearch({ continuous: 3, categorical: [2] }, { population: 10, objectiveWeights: null }, new RngStreams(3));
    const { asked } = run(opt, sphere([0.5, 0.5, 0.5]), 20);
    expect(asked.length).toBe(200);
    const mean = asked.reduce((s, g) => s + (g.continuous[0] ?? 0), 0) / asked.length;
    expect(mean).toBeGreaterThan(0.4);
    expect(mean).toBeLessThan(0.6);
    const best = Math.max(...asked.map((g) => sphere([0.5, 0.5, 0.5])(g)[0] ?? 0));
    expect(opt.best()?.fitness).toBe(best);
  });
});

describe('scalar fitness and sanitizing', () => {
  it('weights objectives and turns failures into the worst value', () => {
    expect(scalarFitness([1, 2], [1, 0.5])).toBe(2);
    expect(scalarFitness([1, 2], null)).toBe(3);
    expect(scalarFitness([Number.NaN, 2], null)).toBe(WORST_OBJECTIVE);
    const m = toMember({ genome: { continuous: [0.5], categorical: [] }, objectives: [Number.POSITIVE_INFINITY, 1], uncertainty: [Number.NaN, 0.1] }, 2, null);
    expect(m.objectives).toEqual([WORST_OBJECTIVE, 1]);
    expect(m.uncertainty).toEqual([Number.MAX_VALUE, 0.1]);
    expect(() => toMember({ genome: { continuous: [], categorical: [] }, objectives: [1] }, 2, null)).toThrow(RangeError);
  });
});
