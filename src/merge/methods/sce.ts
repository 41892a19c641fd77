/**
 * sce (semantics §1.4), mergekit's easy_define function, with τᵢ = R(xᵢ − base):
 *
 *   select_topk < 1: keep the k = int(nnz(var)·select_topk) positions of largest across-model
 *     variance (population variance, in f64 as torch's CPU var, then rounded); the rest of every
 *     τᵢ is zeroed. Among equal variances at the cut, LOWER indices are kept first (torch's topk
 *     leaves ties unspecified).
 *   cᵢ = mean(τᵢ²) / Σⱼ mean(τⱼ²), or 1/N when that sum is below 1e-6 (no user weights);
 *   elected sign = sign of Σᵢ τᵢ (unweighted, 0 counts as +); eᵢ = sign(τᵢ) == elected;
 *   out = base + Σ cᵢeᵢτᵢ / max(Σ cᵢeᵢ, 1e-6).
 *
 * The variance is the sce-variance kernel, the selection the TIES rank rule (rank-window.ts), the energies the
 * gram kernel (with each square rounded to the compute dtype first, as torch's `tvs**2` is) and the
 * rest the task-vector kernel with its SCE election and divisor clamp.
 */
import { flatLayout } from '../native/layout.js';
import { BLOCK, KERNEL_DTYPE, roundTo } from '../native/numeric.js';
import { blockMasker } from '../native/mask-rule.js';
import { chunkRankRules, type RankLowCounts, selectBounds, selectTop, sparseCounts } from './rank-window.js';
import {
  castOut,
  dtypeCodes,
  elementCount,
  f32Scratch,
  globalNumber,
  kernelCode,
  outputBuffer,
  requireBase,
  requireEqualShapes,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';

/** The kept positions by variance (1 = kept), or null when select_topk keeps everything. */
function varianceMask(ctx: FamilyContext, base: TensorData, tvs: readonly TensorData[], topk: number): Uint8Array | null {
  if (topk >= 1) return null;
  const n = elementCount(base.shape);
  const mask = ctx.alloc(n);
  if (topk <= 0) return mask.fill(0);
  const variance = f32Scratch(ctx, n);
  const stats = new Float64Array(1);
  const baseDType = kernelCode(ctx, base.dtype);
  ctx.kernels.sceVariance({
    base: base.bytes,
    baseDType,
    inputs: tvs.map((t) => t.bytes),
    dtypes: dtypeCodes(ctx, tvs),
    computeDType: ctx.compute,
    count: n,
    variance,
    out: stats,
  });
  // int(count_nonzero(var) * select_topk): an int64 0-d tensor times a float is an f32 product.
  const k = Math.trunc(Math.fround(Math.fround(stats[0] ?? 0) * Math.fround(topk)));
  if (k === 0) return mask.fill(0);
  // The rank rule orders |R(x − base)|: against a zero base that is the variance itself, so the
  // selection is the one TIES uses (rank-window.ts), ties at the cut by lower index.
  const zeros = ctx.alloc(n * 2).fill(0);
  const args = {
    base: zeros,
    baseDType: KERNEL_DTYPE.F16,
    x: new Uint8Array(variance.buffer, variance.byteOffset, variance.byteLength),
    xDType: KERNEL_DTYPE.F32,
    computeDType: KERNEL_DTYPE.F32,
    count: n,
    descending: true,
  };
  const window = { lo: 0, hi: k, descending: true };
  const top = new Uint32Array(65536);
  const lowBits = new Uint32Array(2);
  ctx.kernels.rankHistogram({ ...args, top, lowBits });
  const topCounts = [{ top: sparseCounts(top), lowOr: lowBits[0] ?? 0, lowAnd: lowBits[1] ?? 0 }];
  const selection = selectTop(window, topCounts);
  let low: RankLowCounts[] | null = null;
  if (selection.uniformLow === null) {
    const lowLo = new Uint32Array(65536);
    const lowHi = new Uint32Array(65536);
    ctx.kernels.rankLowHistogram({ ...args, bucketLo: selection.bucketLo, bucketHi: selection.bucketHi, lowLo, lowHi });
    low = [{ lowLo: sparseCounts(lowLo), lowHi: sparseCounts(lowHi) }];
  }
  const [rule] = chunkRankRules(window, selectBounds(window, selection, low), topCounts, low, 1);
  if (rule === undefined) throw new Error('no rank rule for the variance selection');
  // The rule evaluated over the variance (its own |δ| against the zero base), block by block.
  const bits = new Uint32Array(variance.buffer, variance.byteOffset, n);
  const masker = blockMasker(rule, 0, n, 'sce variance mask');
  for (let j = 0; j < n; j += BLOCK) {
    const m = Math.min(BLOCK, n - j);
    mask.set(masker.block(j, m, bits.subarray(j, j + m)).subarray(0, m), j);
  }
  return mask;
}

/** cᵢ from Σ R((maskᵢ·τᵢ)²) (gram diagonal, squares rounded as `tvs**2` is), rounded as torch does. */
function energyWeights(ctx: FamilyContext, base: TensorData, tvs: readonly TensorData[], mask: Uint8Array | null): Float32Array {
  const c = ctx.compute;
  const n = elementCount(base.shape);
  const m = tvs.length;
  const g = new Float64Array((m * (m + 1)) / 2);
  ctx.kernels.gramStats({
    inputs: tvs.map((t) => t.bytes),
    dtypes: dtypeCodes(ctx, tvs),
    base: base.bytes,
    baseDType: kernelCode(ctx, base.dtype),
    computeDType: c,
    mask,
    roundProducts: true,
    ...flatLayout(n),
    out: g,
  });
  const energy = tvs.map((_, a) => roundTo(c, (g[a * m - (a * (a - 1)) / 2] ?? 0) / n));
  let sum = 0;
  for (const e of energy) sum = Math.fround(sum + e);
  sum = roundTo(c, sum);
  if (Math.abs(sum) < 1e-6) return Float32Array.from(energy, () => roundTo(c, 1 / m));
  return Float32Array.from(energy, (e) => roundTo(c, e / sum));
}

export function computeSce(ctx: FamilyContext): TensorData {
  const { task } = ctx;
  const { base, index } = requireBase(ctx);
  const tvs = ctx.inputs.filter((_, i) => i !== index);
  if (tvs.length === 0) return castOut(ctx, base);
  requireEqualShapes(ctx, [base, ...tvs]);
  const mask = varianceMask(ctx, base, tvs, globalNumber(task, 'select_topk'));
  // Nothing selected: every task vector is zeroed and the output is the base.
  if (mask !== null && !mask.includes(1)) return castOut(ctx, base);
  const weights = energyWeights(ctx, base, tvs, mask);
  const out = outputBuffer(ctx, base.shape);
  ctx.kernels.taskVectorMerge({
    base: base.bytes,
    baseDType: kernelCode(ctx, base.dtype),
    inputs: tvs.map((t) => t.bytes),
    dtypes: dtypeCodes(ctx, tvs),
    masks: tvs.map(() => mask),
    scales: Float32Array.from(tvs, () => 1),
    sparsifyDType: ctx.compute,
    weights,
    consensus: true,
    electOnRaw: true,
    minDivisor: 1e-6,
    normalize: true,
    divisor: 1,
    lambda: 1,
    computeDType: ctx.compute,
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: elementCount(base.shape),
  });
  return out;
}
