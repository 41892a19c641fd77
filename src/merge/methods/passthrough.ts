/** passthrough (semantics §1.4): the single input, multiplied by `scale` when one is set. */
import { castOut, dtypeCodes, elementCount, MergeComputeError, modelParam, outputBuffer, type FamilyContext, type TensorData } from './task-inputs.js';

export function computePassthrough(ctx: FamilyContext): TensorData {
  const { task } = ctx;
  const only = ctx.inputs[0];
  if (only === undefined || ctx.inputs.length !== 1) {
    throw new MergeComputeError('MERGE_INPUT', task.output, `passthrough expects exactly one input, got ${ctx.inputs.length}`);
  }
  const scale = modelParam(task, 0, 'scale');
  if (scale === undefined) return castOut(ctx, only);
  // tensor * scale with a Python float: the product runs in f32 and rounds to the compute dtype,
  // i.e. a one-input linear merge whose weight is f32(scale), not scale rounded to the dtype.
  const out = outputBuffer(ctx, only.shape);
  ctx.kernels.linearMerge({
    inputs: [only.bytes],
    dtypes: dtypeCodes(ctx, [only]),
    weights: Float32Array.of(Math.fround(scale)),
    divisor: 1,
    computeDType: ctx.compute,
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: elementCount(only.shape),
  });
  return out;
}
