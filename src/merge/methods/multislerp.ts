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
 *
 * The four sums (gram, ‖mean‖, dots, ‖τ‖) are passes over the tensor, each needing the last's
 * result. They run in gram blocks (gram-blocks.ts), so a tensor the pool cuts into row chunks runs
 * them as gram passes over its chunks (gram-stats.ts) and gives the bytes of the tensor merged whole.
 */
import { flatLayout } from '../native/layout.js';
import type { TensorTask } from '../task.js';
import { type GramStats, gramPairs, gramSums, passSums, perGramBlock, sumGramBlocks } from './gram-blocks.js';
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

/** The most gram passes multislerp needs: the gram (norms), ‖mean‖, the dots, ‖τ‖. */
export const MULTISLERP_PASSES = 4;

type MultislerpPass = 'gram' | 'mean' | 'dots' | 'tangent';

/** Indices of the task's inputs besides the base, in order. */
function modelIndices(task: TensorTask): number[] {
  return task.inputs.map((_, i) => i).filter((i) => i !== task.baseIndex);
}

/** The weights as mergekit uses them: rounded, then divided by their rounded sum when normalising. */
function multislerpWeights(task: TensorTask, c: 0 | 1 | 2): Float32Array {
  const raw = modelIndices(task).map((i) => roundTo(c, requiredModelNumber(task, i, 'weight')));
  if (!globalFlag(task, 'normalize_weights')) return Float32Array.from(raw);
  let sum = 0;
  for (const w of raw) sum = Math.fround(sum + w);
  sum = roundTo(c, sum);
  if (sum === 0) {
    throw new MergeComputeError('MERGE_PARAM', task.output, 'multislerp weights sum to 0 with normalize_weights: true; change a weight or set normalize_weights: false');
  }
  return Float32Array.from(raw, (w) => roundTo(c, w / sum));
}

/** What the passes so far (their whole-tensor sums, in order) give: each null until its pass has run. */
interface MultislerpScalars {
  readonly norms: readonly number[] | null;
  readonly divisors: Float32Array | null;
  readonly meanNorm: number | null;
  readonly dots: Float32Array | null;
  /** R(R(‖τ‖) + eps). */
  readonly tangentNorm: number | null;
}

function scalarsOf(task: TensorTask, done: readonly Float64Array[]): MultislerpScalars {
  const c = KERNEL_DTYPE[task.computeDType];
  const m = modelIndices(task).length;
  const epsF = Math.fround(globalNumber(task, 'eps'));
  const [g, mean, dotSums, tangent] = done;
  const pair = (i: number): number => g?.[i * m - (i * (i - 1)) / 2] ?? 0;
  const norms = g === undefined ? null : Array.from({ length: m }, (_, i) => roundTo(c, Math.sqrt(pair(i))));
  return {
    norms,
    divisors: norms === null ? null : Float32Array.from(norms, (v) => roundTo(c, v + epsF)),
    // ‖mean‖ of the rounded mean vector R(Σ R(uᵢwᵢ)); dotsᵢ = R(Σ R(uᵢ·m)) with m = R(mean / M).
    meanNorm: mean === undefined ? null : roundTo(c, Math.sqrt(mean[0] ?? 0)),
    dots: dotSums === undefined ? null : Float32Array.from({ length: m }, (_, i) => roundTo(c, dotSums[1 + i] ?? 0)),
    tangentNorm: tangent === undefined ? null : roundTo(c, roundTo(c, Math.sqrt(tangent[0] ?? 0)) + epsF),
  };
}

/** The pass multislerp needs after those whose sums are `done`, or null when it can mix. */
export function multislerpNextPass(task: TensorTask, done: readonly Float64Array[]): MultislerpPass | null {
  const passes: readonly MultislerpPass[] = ['gram', 'mean', 'dots', 'tangent'];
  if (done.length >= 2) {
    // A mean of norm below eps leaves mergekit's two-model lerp (or an error): no more sums.
    const { meanNorm } = scalarsOf(task, done.slice(0, 2));
    if (meanNorm === null || meanNorm < roundTo(KERNEL_DTYPE[task.computeDType], globalNumber(task, 'eps'))) return null;
  }
  return passes[done.length] ?? null;
}

interface MultislerpOperands {
  readonly xs: readonly TensorData[];
  readonly base: TensorData | undefined;
}

/** The models besides the base (and the base), or the lone model when there is nothing to mix. */
function multislerpOperands(ctx: FamilyContext): MultislerpOperands | TensorData {
  const { task } = ctx;
  const b = task.baseIndex;
  const base = b === null ? undefined : ctx.inputs[b];
  const xs = modelIndices(task).map((i) => ctx.inputs[i]).filter((x): x is TensorData => x !== undefined);
  const first = xs[0];
  if (first === undefined) {
    // mergekit fails here too (an empty stack of task vectors) rather than returning the base.
    throw new MergeComputeError('MERGE_INPUT', task.output, base === undefined ? 'multislerp needs at least one model' : 'multislerp needs at least one model besides the base, which is the only one given');
  }
  // mergekit returns a lone model's tensor as it is (not relative to the base).
  if (xs.length === 1) return first;
  requireEqualShapes(ctx, base === undefined ? xs : [...xs, base]);
  return { xs, base };
}

/** One pass's sums over the operands, per gram block. */
function passBlocks(ctx: FamilyContext, op: MultislerpOperands, pass: MultislerpPass, done: readonly Float64Array[]): Float64Array {
  const c = ctx.compute;
  const m = op.xs.length;
  const s = scalarsOf(ctx.task, done);
  const weights = pass === 'gram' ? new Float32Array(m) : multislerpWeights(ctx.task, c);
  const baseDType = op.base === undefined ? KERNEL_DTYPE.F32 : kernelCode(ctx, op.base.dtype);
  return perGramBlock(op.xs, op.base, (xs, base, count) => {
    if (pass === 'gram') return gramSums(ctx, xs, base, flatLayout(count));
    const inputs = { inputs: xs.map((x) => x.bytes), dtypes: dtypeCodes(ctx, xs), base: base?.bytes ?? null, baseDType, computeDType: c, count, divisors: s.divisors ?? new Float32Array(m), weights };
    const out = new Float64Array(pass === 'tangent' ? 1 : 1 + m);
    if (pass === 'mean') ctx.kernels.multislerpMoments({ ...inputs, withDots: false, out });
    else if (pass === 'dots') ctx.kernels.multislerpMoments({ ...inputs, meanNorm: s.meanNorm ?? 1, withDots: true, out });
    else ctx.kernels.multislerpTangent({ ...inputs, dots: s.dots ?? new Float32Array(m), meanNorm: s.meanNorm ?? 1, out });
    return out;
  });
}

/** Sums per block of each pass: gram pairs, then [Σ mean², dots], then [Σ τ²]. */
function passWidth(pass: MultislerpPass, m: number): number {
  return pass === 'gram' ? gramPairs(m) : pass === 'tangent' ? 1 : 1 + m;
}

/** Sums per gram block of the pass multislerp needs after `done` (0 when none). */
export function multislerpPassWidth(task: TensorTask, done: readonly Float64Array[]): number {
  const pass = multislerpNextPass(task, done);
  return pass === null ? 0 : passWidth(pass, modelIndices(task).length);
}

/** The whole tensor, or a row chunk with the whole tensor's sums of every pass (ctx.chunk). */
export function computeMultislerp(ctx: FamilyContext): TensorData {
  const { task, compute: c } = ctx;
  const op = multislerpOperands(ctx);
  if (!('xs' in op)) return castOut(ctx, op);
  const m = op.xs.length;
  let done: readonly Float64Array[] | undefined = passSums(ctx);
  if (done === undefined) {
    const sums: Float64Array[] = [];
    for (let pass = multislerpNextPass(task, sums); pass !== null; pass = multislerpNextPass(task, sums)) {
      sums.push(sumGramBlocks(passBlocks(ctx, op, pass, sums), passWidth(pass, m)));
    }
    done = sums;
  } else if (multislerpNextPass(task, done) !== null) {
    throw new MergeComputeError('MERGE_INPUT', task.output, 'multislerp chunk merged before its sums are known');
  }
  const s = scalarsOf(task, done);
  const weights = multislerpWeights(task, c);
  const n = elementCount(op.xs[0]?.shape ?? []);
  const dtypes = dtypeCodes(ctx, op.xs);
  const baseBytes = op.base?.bytes ?? null;
  const baseDType = op.base === undefined ? KERNEL_DTYPE.F32 : kernelCode(ctx, op.base.dtype);
  const out = outputBuffer(ctx, op.xs[0]?.shape ?? []);
  const [x0, x1] = op.xs;
  if (s.meanNorm === null || s.norms === null || s.divisors === null) throw new MergeComputeError('MERGE_INPUT', task.output, 'multislerp sums missing');
  if (s.meanNorm < roundTo(c, globalNumber(task, 'eps'))) {
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
  if (s.dots === null || s.tangentNorm === null) throw new MergeComputeError('MERGE_INPUT', task.output, 'multislerp sums missing');
  const tn = s.tangentNorm;
  let scale = 0;
  s.norms.forEach((v, i) => {
    scale = Math.fround(scale + roundTo(c, v * (weights[i] ?? 0)));
  });
  ctx.kernels.multislerpMix({
    inputs: op.xs.map((x) => x.bytes),
    dtypes,
    base: baseBytes,
    baseDType,
    computeDType: c,
    count: n,
    divisors: s.divisors,
    weights,
    dots: s.dots,
    meanNorm: s.meanNorm,
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

/** The next gram pass over a row chunk of a multislerp tensor the pool runs in chunks: its blocks' sums. */
export function computeMultislerpGramStats(ctx: FamilyContext): GramStats {
  const op = multislerpOperands(ctx);
  const done = passSums(ctx) ?? [];
  const pass = multislerpNextPass(ctx.task, done);
  if (!('xs' in op) || pass === null) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'multislerp needs no gram pass here');
  return { pass: 'gram', blocks: passBlocks(ctx, op, pass, done) };
}
