/**
 * maskedL1's exact sums (masked-l1.ts bins): the number they stand for is the correctly rounded
 * sum of the |δ|, and the bins of a tensor's chunks add up to the same sum as the tensor's, so a
 * rescale factor does not depend on how the tensor was cut.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadKernels, TS_KERNELS, type KernelBinding } from '../../src/merge/native/binding.js';
import { addL1Bins, L1_BINS, l1FromBins } from '../../src/merge/native/masked-l1.js';
import { KERNEL_DTYPE } from '../../src/merge/native/numeric.js';

const loaded = loadKernels({ logger: () => undefined });
const TABLES: [string, KernelBinding][] = [['ts', TS_KERNELS], ...(loaded.native ? [['native', loaded.kernels] as [string, KernelBinding]] : [])];

function l1(k: KernelBinding, x: Float32Array, mask: Uint8Array | null): BigInt64Array {
  const out = new BigInt64Array(2 * L1_BINS);
  const zero = new Uint8Array(x.length * 4);
  k.maskedL1({ base: zero, baseDType: KERNEL_DTYPE.F32, x: new Uint8Array(x.buffer, x.byteOffset, x.byteLength), xDType: KERNEL_DTYPE.F32, computeDType: KERNEL_DTYPE.F32, mask, count: x.length, out });
  return out;
}

describe('maskedL1 exact sums', () => {
  for (const [name, k] of TABLES) {
    it(`${name}: equal the f64 sum where that is exact, and chunk bins add up to the whole`, () => {
      fc.assert(
        fc.property(fc.array(fc.float({ min: 2 ** -10, max: 2 ** 10, noNaN: true }), { minLength: 1, maxLength: 120 }), fc.nat(), (vals, cut) => {
          // |v| in [2^-10, 2^10], at most 120 of them: every partial sum fits in 53 bits, so the
          // plain f64 sum is exact and is the expected value.
          const x = Float32Array.from(vals, (v, i) => (i % 3 === 0 ? -v : v));
          const mask = Uint8Array.from(x, (_, i) => (i % 2 === 0 ? 1 : 0));
          let all = 0;
          let kept = 0;
          x.forEach((v, i) => {
            all += Math.abs(v);
            if (mask[i] === 1) kept += Math.abs(v);
          });
          const bins = l1(k, x, mask);
          expect(l1FromBins(bins, 0)).toBe(all);
          expect(l1FromBins(bins, L1_BINS)).toBe(kept);
          const at = cut % (x.length + 1);
          const parts = new BigInt64Array(2 * L1_BINS);
          addL1Bins(parts, l1(k, x.subarray(0, at), mask.subarray(0, at)));
          addL1Bins(parts, l1(k, x.subarray(at), mask.subarray(at)));
          expect(l1FromBins(parts, 0)).toBe(all);
          expect(l1FromBins(parts, L1_BINS)).toBe(kept);
        }),
        { numRuns: 30 },
      );
    });

    it(`${name}: exact over several blocks whose values span far more binades than an f64 holds`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.integer({ min: 1, max: 0xffffff }), fc.integer({ min: -149, max: 104 })), { minLength: 1, maxLength: 1600 }),
          fc.nat(),
          (parts, cut) => {
            // v = m · 2^p exactly (m < 2^24); the expected sums are BigInts in units of 2^-149 (every
            // v is a multiple of it), rounded once by BigInt → Number, independent of the kernel.
            const x = Float32Array.from(parts, ([m, p]) => Math.fround(m * 2 ** p));
            const mask = Uint8Array.from(x, (_, i) => ((i * 7) % 3 === 0 ? 0 : 1));
            let all = 0n;
            let kept = 0n;
            x.forEach((v, i) => {
              let units = 0n;
              // Exact: v / 2^-149 is an integer below 2^277; split the f64 into bits by halving.
              let r = v * 2 ** 149;
              let place = 1n;
              while (r > 0) {
                const low = r % 2 ** 30;
                units += BigInt(low) * place;
                r = (r - low) / 2 ** 30;
                place <<= 30n;
              }
              all += units;
              if (mask[i] === 1) kept += units;
            });
            const expectOf = (u: bigint): number => Number(u) * 2 ** -149;
            const bins = l1(k, x, mask);
            expect(l1FromBins(bins, 0)).toBe(expectOf(all));
            expect(l1FromBins(bins, L1_BINS)).toBe(expectOf(kept));
            const at = cut % (x.length + 1);
            const sum = new BigInt64Array(2 * L1_BINS);
            addL1Bins(sum, l1(k, x.subarray(0, at), mask.subarray(0, at)));
            addL1Bins(sum, l1(k, x.subarray(at), mask.subarray(at)));
            expect(l1FromBins(sum, 0)).toBe(expectOf(all));
            expect(l1FromBins(sum, L1_BINS)).toBe(expectOf(kept));
          },
        ),
        { numRuns: 40 },
      );
    });

    it(`${name}: subnormals, huge values, NaN and Inf`, () => {
      const tiny = 2 ** -149;
      expect(l1FromBins(l1(k, Float32Array.of(tiny, -tiny, 3 * tiny), null), 0)).toBe(5 * tiny);
      const big = 3.4e38;
      expect(l1FromBins(l1(k, Float32Array.of(big, big, big, big), null), 0)).toBe(4 * Math.fround(big));
      // 1 + 2^-60 + ... is not representable in f32 steps but is in the exact sum before rounding.
      expect(l1FromBins(l1(k, Float32Array.of(1, 2 ** -60, 2 ** -60), null), 0)).toBe(1 + 2 ** -59);
      expect(l1FromBins(l1(k, Float32Array.of(1, Infinity), null), 0)).toBe(Infinity);
      expect(l1FromBins(l1(k, Float32Array.of(Infinity, NaN), null), 0)).toBeNaN();
      // A dropped NaN does not reach the kept sum.
      const bins = l1(k, Float32Array.of(2, NaN), Uint8Array.of(1, 0));
      expect(l1FromBins(bins, 0)).toBeNaN();
      expect(l1FromBins(bins, L1_BINS)).toBe(2);
    });
  }
});
