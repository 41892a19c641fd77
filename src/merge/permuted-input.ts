/**
 * Resolving a PermutedTensorInput into its bytes (worker side): each output row is copied, averaged
 * or zeroed from rows of the source tensors, read by position (from a file, or from a stage's tensor
 * computed in memory). Consecutive rows of one source are read in one call, so an identity-like
 * permutation costs a few reads, not one per row.
 */
import { decodeToF32, dtypeByteSize, encodeFromF32, isFloatDType, roundToDType, type DType } from '../tensors/dtype.js';
import { EvoError } from '../errors.js';
import type { PermutationSource, PermutedTensorInput, StageTensorInput, TensorInput } from './task.js';
import { PAD_MEAN, slicePackedRows } from './vocab-permutation.js';

/** Reads `dst.byteLength` bytes of `source` starting at its byte `offset` (relative to the tensor). */
export type SourceReader = (source: PermutationSource, offset: number, dst: Uint8Array) => void;

/** The dtype a source's rows are stored (file) or computed (stage) in. */
export function sourceDType(source: PermutationSource): DType {
  return source.kind === 'file' ? source.dtype : source.task.outDType;
}

/**
 * Identifies a stage source within one task: the stage (its name) and its tensor. A permuted
 * source is always the stage's whole task for that tensor, so equal keys are equal computations.
 */
export function stageSourceKey(source: StageTensorInput): string {
  return `${source.model}\u0000${source.task.output}`;
}

/**
 * The distinct stage sources of a task's permuted inputs (the models of one embedding share them),
 * each computed once per task by the worker and counted once by the memory estimate.
 */
export function stageSourcesOf(inputs: readonly TensorInput[]): StageTensorInput[] {
  const out = new Map<string, StageTensorInput>();
  for (const input of inputs) {
    if (input.kind !== 'permuted') continue;
    for (const s of input.sources) if (s.kind === 'stage' && !out.has(stageSourceKey(s))) out.set(stageSourceKey(s), s);
  }
  return [...out.values()];
}

/**
 * Fills `dst` (exactly the input's bytes) with the permuted tensor. A mean accumulates in f32 and
 * rounds to the input's dtype after every add and after the division, as mergekit's in-dtype
 * `embed += row; embed /= count` does.
 */
export function gatherPermutedRows(input: PermutedTensorInput, dst: Uint8Array, read: SourceReader): void {
  const cols = input.shape[1] ?? 0;
  const size = dtypeByteSize(input.dtype);
  const rowBytes = cols * size;
  const total = input.rowOffsets.length - 1;
  if (dst.byteLength !== rowBytes * total) {
    throw new EvoError('INTERNAL', `${input.tensor}: permuted buffer of ${dst.byteLength} bytes, expected ${rowBytes * total}`);
  }
  const { rowOffsets, pairs } = input;
  const count = (r: number): number => (rowOffsets[r + 1] ?? 0) - (rowOffsets[r] ?? 0);
  // The k-th pair of row r: [source index, row].
  const pairAt = (r: number, k: number): readonly [number, number] => {
    const at = 2 * ((rowOffsets[r] ?? 0) + k);
    return [pairs[at] ?? 0, pairs[at + 1] ?? 0];
  };
  const dtype = input.dtype;
  if (!isFloatDType(dtype)) throw new EvoError('UNSUPPORTED_DTYPE', `${input.tensor}: embedding permutation needs F32, F16 or BF16 rows, got ${dtype}`);
  const round = (x: number): number => roundToDType(dtype, x);
  const srcRowBytes = (s: PermutationSource): number => cols * dtypeByteSize(sourceDType(s));
  const readRowF32 = (pair: readonly [number, number]): Float32Array => {
    const src = input.sources[pair[0]];
    if (src === undefined) throw new EvoError('INTERNAL', `${input.tensor}: no source ${pair[0]}`);
    const bytes = new Uint8Array(srcRowBytes(src));
    read(src, pair[1] * bytes.byteLength, bytes);
    return decodeToF32(sourceDType(src), bytes);
  };
  let padRow: Uint8Array | undefined;
  let r = 0;
  while (r < total) {
    const n = count(r);
    const at = dst.subarray(r * rowBytes, (r + 1) * rowBytes);
    if (n === 0) {
      at.fill(0);
      r++;
      continue;
    }
    const first = pairAt(r, 0);
    if (first[0] === PAD_MEAN) {
      padRow ??= meanOfRealRows(input, read);
      at.set(padRow);
      r++;
      continue;
    }
    const src = input.sources[first[0]];
    if (n === 1 && src !== undefined && sourceDType(src) === input.dtype) {
      // A run of consecutive rows of one source: one read.
      let run = 1;
      while (r + run < total && count(r + run) === 1) {
        const p = pairAt(r + run, 0);
        if (p[0] !== first[0] || p[1] !== first[1] + run) break;
        run++;
      }
      read(src, first[1] * rowBytes, dst.subarray(r * rowBytes, (r + run) * rowBytes));
      r += run;
      continue;
    }
    const acc = readRowF32(first);
    for (let j = 0; j < cols; j++) acc[j] = round(acc[j] ?? 0);
    for (let k = 1; k < n; k++) {
      const row = readRowF32(pairAt(r, k));
      for (let j = 0; j < cols; j++) acc[j] = round((acc[j] ?? 0) + (row[j] ?? 0));
    }
    if (n > 1) for (let j = 0; j < cols; j++) acc[j] = round((acc[j] ?? 0) / n);
    encodeFromF32(input.dtype, acc, at);
    r++;
  }
}

/** Rows gathered at a time for the padding mean: bounds its buffer whatever the vocabulary. */
const MEAN_BLOCK_BYTES = 1 << 20;

/**
 * The padded row of `pad_to_multiple_of` (semantics §1.5): mergekit's
 * `torch.mean(new_embed[:len(vocab)], dim=0)` over the model's permuted real rows, in the gathered
 * dtype. On CPU torch sums in f32 (bf16 / f16 widened first), divides in f32 and rounds the
 * quotient to the dtype once. The sum here is accumulated in f64 and rounded to f32, so it can
 * differ from torch's cascaded f32 sum in the last f32 bit; the gathered rows are always all of
 * the tensor's, so a chunk computes the same bytes as the whole tensor.
 */
function meanOfRealRows(input: PermutedTensorInput, read: SourceReader): Uint8Array {
  const { padMeanOf: real, ...rest } = input;
  if (real === undefined) throw new EvoError('INTERNAL', `${input.tensor}: padded rows without the real rows' sources`);
  const dtype = input.dtype;
  if (!isFloatDType(dtype)) throw new EvoError('UNSUPPORTED_DTYPE', `${input.tensor}: padding needs F32, F16 or BF16 rows, got ${dtype}`);
  const cols = input.shape[1] ?? 0;
  const rowBytes = cols * dtypeByteSize(dtype);
  const n = real.rowOffsets.length - 1;
  const block = Math.max(1, Math.floor(MEAN_BLOCK_BYTES / Math.max(1, rowBytes)));
  const sum = new Float64Array(cols);
  for (let start = 0; start < n; start += block) {
    const rows = Math.min(block, n - start);
    const part: PermutedTensorInput = { ...rest, shape: [rows, cols], ...slicePackedRows(real, start, rows) };
    const bytes = new Uint8Array(rows * rowBytes);
    gatherPermutedRows(part, bytes, read);
    const values = decodeToF32(input.dtype, bytes);
    for (let k = 0; k < values.length; k++) sum[k % cols] = (sum[k % cols] ?? 0) + (values[k] ?? 0);
  }
  const mean = new Float32Array(cols);
  for (let j = 0; j < cols; j++) mean[j] = roundToDType(dtype, Math.fround(Math.fround(sum[j] ?? 0) / n));
  const out = new Uint8Array(rowBytes);
  encodeFromF32(dtype, mean, out);
  return out;
}

/** Bytes the gathered tensor occupies. */
export function permutedByteLength(input: PermutedTensorInput): number {
  return (input.shape[0] ?? 0) * (input.shape[1] ?? 0) * dtypeByteSize(input.dtype);
}
