/**
 * Independent references for the rank-window tests: δ = R(R(x) − R(base)) decoded element by
 * element, and the kept mask of ranks [lo, hi) by a full sort of (|δ| order key, index), i.e. ties
 * broken by lower index first. No histogram, no radix select.
 */
import type { KernelDType, ComputeCode } from '../../src/merge/native/numeric.js';
import { roundTo } from '../../src/merge/native/numeric.js';
import { TS_KERNELS } from '../../src/merge/native/binding.js';

/** Decodes `bytes` (count elements of `dtype`) to f32 rounded to the compute dtype. */
function decode(bytes: Uint8Array, dtype: KernelDType, compute: ComputeCode, count: number): Float32Array {
  const out = new Float32Array(count);
  TS_KERNELS.convertDType({ src: bytes, srcDType: dtype, roundDType: compute, out: new Uint8Array(out.buffer), outDType: 0, start: 0, end: count });
  return out;
}

/** The f32 bits of δ = R(x − base) per element. */
export function deltaBits(base: Uint8Array, baseDType: KernelDType, x: Uint8Array, xDType: KernelDType, compute: ComputeCode, count: number): Uint32Array {
  const b = decode(base, baseDType, compute, count);
  const v = decode(x, xDType, compute, count);
  const d = new Float32Array(count);
  for (let i = 0; i < count; i++) d[i] = roundTo(compute, (v[i] ?? 0) - (b[i] ?? 0));
  return new Uint32Array(d.buffer);
}

/** mask[j] = 1 iff the rank of |δ[j]| (ascending, or descending) lies in [lo, hi), ties by lower index. */
export function referenceRankMask(bits: Uint32Array, lo: number, hi: number, descending: boolean): Uint8Array {
  const flip = descending ? 0xffffffff : 0;
  const keys = Array.from(bits, (u) => ((u & 0x7fffffff) ^ flip) >>> 0);
  const order = keys.map((_, i) => i).sort((p, q) => (keys[p] ?? 0) - (keys[q] ?? 0) || p - q);
  const mask = new Uint8Array(bits.length);
  for (let r = lo; r < hi; r++) mask[order[r] ?? 0] = 1;
  return mask;
}
