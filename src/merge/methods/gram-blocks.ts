/**
 * The dot products of slerp and nuslerp over a whole tensor, summed in a fixed order that does
 * not depend on how the pool cuts the tensor: the rows are grouped into blocks of about 2^20
 * elements (gramBlockRows), each block's sums are the gram kernel's, and the block sums are added
 * in row order. A whole tensor and its row chunks (whose boundaries fall on block boundaries) then
 * give the same f64 sums, so the statistics pass over chunks and the one-task path write the same
 * bytes for any --jobs or --max-memory.
 */
import { dtypeByteSize } from '../../tensors/dtype.js';
import { KERNEL_DTYPE } from '../native/numeric.js';
import type { VectorLayout } from '../native/layout.js';
import { dtypeCodes, kernelCode, type FamilyContext, type TensorData } from './task-inputs.js';

/** Elements a gram block holds at most (one row at least). */
export const GRAM_BLOCK_ELEMENTS = 1 << 20;

/**
 * Which vectors the dot products run over: 'flat' the whole flattened tensor (one vector), 'columns'
 * each column of a row-major matrix (vectors along dim 0, across every row).
 */
export type GramVectors = 'flat' | 'columns';

/** Elements of one row (dims after the first; a 1-d tensor's rows are its elements). */
export function rowElements(shape: readonly number[]): number {
  let n = 1;
  for (let i = 1; i < shape.length; i++) n *= shape[i] ?? 1;
  return n;
}

/** Rows per gram block of a tensor of `shape`. */
export function gramBlockRows(shape: readonly number[]): number {
  return Math.max(1, Math.floor(GRAM_BLOCK_ELEMENTS / Math.max(1, rowElements(shape))));
}

/** Vectors the sums are per: 1 when flat, the row's elements for columns. */
export function gramVectorCount(shape: readonly number[], vectors: GramVectors): number {
  return vectors === 'flat' ? 1 : rowElements(shape);
}

function rowSlice(t: TensorData, rowStart: number, rows: number): TensorData {
  const rowBytes = rowElements(t.shape) * dtypeByteSize(t.dtype);
  return { dtype: t.dtype, shape: [rows, ...t.shape.slice(1)], bytes: t.bytes.subarray(rowStart * rowBytes, (rowStart + rows) * rowBytes) };
}

/** [Σa·a, Σa·b, Σb·b] per vector of `layout` (of x − base with a base): the gram kernel, into `out`. */
export function gramSums(
  ctx: FamilyContext,
  a: TensorData,
  b: TensorData,
  base: TensorData | undefined,
  layout: VectorLayout,
  out: Float64Array = new Float64Array(layout.outer * layout.inner * 3),
): Float64Array {
  ctx.kernels.gramStats({
    inputs: [a.bytes, b.bytes],
    dtypes: dtypeCodes(ctx, [a, b]),
    base: base?.bytes ?? null,
    baseDType: base === undefined ? KERNEL_DTYPE.F32 : kernelCode(ctx, base.dtype),
    computeDType: ctx.compute,
    ...layout,
    out,
  });
  return out;
}

/**
 * Per gram block of `a` and `b` (same shape; `base` too when given: the sums are then of
 * x − base), in row order: [Σa·a, Σa·b, Σb·b] for each vector. The tensors are a whole tensor or a
 * row chunk of one that starts on a block boundary (blocks depend only on the row's size).
 */
export function gramBlocks(ctx: FamilyContext, a: TensorData, b: TensorData, base: TensorData | undefined, vectors: GramVectors): Float64Array {
  const rows = a.shape.length === 0 ? 1 : (a.shape[0] ?? 1);
  const shape = a.shape.length === 0 ? [1] : a.shape;
  const blockRows = gramBlockRows(shape);
  const perVector = gramVectorCount(shape, vectors);
  const blocks = Math.max(1, Math.ceil(rows / blockRows));
  const out = new Float64Array(blocks * perVector * 3);
  const flatA = { ...a, shape };
  const flatB = { ...b, shape };
  const flatBase = base === undefined ? undefined : { ...base, shape };
  for (let k = 0; k < blocks; k++) {
    const r0 = k * blockRows;
    const n = Math.min(blockRows, rows - r0);
    const x = rowSlice(flatA, r0, n);
    const y = rowSlice(flatB, r0, n);
    const z = flatBase === undefined ? undefined : rowSlice(flatBase, r0, n);
    const cols = rowElements(shape);
    const layout: VectorLayout = vectors === 'flat' ? { outer: 1, len: n * cols, inner: 1 } : { outer: 1, len: n, inner: cols };
    gramSums(ctx, x, y, z, layout, out.subarray(k * perVector * 3, (k + 1) * perVector * 3));
  }
  return out;
}

/** The slerp-family coefficients of each vector (slerp-mix kernel: O(c0·v0 + c1·v1) / div). */
export interface GramCoefficients {
  readonly c0: Float32Array;
  readonly c1: Float32Array;
  readonly div: Float32Array;
}

/** What a row chunk of a slerp / nuslerp tensor gets: null during the gram pass, then the whole tensor's coefficients. */
export interface ChunkGram {
  readonly kind: 'gram';
  readonly coefficients: GramCoefficients | null;
}

/** A row chunk's reply to the gram pass: its blocks' sums (gramBlocks). */
export interface GramStats {
  readonly pass: 'gram';
  readonly blocks: Float64Array;
}

/** The whole tensor's sums from its blocks' (gramBlocks, in row order): [aa, ab, bb] per vector. */
export function sumGramBlocks(blocks: Float64Array, perVector: number): Float64Array {
  const width = perVector * 3;
  if (width === 0 || blocks.length % width !== 0) throw new RangeError(`gram blocks of ${blocks.length} sums are not whole blocks of ${width}`);
  const total = new Float64Array(width);
  for (let at = 0; at < blocks.length; at += width) {
    for (let e = 0; e < width; e++) total[e] = (total[e] ?? 0) + (blocks[at + e] ?? 0);
  }
  return total;
}
