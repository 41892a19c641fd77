/**
 * nearswap (semantics §1.4), mergekit's easy_define function: with a the base and b the other
 * model, w = clamp(t / max(|a − b|, 1e-6), 0, 1) and out = w·b + (1 − w)·a, every operation
 * rounded to the compute dtype. torch evaluates `t / x` as reciprocal(x)·t, and so does the kernel.
 * Elementwise, so row chunks compute it exactly (row-chunks.ts).
 */
import {
  castOut,
  elementCount,
  globalNumber,
  kernelCode,
  MergeComputeError,
  outputBuffer,
  requireBase,
  requireEqualShapes,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';

export function computeNearswap(ctx: FamilyContext): TensorData {
  const { task } = ctx;
  const { base, index } = requireBase(ctx);
  const others = ctx.inputs.filter((_, i) => i !== index);
  // mergekit returns the base when no other model has the tensor.
  if (others.length === 0) return castOut(ctx, base);
  const other = others[0];
  if (others.length !== 1 || other === undefined) {
    throw new MergeComputeError('MERGE_INPUT', task.output, `nearswap takes exactly one model besides the base, got ${others.length}`);
  }
  requireEqualShapes(ctx, [base, other]);
  const t = globalNumber(task, 't');
  const out = outputBuffer(ctx, base.shape);
  ctx.kernels.nearswapMerge({
    a: base.bytes,
    aDType: kernelCode(ctx, base.dtype),
    b: other.bytes,
    bDType: kernelCode(ctx, other.dtype),
    t,
    computeDType: ctx.compute,
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: elementCount(base.shape),
  });
  return out;
}
