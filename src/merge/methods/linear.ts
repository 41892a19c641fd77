/** linear (semantics §1.3): out = Σ wᵢxᵢ, divided by Σ wᵢ when `normalize` (default true). */
import { roundTo } from '../native/numeric.js';
import {
  commonShapes,
  dtypeCodes,
  elementCount,
  globalFlag,
  MergeComputeError,
  outputBuffer,
  requiredModelNumber,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';

export function computeLinear(ctx: FamilyContext): TensorData {
  const { task, compute } = ctx;
  const tensors = commonShapes(ctx, ctx.inputs);
  const first = tensors[0];
  if (first === undefined) throw new MergeComputeError('MERGE_INPUT', task.output, 'linear needs at least one input');
  // torch.tensor(weights, dtype=x.dtype): each weight rounds to the compute dtype (0.3 → 0.30078125 in bf16).
  const weights = Float32Array.from(tensors.map((_, i) => roundTo(compute, requiredModelNumber(task, i, 'weight'))));
  let divisor = 1;
  if (globalFlag(task, 'normalize')) {
    let sum = 0;
    for (const w of weights) sum = Math.fround(sum + w);
    divisor = roundTo(compute, sum);
    // mergekit divides by zero here and writes inf/NaN (semantics §0.8); evomerge refuses.
    if (divisor === 0) {
      throw new MergeComputeError('MERGE_PARAM', task.output, 'linear weights sum to 0 with normalize: true');
    }
  }
  const out = outputBuffer(ctx, first.shape);
  ctx.kernels.linearMerge({
    inputs: tensors.map((t) => t.bytes),
    dtypes: dtypeCodes(ctx, tensors),
    weights,
    divisor,
    computeDType: compute,
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: elementCount(first.shape),
  });
  return out;
}
