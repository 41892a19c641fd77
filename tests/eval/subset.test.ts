import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generationSeed, seededOrder, stratifiedOrder, takeSubset } from '../../src/eval/subset.js';

describe('seeded subsets', () => {
  const ids = Array.from({ length: 200 }, (_, i) => `item-${i}`);

  it('an order is a permutation, fixed by its seed, different for another seed', () => {
    const a = seededOrder(ids, 7);
    expect([...a].sort()).toEqual([...ids].sort());
    expect(seededOrder(ids, 7)).toEqual(a);
    expect(seededOrder(ids, 8)).not.toEqual(a);
    expect(seededOrder(ids, 7, 'other-task')).not.toEqual(a);
    expect(ids[0]).toBe('item-0'); // input untouched
  });

  it('subsets are prefixes: the 20-item subset lies inside the 50-item one', () => {
    const order = seededOrder(ids, 3);
    const small = takeSubset(order, 20);
    const large = takeSubset(order, 50);
    expect(large.slice(0, 20)).toEqual(small);
    expect(takeSubset(order, Infinity)).toHaveLength(200);
    expect(takeSubset(order, 1000)).toHaveLength(200);
    expect(() => takeSubset(order, -1)).toThrow(RangeError);
  });

  it('generation seeds are a pure function of (run seed, generation) and differ between generations', () => {
    const seeds = new Set(Array.from({ length: 100 }, (_, g) => generationSeed(1234, g)));
    expect(seeds.size).toBe(100);
    expect(generationSeed(1234, 5)).toBe(generationSeed(1234, 5));
    expect(generationSeed(1234, 5)).not.toBe(generationSeed(1235, 5));
  });

  it('stratified orders keep every prefix proportional to the strata (within the systematic bound)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 2 ** 31 }), (sizes, seed) => {
        const items = sizes.flatMap((size, s) => Array.from({ length: size }, (_, k) => ({ id: `${s}/${k}`, stratum: `s${s}` })));
        const order = stratifiedOrder(items, (x) => x.stratum, seed);
        expect(order).toHaveLength(items.length);
        expect(new Set(order.map((x) => x.id)).size).toBe(items.length);
        const total = items.length;
        const counts = new Map<string, number>();
        order.forEach((x, i) => {
          counts.set(x.stratum, (counts.get(x.stratum) ?? 0) + 1);
          const n = i + 1;
          sizes.forEach((size, s) => {
            const got = counts.get(`s${s}`) ?? 0;
            // Systematic allocation: |count − n·size/N| ≤ 1 + G·size/N for G strata.
            expect(Math.abs(got - (n * size) / total)).toBeLessThanOrEqual(1 + (sizes.length * size) / total + 1e-9);
          });
        });
      }),
      { numRuns: 60 },
    );
  });

  it('equal strata: any prefix is within 2 of an even split', () => {
    const items = Array.from({ length: 57 * 10 }, (_, i) => ({ id: String(i), stratum: `subject-${i % 57}` }));
    const order = stratifiedOrder(items, (x) => x.stratum, 42);
    const first = takeSubset(order, 114);
    const counts = new Map<string, number>();
    for (const x of first) counts.set(x.stratum, (counts.get(x.stratum) ?? 0) + 1);
    for (let s = 0; s < 57; s++) expect(Math.abs((counts.get(`subject-${s}`) ?? 0) - 2)).toBeLessThanOrEqual(2);
    expect(stratifiedOrder(items, (x) => x.stratum, 42)).toEqual(order);
  });
});
