import { describe, expect, it } from 'vitest';
import {
  DTYPES,
  FLOAT_DTYPES,
  decodeToF32,
  dtypeByteSize,
  dtypeFromMergekit,
  dtypeToMergekit,
  encodeFromF32,
  isFloatDType,
  parseDType,
} from '../../src/tensors/dtype.js';
import type { DType } from '../../src/tensors/dtype.js';

describe('dtype names and sizes', () => {
  it('knows the byte size of every dtype', () => {
    const expected: Record<DType, number> = {
      F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
      I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
    };
    for (const d of DTYPES) expect(dtypeByteSize(d)).toBe(expected[d]);
    expect(DTYPES.length).toBe(Object.keys(expected).length);
  });

  it('parses only exact header spellings', () => {
    expect(parseDType('BF16')).toBe('BF16');
    expect(parseDType('bf16')).toBeUndefined();
    expect(parseDType('toString')).toBeUndefined();
    expect(parseDType('__proto__')).toBeUndefined();
    expect(parseDType('F4')).toBeUndefined();
  });

  it('classifies float dtypes', () => {
    expect(FLOAT_DTYPES).toEqual(['F32', 'F16', 'BF16']);
    expect(isFloatDType('F16')).toBe(true);
    expect(isFloatDType('F64')).toBe(false);
    expect(isFloatDType('I8')).toBe(false);
  });

  it('maps mergekit names both ways', () => {
    expect(dtypeFromMergekit('bfloat16')).toBe('BF16');
    expect(dtypeFromMergekit('torch.float16')).toBe('F16');
    expect(dtypeFromMergekit('float32')).toBe('F32');
    expect(dtypeFromMergekit('fp16')).toBeUndefined();
    for (const d of FLOAT_DTYPES) expect(dtypeFromMergekit(dtypeToMergekit(d))).toBe(d);
  });
});

describe('decodeToF32 / encodeFromF32', () => {
  it('decodes hand-written little-endian bytes of each float dtype', () => {
    expect([...decodeToF32('F32', new Uint8Array([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]))]).toEqual([1, -2]);
    expect([...decodeToF32('BF16', new Uint8Array([0x80, 0x3f, 0x49, 0x40]))]).toEqual([1, 3.140625]);
    expect([...decodeToF32('F16', new Uint8Array([0x00, 0x3c, 0xff, 0x7b, 0x01, 0x00]))]).toEqual([1, 65504, 2 ** -24]);
    expect([...decodeToF32('F64', new Uint8Array([0, 0, 0, 0, 0, 0, 0xf0, 0x3f]))]).toEqual([1]);
    // F64 → f32 rounds to nearest: 0.1 in f64 becomes Math.fround(0.1).
    const f64 = new Uint8Array(new Float64Array([0.1]).buffer);
    expect(decodeToF32('F64', f64)[0]).toBe(Math.fround(0.1));
  });

  it('encodes hand-checked bytes with round-to-nearest-even', () => {
    const src = new Float32Array([1, 1.00390625, 65520]);
    expect([...encodeFromF32('BF16', src)]).toEqual([0x80, 0x3f, 0x80, 0x3f, 0x80, 0x47]);
    expect([...encodeFromF32('F16', src)]).toEqual([0x00, 0x3c, 0x04, 0x3c, 0x00, 0x7c]);
    expect([...encodeFromF32('F32', new Float32Array([1]))]).toEqual([0, 0, 0x80, 0x3f]);
    expect([...encodeFromF32('F64', new Float32Array([1]))]).toEqual([0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
  });

  it('round-trips every float dtype through unaligned buffers', () => {
    const values = new Float32Array([0, -0, 1.5, -3.25, 2 ** -10, 65504, Number.POSITIVE_INFINITY]);
    for (const d of ['F32', 'F16', 'BF16', 'F64'] as const) {
      const size = dtypeByteSize(d);
      const backing = new Uint8Array(values.length * size + 3);
      const out = backing.subarray(1); // byteOffset 1: unaligned for every dtype
      const written = encodeFromF32(d, values, out);
      expect(written.byteOffset).toBe(1);
      expect(written.byteLength).toBe(values.length * size);
      expect([...written]).toEqual([...encodeFromF32(d, values)]);
      const decoded = decodeToF32(d, written, new Float32Array(values.length + 5));
      expect(decoded.length).toBe(values.length);
      for (let i = 0; i < values.length; i++) {
        const v = values[i] ?? 0;
        const expected = d === 'BF16' ? decodeToF32('BF16', encodeFromF32('BF16', new Float32Array([v])))[0] : v;
        expect(Object.is(decoded[i], expected)).toBe(true);
      }
    }
  });

  it('rejects integer dtypes, ragged byte counts and short outputs', () => {
    expect(() => decodeToF32('I8', new Uint8Array(2))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_DTYPE' }));
    expect(() => encodeFromF32('U8', new Float32Array(2))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_DTYPE' }));
    expect(() => decodeToF32('F32', new Uint8Array(6))).toThrow(RangeError);
    expect(() => decodeToF32('F32', new Uint8Array(8), new Float32Array(1))).toThrow(RangeError);
    expect(() => encodeFromF32('F16', new Float32Array(3), new Uint8Array(5))).toThrow(RangeError);
  });
});
