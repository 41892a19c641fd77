import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f16ToF32, f32ToF16, f32ToF16Bits, roundToF16, roundToF16InPlace } from '../../src/tensors/f16.js';

function f32FromBits(bits: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, bits >>> 0);
  return v.getFloat32(0);
}

/** binary16 decoded from its definition: (-1)^s × (e = 0 ? m·2^-24 : (1 + m/1024)·2^(e−15)). */
function referenceF16Value(h: number): number {
  const s = (h & 0x8000) !== 0 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m === 0 ? s * Number.POSITIVE_INFINITY : Number.NaN;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

describe('f32ToF16Bits: hand-written cases', () => {
  const cases: [string, number, number][] = [
    ['1.0', 1, 0x3c00],
    ['-2', -2, 0xc000],
    ['max finite 65504', 65504, 0x7bff],
    ['65519 rounds down to 65504', 65519, 0x7bff],
    ['65520 is a tie above max (odd) → Inf', 65520, 0x7c00],
    ['1e6 overflows to Inf', 1e6, 0x7c00],
    ['-1e6 overflows to -Inf', -1e6, 0xfc00],
    ['smallest normal 2^-14', 2 ** -14, 0x0400],
    ['largest subnormal', 1023 * 2 ** -24, 0x03ff],
    ['smallest subnormal 2^-24', 2 ** -24, 0x0001],
    ['2^-25 is a tie → even 0', 2 ** -25, 0x0000],
    ['1.5·2^-25 rounds up to 2^-24', 1.5 * 2 ** -25, 0x0001],
    ['3·2^-25 is a tie → even 2·2^-24', 3 * 2 ** -25, 0x0002],
    ['5·2^-25 is a tie → even 2·2^-24', 5 * 2 ** -25, 0x0002],
    ['tiny underflows to +0', 1e-10, 0x0000],
    ['tiny negative underflows to -0', -1e-10, 0x8000],
    ['1 + 2^-11 is a tie → 1 (even)', 1 + 2 ** -11, 0x3c00],
    ['1 + 3·2^-11 is a tie → 1 + 2^-9 (even)', 1 + 3 * 2 ** -11, 0x3c02],
    ['1 + 2^-11 + 2^-20 rounds up', 1 + 2 ** -11 + 2 ** -20, 0x3c01],
    ['2047.5 is a tie → 2048 carries into the exponent', 2047.5 + 0, 0x6800],
    ['+Inf', Number.POSITIVE_INFINITY, 0x7c00],
    ['-Inf', Number.NEGATIVE_INFINITY, 0xfc00],
    ['-0', -0, 0x8000],
  ];
  for (const [what, input, expected] of cases) {
    it(what, () => expect(f32ToF16Bits(input)).toBe(expected));
  }

  it('keeps NaN a quiet NaN with its sign', () => {
    expect(f32ToF16Bits(f32FromBits(0x7fc00000))).toBe(0x7e00);
    expect(f32ToF16Bits(f32FromBits(0x7f800001))).toBe(0x7e00);
    expect(f32ToF16Bits(f32FromBits(0xff800000 | 0x400000 | 0x2000))).toBe(0xfe01);
    expect(Number.isNaN(roundToF16(Number.NaN))).toBe(true);
  });
});

describe('f16BitsToF32', () => {
  it('decodes every pattern as its definition says and round-trips every non-NaN one', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const x = f16BitsToF32(h);
      const ref = referenceF16Value(h);
      const ok = Number.isNaN(ref) ? Number.isNaN(x) : Object.is(x, ref) && f32ToF16Bits(x) === h;
      if (!ok) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });
});

// Sorted finite non-negative f16 values (index = pattern), plus 65536 standing in for Inf.
const POSITIVE_F16: number[] = Array.from({ length: 0x7c00 }, (_, h) => referenceF16Value(h)).concat([65536]);

/** Nearest f16 pattern to x by value (ties to even pattern), from the table above. */
function referenceF16(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  let lo = 0;
  let hi = POSITIVE_F16.length - 1;
  if (a >= (POSITIVE_F16[hi] ?? 0)) return sign | 0x7c00;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((POSITIVE_F16[mid] ?? 0) <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - (POSITIVE_F16[lo] ?? 0);
  const dHi = (POSITIVE_F16[hi] ?? 0) - a;
  const pick = dLo < dHi ? lo : dHi < dLo ? hi : (lo & 1) === 0 ? lo : hi;
  return sign | pick;
}

describe('f32 → f16 against a value-based reference', () => {
  it('agrees on random finite f32 values across the whole range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        if ((bits & 0x7f800000) === 0x7f800000) return;
        const x = f32FromBits(bits);
        expect(f32ToF16Bits(x)).toBe(referenceF16(x));
      }),
      { numRuns: 20000 },
    );
  });

  it('agrees on f32 values near the f16 range (subnormals, ties, overflow)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x32000000, max: 0x47800000 }), fc.boolean(), (bits, neg) => {
        const x = f32FromBits(neg ? (bits | 0x80000000) >>> 0 : bits);
        expect(f32ToF16Bits(x)).toBe(referenceF16(x));
      }),
      { numRuns: 20000 },
    );
  });

  it('bulk conversions match the scalar ones', () => {
    const bitsArb = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0x32000000, max: 0x47800000 }), fc.integer({ min: 0xb2000000, max: 0xc7800000 }));
    fc.assert(
      fc.property(fc.array(bitsArb, { maxLength: 200 }), (bitsList) => {
        const src = new Float32Array(new Uint32Array(bitsList).buffer);
        const dst = new Uint16Array(src.length);
        f32ToF16(src, dst);
        const back = new Float32Array(src.length);
        f16ToF32(dst, back);
        const inPlace = src.slice();
        roundToF16InPlace(inPlace);
        for (let i = 0; i < src.length; i++) {
          const x = src[i] ?? 0;
          expect(dst[i]).toBe(f32ToF16Bits(x));
          expect(Object.is(back[i], f16BitsToF32(dst[i] ?? 0))).toBe(true);
          expect(Object.is(inPlace[i], roundToF16(x))).toBe(true);
        }
      }),
    );
  });
});
