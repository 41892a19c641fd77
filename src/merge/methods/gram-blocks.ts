/**
 * The whole-tensor sums of slerp, nuslerp, model_stock, multislerp, karcher and sce, summed in a fixed order
 * that does not depend on how the pool cuts the tensor: the rows are grouped into blocks of about
 * 2^20 elements (gramBlockRows), each block's sums are the gram kernel's, and the block sums are
 * added in row order. A whole tensor and its row chunks (whose boundaries fall on block boundaries) then
 * give the same f64 sums, so the statistics pass over chunks and the one-task path write the same
 * bytes for any --jobs or --max-memory.
 */
import { dtypeByteSize } from '../../tensors/dtype.js';
import { KERNEL_DTYPE } from '../native/numeric.js';
import type { VectorLayout } from '../native/layout.js';
import { dtypeCodes, kernelCode, MergeComputeError, type FamilyContext, type TensorData } from './task-inputs.js';

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

/** Pairs (a, b), a <= b, of `inputs` tensors: the sums the gram kernel gives per vector. */
export function gramPairs(inputs: number): number {
  return (inputs * (inputs + 1)) / 2;
}

/**
 * Σ v_a·v_b per vector of `layout` for every pair a <= b of `inputs` (v = x − base with a base), in
 * the gram kernel's order, into `out`.
 */
export function gramSums(
  ctx: FamilyContext,
  inputs: readonly TensorData[],
  base: TensorData | undefined,
  layout: VectorLayout,
  out: Float64Array = new Float64Array(layout.outer * layout.inner * gramPairs(inputs.length)),
  /** sce's energies: positions whose mask byte is 0 count as 0; each product rounded to the compute dtype. */
  masked?: { readonly mask: Uint8Array | null; readonly roundProducts: boolean },
): Float64Array {
  ctx.kernels.gramStats({
    inputs: inputs.map((t) => t.bytes),
    dtypes: dtypeCodes(ctx, inputs),
    base: base?.bytes ?? null,
    baseDType: base === undefined ? KERNEL_DTYPE.F32 : kernelCode(ctx, base.dtype),
    computeDType: ctx.compute,
    ...(masked === undefined ? {} : masked),
    ...layout,
    out,
  });
  return out;
}

/** Gram blocks per chunk of `chunkRows` rows (in order) of a task's output; every chunk but the last must be whole blocks. */
export function chunkGramBlocks(output: string, shape: readonly number[], chunkRows: readonly number[]): number[] {
  const blockRows = gramBlockRows(shape);
  chunkRows.forEach((rows, i) => {
    if (i < chunkRows.length - 1 && rows % blockRows !== 0) throw new RangeError(`${output}: chunk ${i} of ${rows} rows is not whole gram blocks of ${blockRows}`);
  });
  return chunkRows.map((rows) => Math.ceil(rows / blockRows));
}

/** One block's sums: `fn` of the block's rows of each input (and of the base), and its element count. */
export type BlockSums = (inputs: readonly TensorData[], base: TensorData | undefined, elements: number) => Float64Array;

/**
 * `fn` per gram block of `inputs` (one shape; `base` too when given), in row order, its results
 * concatenated (each the same length). The tensors are a whole tensor or a row chunk of one that
 * starts on a block boundary (blocks depend only on the row's size).
 */
export function perGramBlock(inputs: readonly TensorData[], base: TensorData | undefined, fn: BlockSums): Float64Array {
  const first = inputs[0];
  if (first === undefined) throw new RangeError('a gram block needs at least one input');
  const shape = first.shape.length === 0 ? [1] : first.shape;
  const rows = shape[0] ?? 1;
  const cols = rowElements(shape);
  const blockRows = gramBlockRows(shape);
  const parts: Float64Array[] = [];
  const slice = (t: TensorData, r0: number, n: number): TensorData => rowSlice({ ...t, shape }, r0, n);
  for (let r0 = 0; r0 === 0 || r0 < rows; r0 += blockRows) {
    const n = Math.min(blockRows, rows - r0);
    parts.push(fn(inputs.map((t) => slice(t, r0, n)), base === undefined ? undefined : slice(base, r0, n), n * cols));
  }
  const width = parts[0]?.length ?? 0;
  const out = new Float64Array(parts.length * width);
  parts.forEach((p, k) => {
    if (p.length !== width) throw new RangeError(`gram block ${k} gave ${p.length} sums, block 0 ${width}`);
    out.set(p, k * width);
  });
  return out;
}

/**
 * Per gram block of `inputs` (one shape; `base` too when given: the sums are then of x − base),
 * in row order: gramSums for each vector.
 */
export function gramBlocks(ctx: FamilyContext, inputs: readonly TensorData[], base: TensorData | undefined, vectors: GramVectors): Float64Array {
  return perGramBlock(inputs, base, (part, b, elements) => {
    const first = part[0];
    const rows = first?.shape[0] ?? 1;
    const cols = elements / Math.max(1, rows);
    const layout: VectorLayout = vectors === 'flat' ? { outer: 1, len: elements, inner: 1 } : { outer: 1, len: rows, inner: cols };
    return gramSums(ctx, part, b, layout);
  });
}

/**
 * What a row chunk of a tensor with gram passes gets: the whole tensor's sums of each pass run so
 * far, in order (most methods need one pass, multislerp up to four).
 */
export interface ChunkGram {
  readonly kind: 'gram';
  readonly sums: readonly Float64Array[];
}

/** A row chunk's reply to a gram pass: its blocks' sums (perGramBlock). */
export interface GramStats {
  readonly pass: 'gram';
  readonly blocks: Float64Array;
}

/**
 * The whole tensor's sums from its blocks' (gramBlocks, in row order), `width` sums per block:
 * one array of blocks, or each chunk's blocks in chunk order.
 */
export function sumGramBlocks(blocks: Float64Array | readonly Float64Array[], width: number): Float64Array {
  const parts = blocks instanceof Float64Array ? [blocks] : blocks;
  const total = new Float64Array(width);
  for (const part of parts) {
    if (width === 0 || part.length % width !== 0) throw new RangeError(`gram blocks of ${part.length} sums are not whole blocks of ${width}`);
    for (let at = 0; at < part.length; at += width) {
      for (let e = 0; e < width; e++) total[e] = (total[e] ?? 0) + (part[at + e] ?? 0);
    }
  }
  return total;
}

/**
 * The whole tensor's sums for a method's gram: from ctx.chunk when the task is a row chunk after
 * the gram pass, else over `inputs` in gram blocks; with `vectors` null (per row, as `layout`'s
 * rows) straight from the kernel, which a row chunk does on its own.
 */
export function tensorGram(ctx: FamilyContext, inputs: readonly TensorData[], base: TensorData | undefined, vectors: GramVectors | null, layout: VectorLayout): Float64Array {
  if (vectors === null) return gramSums(ctx, inputs, base, layout);
  const done = passSums(ctx);
  if (done !== undefined) {
    const sums = done[0];
    if (sums === undefined) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'the gram sums of the whole tensor are not known yet');
    return sums;
  }
  const width = gramVectorCount(inputs[0]?.shape ?? [], vectors) * gramPairs(inputs.length);
  return sumGramBlocks(gramBlocks(ctx, inputs, base, vectors), width);
}

/** The whole tensor's sums of the gram passes run so far when the task is a row chunk (ctx.chunk), else undefined. */
export function passSums(ctx: FamilyContext): readonly Float64Array[] | undefined {
  const chunk = ctx.chunk;
  if (chunk === undefined) return undefined;
  if (!('kind' in chunk) || chunk.kind !== 'gram') throw new MergeComputeError('MERGE_INPUT', ctx.task.output, `${ctx.task.method} got another method's chunk`);
  return chunk.sums;
}
