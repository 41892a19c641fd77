/**
 * multislerp (semantics §1.3), mergekit's easy_define function, every step rounded to the compute
 * dtype as its torch code does. With δᵢ the flattened inputs (minus the base when there is one):
 *
 *   w = R(weight), / R(Σ w) when normalize_weights;  nᵢ = R(‖δᵢ‖);  uᵢ = R(δᵢ / R(nᵢ + eps))
 *   mean = Σ wᵢuᵢ, M = R(‖mean‖); if M < eps: lerp of the two models, or an error for more
 *   m = R(mean / M);  τ = Σ wᵢ R(uᵢ − R((uᵢ·m)·m));  T = R(R(‖τ‖) + eps)
 *   out = R(R(m·cos T) + R(τ·R(sin T / T))) · R(Σ wᵢnᵢ)  (+ base)
 *
 * The norms nᵢ come from the gram kernel's exact f64 sums (torch.norm upcasts before it squares).
 * M is the norm of the ROUNDED mean vector R(Σ R(uᵢwᵢ)) and the dots are Σ R(uᵢ·m) with each
 * product rounded, as `(unit_tensors * mean).sum(-1)` is: both from the multislerpMoments kernel
 * (taking them from the unrounded gram moved M by an ulp in bf16, and with it every element of m).
 * τ, whose norm needs its own pass, is recomputed per element by the multislerp kernel. With
 * exact arithmetic τ is 0 (m is the weighted mean of the uᵢ), so the result is the normalised
 * weighted mean of the unit vectors; τ carries only rounding.
 */
import { flatLayout } from '../native/layout.js';
import { KERNEL_DTYPE, roundTo } from '../native/numeric.js';
import {
  castOut,
  dtypeCodes,
  elementCount,
  globalFlag,
  globalNumber,
  kernelCode,
  MergeComputeError,
  outputBuffer,
  requiredModelNumber,
  requireEqualShapes,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';

/** The weights as mergekit uses them: rounded, then divided by their rounded sum when normalising. */
function multislerpWeights(ctx: FamilyContext, indices: readonly number[]): Float32Array {
  const { task, compute: c } = ctx;
  const raw = indices.map((i) => roundTo(c, requiredModelNumber(task, i, 'weight')));
  if (!globalFlag(task, 'normalize_weights')) return Float32Array.from(raw);
  let sum = 0;
  for (const w of raw) sum = Math.fround(sum + w);
  sum = roundTo(c, sum);
  if (sum === 0) {
    throw new MergeComputeError('MERGE_PARAM', task.output, 'multislerp weights sum to 0 with normalize_weights: true; change a weight or set normalize_weights: false');
  }
  return Float32Array.from(raw, (w) => roundTo(c, w / sum));
}

export function computeMultislerp(ctx: FamilyContext): TensorData {
  const { task, compute: c } = ctx;
  const b = task.baseIndex;
  const base = b === null ? undefined : ctx.inputs[b];
  const indices = ctx.inputs.map((_, i) => i).filter((i) => i !== b);
  const xs = indices.map((i) => ctx.inputs[i]).filter((x): x is TensorData => x !== undefined);
  const first = xs[0];
  if (first === undefined) {
    // mergekit fails here too (an empty stack of task vectors) rather than returning the base.
    throw new MergeComputeError('MERGE_INPUT', task.output, base === undefined ? 'multislerp needs at least one model' : 'multislerp needs at least one model besides the base, which is the only one given');
  }
  // mergekit returns a lone model's tensor as it is (not relative to the base).
  if (xs.length === 1) return castOut(ctx, first);
  requireEqualShapes(ctx, base === undefined ? xs : [...xs, base]);
  const n = elementCount(first.shape);
  const m = xs.length;
  const weights = multislerpWeights(ctx, indices);
  const eps = globalNumber(task, 'eps');
  const epsF = Math.fround(eps);
  const dtypes = dtypeCodes(ctx, xs);
  const baseBytes = base?.bytes ?? null;
  const baseDType = base === undefined ? KERNEL_DTYPE.F32 : kernelCode(ctx, base.dtype);
  const g = new Float64Array((m * (m + 1)) / 2);
  ctx.kernels.gramStats({ inputs: xs.map((x) => x.bytes), dtypes, base: baseBytes, baseDType, computeDType: c, ...flatLayout(n), out: g });
  const pair = (p: number, q: number): number => {
    const [lo, hi] = p <= q ? [p, q] : [q, p];
    return g[lo * m - (lo * (lo - 1)) / 2 + (hi - lo)] ?? 0;
  };
  const norms = Array.from({ length: m }, (_, i) => roundTo(c, Math.sqrt(pair(i, i))));
  const divisors = Float32Array.from(norms, (v) => roundTo(c, v + epsF));
  const inputs = xs.map((x) => x.bytes);
  const moments = new Float64Array(1 + m);
  const momentArgs = { inputs, dtypes, base: baseBytes, baseDType, computeDType: c, count: n, divisors, weights, out: moments };
  // ‖mean‖ of the rounded mean vector R(Σ R(uᵢwᵢ)).
  ctx.kernels.multislerpMoments({ ...momentArgs, withDots: false });
  const meanNorm = roundTo(c, Math.sqrt(moments[0] ?? 0));
  const out = outputBuffer(ctx, first.shape);
  const [x0, x1] = xs;
  if (meanNorm < roundTo(c, eps)) {
    if (m !== 2 || x0 === undefined || x1 === undefined) {
      throw new MergeComputeError(
        'MERGE_PARAM',
        task.output,
        `multislerp: the weighted sum of the ${m} unit directions is 0 (antipodal models with balancing weights); change the weights`,
      );
    }
    // mergekit's fallback for two models: δ₀w₀ + δ₁w₁ (+ base).
    ctx.kernels.slerpMix({
      v0: x0.bytes,
      v0DType: kernelCode(ctx, x0.dtype),
      v1: x1.bytes,
      v1DType: kernelCode(ctx, x1.dtype),
      base: baseBytes,
      baseDType,
      computeDType: c,
      opDType: c,
      ...flatLayout(n),
      c0: Float32Array.of(weights[0] ?? 0),
      c1: Float32Array.of(weights[1] ?? 0),
      div: Float32Array.of(1),
      out: out.bytes,
      outDType: ctx.outCode,
      start: 0,
      end: n,
    });
    return out;
  }
  // dotsᵢ = R(Σ R(uᵢ·m)) with m = R(mean / M).
  ctx.kernels.multislerpMoments({ ...momentArgs, meanNorm, withDots: true });
  const dots = Float32Array.from({ length: m }, (_, i) => roundTo(c, moments[1 + i] ?? 0));
  const common = { inputs, dtypes, base: baseBytes, baseDType, computeDType: c, count: n, divisors, weights, dots, meanNorm };
  const tangentSq = new Float64Array(1);
  ctx.kernels.multislerpTangent({ ...common, out: tangentSq });
  const tn = roundTo(c, roundTo(c, Math.sqrt(tangentSq[0] ?? 0)) + epsF);
  let scale = 0;
  norms.forEach((v, i) => {
    scale = Math.fround(scale + roundTo(c, v * (weights[i] ?? 0)));
  });
  ctx.kernels.multislerpMix({
    ...common,
    cosT: roundTo(c, Math.cos(tn)),
    sincT: roundTo(c, roundTo(c, Math.sin(tn)) / tn),
    scale: roundTo(c, scale),
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: n,
  });
  return out;
}
