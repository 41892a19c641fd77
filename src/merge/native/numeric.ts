/**
 * Element formats and per-operation rounding shared by every TypeScript kernel twin; the C++ side
 * is numeric.h. Both must give the same bits: every rounding is spelled out on bit patterns, a JS
 * product or quotient is rounded to f32 (Math.fround / a Float32Array store) before any narrower
 * rounding, exactly like the C++ float operation followed by the bf16/f16 rounding.
 */
import type { DType } from '../../tensors/dtype.js';

/** Stored-dtype codes the kernels read and write (numeric.h DTypeCode). */
export const KERNEL_DTYPE = { F32: 0, F16: 1, BF16: 2, F64: 3 } as const;
export type KernelDType = (typeof KERNEL_DTYPE)[keyof typeof KERNEL_DTYPE];
/** The codes of the dtypes arithmetic can round to (F32, F16, BF16). */
export type ComputeCode = 0 | 1 | 2;

/** Elements per block (numeric.h kBlock). */
export const BLOCK = 512;

/** The kernel code of a safetensors dtype, or undefined for dtypes the kernels do not handle. */
export function kernelDTypeOf(d: DType): KernelDType | undefined {
  switch (d) {
    case 'F32':
      return KERNEL_DTYPE.F32;
    case 'F16':
      return KERNEL_DTYPE.F16;
    case 'BF16':
      return KERNEL_DTYPE.BF16;
    case 'F64':
      return KERNEL_DTYPE.F64;
    default:
      return undefined;
  }
}

/** The dtype code at index i of a kernel's `dtypes` array. */
export function dtypeAt(dtypes: Int32Array, i: number): KernelDType {
  const d = dtypes[i];
  if (d !== 0 && d !== 1 && d !== 2 && d !== 3) throw new TypeError(`dtypes[${i}] is not a dtype code`);
  return d;
}

export function kernelDTypeSize(code: KernelDType): number {
  return code === KERNEL_DTYPE.F64 ? 8 : code === KERNEL_DTYPE.F32 ? 4 : 2;
}

const CANONICAL_NAN_F32 = 0x7fc00000;
const CANONICAL_NAN_BF16 = 0x7fc0;
const CANONICAL_NAN_F16 = 0x7e00;

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The bit pattern of fround(x). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0] ?? 0;
}

export function bitsF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0] ?? 0;
}

/** bf16 bits of the f32 with bit pattern `b`, round to nearest even; NaN → canonical. */
function bf16FromBits(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return CANONICAL_NAN_BF16;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f16 bits of the f32 with bit pattern `b`, round to nearest even with subnormals; NaN → canonical. */
function f16FromBits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const a = b & 0x7fffffff;
  if (a > 0x7f800000) return CANONICAL_NAN_F16;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    if (a <= 0x33000000) return sign;
    const e = a >>> 23;
    const m = (a & 0x7fffff) | 0x800000;
    const shift = 126 - e;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r;
  }
  let r = (a - 0x38000000) >>> 13;
  const rem = a & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++;
  return sign | r;
}

function f16ToF32Compute(h: number): number {
  const sign = (h & 0x8000) !== 0;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return bitsF32(((sign ? 0x80000000 : 0) | 0x7f800000 | (m << 13)) >>> 0);
  if (e === 0) {
    const v = m * 5.9604644775390625e-8;
    return sign ? -v : v;
  }
  return bitsF32(((sign ? 0x80000000 : 0) | ((e + 112) << 23) | (m << 13)) >>> 0);
}

let f16Table: Float32Array | undefined;

/** f16 bits → f32 value, by a table built on first use. */
export function f16Table32(): Float32Array {
  if (f16Table === undefined) {
    const t = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) t[i] = f16ToF32Compute(i);
    f16Table = t;
  }
  return f16Table;
}

export function f32ToBf16Bits(x: number): number {
  return bf16FromBits(f32Bits(x));
}

export function f32ToF16Bits(x: number): number {
  return f16FromBits(f32Bits(x));
}

/** Lanes [4·set, 4·set + 4) of a sum kept in four lanes by element index, added pairwise (numeric.h lane_total). */
export function laneTotal(lanes: ArrayLike<number>, set = 0): number {
  const l = (i: number): number => lanes[4 * set + i] ?? 0;
  return (l(0) + l(1)) + (l(2) + l(3));
}

/** Adds v[k]² (in f64) for elements j + k, k < n, to their lanes of set 0 (numeric.h add_squares). */
export function addSquares(lanes: Float64Array, v: Float32Array, j: number, n: number): void {
  for (let k = 0; k < n; k++) {
    const x = v[k] ?? 0;
    const l = (j + k) & 3;
    lanes[l] = (lanes[l] ?? 0) + x * x;
  }
}

/** fround(x), then rounded to the compute dtype `code` (numeric.h round_to after a float op). */
export function roundTo(code: ComputeCode, x: number): number {
  switch (code) {
    case KERNEL_DTYPE.BF16: {
      const b = f32Bits(x);
      if ((b & 0x7fffffff) > 0x7f800000) return bitsF32(CANONICAL_NAN_F32);
      return bitsF32(((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0);
    }
    case KERNEL_DTYPE.F16:
      return f16Table32()[f16FromBits(f32Bits(x))] ?? 0;
    default:
      return Math.fround(x);
  }
}

/** Rounds x[0 .. n) in place to the compute dtype (x holds f32 values already). */
export function roundBlock(code: ComputeCode, x: Float32Array, n: number): void {
  if (code === KERNEL_DTYPE.BF16) {
    const u = new Uint32Array(x.buffer, x.byteOffset, n);
    for (let k = 0; k < n; k++) {
      const b = u[k] ?? 0;
      u[k] = (b & 0x7fffffff) > 0x7f800000 ? CANONICAL_NAN_F32 : ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
    }
  } else if (code === KERNEL_DTYPE.F16) {
    const t = f16Table32();
    const u = new Uint32Array(x.buffer, x.byteOffset, n);
    for (let k = 0; k < n; k++) x[k] = t[f16FromBits(u[k] ?? 0)] ?? 0;
  }
}

/** Typed views of one input tensor's elements (aligned; a misaligned input is copied once). */
export interface ElementReader {
  readonly dtype: KernelDType;
  readonly f32: Float32Array | undefined;
  readonly u16: Uint16Array | undefined;
  readonly f64: Float64Array | undefined;
}

function alignedCopy(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.byteOffset % size === 0 ? bytes : bytes.slice();
}

/** A reader over `count` elements of `bytes` (throws when it holds fewer). */
export function elementReader(bytes: Uint8Array, dtype: KernelDType, count: number, name: string): ElementReader {
  const size = kernelDTypeSize(dtype);
  if (bytes.byteLength < count * size) {
    throw new TypeError(`${name} holds ${bytes.byteLength} bytes, needs ${count * size}`);
  }
  const b = alignedCopy(bytes, size);
  return {
    dtype,
    f32: dtype === KERNEL_DTYPE.F32 ? new Float32Array(b.buffer, b.byteOffset, count) : undefined,
    u16: dtype === KERNEL_DTYPE.F16 || dtype === KERNEL_DTYPE.BF16 ? new Uint16Array(b.buffer, b.byteOffset, count) : undefined,
    f64: dtype === KERNEL_DTYPE.F64 ? new Float64Array(b.buffer, b.byteOffset, count) : undefined,
  };
}

/**
 * Decodes elements [start, start + n) into dst as f32, then rounds them to the compute dtype when
 * the stored dtype differs (mergekit casts inputs to `dtype:` on load). `dstU32` aliases dst.
 */
export function loadBlock(r: ElementReader, start: number, n: number, dst: Float32Array, dstU32: Uint32Array, compute: ComputeCode): void {
  if (r.f32) {
    dst.set(r.f32.subarray(start, start + n));
  } else if (r.f64) {
    for (let k = 0; k < n; k++) dst[k] = r.f64[start + k] ?? 0;
  } else if (r.u16) {
    const src = r.u16;
    if (r.dtype === KERNEL_DTYPE.BF16) {
      for (let k = 0; k < n; k++) dstU32[k] = (src[start + k] ?? 0) << 16;
    } else {
      const t = f16Table32();
      for (let k = 0; k < n; k++) dst[k] = t[src[start + k] ?? 0] ?? 0;
    }
  }
  if (r.dtype !== compute) roundBlock(compute, dst, n);
}

/** Output elements [start, end) of one tensor; `finish()` copies back when a temporary was needed. */
export interface ElementWriter {
  readonly dtype: KernelDType;
  /** Element index of view[0]. */
  readonly offset: number;
  /** F32 output as bit patterns (NaNs are canonicalised on the bits). */
  readonly u32: Uint32Array | undefined;
  readonly u16: Uint16Array | undefined;
  readonly f64: Float64Array | undefined;
  finish(): void;
}

export function elementWriter(bytes: Uint8Array, dtype: KernelDType, start: number, end: number, name: string): ElementWriter {
  const size = kernelDTypeSize(dtype);
  if (bytes.byteLength < end * size) throw new TypeError(`${name} holds ${bytes.byteLength} bytes, needs ${end * size}`);
  const target = bytes.subarray(start * size, end * size);
  const work = target.byteOffset % size === 0 ? target : new Uint8Array(target.byteLength);
  const n = end - start;
  return {
    dtype,
    offset: start,
    u32: dtype === KERNEL_DTYPE.F32 ? new Uint32Array(work.buffer, work.byteOffset, n) : undefined,
    u16: dtype === KERNEL_DTYPE.F16 || dtype === KERNEL_DTYPE.BF16 ? new Uint16Array(work.buffer, work.byteOffset, n) : undefined,
    f64: dtype === KERNEL_DTYPE.F64 ? new Float64Array(work.buffer, work.byteOffset, n) : undefined,
    finish(): void {
      if (work !== target) target.set(work);
    },
  };
}

/** Encodes src[0 .. n) as output elements [start, start + n); NaNs are written canonical. */
export function storeBlock(src: Float32Array, srcU32: Uint32Array, n: number, w: ElementWriter, start: number): void {
  const o = start - w.offset;
  if (w.u32) {
    const dst = w.u32;
    for (let k = 0; k < n; k++) {
      const b = srcU32[k] ?? 0;
      dst[o + k] = (b & 0x7fffffff) > 0x7f800000 ? CANONICAL_NAN_F32 : b;
    }
  } else if (w.u16) {
    const dst = w.u16;
    if (w.dtype === KERNEL_DTYPE.BF16) {
      for (let k = 0; k < n; k++) dst[o + k] = bf16FromBits(srcU32[k] ?? 0);
    } else {
      for (let k = 0; k < n; k++) dst[o + k] = f16FromBits(srcU32[k] ?? 0);
    }
  } else if (w.f64) {
    for (let k = 0; k < n; k++) {
      const v = src[k] ?? 0;
      w.f64[o + k] = Number.isNaN(v) ? Number.NaN : v;
    }
  }
}

/** An f32 scratch block with its u32 alias. */
export interface Scratch {
  readonly f: Float32Array;
  readonly u: Uint32Array;
}

export function scratch(length: number = BLOCK): Scratch {
  const f = new Float32Array(length);
  return { f, u: new Uint32Array(f.buffer) };
}
