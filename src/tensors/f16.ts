/**
 * IEEE 754 binary16 (half) ↔ float32, on bit patterns through Uint32Array views.
 *
 * f32 → f16 rounds to nearest, ties to even, including into and out of the subnormal range
 * (smallest subnormal 2^-24); finite values that round past 65504 become ±Inf; ±Inf stay infinite;
 * a NaN stays a NaN with its sign and top payload bits, quiet bit set.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The f16 bit pattern for the f32 whose bit pattern is `bits` (unsigned 32-bit). */
function f16FromF32Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 (half the smallest subnormal) everything rounds to ±0.
    if (e < -10) return sign;
    // Result in units of 2^-24: the 24-bit significand shifted right by 14 − e, rounded to even.
    const m = mant | 0x800000;
    const shift = 14 - e;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r; // r = 0x400 is the smallest normal, encoded correctly by the carry
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++; // a carry into 31 gives Inf
  return sign | r;
}

/** The f32 bit pattern of the f16 bit pattern `h` (exact). */
function f32BitsFromF16(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: normalise the significand so its leading 1 becomes the implicit bit.
  let e = 113; // f32 biased exponent of 2^-14
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** The f16 bit pattern (0..0xffff) nearest to `x` (first rounded to f32). */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  return f16FromF32Bits(scratchU32[0] ?? 0);
}

/** The exact value of an f16 bit pattern (only the low 16 bits are used). */
export function f16BitsToF32(bits: number): number {
  scratchU32[0] = f32BitsFromF16(bits & 0xffff);
  return scratchF32[0] ?? 0;
}

/** `x` rounded to the nearest f16 and back (f32 → f16 → f32). */
export function roundToF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/** Converts `src` into `dst[0 .. src.length)` as f16 bit patterns. */
export function f32ToF16(src: Float32Array, dst: Uint16Array): void {
  const n = src.length;
  if (dst.length < n) throw new RangeError(`f32ToF16: destination holds ${dst.length} elements, need ${n}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const b = bits[i] ?? 0;
    const e = (b >>> 23) & 0xff;
    if (e > 112 && e < 143) {
      // Normal f16 range: rebias, keep 10 mantissa bits, and add the rounding carry branch-free
      // (0xfff + lowest kept bit pushes a remainder past half, or exactly half onto an odd value,
      // into bit 13). A carry into exponent 31 is the correct overflow to Inf.
      const kept = ((e - 112) << 10) | ((b >>> 13) & 0x3ff);
      dst[i] = ((b >>> 16) & 0x8000) | (kept + (((b & 0x1fff) + 0xfff + (kept & 1)) >>> 13));
    } else {
      dst[i] = f16FromF32Bits(b);
    }
  }
}

// f16 has only 65,536 patterns, so widening is one table lookup. The table is a constant,
// built on first use (256 KiB).
let widenTable: Uint32Array | undefined;
function f16WidenTable(): Uint32Array {
  if (widenTable === undefined) {
    const t = new Uint32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) t[h] = f32BitsFromF16(h);
    widenTable = t;
  }
  return widenTable;
}

/** Widens f16 bit patterns in `src` into `dst[0 .. src.length)` (exact). */
export function f16ToF32(src: Uint16Array, dst: Float32Array): void {
  const n = src.length;
  if (dst.length < n) throw new RangeError(`f16ToF32: destination holds ${dst.length} elements, need ${n}`);
  const table = f16WidenTable();
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = table[src[i] ?? 0] ?? 0;
}

/** Rounds every element of `values` to f16 in place (f32 → f16 → f32). */
export function roundToF16InPlace(values: Float32Array): void {
  const table = f16WidenTable();
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) bits[i] = table[f16FromF32Bits(bits[i] ?? 0)] ?? 0;
}
