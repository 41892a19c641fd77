import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, bf16ToF32, f32ToBf16, f32ToBf16Bits, roundToBf16, roundToBf16InPlace } from '../../src/tensors/bf16.js';

// Independent bit-pattern helpers (DataView, not the code under test).
function f32FromBits(bits: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, bits >>> 0);
  return v.getFloat32(0);
}
function bitsOfF32(x: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x);
  return v.getUint32(0);
}

describe('f32ToBf16Bits: hand-written bit patterns', () => {
  const cases: [string, number, number][] = [
    ['1.0', 0x3f800000, 0x3f80],
    ['-0', 0x80000000, 0x8000],
    ['+0', 0x00000000, 0x0000],
    ['just below half an ulp rounds down', 0x3f807fff, 0x3f80],
    ['exact tie to even (down, 0x3f80 is even)', 0x3f808000, 0x3f80],
    ['exact tie to even (up, 0x3f81 is odd)', 0x3f818000, 0x3f82],
    ['just above half rounds up', 0x3f808001, 0x3f81],
    ['negative tie to even', 0xbf818000, 0xbf82],
    ['pi', 0x40490fdb, 0x4049],
    ['+Inf', 0x7f800000, 0x7f80],
    ['-Inf', 0xff800000, 0xff80],
    ['largest f32 overflows to +Inf', 0x7f7fffff, 0x7f80],
    ['-largest f32 overflows to -Inf', 0xff7fffff, 0xff80],
    ['just below the tie at max bf16 stays finite', 0x7f7f7fff, 0x7f7f],
    ['tie above max bf16 (odd) rounds to Inf', 0x7f7f8000, 0x7f80],
    ['smallest f32 subnormal rounds to 0', 0x00000001, 0x0000],
    ['subnormal tie to even 0', 0x00008000, 0x0000],
    ['subnormal tie to even 2', 0x00018000, 0x0002],
    ['subnormal above half', 0x00008001, 0x0001],
    ['largest subnormal rounds up into the smallest normal', 0x007fffff, 0x0080],
  ];
  for (const [what, input, expected] of cases) {
    it(what, () => expect(f32ToBf16Bits(f32FromBits(input))).toBe(expected));
  }

  it('keeps NaN a quiet NaN with its sign', () => {
    expect(f32ToBf16Bits(f32FromBits(0x7fc00000))).toBe(0x7fc0);
    // A signalling NaN whose payload lives only in the low bits must not become Inf.
    expect(f32ToBf16Bits(f32FromBits(0x7f800001))).toBe(0x7fc0);
    expect(f32ToBf16Bits(f32FromBits(0xffa00000))).toBe(0xffe0);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(Number.NaN)))).toBe(true);
  });
});

describe('bf16BitsToF32', () => {
  it('decodes hand-picked patterns', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0x4049)).toBe(3.140625);
    expect(bf16BitsToF32(0xc000)).toBe(-2);
    expect(bf16BitsToF32(0x7f7f)).toBe(3.3895313892515355e38);
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133);
    expect(bf16BitsToF32(0x7f80)).toBe(Number.POSITIVE_INFINITY);
    expect(bf16BitsToF32(0xff80)).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(bf16BitsToF32(0x8000), -0)).toBe(true);
  });

  it('widens every pattern exactly and round-trips every non-NaN pattern', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const x = bf16BitsToF32(h);
      const isNaNPattern = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      const ok = isNaNPattern ? Number.isNaN(x) : bitsOfF32(x) === h << 16 >>> 0 && f32ToBf16Bits(x) === h;
      if (!ok) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });
});

/**
 * Reference rounding computed from values, not bits: the two bf16 neighbours of x (truncation and
 * the next pattern up in magnitude), the nearer one wins, ties go to the even pattern. The pattern
 * past the largest finite bf16 is Inf, which rounding treats as 2^128.
 */
function referenceBf16(bits: number): number {
  const x = f32FromBits(bits);
  const lo = bits >>> 16;
  const hi = lo + 1;
  const loVal = Math.abs(f32FromBits(lo << 16));
  const hiPattern = (hi & 0x7fff) === 0x7f80 ? 2 ** 128 : Math.abs(f32FromBits(hi << 16));
  const ax = Math.abs(x);
  const dLo = ax - loVal;
  const dHi = hiPattern - ax;
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return (lo & 1) === 0 ? lo : hi;
}

describe('f32 → bf16 against a value-based reference', () => {
  it('agrees on random finite f32 values', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        if ((bits & 0x7f800000) === 0x7f800000) return; // Inf/NaN covered above
        expect(f32ToBf16Bits(f32FromBits(bits))).toBe(referenceBf16(bits));
      }),
      { numRuns: 20000 },
    );
  });

  it('bulk conversions match the scalar ones, in place too', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 200 }), (bitsList) => {
        const src = new Float32Array(new Uint32Array(bitsList).buffer);
        const dst = new Uint16Array(src.length);
        f32ToBf16(src, dst);
        const back = new Float32Array(src.length);
        bf16ToF32(dst, back);
        const inPlace = src.slice();
        roundToBf16InPlace(inPlace);
        for (let i = 0; i < src.length; i++) {
          const x = src[i] ?? 0;
          expect(dst[i]).toBe(f32ToBf16Bits(x));
          expect(Object.is(back[i], bf16BitsToF32(dst[i] ?? 0))).toBe(true);
          expect(Object.is(inPlace[i], roundToBf16(x))).toBe(true);
        }
      }),
    );
  });

  it('works on subarray views with a byte offset', () => {
    const big = new Float32Array([9, 1, 1.00390625, 2]);
    const view = big.subarray(1, 3);
    const dst = new Uint16Array(3).subarray(1);
    f32ToBf16(view, dst);
    expect([...dst]).toEqual([0x3f80, 0x3f80]);
  });

  it('roundToBf16 applies mergekit weight rounding (0.3 → 0.30078125, 0.7 → 0.69921875)', () => {
    expect(roundToBf16(0.3)).toBe(0.30078125);
    expect(roundToBf16(0.7)).toBe(0.69921875);
  });
});
