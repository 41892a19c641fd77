/**
 * bfloat16 ↔ float32. bf16 is the top half of an f32, so conversions work on the f32 bit pattern
 * through a Uint32Array view (no per-element allocation, and the loops stay monomorphic).
 *
 * f32 → bf16 rounds to nearest, ties to even; ±Inf stay infinite, finite values past the largest
 * bf16 round to ±Inf exactly as round-to-nearest-even dictates, and a NaN stays a NaN: its sign and
 * top payload bits are kept and the quiet bit is set, so it can never collapse into an infinity.
 */

// Scratch view for the scalar functions; the values never escape, so the functions stay pure.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The bf16 bit pattern of the f32 whose bit pattern is `bits` (an unsigned 32-bit integer). */
function bf16FromF32Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry may run into the exponent,
  // which is the correct result (the next binade, or Inf past the largest finite value).
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * The bf16 bit pattern (0..0xffff) nearest to `x`. `x` is a JS number: it is first rounded to f32,
 * which is what it is when it comes from a Float32Array.
 */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  return bf16FromF32Bits(scratchU32[0] ?? 0);
}

/** The exact value of a bf16 bit pattern (only the low 16 bits of `bits` are used). */
export function bf16BitsToF32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0] ?? 0;
}

/** `x` rounded to the nearest bf16 and back (f32 → bf16 → f32), for mergekit's per-op bf16 rounding. */
export function roundToBf16(x: number): number {
  return bf16BitsToF32(f32ToBf16Bits(x));
}

/** Converts `src` into `dst[0 .. src.length)` as bf16 bit patterns. `dst` must be at least as long. */
export function f32ToBf16(src: Float32Array, dst: Uint16Array): void {
  const n = src.length;
  if (dst.length < n) throw new RangeError(`f32ToBf16: destination holds ${dst.length} elements, need ${n}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const b = bits[i] ?? 0;
    dst[i] =
      (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x0040 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
}

/** Widens bf16 bit patterns in `src` into `dst[0 .. src.length)` (exact). */
export function bf16ToF32(src: Uint16Array, dst: Float32Array): void {
  const n = src.length;
  if (dst.length < n) throw new RangeError(`bf16ToF32: destination holds ${dst.length} elements, need ${n}`);
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = (src[i] ?? 0) << 16;
}

/** Rounds every element of `values` to bf16 in place (f32 → bf16 → f32). */
export function roundToBf16InPlace(values: Float32Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i] ?? 0;
    const h =
      (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x0040 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    bits[i] = h << 16;
  }
}
