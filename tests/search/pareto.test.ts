import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crowdingDistance, isDominated, nonDominatedSort, paretoFront } from '../../src/search/pareto.js';

const INF = Number.POSITIVE_INFINITY;

describe('isDominated (maximization)', () => {
  it('needs at least as good everywhere and better somewhere', () => {
    expect(isDominated([1, 3], [2, 4])).toBe(true);
    expect(isDominated([1, 3], [1, 4])).toBe(true);
    expect(isDominated([1, 3], [1, 3])).toBe(false);
    expect(isDominated([1, 3], [2, 2])).toBe(false);
    expect(isDominated([2, 4], [1, 3])).toBe(false);
    expect(() => isDominated([1], [1, 2])).toThrow(RangeError);
  });
});

describe('nonDominatedSort', () => {
  it('sorts a hand-computed set into fronts (equal points share one)', () => {
    const pts = [[1, 5], [2, 4], [3, 3], [1, 3], [2, 2], [0, 1], [3, 3]];
    expect(nonDominatedSort(pts)).toEqual([[0, 1, 2, 6], [3, 4], [5]]);
    expect(paretoFront(pts)).toEqual([0, 1, 2, 6]);
    expect(nonDominatedSort([])).toEqual([]);
  });

  it('three objectives', () => {
    const pts = [[1, 1, 1], [2, 0, 0], [0, 2, 0], [0, 0, 2], [0.5, 0.5, 0.5], [1, 1, 0.5]];
    // [1, 1, 0.5] is dominated by [1, 1, 1] and itself dominates [0.5, 0.5, 0.5].
    expect(nonDominatedSort(pts)).toEqual([[0, 1, 2, 3], [5], [4]]);
  });

  it('agrees with the definition on random sets (property)', () => {
    const pts = fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 })), { maxLength: 40 });
    fc.assert(
      fc.property(pts, (p) => {
        const fronts = nonDominatedSort(p);
        expect(fronts.flat().sort((a, b) => a - b)).toEqual([...p.keys()]);
        fronts.forEach((front, k) => {
          for (const i of front) {
            // Nobody in this or a later front dominates i ...
            for (const later of fronts.slice(k)) for (const j of later) expect(isDominated(p[i] ?? [], p[j] ?? [])).toBe(false);
            // ... and someone in the previous front does.
            if (k > 0) expect((fronts[k - 1] ?? []).some((j) => isDominated(p[i] ?? [], p[j] ?? []))).toBe(true);
          }
        });
        expect(paretoFront(p)).toEqual(fronts[0] ?? []);
      }),
      { numRuns: 200 },
    );
  });
});

describe('crowdingDistance', () => {
  it('matches a hand computation on a 5-point front', () => {
    // Sorted by f1 the gaps are (3.5−1)/4, (4−2)/4, (5−3.5)/4; by f2 the same in reverse.
    const pts = [[1, 5], [2, 4], [3.5, 2.5], [4, 2], [5, 1]];
    expect(crowdingDistance(pts, [0, 1, 2, 3, 4])).toEqual([INF, 1.25, 1, 0.75, INF]);
  });

  it('handles ties, subsets of the point list and degenerate fronts', () => {
    const pts = [[9, 9], [1, 5], [2, 4], [3, 3], [3, 3]];
    // Front = points 1..4. By f1 (1, 2, 3, 3): ends 1 and 4 are infinite, point 2 gets (3−1)/2 = 1,
    // point 3 gets (3−2)/2 = 0.5. By f2 (3, 3, 4, 5 for points 3, 4, 2, 1): ends 3 and 1 infinite,
    // point 4 gets (4−3)/2 = 0.5, point 2 gets (5−3)/2 = 1. Totals: ∞, 2, ∞, ∞.
    expect(crowdingDistance(pts, [1, 2, 3, 4])).toEqual([INF, 2, INF, INF]);
    expect(crowdingDistance(pts, [1, 2])).toEqual([INF, INF]);
    expect(crowdingDistance([[1, 1], [1, 1], [1, 1]], [0, 1, 2])).toEqual([INF, 0, INF]);
  });
});
