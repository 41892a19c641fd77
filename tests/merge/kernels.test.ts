import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkRankRules, selectBounds, selectTop, sparseCounts } from '../../src/merge/methods/rank-window.js';
import { loadKernels, TS_KERNELS, type KernelBinding, type MaskSource, type RankHistogramArgs, type RankRule } from '../../src/merge/native/binding.js';
import { L1_BINS, l1FromBins } from '../../src/merge/native/masked-l1.js';
import { kernelDTypeSize, type ComputeCode, type KernelDType } from '../../src/merge/native/numeric.js';
import { keepThreshold } from '../../src/merge/random.js';
import { ALL_DTYPES, COMPUTE_DTYPES, encode, firstDifference, seeded, values } from './kernels-inputs.js';
import { deltaBits, referenceRankMask } from './rank-reference.js';

// Every C++ kernel is compared with its TypeScript twin on random inputs; the arithmetic is the
// same operation for operation, so the outputs must be bit-identical (no tolerance anywhere).
const loaded = loadKernels({ logger: () => undefined });
const NATIVE: KernelBinding | undefined = loaded.native ? loaded.kernels : undefined;

const dtypeArb = fc.constantFrom(...ALL_DTYPES);
const computeArb = fc.constantFrom(...COMPUTE_DTYPES);
const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const RUNS = { numRuns: 40 };

interface Tensor {
  readonly bytes: Uint8Array;
  readonly dtype: KernelDType;
}

function tensor(rand: () => number, n: number, dtype: KernelDType, specials: boolean, center?: Float32Array): Tensor {
  return { bytes: encode(values(rand, n, { specials, ...(center ? { center } : {}) }), dtype), dtype };
}

/** Runs `call` with both kernel tables on fresh outputs from `make` and compares them. */
function agree<T extends Uint8Array | Float64Array | Uint32Array | BigInt64Array>(make: () => T, call: (k: KernelBinding, out: T) => void): void {
  if (NATIVE === undefined) return;
  const a = make();
  const b = make();
  call(NATIVE, a);
  call(TS_KERNELS, b);
  expect(a.length).toBe(b.length);
  let first = -1;
  for (let i = 0; i < a.length && first < 0; i++) if (!Object.is(a[i], b[i])) first = i;
  expect(first).toBe(-1);
}

type RankArgs = Omit<RankHistogramArgs, 'top' | 'lowBits'> & { readonly lo: number; readonly hi: number };

/** The whole-tensor RankRule of ranks [lo, hi), from `k`'s histograms (one chunk; rank-window.ts). */
function rankRuleOf(k: KernelBinding, args: RankArgs): RankRule {
  const w = { lo: args.lo, hi: args.hi, descending: args.descending };
  if (w.lo >= w.hi) return chunkRankRules(w, null, [], null, 1)[0] as RankRule;
  const top = new Uint32Array(65536);
  const lowBits = new Uint32Array(2);
  k.rankHistogram({ ...args, top, lowBits });
  const counts = [{ top: sparseCounts(top), lowOr: lowBits[0] ?? 0, lowAnd: lowBits[1] ?? 0 }];
  const sel = selectTop(w, counts);
  let low = null;
  if (sel.uniformLow === null) {
    const lowLo = new Uint32Array(65536);
    const lowHi = new Uint32Array(65536);
    k.rankLowHistogram({ ...args, bucketLo: sel.bucketLo, bucketHi: sel.bucketHi, lowLo, lowHi });
    low = [{ lowLo: sparseCounts(lowLo), lowHi: sparseCounts(lowHi) }];
  }
  return chunkRankRules(w, selectBounds(w, sel, low), counts, low, 1)[0] as RankRule;
}

/** The byte mask a rank rule stands for, by a full sort (rank-reference.ts). */
function rankMaskOf(args: RankArgs): Uint8Array {
  return referenceRankMask(deltaBits(args.base, args.baseDType, args.x, args.xDType, args.computeDType, args.count), args.lo, args.hi, args.descending);
}

/** A random mask source over n elements for input x of base: none, bytes, a Bernoulli or a rank rule. */
function maskSource(r: () => number, n: number, base: Tensor, x: Tensor, c: ComputeCode, allowRank: boolean): MaskSource {
  const pick = r();
  if (pick < 0.25) return null;
  if (pick < 0.5) return Uint8Array.from({ length: n }, () => (r() < 0.6 ? 1 : 0));
  if (pick < 0.75 || !allowRank) {
    return { kind: 'bernoulli', key0: Math.floor(r() * 2 ** 32), key1: Math.floor(r() * 2 ** 32), threshold: keepThreshold(r() * 1.2 - 0.1), indexOffset: Math.floor(r() * 2 ** 40) };
  }
  const a = Math.floor(r() * (n + 1));
  const b = Math.floor(r() * (n + 1));
  const args = { base: base.bytes, baseDType: base.dtype, x: x.bytes, xDType: x.dtype, computeDType: c, count: n, lo: Math.min(a, b), hi: Math.max(a, b), descending: r() < 0.5 };
  return rankRuleOf(TS_KERNELS, args);
}

describe.skipIf(NATIVE === undefined)('native kernels agree bit for bit with their TypeScript twins', () => {
  it('convertDType', () => {
    fc.assert(
      fc.property(seedArb, dtypeArb, dtypeArb, computeArb, fc.integer({ min: 0, max: 1500 }), (seed, src, out, round, n) => {
        const r = seeded(seed);
        const t = tensor(r, n, src, true);
        const start = Math.floor(r() * n);
        agree(
          () => new Uint8Array(n * kernelDTypeSize(out)),
          (k, o) => k.convertDType({ src: t.bytes, srcDType: src, roundDType: round, out: o, outDType: out, start, end: n }),
        );
      }),
      RUNS,
    );
  });

  it('linearMerge', () => {
    fc.assert(
      fc.property(seedArb, fc.array(dtypeArb, { minLength: 1, maxLength: 4 }), computeArb, dtypeArb, fc.integer({ min: 1, max: 1500 }), fc.boolean(), (seed, dts, c, out, n, specials) => {
        const r = seeded(seed);
        const ins = dts.map((d) => tensor(r, n, d, specials));
        const weights = Float32Array.from(dts, () => r() * 2 - 0.5);
        const divisor = r() < 0.3 ? 1 : r() * 2;
        agree(
          () => new Uint8Array(n * kernelDTypeSize(out)),
          (k, o) =>
            k.linearMerge({ inputs: ins.map((t) => t.bytes), dtypes: Int32Array.from(dts), weights, divisor, computeDType: c, out: o, outDType: out, start: 0, end: n }),
        );
      }),
      RUNS,
    );
  });

  it('taskVectorMerge', () => {
    fc.assert(
      fc.property(
        seedArb,
        dtypeArb,
        fc.array(dtypeArb, { minLength: 1, maxLength: 4 }),
        computeArb,
        computeArb,
        dtypeArb,
        fc.integer({ min: 1, max: 1500 }),
        fc.record({ consensus: fc.boolean(), electOnRaw: fc.boolean(), sce: fc.boolean(), normalize: fc.boolean(), specials: fc.boolean() }),
        (seed, bd, dts, c, sd, out, n, f) => {
          const r = seeded(seed);
          const base = tensor(r, n, bd, f.specials);
          const centre = new Float32Array(values(r, 0));
          void centre;
          const ins = dts.map((d) => tensor(r, n, d, f.specials));
          // A rank rule counts tied ranks from element 0, so it only comes with start = 0.
          const start = r() < 0.5 ? 0 : Math.floor(r() * n);
          const masks = ins.map((x) => maskSource(r, n, base, x, c, start === 0));
          const scales = Float32Array.from(dts, () => (r() < 0.5 ? 1 : 0.5 + r() * 3));
          const weights = Float32Array.from(dts, () => r() * 2 - 0.6);
          // Drawn once, outside the call: both kernel tables must see the same arguments.
          const divisor = r() < 0.5 ? 1 : 0.7;
          const lambda = r() < 0.5 ? 1 : 0.8;
          // SCE's clamp of the divisor (1e-6, or a large floor so that it bites), or TIES's 0 → 1.
          const minDivisor = f.sce ? (r() < 0.5 ? 1e-6 : 0.3) : 0;
          agree(
            () => new Uint8Array(n * kernelDTypeSize(out)),
            (k, o) =>
              k.taskVectorMerge({
                base: base.bytes,
                baseDType: bd,
                inputs: ins.map((t) => t.bytes),
                dtypes: Int32Array.from(dts),
                masks,
                scales,
                sparsifyDType: sd,
                weights,
                consensus: f.consensus,
                electOnRaw: f.electOnRaw,
                minDivisor,
                normalize: f.normalize,
                divisor,
                lambda,
                computeDType: c,
                out: o,
                outDType: out,
                start,
                end: n,
              }),
          );
        },
      ),
      RUNS,
    );
  });

  it('rankHistogram and rankLowHistogram, small and large tensors', () => {
    fc.assert(
      fc.property(seedArb, dtypeArb, dtypeArb, computeArb, fc.integer({ min: 1, max: 9000 }), fc.boolean(), fc.boolean(), (seed, bd, xd, c, n, desc, specials) => {
        const r = seeded(seed);
        const base = tensor(r, n, bd, specials);
        const x = tensor(r, n, xd, specials);
        const args = { base: base.bytes, baseDType: bd, x: x.bytes, xDType: xd, computeDType: c, count: n, descending: desc };
        agree(() => new Uint32Array(65538), (k, out) => k.rankHistogram({ ...args, top: out.subarray(0, 65536), lowBits: out.subarray(65536) }));
        const bucketLo = Math.floor(r() * 65536);
        const bucketHi = r() < 0.3 ? bucketLo : Math.floor(r() * 65536);
        agree(() => new Uint32Array(2 * 65536), (k, out) => k.rankLowHistogram({ ...args, bucketLo, bucketHi, lowLo: out.subarray(0, 65536), lowHi: out.subarray(65536) }));
      }),
      { numRuns: 30 },
    );
  });

  it('bernoulliMask', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.double({ min: -0.1, max: 1.1, noNaN: true }), fc.integer({ min: 0, max: 2 ** 16 }), (key0, key1, p, offset) => {
        const n = 300;
        agree(
          () => new Uint8Array(offset + n).subarray(0, offset + n),
          (k, mask) => k.bernoulliMask({ key0: key0 >>> 0, key1: key1 >>> 0, threshold: keepThreshold(p), start: offset, end: offset + n, mask }),
        );
      }),
      { numRuns: 30, examples: [[1, 2, 0.3, 0]] },
    );
    // Element indices past 2^32 use the high counter word (no Uint8Array that long: compare draws).
  });

  it('dellaMask', () => {
    fc.assert(
      fc.property(
        seedArb,
        dtypeArb,
        computeArb,
        computeArb,
        fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 3 })),
        fc.boolean(),
        (seed, d, c, work, [outer, len, inner], specials) => {
          const r = seeded(seed);
          const n = outer * len * inner;
          const base = tensor(r, n, d, specials);
          const x = tensor(r, n, d, specials);
          agree(
            () => new Uint8Array(n),
            (k, mask) =>
              k.dellaMask({ base: base.bytes, baseDType: d, x: x.bytes, xDType: d, computeDType: c, workDType: work, outer, len, inner, key0: seed, key1: 77, indexOffset: seed % 5000, lowP: 0.3, eps: 0.2, mask }),
          );
        },
      ),
      RUNS,
    );
  });

  it('maskedL1', () => {
    fc.assert(
      fc.property(seedArb, dtypeArb, dtypeArb, computeArb, fc.integer({ min: 0, max: 3000 }), fc.boolean(), (seed, bd, xd, c, n, withMask) => {
        const r = seeded(seed);
        const base = tensor(r, n, bd, false);
        const x = tensor(r, n, xd, false);
        const mask = withMask ? maskSource(r, n, base, x, c, true) : null;
        if (NATIVE === undefined) return;
        // Bins may spread one exact sum differently (the addon adds a block's total at once): the
        // sums they stand for must agree.
        const sums = (k: KernelBinding): number[] => {
          const out = new BigInt64Array(2 * L1_BINS);
          k.maskedL1({ base: base.bytes, baseDType: bd, x: x.bytes, xDType: xd, computeDType: c, mask, count: n, out });
          return [l1FromBins(out, 0), l1FromBins(out, L1_BINS)];
        };
        expect(sums(NATIVE)).toEqual(sums(TS_KERNELS));
      }),
      RUNS,
    );
  });

  it('gramStats', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.array(dtypeArb, { minLength: 1, maxLength: 4 }),
        computeArb,
        fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 4 })),
        fc.boolean(),
        fc.boolean(),
        (seed, dts, c, [outer, len, inner], withBase, withMask) => {
          const r = seeded(seed);
          const n = outer * len * inner;
          const ins = dts.map((d) => tensor(r, n, d, false));
          const base = withBase ? tensor(r, n, 1, false) : undefined;
          const mask = withMask ? Uint8Array.from({ length: n }, () => (r() < 0.6 ? 1 : 0)) : null;
          const m = dts.length;
          agree(
            () => new Float64Array(outer * inner * ((m * (m + 1)) / 2)),
            (k, out) =>
              k.gramStats({ inputs: ins.map((t) => t.bytes), dtypes: Int32Array.from(dts), base: base?.bytes ?? null, baseDType: 1, computeDType: c, mask, outer, len, inner, out }),
          );
        },
      ),
      RUNS,
    );
  });

  it('nearswapMerge', () => {
    fc.assert(
      fc.property(seedArb, dtypeArb, dtypeArb, computeArb, dtypeArb, fc.integer({ min: 1, max: 1500 }), fc.boolean(), (seed, da, db, c, out, n, specials) => {
        const r = seeded(seed);
        const av = values(r, n, { specials });
        const a = { bytes: encode(av, da), dtype: da };
        // b near a so that every branch of the clamp is taken: swapped, blended and kept.
        const b = tensor(r, n, db, specials, av);
        const t = [0.001, 0.05, 1e-7, -0.01][Math.floor(r() * 4)] ?? 0.001;
        const start = Math.floor(r() * n);
        agree(
          () => new Uint8Array(n * kernelDTypeSize(out)),
          (k, o) => k.nearswapMerge({ a: a.bytes, aDType: da, b: b.bytes, bDType: db, t, computeDType: c, out: o, outDType: out, start, end: n }),
        );
      }),
      RUNS,
    );
  });

  it('sceVariance', () => {
    fc.assert(
      fc.property(seedArb, dtypeArb, fc.array(dtypeArb, { minLength: 1, maxLength: 4 }), computeArb, fc.integer({ min: 0, max: 1500 }), fc.boolean(), (seed, bd, dts, c, n, specials) => {
        const r = seeded(seed);
        const base = tensor(r, n, bd, specials);
        const ins = dts.map((d) => tensor(r, n, d, specials));
        const args = { base: base.bytes, baseDType: bd, inputs: ins.map((t) => t.bytes), dtypes: Int32Array.from(dts), computeDType: c, count: n };
        agree(() => new Float64Array(1), (k, out) => k.sceVariance({ ...args, variance: new Float32Array(n), out }));
        agree(
          () => new Uint8Array(n * 4),
          (k, v) => k.sceVariance({ ...args, variance: new Float32Array(v.buffer), out: new Float64Array(1) }),
        );
      }),
      RUNS,
    );
  });

  it('multislerpTangent and multislerpMix', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.array(dtypeArb, { minLength: 1, maxLength: 4 }),
        computeArb,
        dtypeArb,
        fc.integer({ min: 1, max: 1500 }),
        fc.boolean(),
        fc.boolean(),
        (seed, dts, c, out, n, withBase, specials) => {
          const r = seeded(seed);
          const ins = dts.map((d) => tensor(r, n, d, specials));
          const base = withBase ? tensor(r, n, 2, false) : undefined;
          const m = dts.length;
          const common = {
            inputs: ins.map((t) => t.bytes),
            dtypes: Int32Array.from(dts),
            base: base?.bytes ?? null,
            baseDType: 2 as const,
            computeDType: c,
            count: n,
            divisors: Float32Array.from({ length: m }, () => 0.5 + r() * 3),
            weights: Float32Array.from({ length: m }, () => r() * 1.2 - 0.1),
            dots: Float32Array.from({ length: m }, () => r()),
            meanNorm: 0.3 + r(),
          };
          agree(() => new Float64Array(1), (k, o) => k.multislerpTangent({ ...common, out: o }));
          const start = Math.floor(r() * n);
          const mix = { cosT: r(), sincT: r(), scale: 0.5 + r() * 4, start, end: n };
          agree(() => new Uint8Array(n * kernelDTypeSize(out)), (k, o) => k.multislerpMix({ ...common, ...mix, out: o, outDType: out }));
        },
      ),
      RUNS,
    );
  });

  it('karcherTangent and karcherStep', () => {
    fc.assert(
      fc.property(seedArb, fc.array(dtypeArb, { minLength: 1, maxLength: 4 }), computeArb, fc.integer({ min: 1, max: 1500 }), fc.boolean(), fc.boolean(), (seed, dts, c, n, specials, withT) => {
        const r = seeded(seed);
        const ins = dts.map((d) => tensor(r, n, d, specials));
        const m = dts.length;
        const u0 = values(r, n);
        const uDiv = r() < 0.5 ? 1 : 0.5 + r() * 3;
        const args = {
          inputs: ins.map((t) => t.bytes),
          dtypes: Int32Array.from(dts),
          computeDType: c,
          count: n,
          norms: Float32Array.from({ length: m }, () => 0.5 + r() * 3),
          coefs: Float32Array.from({ length: m }, () => r()),
          dots: Float32Array.from({ length: m }, () => r() * 2 - 1),
          uDiv,
        };
        agree(() => new Float64Array(1), (k, out) => k.karcherTangent({ ...args, u: u0.slice(), t: new Float32Array(n), out }));
        agree(
          () => new Uint8Array(n * 4),
          (k, t) => k.karcherTangent({ ...args, u: u0.slice(), t: new Float32Array(t.buffer), out: new Float64Array(1) }),
        );
        const t = values(r, n);
        const step = { computeDType: c, count: n, uDiv, t: withT ? t : null, cosN: r(), sinN: r(), normT: 0.2 + r() };
        agree(
          () => new Uint8Array(n * 4),
          (k, u) => {
            new Float32Array(u.buffer).set(u0);
            k.karcherStep({ ...step, u: new Float32Array(u.buffer) });
          },
        );
      }),
      RUNS,
    );
  });

  it('slerpMix', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.tuple(dtypeArb, dtypeArb, dtypeArb),
        computeArb,
        computeArb,
        dtypeArb,
        fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 4 })),
        fc.boolean(),
        (seed, [d0, d1, db], c, op, out, [outer, len, inner], withBase) => {
          const r = seeded(seed);
          const n = outer * len * inner;
          const v0 = tensor(r, n, d0, true);
          const v1 = tensor(r, n, d1, true);
          const base = withBase ? tensor(r, n, db, false) : undefined;
          const vectors = outer * inner;
          const c0 = Float32Array.from({ length: vectors }, () => r());
          const c1 = Float32Array.from({ length: vectors }, () => r());
          const div = Float32Array.from({ length: vectors }, () => (r() < 0.5 ? 1 : 0.2 + r()));
          const start = Math.floor(r() * n);
          const end = start + Math.floor(r() * (n - start + 1));
          agree(
            () => new Uint8Array(n * kernelDTypeSize(out)),
            (k, o) =>
              k.slerpMix({
                v0: v0.bytes, v0DType: d0, v1: v1.bytes, v1DType: d1, base: base?.bytes ?? null, baseDType: db,
                computeDType: c, opDType: op, outer, len, inner, c0, c1, div, out: o, outDType: out, start, end,
              }),
          );
        },
      ),
      RUNS,
    );
  });

  it('modelStockMix', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.array(dtypeArb, { minLength: 1, maxLength: 4 }),
        computeArb,
        dtypeArb,
        fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 3 })),
        (seed, dts, c, out, [outer, len, inner]) => {
          const r = seeded(seed);
          const n = outer * len * inner;
          const base = tensor(r, n, 0, true);
          const ins = dts.map((d) => tensor(r, n, d, true));
          const vectors = outer * inner;
          const t = Float32Array.from({ length: vectors }, () => r());
          const omt = Float32Array.from(t, (v) => 1 - v);
          agree(
            () => new Uint8Array(n * kernelDTypeSize(out)),
            (k, o) =>
              k.modelStockMix({
                base: base.bytes, baseDType: 0, inputs: ins.map((x) => x.bytes), dtypes: Int32Array.from(dts),
                computeDType: c as ComputeCode, outer, len, inner, t, omt, out: o, outDType: out, start: 0, end: n,
              }),
          );
        },
      ),
      RUNS,
    );
  });

  it('rejects buffers too short for the asked range instead of reading past them', () => {
    const k = NATIVE;
    if (k === undefined) return;
    const tiny = new Uint8Array(8);
    expect(() =>
      k.linearMerge({ inputs: [tiny], dtypes: Int32Array.of(0), weights: Float32Array.of(1), divisor: 1, computeDType: 0, out: new Uint8Array(400), outDType: 0, start: 0, end: 100 }),
    ).toThrow(/inputs\[0\] holds 8 bytes, needs 400/);
    expect(() =>
      k.rankHistogram({ base: tiny, baseDType: 0, x: tiny, xDType: 0, computeDType: 0, count: 3, descending: true, top: new Uint32Array(65536), lowBits: new Uint32Array(2) }),
    ).toThrow(/holds 8 bytes, needs 12/);
    expect(() =>
      k.rankHistogram({ base: tiny, baseDType: 0, x: tiny, xDType: 0, computeDType: 0, count: 2, descending: true, top: new Uint32Array(100), lowBits: new Uint32Array(2) }),
    ).toThrow(/top holds 100 elements, needs 65536/);
  });
});

// The rules stand for the byte masks the mask kernels write (the path the goldens check): applying
// a rule must give the very bits of applying its mask, in both kernel tables.
describe('mask rules give the same results as the masks they stand for', () => {
  const tables: [string, KernelBinding][] = [['ts', TS_KERNELS], ...(NATIVE ? [['native', NATIVE] as [string, KernelBinding]] : [])];
  for (const [name, k] of tables) {
    it(`${name}: taskVectorMerge and maskedL1 with rank and Bernoulli rules`, () => {
      fc.assert(
        fc.property(seedArb, dtypeArb, computeArb, fc.integer({ min: 1, max: 6000 }), fc.boolean(), (seed, d, c, n, consensus) => {
          const r = seeded(seed);
          // Few distinct deltas (ties at the rank bounds) or many, with and without NaN / Inf.
          const specials = r() < 0.3;
          const base = tensor(r, n, d, specials);
          const xs = [0, 1, 2].map(() => (r() < 0.5 ? tensor(r, n, d, specials) : tensor(r, n, d, specials, new Float32Array(values(r, n).map((v) => Math.round(v * 4) / 4)))));
          const rules: MaskSource[] = [];
          const masks: Uint8Array[] = [];
          for (const x of xs) {
            const mask = new Uint8Array(n);
            if (r() < 0.5) {
              const a = Math.floor(r() * (n + 1));
              const b = Math.floor(r() * (n + 1));
              const args = { base: base.bytes, baseDType: d, x: x.bytes, xDType: d, computeDType: c, count: n, lo: Math.min(a, b), hi: Math.max(a, b), descending: r() < 0.5 };
              rules.push(rankRuleOf(k, args));
              mask.set(rankMaskOf(args));
            } else {
              // A chunk's rule draws at its offset in the whole tensor: the mask of those elements.
              const offset = r() < 0.5 ? 0 : Math.floor(r() * 5000);
              const rule = { kind: 'bernoulli' as const, key0: Math.floor(r() * 2 ** 32), key1: Math.floor(r() * 2 ** 32), threshold: keepThreshold(r()), indexOffset: offset };
              rules.push(rule);
              const whole = new Uint8Array(offset + n);
              k.bernoulliMask({ ...rule, start: offset, end: offset + n, mask: whole });
              mask.set(whole.subarray(offset));
            }
            masks.push(mask);
          }
          const merge = (m: readonly MaskSource[]): Uint8Array => {
            const out = new Uint8Array(n * 2);
            k.taskVectorMerge({
              base: base.bytes, baseDType: d, inputs: xs.map((x) => x.bytes), dtypes: Int32Array.from(xs, () => d), masks: m,
              scales: Float32Array.of(1, 1.5, 1), sparsifyDType: c, weights: Float32Array.of(0.5, 0.3, 0.2), consensus, electOnRaw: false, minDivisor: 0, normalize: true,
              divisor: 1, lambda: 1, computeDType: c, out, outDType: 2, start: 0, end: n,
            });
            return out;
          };
          expect(firstDifference(merge(rules), merge(masks))).toBe(-1);
          xs.forEach((x, i) => {
            const l1 = (mask: MaskSource): BigInt64Array => {
              const out = new BigInt64Array(2 * L1_BINS);
              k.maskedL1({ base: base.bytes, baseDType: d, x: x.bytes, xDType: d, computeDType: c, mask, count: n, out });
              return out;
            };
            expect(l1(rules[i] ?? null)).toEqual(l1(masks[i] ?? null));
          });
        }),
        { numRuns: 25 },
      );
    });
  }

  it('a rank rule is refused for a range that does not start at element 0', () => {
    const n = 8;
    const t = new Uint8Array(n * 4);
    const rule: RankRule = { kind: 'rank', lo: 0, hi: 4, descending: true, keyLo: 0, keyHi: 0, beforeLo: 0, beforeHi: 0 };
    for (const [, k] of tables) {
      expect(() =>
        k.taskVectorMerge({
          base: t, baseDType: 0, inputs: [t], dtypes: Int32Array.of(0), masks: [rule], scales: Float32Array.of(1), sparsifyDType: 0,
          weights: Float32Array.of(1), consensus: false, electOnRaw: false, minDivisor: 0, normalize: false, divisor: 1, lambda: 1, computeDType: 0, out: new Uint8Array(n * 4), outDType: 0, start: 2, end: n,
        }),
      ).toThrow(/rank mask rule needs start = 0/);
    }
  });
});

describe('scratch pages', () => {
  const tables: [string, KernelBinding][] = [['ts', TS_KERNELS], ...(NATIVE ? [['native', NATIVE] as [string, KernelBinding]] : [])];
  for (const [name, k] of tables) {
    it(`${name}: allocPages gives zeroed writable buffers; releasePages frees only its own`, () => {
      const n = 3 * 1024 * 1024 + 5;
      const a = k.allocPages(n);
      expect(a.byteLength).toBe(n);
      const v = new Uint8Array(a);
      expect(v.every((x) => x === 0)).toBe(true);
      v[0] = 7;
      v[n - 1] = 9;
      expect(v[0] + (v[n - 1] ?? 0)).toBe(16);
      const foreign = new ArrayBuffer(16);
      k.releasePages(foreign);
      expect(foreign.byteLength).toBe(16);
      k.releasePages(a);
      // The addon detaches what it unmaps, so no view can reach the freed pages.
      expect(a.byteLength).toBe(name === 'native' && process.platform === 'linux' ? 0 : n);
      k.releasePages(a);
    });
  }
});

// Registered only without the addon: with it, a placeholder would show as skipped in every run.
if (NATIVE === undefined) {
  describe('native kernels', () => {
    it.skip(`skipped: the C++ addon is not loaded (${loaded.reason ?? ''}); run npm install to build it`, () => undefined);
  });
}
