/**
 * Rank windows over a tensor cut into chunks (rank-window.ts): histograms per chunk, bounds from
 * their sums, each chunk's rule with the running ranks at its first element. The chunks' masks
 * must be the full-sort reference mask, ties at the bounds broken by lower index first across
 * chunk boundaries, for any chunking, dtype and compute dtype, with both kernel tables.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkRankRules, selectBounds, selectTop, sparseCounts, type RankLowCounts, type RankTopCounts } from '../../src/merge/methods/rank-window.js';
import { loadKernels, TS_KERNELS, type KernelBinding } from '../../src/merge/native/binding.js';
import { blockMasker } from '../../src/merge/native/mask-rule.js';
import { BLOCK, kernelDTypeSize } from '../../src/merge/native/numeric.js';
import { ALL_DTYPES, COMPUTE_DTYPES, encode, seeded, values } from './kernels-inputs.js';
import { deltaBits, referenceRankMask } from './rank-reference.js';

const loaded = loadKernels({ logger: () => undefined });
const TABLES: [string, KernelBinding][] = [['ts', TS_KERNELS], ...(loaded.native ? [['native', loaded.kernels] as [string, KernelBinding]] : [])];

/** Cuts [0, n) into chunks of random sizes (at least 1 element each; tiny ones now and then). */
function cuts(r: () => number, n: number): number[] {
  const sizes: number[] = [];
  for (let at = 0; at < n; ) {
    const s = Math.min(n - at, 1 + Math.floor(r() * (r() < 0.1 ? 5 : n / 4)));
    sizes.push(s);
    at += s;
  }
  return sizes;
}

describe('rank windows over row chunks', () => {
  for (const [name, k] of TABLES) {
    it(`${name}: chunked masks equal the full-sort reference (heavy ties at the bounds)`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          fc.constantFrom(...ALL_DTYPES),
          fc.constantFrom(...COMPUTE_DTYPES),
          fc.integer({ min: 1, max: 3000 }),
          fc.boolean(),
          (seed, d, c, n, descending) => {
            const r = seeded(seed);
            const base = values(r, n);
            // Deltas of few distinct magnitudes (or many): ties at the cut are the rule, not the exception.
            const coarse = r() < 0.7;
            const noise = values(r, n);
            const x = base.map((v, i) => (coarse ? v + Math.round((noise[i] ?? 0) * 40) / 64 : (noise[i] ?? 0)));
            const bb = encode(base, d);
            const xb = encode(Float32Array.from(x), d);
            const a = Math.floor(r() * (n + 1));
            const b = Math.floor(r() * (n + 1));
            const w = { lo: Math.min(a, b), hi: Math.max(a, b), descending };
            const bits = deltaBits(bb, d, xb, d, c, n);
            const want = referenceRankMask(bits, w.lo, w.hi, w.descending);
            const sizes = cuts(r, n);
            const size = kernelDTypeSize(d);
            const slices: { base: Uint8Array; x: Uint8Array; start: number; count: number }[] = [];
            let at = 0;
            for (const s of sizes) {
              slices.push({ base: bb.subarray(at * size, (at + s) * size), x: xb.subarray(at * size, (at + s) * size), start: at, count: s });
              at += s;
            }
            const args = (s: (typeof slices)[number]) => ({ base: s.base, baseDType: d, x: s.x, xDType: d, computeDType: c, count: s.count, descending });
            let rules;
            if (w.lo >= w.hi) {
              rules = chunkRankRules(w, null, [], null, slices.length);
            } else {
              const top: RankTopCounts[] = slices.map((s) => {
                const t = new Uint32Array(65536);
                const lowBits = new Uint32Array(2);
                k.rankHistogram({ ...args(s), top: t, lowBits });
                return { top: sparseCounts(t), lowOr: lowBits[0] ?? 0, lowAnd: lowBits[1] ?? 0 };
              });
              const sel = selectTop(w, top);
              let low: RankLowCounts[] | null = null;
              if (sel.uniformLow === null) {
                low = slices.map((s) => {
                  const lowLo = new Uint32Array(65536);
                  const lowHi = new Uint32Array(65536);
                  k.rankLowHistogram({ ...args(s), bucketLo: sel.bucketLo, bucketHi: sel.bucketHi, lowLo, lowHi });
                  return { lowLo: sparseCounts(lowLo), lowHi: sparseCounts(lowHi) };
                });
              }
              rules = chunkRankRules(w, selectBounds(w, sel, low), top, low, slices.length);
            }
            const got = new Uint8Array(n);
            slices.forEach((s, ci) => {
              const rule = rules[ci];
              if (rule === undefined) throw new Error('missing rule');
              const masker = blockMasker(rule, 0, s.count, 'rule');
              for (let j = 0; j < s.count; j += BLOCK) {
                const m = Math.min(BLOCK, s.count - j);
                got.set(masker.block(j, m, bits.subarray(s.start + j, s.start + j + m)).subarray(0, m), s.start + j);
              }
            });
            let first = -1;
            for (let i = 0; i < n && first < 0; i++) if (got[i] !== want[i]) first = i;
            expect(first).toBe(-1);
          },
        ),
        { numRuns: 40 },
      );
    });
  }
});
