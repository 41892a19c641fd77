/**
 * Resolving a PermutedTensorInput into its bytes (worker side): each output row is copied, averaged
 * or zeroed from rows of the source tensors, read by position. Consecutive rows of one source are
 * read in one call, so an identity-like permutation costs a few reads, not one per row.
 */
import { decodeToF32, dtypeByteSize, encodeFromF32, isFloatDType, roundToDType } from '../tensors/dtype.js';
import { EvoError } from '../errors.js';
import type { FileTensorInput, PermutedTensorInput } from './task.js';

/** Reads `dst.byteLength` bytes of `source` starting at its byte `offset` (relative to the tensor). */
export type SourceReader = (source: FileTensorInput, offset: number, dst: Uint8Array) => void;

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
  const srcRowBytes = (s: FileTensorInput): number => cols * dtypeByteSize(s.dtype);
  const readRowF32 = (pair: readonly [number, number]): Float32Array => {
    const src = input.sources[pair[0]];
    if (src === undefined) throw new EvoError('INTERNAL', `${input.tensor}: no source ${pair[0]}`);
    const bytes = new Uint8Array(srcRowBytes(src));
    read(src, pair[1] * bytes.byteLength, bytes);
    return decodeToF32(src.dtype, bytes);
  };
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
    const src = input.sources[first[0]];
    if (n === 1 && src !== undefined && src.dtype === input.dtype) {
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

/** Bytes the gathered tensor occupies. */
export function permutedByteLength(input: PermutedTensorInput): number {
  return (input.shape[0] ?? 0) * (input.shape[1] ?? 0) * dtypeByteSize(input.dtype);
}
