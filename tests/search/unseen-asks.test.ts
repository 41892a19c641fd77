import { describe, expect, it } from 'vitest';
import { genomeKey, type Genome } from '../../src/search/genome-vector.js';
import { RandomSearch } from '../../src/search/random-search.js';
import { RngStreams } from '../../src/search/rng.js';
import { SeenGenomes } from '../../src/search/unseen-asks.js';

const SHAPE = { continuous: 1, categorical: [3] };
const g = (x: number, c = 0): Genome => ({ continuous: [x], categorical: [c] });

describe('SeenGenomes', () => {
  it('asks initial genomes first, once each, then offers until the batch is full', () => {
    const seen = new SeenGenomes(SHAPE, genomeKey, [g(0.1), g(0.1), g(0.2)], 'ga');
    let next = 0.5;
    const asked = seen.ask(4, (batch) => {
      batch.take(g(next));
      next += 0.1;
    });
    expect(asked).toEqual([g(0.1), g(0.2), g(0.5), g(0.6)]);
    expect(seen.saveState()).toEqual({ seen: [g(0.1), g(0.2), g(0.5), g(0.6)].map(genomeKey), initialQueue: [] });
  });

  it('keeps initial genomes that did not fit in this batch for the next', () => {
    const seen = new SeenGenomes(SHAPE, genomeKey, [g(0.1), g(0.2), g(0.3)], 'nsga2');
    expect(seen.ask(2, () => undefined)).toEqual([g(0.1), g(0.2)]);
    expect(seen.saveState().initialQueue).toEqual([g(0.3)]);
  });

  it('returns short after 50 offers that were all seen', () => {
    const seen = new SeenGenomes(SHAPE, genomeKey, [], 'random');
    let offers = 0;
    const asked = seen.ask(3, (batch) => {
      offers++;
      if (!batch.take(g(0.4))) batch.misses++;
    });
    expect(asked).toEqual([g(0.4)]);
    expect(offers).toBe(51);
  });

  it('deduplicates by the key function, and told keys count as seen', () => {
    const byCategory = (x: Genome): string => String(x.categorical[0]);
    const seen = new SeenGenomes(SHAPE, byCategory, [], 'ga');
    seen.addKey('1');
    let i = 0;
    const asked = seen.ask(3, (batch) => {
      if (!batch.take(g(0.01 * i, i % 3))) batch.misses++;
      i++;
    });
    expect(asked.map((x) => x.categorical[0])).toEqual([0, 2]);
    expect(seen.has(g(0.9, 1))).toBe(true);
  });

  it('restores keys and queue from a saved state', () => {
    const a = new SeenGenomes(SHAPE, genomeKey, [g(0.1), g(0.2)], 'ga');
    a.ask(1, () => undefined);
    const b = new SeenGenomes(SHAPE, genomeKey, [], 'ga');
    b.restore(JSON.parse(JSON.stringify(a.saveState())));
    expect(b.saveState()).toEqual(a.saveState());
    expect(b.has(g(0.1))).toBe(true);
  });

  it('names the optimizer when an initial genome does not fit the shape', () => {
    expect(() => new SeenGenomes(SHAPE, genomeKey, [g(1.5)], 'nsga2')).toThrow('nsga2: initial genome: continuous gene 0 must be in [0, 1], got 1.5');
    expect(() => new SeenGenomes(SHAPE, genomeKey, [g(0.5, 3)], 'ga')).toThrow('ga: initial genome: categorical gene 0 must be an integer in [0, 2], got 3');
  });
});

describe('RandomSearch.tell', () => {
  it('keeps nothing from a batch with a genome that does not fit', () => {
    const opt = new RandomSearch(SHAPE, { population: 2, objectiveWeights: null }, new RngStreams(1));
    const before = JSON.stringify(opt.saveState());
    expect(() => opt.tell([{ genome: g(0.5), objectives: [1] }, { genome: g(2), objectives: [2] }])).toThrow('random: told genome: continuous gene 0 must be in [0, 1], got 2');
    expect(JSON.stringify(opt.saveState())).toBe(before);
    expect(opt.best()).toBeNull();
  });
});
