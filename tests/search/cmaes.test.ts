import { describe, expect, it } from 'vitest';
import { CmaesOptimizer, defaultLambda, mirror01, type CmaesOptions } from '../../src/search/cmaes.js';
import { RngStreams } from '../../src/search/rng.js';
import { symmetricEigen } from '../../src/search/symmetric-eigen.js';
import { ellipsoid, run, sphere } from './problems.js';

function cma(n: number, seed: number, extra: Partial<CmaesOptions> = {}): CmaesOptimizer {
  return new CmaesOptimizer({ continuous: n, categorical: [3] }, { lambda: null, sigma0: 0.3, mean0: null, frozenCategorical: [2], objectiveWeights: null, ...extra }, new RngStreams(seed));
}

describe('symmetricEigen', () => {
  /** Checks A = B·diag(λ)·Bᵀ, BᵀB = I and ascending λ. */
  function checkDecomposition(a: Float64Array, n: number): void {
    const { values, vectors } = symmetricEigen(a, n);
    for (let i = 1; i < n; i++) expect(values[i] ?? 0).toBeGreaterThanOrEqual(values[i - 1] ?? 0);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let recon = 0;
        let orth = 0;
        for (let k = 0; k < n; k++) {
          recon += (vectors[i * n + k] ?? 0) * (values[k] ?? 0) * (vectors[j * n + k] ?? 0);
          orth += (vectors[k * n + i] ?? 0) * (vectors[k * n + j] ?? 0);
        }
        expect(Math.abs(recon - (a[i * n + j] ?? 0))).toBeLessThan(1e-10);
        expect(Math.abs(orth - (i === j ? 1 : 0))).toBeLessThan(1e-10);
      }
    }
  }

  it('decomposes random symmetric matrices of several sizes', () => {
    const rng = new RngStreams(5).stream('m');
    for (const n of [1, 2, 3, 7, 30]) {
      const a = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
      checkDecomposition(a, n);
    }
  });

  it('handles repeated eigenvalues, diagonal and rank-deficient matrices', () => {
    const n = 6;
    const eye = new Float64Array(n * n);
    for (let i = 0; i < n; i++) eye[i * n + i] = 1;
    checkDecomposition(eye, n);
    const diag = Float64Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? [3, -1, 2, 2, 0, 5][k / (n + 1)] ?? 0 : 0));
    checkDecomposition(diag, n);
    expect([...symmetricEigen(diag, n).values]).toEqual([-1, 0, 2, 2, 3, 5]);
    // u·uᵀ + v·vᵀ: rank 2, four zero eigenvalues.
    const u = [1, 2, 0, -1, 0.5, 3];
    const v = [0, 1, 1, 1, -2, 0];
    checkDecomposition(Float64Array.from({ length: n * n }, (_, k) => (u[Math.floor(k / n)] ?? 0) * (u[k % n] ?? 0) + (v[Math.floor(k / n)] ?? 0) * (v[k % n] ?? 0)), n);
  });

  it('diagonalizes a known 2×2 matrix', () => {
    const { values } = symmetricEigen([2, 1, 1, 2], 2);
    expect([...values].map((x) => Number(x.toFixed(12)))).toEqual([1, 3]);
  });
});

describe('mirror01', () => {
  it('is the identity in [0, 1] and reflects outside', () => {
    expect([0, 0.25, 1, 1.25, 2, 2.5, -0.25, -1, -1.5, 3.75].map(mirror01)).toEqual([0, 0.25, 1, 0.75, 0, 0.5, 0.25, 1, 0.5, 0.25]);
  });
});

describe('CmaesOptimizer', () => {
  it('reaches 1e-8 on a 10-D sphere within 3000 evaluations', () => {
    const opt = cma(10, 1);
    const center = Array.from({ length: 10 }, (_, i) => 0.2 + 0.05 * i);
    const { bestPerGeneration, evaluations } = run(opt, sphere(center), Math.ceil(3000 / defaultLambda(10)));
    expect(evaluations).toBeLessThanOrEqual(3000 + defaultLambda(10));
    expect(bestPerGeneration.at(-1)).toBeGreaterThan(-1e-8);
    expect(opt.distribution().sigma).toBeLessThan(1e-3);
  });

  it('reaches 1e-8 on an 8-D ellipsoid with condition 1e6 (needs the covariance update)', () => {
    const opt = cma(8, 2);
    const { bestPerGeneration } = run(opt, ellipsoid(8, 0.4), Math.ceil(8000 / defaultLambda(8)));
    expect(bestPerGeneration.at(-1)).toBeGreaterThan(-1e-8);
  });

  it('finds an optimum on the bound through the mirror transform', () => {
    const opt = cma(5, 3);
    const { bestPerGeneration } = run(opt, sphere([0, 1, 1, 0, 0.5]), 150);
    expect(bestPerGeneration.at(-1)).toBeGreaterThan(-1e-8);
  });

  it('keeps categorical genes frozen and every gene inside [0, 1]', () => {
    const opt = cma(4, 4, { sigma0: 3 });
    const { asked } = run(opt, sphere([0.5, 0.5, 0.5, 0.5]), 5);
    for (const g of asked) {
      expect(g.categorical).toEqual([2]);
      for (const x of g.continuous) expect(x >= 0 && x <= 1).toBe(true);
    }
  });

  it('is deterministic and restores from JSON to the same future', () => {
    const f = sphere([0.3, 0.6, 0.1]);
    const a = cma(3, 9);
    const b = cma(3, 9);
    run(a, f, 6);
    run(b, f, 6);
    a.ask(2); // pending samples are part of the state
    b.ask(2);
    const restored = CmaesOptimizer.fromState(JSON.parse(JSON.stringify(a.saveState())));
    const ra = run(a, f, 8).asked;
    expect(run(restored, f, 8).asked).toEqual(ra);
    expect(run(b, f, 8).asked).toEqual(ra);
    expect(run(cma(3, 10), f, 1).asked).not.toEqual(run(cma(3, 9), f, 1).asked);
  });

  it('rejects bad options', () => {
    expect(() => cma(0, 1)).toThrow(RangeError);
    expect(() => cma(3, 1, { sigma0: 0 })).toThrow(RangeError);
    expect(() => cma(3, 1, { frozenCategorical: [3] })).toThrow(RangeError);
    expect(() => cma(3, 1, { mean0: [0.5] })).toThrow(RangeError);
  });
});
