/**
 * model_stock (semantics §1.3): offsets oᵢ = R(xᵢ − base), per tensor (or per row with
 * `filter_wise`); cos = mean pairwise cosine (norm product clamped ≥ 1e-6, cosine to [−1, 1]);
 * t = N·cos/(1+(N−1)·cos); out = t·mean(xᵢ) + (1−t)·base. Scalar steps round to the compute
 * dtype as torch does; the dot products are exact-product f64 sums from the gram kernel, over
 * gram blocks when they span more than a row (gram-blocks.ts), so row chunks give the same bytes.
 */
import { flatLayout, layoutAlong } from '../native/layout.js';
import { roundTo } from '../native/numeric.js';
import {
  castOut,
  commonShapes,
  dtypeCodes,
  elementCount,
  globalFlag,
  kernelCode,
  MergeComputeError,
  outputBuffer,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';
import type { TensorTask } from '../task.js';
import { type GramStats, type GramVectors, gramBlocks, gramPairs, tensorGram } from './gram-blocks.js';

/** t per vector from the gram sums (pairs (a,b), a <= b, of N offsets), and R(1 − t). */
export function modelStockWeights(compute: 0 | 1 | 2, g: Float64Array, models: number, vectors: number): { t: Float32Array; omt: Float32Array } {
  const pairs = (models * (models + 1)) / 2;
  const t = new Float32Array(vectors);
  const omt = new Float32Array(vectors);
  const index = (a: number, b: number): number => a * models - (a * (a - 1)) / 2 + (b - a);
  const minNorm = roundTo(compute, 1e-6);
  for (let v = 0; v < vectors; v++) {
    const at = v * pairs;
    const norms = Array.from({ length: models }, (_, a) => roundTo(compute, Math.sqrt(g[at + index(a, a)] ?? 0)));
    let sum = 0;
    let count = 0;
    for (let a = 0; a < models; a++) {
      for (let b = a + 1; b < models; b++) {
        const prod = roundTo(compute, (norms[a] ?? 0) * (norms[b] ?? 0));
        const dot = roundTo(compute, g[at + index(a, b)] ?? 0);
        const cos = Math.min(1, Math.max(-1, roundTo(compute, dot / Math.max(prod, minNorm))));
        sum = Math.fround(sum + cos);
        count++;
      }
    }
    const cos = roundTo(compute, sum / count);
    const tv = roundTo(compute, roundTo(compute, models * cos) / roundTo(compute, 1 + roundTo(compute, (models - 1) * cos)));
    t[v] = tv;
    omt[v] = roundTo(compute, 1 - tv);
  }
  return { t, omt };
}

/** How model_stock's dot products run over a tensor of `rank` dims: per row with filter_wise (null), else flattened. */
export function modelStockVectors(task: TensorTask, rank: number): GramVectors | null {
  return globalFlag(task, 'filter_wise') && rank >= 2 ? null : 'flat';
}

/** The base and the other models, cut to one shape; or the base alone when there is nothing to merge. */
function modelStockOperands(ctx: FamilyContext): { base: TensorData; others: TensorData[] } {
  const { task } = ctx;
  const b = task.baseIndex;
  const base0 = b === null ? undefined : ctx.inputs[b];
  if (b === null || base0 === undefined) throw new MergeComputeError('MERGE_INPUT', task.output, 'model_stock needs a base model');
  if (ctx.inputs.length === 1) return { base: base0, others: [] };
  if (ctx.inputs.length < 3) {
    throw new MergeComputeError('MERGE_INPUT', task.output, 'model_stock needs at least 3 models (the base plus two or more)');
  }
  const [base, ...others] = commonShapes(ctx, [base0, ...ctx.inputs.filter((_, i) => i !== b)]);
  if (base === undefined) throw new MergeComputeError('MERGE_INPUT', task.output, 'model_stock input missing');
  return { base, others };
}

/** The whole tensor, or a row chunk with the whole tensor's sums (ctx.chunk). */
export function computeModelStock(ctx: FamilyContext): TensorData {
  const { base, others } = modelStockOperands(ctx);
  if (others.length === 0) return castOut(ctx, base);
  const n = elementCount(base.shape);
  const vectors = modelStockVectors(ctx.task, base.shape.length);
  const layout = vectors === null ? layoutAlong(base.shape, -1) : flatLayout(n);
  const m = others.length;
  const g = tensorGram(ctx, others, base, vectors, layout);
  const { t, omt } = modelStockWeights(ctx.compute, g, m, g.length / gramPairs(m));
  const baseDType = kernelCode(ctx, base.dtype);
  const out = outputBuffer(ctx, base.shape);
  ctx.kernels.modelStockMix({
    base: base.bytes,
    baseDType,
    inputs: others.map((x) => x.bytes),
    dtypes: dtypeCodes(ctx, others),
    computeDType: ctx.compute,
    ...layout,
    t,
    omt,
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: n,
  });
  return out;
}

/** The gram pass over a row chunk of a model_stock tensor the pool runs in chunks: its blocks' sums. */
export function computeModelStockGramStats(ctx: FamilyContext): GramStats {
  const { base, others } = modelStockOperands(ctx);
  const vectors = modelStockVectors(ctx.task, base.shape.length);
  if (others.length === 0 || vectors === null) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'model_stock needs no gram pass here');
  return { pass: 'gram', blocks: gramBlocks(ctx, others, base, vectors) };
}
