import { describe, expect, it } from 'vitest';
import { intervalsOverlap, macroAverage, meanInterval, normalQuantile, proportionStderr, summarizeItems, wilsonInterval, Z_95, zForConfidence } from '../../src/eval/stats.js';

// Expected values computed independently (Python statistics.NormalDist and the Wilson formula).
describe('normal quantile', () => {
  it.each([
    [0.975, 1.9599639845400536],
    [0.995, 2.5758293035489],
    [0.5, 0],
    [0.01, -2.3263478740408408],
    [0.9, 1.2815515655446008],
    [0.0001, -3.71901648545568],
  ])('Φ⁻¹(%f) = %f', (p, z) => {
    expect(normalQuantile(p)).toBeCloseTo(z, 7);
  });

  it('z for 95% is exact; other levels use the quantile', () => {
    expect(zForConfidence(0.95)).toBe(Z_95);
    expect(zForConfidence(0.99)).toBeCloseTo(2.5758293035489, 7);
    expect(() => zForConfidence(1)).toThrow(expect.objectContaining({ code: 'BAD_STATISTIC' }));
    expect(() => normalQuantile(0)).toThrow(expect.objectContaining({ code: 'BAD_STATISTIC' }));
  });
});

describe('Wilson interval', () => {
  it.each([
    [0, 10, 0, 0.2775327998628892],
    [5, 10, 0.236593090512564, 0.7634069094874361],
    [10, 10, 0.7224672001371107, 1],
    [50, 100, 0.4038315303659956, 0.5961684696340044],
    [1, 3, 0.06149194472039615, 0.7923403991979523],
    [37, 50, 0.6044684273515117, 0.8412847250644762],
  ])('%i of %i → [%f, %f]', (k, n, lo, hi) => {
    const [a, b] = wilsonInterval(k, n);
    expect(a).toBeCloseTo(lo, 12);
    expect(b).toBeCloseTo(hi, 12);
  });

  it('is [0, 1] with no items and rejects impossible counts', () => {
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
    expect(() => wilsonInterval(4, 3)).toThrow(expect.objectContaining({ code: 'BAD_STATISTIC' }));
    expect(() => wilsonInterval(1, 2.5)).toThrow(expect.objectContaining({ code: 'BAD_STATISTIC' }));
  });

  it('contains the observed proportion and narrows as n grows', () => {
    let width = Infinity;
    for (const n of [10, 40, 160, 640]) {
      const [lo, hi] = wilsonInterval(n / 4, n);
      expect(lo).toBeLessThanOrEqual(0.25);
      expect(hi).toBeGreaterThanOrEqual(0.25);
      expect(hi - lo).toBeLessThan(width);
      width = hi - lo;
    }
  });
});

describe('summaries', () => {
  it('right/wrong items: accuracy, Wilson interval, binomial standard error', () => {
    const items = [true, true, false, true].map((c, i) => ({ id: String(i), correct: c, score: c ? 1 : 0 }));
    const s = summarizeItems(items);
    expect(s).toMatchObject({ score: 0.75, n: 4, correct: 3 });
    expect(s.ci).toEqual(wilsonInterval(3, 4));
    expect(s.stderr).toBeCloseTo(Math.sqrt((0.75 * 0.25) / 4), 12);
    expect(proportionStderr(0, 0)).toBe(0);
  });

  it('graded items: mean with a normal interval, clamped to [0, 1]', () => {
    // mean 0.5, sample sd of [0.2, 0.4, 0.6, 0.8] = 0.2582, se = 0.1291
    const items = [0.2, 0.4, 0.6, 0.8].map((score, i) => ({ id: String(i), correct: null, score }));
    const s = summarizeItems(items);
    expect(s.score).toBeCloseTo(0.5, 12);
    expect(s.stderr).toBeCloseTo(0.12909944487358055, 12);
    expect(s.ci[0]).toBeCloseTo(0.5 - Z_95 * 0.12909944487358055, 12);
    expect(s.correct).toBeNull();
    expect(meanInterval([0.99, 1, 1]).ci[1]).toBe(1);
  });

  it('macro average weighs subjects equally, with Agresti–Coull group variances', () => {
    // (2/4 + 3/3) / 2 = 0.75; variances with ñ = n + z², p̃ = (k + z²/2)/ñ: se = 0.12389237281852082.
    const m = macroAverage([
      { correct: 2, n: 4 },
      { correct: 3, n: 3 },
      { correct: 0, n: 0 },
    ]);
    expect(m.score).toBeCloseTo(0.75, 12);
    expect(m.stderr).toBeCloseTo(0.12389237281852082, 12);
    expect(m.groups).toBe(2);
    // Six subjects with one item each, half right: not a zero-width interval.
    const tiny = macroAverage([1, 0, 1, 0, 1, 0].map((k) => ({ correct: k, n: 1 })));
    expect(tiny.score).toBe(0.5);
    expect(tiny.stderr).toBeCloseTo(0.09076925406801724, 12);
    expect(intervalsOverlap([0, 0.5], [0.5, 1])).toBe(true);
    expect(intervalsOverlap([0, 0.4], [0.5, 1])).toBe(false);
  });
});
