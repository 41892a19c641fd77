/**
 * slerp and nuslerp (semantics §1.3). The per-tensor (or per-vector) scalar work — norms, angle,
 * coefficients — happens here from the gram kernel's f64 sums; the slerp-mix kernel applies the
 * coefficients to every element.
 *
 * slerp follows mergekit's numpy code: f32 arrays, the whole flattened tensor, lerp when
 * |cos| > 0.9995, vectors normalised only when their norm exceeds 1e-8, and the coefficients
 * applied to the unnormalised tensors; the f32 result is then cast to the compute dtype.
 * nuslerp follows its torch code in the compute dtype: t = w₂/(w₁+w₂), norms clamped to ≥ 1e-7,
 * lerp only where |sin θ| < 1e-8, and with a base the task vectors are mixed and added back.
 * The dot products here are exact-product f64 sums, where mergekit rounds each normalised element
 * first, so an angle may differ in its last f32 bit (well inside the golden tolerance). Sums over
 * more than a row run in gram blocks (gram-blocks.ts), so a tensor the pool cuts into row chunks
 * (a gram pass, gram-stats.ts, then each chunk mixed) gives the bytes of the tensor merged whole.
 */
import type { TensorTask } from '../task.js';
import { flatLayout, layoutAlong, type VectorLayout } from '../native/layout.js';
import { KERNEL_DTYPE, roundTo } from '../native/numeric.js';
import {
  castOut,
  commonShapes,
  elementCount,
  globalFlag,
  globalNumber,
  kernelCode,
  MergeComputeError,
  outputBuffer,
  requiredModelNumber,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';
import { type GramStats, type GramVectors, gramBlocks, tensorGram } from './gram-blocks.js';

/** Per-vector mixing coefficients for the slerp-mix kernel: O(c0·v0 + c1·v1) / div. */
interface Coefficients {
  readonly c0: Float32Array;
  readonly c1: Float32Array;
  readonly div: Float32Array;
}

function mix(
  ctx: FamilyContext,
  v0: TensorData,
  v1: TensorData,
  base: TensorData | undefined,
  layout: VectorLayout,
  k: Coefficients,
  opDType: 0 | 1 | 2,
): TensorData {
  const out = outputBuffer(ctx, v0.shape);
  ctx.kernels.slerpMix({
    v0: v0.bytes,
    v0DType: kernelCode(ctx, v0.dtype),
    v1: v1.bytes,
    v1DType: kernelCode(ctx, v1.dtype),
    base: base?.bytes ?? null,
    baseDType: base === undefined ? KERNEL_DTYPE.F32 : kernelCode(ctx, base.dtype),
    computeDType: ctx.compute,
    opDType,
    ...layout,
    ...k,
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: elementCount(v0.shape),
  });
  return out;
}

/** mergekit's slerp coefficients for cos = dot of the normalised vectors (numpy, f32 arrays). */
export function slerpCoefficients(t: number, aa: number, ab: number, bb: number): { c0: number; c1: number } {
  const n0 = Math.sqrt(aa);
  const n1 = Math.sqrt(bb);
  const dot = ab / ((n0 > 1e-8 ? n0 : 1) * (n1 > 1e-8 ? n1 : 1));
  if (Math.abs(dot) > 0.9995) return { c0: 1 - t, c1: t };
  const theta0 = Math.acos(dot);
  const sin0 = Math.sin(theta0);
  const thetaT = theta0 * t;
  return { c0: Math.sin(theta0 - thetaT) / sin0, c1: Math.sin(thetaT) / sin0 };
}

/**
 * nuslerp's coefficients per vector, each scalar op rounded to the compute dtype R as torch does:
 * θ = R(acos(clamp(cos))), and either lerp (|sin θ| < 1e-8) or sin((1−t)θ), sin(tθ) and ÷ sin θ.
 */
export function nuslerpCoefficients(compute: 0 | 1 | 2, t: number, g: Float64Array, vectors: number): Coefficients {
  const k = { c0: new Float32Array(vectors), c1: new Float32Array(vectors), div: new Float32Array(vectors) };
  const minNorm = roundTo(compute, 1e-7);
  const omt = Math.fround(1 - t);
  const tf = Math.fround(t);
  for (let v = 0; v < vectors; v++) {
    const n0 = Math.max(roundTo(compute, Math.sqrt(g[v * 3] ?? 0)), minNorm);
    const n1 = Math.max(roundTo(compute, Math.sqrt(g[v * 3 + 2] ?? 0)), minNorm);
    const cos = Math.min(1, Math.max(-1, roundTo(compute, (g[v * 3 + 1] ?? 0) / (n0 * n1))));
    const theta = roundTo(compute, Math.acos(cos));
    const sinTheta = roundTo(compute, Math.sin(theta));
    if (Math.abs(sinTheta) < 1e-8) {
      k.c0[v] = omt;
      k.c1[v] = tf;
      k.div[v] = 1;
    } else {
      k.c0[v] = roundTo(compute, Math.sin(roundTo(compute, omt * theta)));
      k.c1[v] = roundTo(compute, Math.sin(roundTo(compute, tf * theta)));
      k.div[v] = sinTheta;
    }
  }
  return k;
}

/** A slerp / nuslerp task's operands, in the order its sums and mix take them, and how its dot products run. */
interface SlerpOperands {
  readonly v0: TensorData;
  readonly v1: TensorData;
  readonly base: TensorData | undefined;
  /** null: per row (nuslerp's default on a matrix), which a row chunk holds whole. */
  readonly vectors: GramVectors | null;
  readonly opDType: 0 | 1 | 2;
}

/** The operands, or the lone input when there is nothing to mix (returned as it is). */
function slerpOperands(ctx: FamilyContext): SlerpOperands | TensorData {
  const { task } = ctx;
  const only = ctx.inputs[0];
  if (ctx.inputs.length === 1 && only !== undefined) return only;
  const b = task.baseIndex;
  if (task.method === 'slerp') {
    if (ctx.inputs.length !== 2 || (b !== 0 && b !== 1)) {
      throw new MergeComputeError('MERGE_INPUT', task.output, 'slerp expects exactly two models, one of them the base');
    }
    const [v0, v1] = commonShapes(ctx, [ctx.inputs[b], ctx.inputs[1 - b]].filter((x): x is TensorData => x !== undefined));
    if (v0 === undefined || v1 === undefined) throw new MergeComputeError('MERGE_INPUT', task.output, 'slerp input missing');
    return { v0, v1, base: undefined, vectors: 'flat', opDType: KERNEL_DTYPE.F32 };
  }
  const others = ctx.inputs.map((x, i) => ({ x, i })).filter(({ i }) => i !== b);
  const wanted = b === null ? 2 : 3;
  if (ctx.inputs.length !== wanted || others.length !== 2) {
    throw new MergeComputeError('MERGE_INPUT', task.output, 'nuslerp expects exactly two models (plus an optional base)');
  }
  const baseIn = b === null ? undefined : ctx.inputs[b];
  const [x1, x2, base] = commonShapes(ctx, [...others.map((o) => o.x), ...(baseIn ? [baseIn] : [])]);
  if (x1 === undefined || x2 === undefined) throw new MergeComputeError('MERGE_INPUT', task.output, 'nuslerp input missing');
  return { v0: x1, v1: x2, base, vectors: nuslerpVectors(task, x1.shape.length), opDType: ctx.compute };
}

/** slerp's t, or nuslerp's w₂/(w₁+w₂) of its two non-base models (0.5 when the weights sum to about 0). */
function slerpT(task: TensorTask): number {
  if (task.method === 'slerp') return globalNumber(task, 't');
  const others = task.inputs.map((_, i) => i).filter((i) => i !== task.baseIndex);
  const w1 = requiredModelNumber(task, others[0] ?? 0, 'weight');
  const w2 = requiredModelNumber(task, others[1] ?? 1, 'weight');
  const sum = w1 + w2;
  return Math.abs(sum) < 1e-6 ? 0.5 : w2 / sum;
}

/** How nuslerp's dot products run over a tensor of `rank` dims (null: per row). */
export function nuslerpVectors(task: TensorTask, rank: number): GramVectors | null {
  if (globalFlag(task, 'nuslerp_flatten') || rank <= 1) return 'flat';
  return globalFlag(task, 'nuslerp_row_wise') ? 'columns' : null;
}

/** The vector layout the sums and the mix use for operands of `shape`. */
function operandLayout(shape: readonly number[], vectors: GramVectors | null): VectorLayout {
  const n = elementCount(shape);
  if (vectors === 'flat') return flatLayout(n);
  return layoutAlong(shape, vectors === 'columns' ? 0 : -1);
}

/** A slerp / nuslerp task's coefficients from the whole tensor's sums ([aa, ab, bb] per vector). */
function coefficientsOf(task: TensorTask, compute: 0 | 1 | 2, sums: Float64Array, vectors: number): Coefficients {
  const t = slerpT(task);
  if (task.method === 'slerp') {
    const { c0, c1 } = slerpCoefficients(t, sums[0] ?? 0, sums[1] ?? 0, sums[2] ?? 0);
    return { c0: Float32Array.of(c0), c1: Float32Array.of(c1), div: Float32Array.of(1) };
  }
  return nuslerpCoefficients(compute, t, sums, vectors);
}

/** slerp and nuslerp: the whole tensor, or a row chunk with the whole tensor's sums (ctx.chunk). */
export function computeSlerpFamily(ctx: FamilyContext): TensorData {
  const op = slerpOperands(ctx);
  if (!('v0' in op)) return castOut(ctx, op);
  const layout = operandLayout(op.v0.shape, op.vectors);
  const sums = tensorGram(ctx, [op.v0, op.v1], op.base, op.vectors, layout);
  return mix(ctx, op.v0, op.v1, op.base, layout, coefficientsOf(ctx.task, ctx.compute, sums, sums.length / 3), op.opDType);
}

/** The gram pass over a row chunk of a slerp / nuslerp tensor the pool runs in chunks: its blocks' sums. */
export function computeSlerpGramStats(ctx: FamilyContext): GramStats {
  const op = slerpOperands(ctx);
  if (!('v0' in op) || op.vectors === null) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, `${ctx.task.method} needs no gram pass here`);
  return { pass: 'gram', blocks: gramBlocks(ctx, [op.v0, op.v1], op.base, op.vectors) };
}
