/**
 * Generalized task arithmetic (semantics §1.2, random-methods.md): task_arithmetic, ties,
 * dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della, della_linear are one routine.
 * The registry row of the method (task-vector-spec.ts) says which sparsifier and whether TIES
 * sign election runs; everything else is parameters.
 *
 *   δᵢ = R(xᵢ − base), cut to the base's shape for embeddings, skipped (with a warning) otherwise
 *   δᵢ ← sparsify(δᵢ) as a kept-positions mask, times the L1 rescale factor when `rescale`
 *   Wᵢ = R(R(wᵢ)·δᵢ); consensus or plain sum; / divisor if `normalize`; · lambda; + base
 *
 * Selection rules where mergekit's unstable sorts leave ties implementation-defined:
 * - magnitude (TIES) keeps the k = int(density·n) largest |δ| over the flattened tensor; among
 *   equal |δ| at the cut, LOWER indices are kept first.
 * - magnitude_outliers (breadcrumbs) keeps ascending ranks [n_bot, n − n_top), ties ranked by
 *   lower index first. When int(gamma·n) = 0 mergekit's slice [n_bot:-0] is empty, so the whole
 *   delta is dropped and the output is the base (semantics §0.6); reproduced deliberately.
 * - della ranks |δ| per vector along dim 1 (a 1-d tensor is one row), ties by lower index first.
 */
import { keepThreshold, streamKey } from '../random.js';
import { getMethodSpec } from '../registry.js';
import { layoutAlong, type VectorLayout } from '../native/layout.js';
import { KERNEL_DTYPE, roundTo, type ComputeCode } from '../native/numeric.js';
import type { MaskSource, RankMaskArgs, RankRule } from '../native/binding.js';
import type { Sparsifier } from '../method-spec.js';
import {
  castOut,
  cropMatrix,
  dtypeCodes,
  elementCount,
  globalFlag,
  globalNumber,
  kernelCode,
  MergeComputeError,
  modelParam,
  outputBuffer,
  requiredModelNumber,
  sameShape,
  shapeText,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';

interface TaskVector {
  /** Index in task.inputs (the random stream's model index). */
  readonly index: number;
  readonly data: TensorData;
}

interface Sparsified {
  readonly mask: MaskSource;
  readonly scale: number;
}

/** The task vectors that take part: every non-base input, cut or skipped per semantics §0.11. */
function taskVectors(ctx: FamilyContext, base: TensorData, baseIndex: number): TaskVector[] {
  const { task } = ctx;
  const out: TaskVector[] = [];
  ctx.inputs.forEach((x, index) => {
    if (index === baseIndex) return;
    if (sameShape(x.shape, base.shape)) {
      out.push({ index, data: x });
      return;
    }
    const model = task.inputs[index]?.model ?? `input ${index}`;
    if (task.isEmbed && x.shape.length === 2 && base.shape.length === 2) {
      const [rows, cols] = base.shape as [number, number];
      if ((x.shape[0] ?? 0) < rows || (x.shape[1] ?? 0) < cols) {
        throw new MergeComputeError(
          'MERGE_SHAPE',
          task.output,
          `${model} has shape ${shapeText(x.shape)}, smaller than the base's ${shapeText(base.shape)}`,
        );
      }
      out.push({ index, data: cropMatrix(x, rows, cols) });
      return;
    }
    ctx.warn(`${task.output}: skipping ${model}, shape ${shapeText(x.shape)} differs from the base's ${shapeText(base.shape)}`);
  });
  return out;
}

/** The dtype mergekit's sparsifier works in: F16 upcasts to F32 for the random draws (§1.2). */
function sparsifyDType(sparsifier: Sparsifier, compute: ComputeCode): ComputeCode {
  if (compute === KERNEL_DTYPE.F16 && (sparsifier === 'random' || sparsifier === 'della_magprune')) return KERNEL_DTYPE.F32;
  return compute;
}

/** DELLA ranks along dim 1 (argsort(dim=1)); a 1-d tensor is one row. */
function dellaLayout(shape: readonly number[]): VectorLayout {
  return layoutAlong(shape, 1);
}

/**
 * The rank window [lo, hi) of |δ| as a rule the merge kernels evaluate as they stream the tensor
 * (rankWindowBounds finds the bounds in one pass), so TIES and breadcrumbs hold no mask.
 */
function rankRule(ctx: FamilyContext, args: Omit<RankMaskArgs, 'mask'>): RankRule {
  const out = new Float64Array(4);
  ctx.kernels.rankWindowBounds({ ...args, out });
  return {
    kind: 'rank',
    lo: args.lo,
    hi: args.hi,
    descending: args.descending,
    keyLo: out[0] ?? 0,
    keyHi: out[1] ?? 0,
    beforeLo: out[2] ?? 0,
    beforeHi: out[3] ?? 0,
  };
}

function selectMask(
  ctx: FamilyContext,
  sparsifier: Sparsifier,
  base: TensorData,
  tv: TaskVector,
  density: number,
): { mask: MaskSource; rescalable: boolean } {
  const { task, compute, kernels } = ctx;
  const n = elementCount(base.shape);
  const model = task.inputs[tv.index]?.model ?? `input ${tv.index}`;
  const common = {
    base: base.bytes,
    baseDType: kernelCode(ctx, base.dtype),
    x: tv.data.bytes,
    xDType: kernelCode(ctx, tv.data.dtype),
    computeDType: compute,
  };
  switch (sparsifier) {
    case 'magnitude': {
      const k = Math.trunc(density * n);
      if (k <= 0) {
        throw new MergeComputeError('MERGE_PARAM', task.output, `density ${density} of ${model} keeps int(density·${n}) = 0 elements`);
      }
      return { mask: rankRule(ctx, { ...common, count: n, lo: 0, hi: Math.min(k, n), descending: true }), rescalable: true };
    }
    case 'magnitude_outliers': {
      const gamma = modelParam(task, tv.index, 'gamma') ?? 0.01;
      const target = Math.trunc(density * n);
      let nTop = Math.trunc(gamma * n);
      let nBot = n - target - nTop;
      if (nBot < 0) {
        nTop += nBot;
        nBot = 0;
      }
      // Python's indices[n_bot:-n_top] is empty when n_top == 0: the whole delta is dropped (§0.6).
      const lo = nTop > 0 ? Math.min(nBot, n) : 0;
      const hi = nTop > 0 ? Math.min(Math.max(nBot, n - nTop), n) : 0;
      return { mask: rankRule(ctx, { ...common, count: n, lo, hi, descending: false }), rescalable: true };
    }
    case 'random': {
      // The keep probability is density in the work dtype (bf16(0.3) = 0.30078125).
      const p = roundTo(sparsifyDType(sparsifier, compute), density);
      const key = streamKey(task.randomKey.seed, task.randomKey.tensor, tv.index);
      return { mask: { kind: 'bernoulli', ...key, threshold: keepThreshold(p) }, rescalable: true };
    }
    case 'della_magprune': {
      const mask = ctx.alloc(n);
      if (density <= 0) return { mask: mask.fill(0), rescalable: false }; // mergekit returns zeros, unrescaled
      const epsilon = modelParam(task, tv.index, 'epsilon') ?? 0.15;
      if (density + epsilon >= 1 || density - epsilon <= 0) {
        throw new MergeComputeError(
          'MERGE_PARAM',
          task.output,
          `della needs density ± epsilon inside (0, 1) for ${model}, got density ${density}, epsilon ${epsilon}`,
        );
      }
      const key = streamKey(task.randomKey.seed, task.randomKey.tensor, tv.index);
      kernels.dellaMask({
        ...common,
        ...dellaLayout(base.shape),
        workDType: sparsifyDType(sparsifier, compute),
        ...key,
        lowP: density - epsilon,
        eps: epsilon,
        mask,
      });
      return { mask, rescalable: true };
    }
    default: {
      const never: never = sparsifier;
      return never;
    }
  }
}

function sparsify(ctx: FamilyContext, sparsifier: Sparsifier | undefined, base: TensorData, tv: TaskVector): Sparsified {
  const { task } = ctx;
  const density = modelParam(task, tv.index, 'density') ?? 1;
  // Every mergekit sparsifier returns the delta untouched when density >= 1 (nothing is drawn).
  if (sparsifier === undefined || density >= 1) return { mask: null, scale: 1 };
  const n = elementCount(base.shape);
  const forced = ctx.maskOverride?.(tv.index);
  let mask: MaskSource;
  let rescalable = true;
  if (forced !== undefined) {
    if (forced.length !== n) {
      throw new MergeComputeError('MERGE_INPUT', task.output, `mask override of input ${tv.index} has ${forced.length} entries, need ${n}`);
    }
    mask = forced.map((v) => (v !== 0 ? 1 : 0));
  } else {
    ({ mask, rescalable } = selectMask(ctx, sparsifier, base, tv, density));
  }
  if (!rescalable || !globalFlag(task, 'rescale')) return { mask, scale: 1 };
  // L1 rescale over the whole tensor (never 1/density), skipped when a norm is below 1e-7.
  const work = sparsifyDType(sparsifier, ctx.compute);
  const sums = new Float64Array(2);
  ctx.kernels.maskedL1({
    base: base.bytes,
    baseDType: kernelCode(ctx, base.dtype),
    x: tv.data.bytes,
    xDType: kernelCode(ctx, tv.data.dtype),
    computeDType: ctx.compute,
    mask,
    count: n,
    out: sums,
  });
  const before = roundTo(work, sums[0] ?? 0);
  const after = roundTo(work, sums[1] ?? 0);
  const eps = roundTo(work, 1e-7);
  if (before < eps || after < eps) return { mask, scale: 1 };
  return { mask, scale: roundTo(work, before / after) };
}

export function computeTaskVector(ctx: FamilyContext): TensorData {
  const { task, compute } = ctx;
  const spec = getMethodSpec(task.method);
  const baseIndex = task.baseIndex;
  const base = baseIndex === null ? undefined : ctx.inputs[baseIndex];
  if (baseIndex === null || base === undefined) {
    throw new MergeComputeError('MERGE_INPUT', task.output, `${task.method} needs a base model`);
  }
  const tvs = taskVectors(ctx, base, baseIndex);
  if (tvs.length === 0) return castOut(ctx, base);
  const parts = tvs.map((tv) => sparsify(ctx, spec.sparsifier, base, tv));
  const weights = Float32Array.from(tvs.map((tv) => roundTo(compute, requiredModelNumber(task, tv.index, 'weight'))));
  let sum = 0;
  for (const w of weights) sum = Math.fround(sum + w);
  let divisor = roundTo(compute, sum);
  if (Math.abs(divisor) < 1e-8) divisor = 1;
  const out = outputBuffer(ctx, base.shape);
  ctx.kernels.taskVectorMerge({
    base: base.bytes,
    baseDType: kernelCode(ctx, base.dtype),
    inputs: tvs.map((tv) => tv.data.bytes),
    dtypes: dtypeCodes(ctx, tvs.map((tv) => tv.data)),
    masks: parts.map((p) => p.mask),
    scales: Float32Array.from(parts.map((p) => p.scale)),
    sparsifyDType: spec.sparsifier === undefined ? compute : sparsifyDType(spec.sparsifier, compute),
    weights,
    consensus: spec.consensus !== undefined,
    electOnRaw: false,
    minDivisor: 0,
    normalize: globalFlag(task, 'normalize'),
    divisor,
    lambda: globalNumber(task, 'lambda'),
    computeDType: compute,
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: elementCount(base.shape),
  });
  return out;
}
