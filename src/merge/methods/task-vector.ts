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
 * Sparsification needs whole-tensor statistics (rank windows, L1 sums): task-vector-stats.ts
 * gathers them in passes, over the row chunks of a large tensor in the pool or in-process over a
 * whole one, so both paths share every rule below and give the same bytes.
 *
 * Selection rules where mergekit's unstable sorts leave ties implementation-defined:
 * - magnitude (TIES) keeps the k = int(density·n) largest |δ| over the flattened tensor; among
 *   equal |δ| at the cut, LOWER indices are kept first.
 * - magnitude_outliers (breadcrumbs) keeps ascending ranks [n_bot, n − n_top), ties ranked by
 *   lower index first. When int(gamma·n) = 0 mergekit's slice [n_bot:-0] is empty, so the whole
 *   delta is dropped and the output is the base (semantics §0.6); reproduced deliberately.
 * - della ranks |δ| per vector along dim 1 (a 1-d tensor is one row), ties by lower index first.
 */
import { getMethodSpec } from '../registry.js';
import { layoutAlong, type VectorLayout } from '../native/layout.js';
import { L1_BINS } from '../native/masked-l1.js';
import { roundTo, type ComputeCode } from '../native/numeric.js';
import type { MaskSource } from '../native/binding.js';
import type { TensorTask } from '../task.js';
import { sparseCounts } from './rank-window.js';
import {
  sparsifyDType,
  sparsityPlan,
  TensorStatsCollector,
  type ChunkInput,
  type ChunkSparsity,
  type ChunkStats,
  type InputSparsity,
  type StatPass,
} from './task-vector-stats.js';
import {
  castOut,
  cropMatrix,
  dtypeCodes,
  elementCount,
  globalFlag,
  globalNumber,
  kernelCode,
  MergeComputeError,
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

/** DELLA ranks along dim 1 (argsort(dim=1)); a 1-d tensor is one row. */
function dellaLayout(shape: readonly number[]): VectorLayout {
  return layoutAlong(shape, 1);
}

/** The dtype the sparsifier of `task`'s method works in. */
function workDType(task: TensorTask, compute: ComputeCode): ComputeCode {
  const { sparsifier } = getMethodSpec(task.method);
  return sparsifier === undefined ? compute : sparsifyDType(sparsifier, compute);
}

/**
 * Each input's sparsity for a tensor of `count` elements (null for the base): what the pool's
 * TensorStatsCollector starts from for a task it runs in row chunks (every input then takes part).
 */
export function taskVectorSparsity(task: TensorTask, compute: ComputeCode, count: number): { inputs: (InputSparsity | null)[]; work: ComputeCode } {
  const { sparsifier } = getMethodSpec(task.method);
  return {
    inputs: task.inputs.map((_, i) => (i === task.baseIndex ? null : sparsityPlan(task, sparsifier, compute, i, count))),
    work: workDType(task, compute),
  };
}

function chunkInput(sparsity: ChunkSparsity, tv: TaskVector, output: string): ChunkInput {
  const input = sparsity.inputs[tv.index];
  if (input === null || input === undefined) throw new MergeComputeError('MERGE_INPUT', output, `no sparsity statistics for input ${tv.index}`);
  return input;
}

function kernelArgs(ctx: FamilyContext, base: TensorData, tv: TaskVector) {
  return {
    base: base.bytes,
    baseDType: kernelCode(ctx, base.dtype),
    x: tv.data.bytes,
    xDType: kernelCode(ctx, tv.data.dtype),
    computeDType: ctx.compute,
  };
}

/** The kept positions of each task vector over this chunk (a whole tensor is one chunk). */
function chunkMasks(ctx: FamilyContext, base: TensorData, tvs: readonly TaskVector[], sparsity: ChunkSparsity): MaskSource[] {
  const n = elementCount(base.shape);
  return tvs.map((tv): MaskSource => {
    const input = chunkInput(sparsity, tv, ctx.task.output);
    const p = input.plan;
    switch (p.kind) {
      case 'keep':
        return null;
      case 'drop':
        return ctx.alloc(n).fill(0);
      case 'mask':
        return p.bytes;
      case 'rank':
        if (input.rank === null) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, `rank bounds of input ${tv.index} are not known yet`);
        return input.rank;
      case 'bernoulli':
        return { kind: 'bernoulli', key0: p.key0, key1: p.key1, threshold: p.threshold, indexOffset: sparsity.elementOffset };
      case 'della': {
        const mask = ctx.alloc(n);
        ctx.kernels.dellaMask({
          ...kernelArgs(ctx, base, tv),
          ...dellaLayout(base.shape),
          workDType: p.workDType,
          key0: p.key0,
          key1: p.key1,
          indexOffset: sparsity.elementOffset,
          lowP: p.lowP,
          eps: p.eps,
          mask,
        });
        return mask;
      }
      default: {
        const never: never = p;
        return never;
      }
    }
  });
}

/** One pass's statistics of this chunk; `masks` (chunkMasks) only for 'l1', computed when not given. */
function chunkStats(
  ctx: FamilyContext,
  base: TensorData,
  tvs: readonly TaskVector[],
  pass: StatPass,
  sparsity: ChunkSparsity,
  masks: readonly MaskSource[] | null,
): ChunkStats {
  const slots = ctx.task.inputs.length;
  const stats = {
    pass,
    top: new Array<ChunkStats['top'][number]>(slots).fill(null),
    low: new Array<ChunkStats['low'][number]>(slots).fill(null),
    l1: new Array<BigInt64Array | null>(slots).fill(null),
  };
  const n = elementCount(base.shape);
  const kept = pass === 'l1' ? (masks ?? chunkMasks(ctx, base, tvs, sparsity)) : null;
  tvs.forEach((tv, t) => {
    const input = chunkInput(sparsity, tv, ctx.task.output);
    const p = input.plan;
    const args = kernelArgs(ctx, base, tv);
    if (pass === 'rank-top' && p.kind === 'rank' && p.lo < p.hi && input.buckets === null) {
      const top = new Uint32Array(65536);
      const lowBits = new Uint32Array(2);
      ctx.kernels.rankHistogram({ ...args, count: n, descending: p.descending, top, lowBits });
      stats.top[tv.index] = { top: sparseCounts(top), lowOr: lowBits[0] ?? 0, lowAnd: lowBits[1] ?? 0 };
    } else if (pass === 'rank-low' && p.kind === 'rank' && input.buckets !== null && input.rank === null) {
      const lowLo = new Uint32Array(65536);
      const lowHi = new Uint32Array(65536);
      ctx.kernels.rankLowHistogram({ ...args, count: n, descending: p.descending, bucketLo: input.buckets.lo, bucketHi: input.buckets.hi, lowLo, lowHi });
      stats.low[tv.index] = { lowLo: sparseCounts(lowLo), lowHi: sparseCounts(lowHi) };
    } else if (pass === 'l1' && input.scale === null) {
      const out = new BigInt64Array(2 * L1_BINS);
      ctx.kernels.maskedL1({ ...args, mask: kept?.[t] ?? null, count: n, out });
      stats.l1[tv.index] = out;
    }
  });
  return stats;
}

/** Runs the statistics passes over the whole tensor in-process (the one-chunk case). */
function wholeTensorSparsity(ctx: FamilyContext, base: TensorData, tvs: readonly TaskVector[]): { sparsity: ChunkSparsity; masks: MaskSource[] } {
  const { task } = ctx;
  const n = elementCount(base.shape);
  const { sparsifier } = getMethodSpec(task.method);
  const inputs = task.inputs.map((): InputSparsity | null => null);
  for (const tv of tvs) {
    const planned = sparsityPlan(task, sparsifier, ctx.compute, tv.index, n);
    const forced = planned.plan.kind === 'keep' ? undefined : ctx.maskOverride?.(tv.index);
    if (forced !== undefined && forced.length !== n) {
      throw new MergeComputeError('MERGE_INPUT', task.output, `mask override of input ${tv.index} has ${forced.length} entries, need ${n}`);
    }
    inputs[tv.index] =
      forced === undefined ? planned : { plan: { kind: 'mask', bytes: forced.map((v) => (v !== 0 ? 1 : 0)) }, rescale: globalFlag(task, 'rescale') };
  }
  const collector = new TensorStatsCollector(inputs, [n], workDType(task, ctx.compute));
  let masks: MaskSource[] | null = null;
  for (let pass = collector.nextPass(); pass !== null; pass = collector.nextPass()) {
    collector.beginPass(pass);
    const sparsity = collector.chunkSparsity(0);
    // L1 comes last: the masks it sums over are the ones the merge applies.
    if (pass === 'l1') masks = chunkMasks(ctx, base, tvs, sparsity);
    collector.absorb(0, chunkStats(ctx, base, tvs, pass, sparsity, masks));
    collector.finishPass();
  }
  const sparsity = collector.chunkSparsity(0);
  return { sparsity, masks: masks ?? chunkMasks(ctx, base, tvs, sparsity) };
}

function baseOf(ctx: FamilyContext): { base: TensorData; tvs: TaskVector[] } {
  const { task } = ctx;
  const baseIndex = task.baseIndex;
  const base = baseIndex === null ? undefined : ctx.inputs[baseIndex];
  if (baseIndex === null || base === undefined) {
    throw new MergeComputeError('MERGE_INPUT', task.output, `${task.method} needs a base model`);
  }
  return { base, tvs: taskVectors(ctx, base, baseIndex) };
}

/** One statistics pass over a row chunk of a task the pool runs in chunks (ctx.chunk is set). */
export function computeTaskVectorStats(ctx: FamilyContext, pass: StatPass): ChunkStats {
  const chunk = sparsityChunk(ctx);
  if (chunk === undefined) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'statistics passes need the chunk\'s sparsity');
  const { base, tvs } = baseOf(ctx);
  return chunkStats(ctx, base, tvs, pass, chunk, null);
}

/** ctx.chunk, which for this family must be a task-vector chunk's. */
function sparsityChunk(ctx: FamilyContext): ChunkSparsity | undefined {
  const chunk = ctx.chunk;
  if (chunk !== undefined && 'kind' in chunk) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, `${ctx.task.method} got a ${chunk.kind} chunk`);
  return chunk;
}

export function computeTaskVector(ctx: FamilyContext): TensorData {
  const { task, compute } = ctx;
  const { base, tvs } = baseOf(ctx);
  if (tvs.length === 0) return castOut(ctx, base);
  const chunk = sparsityChunk(ctx);
  const { sparsity, masks } = chunk === undefined ? wholeTensorSparsity(ctx, base, tvs) : { sparsity: chunk, masks: chunkMasks(ctx, base, tvs, chunk) };
  const scales = tvs.map((tv) => {
    const scale = chunkInput(sparsity, tv, task.output).scale;
    if (scale === null) throw new MergeComputeError('MERGE_INPUT', task.output, `the rescale factor of input ${tv.index} is not known yet`);
    return scale;
  });
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
    masks,
    scales: Float32Array.from(scales),
    sparsifyDType: workDType(task, compute),
    weights,
    consensus: getMethodSpec(task.method).consensus !== undefined,
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
