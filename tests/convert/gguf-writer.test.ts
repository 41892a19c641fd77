import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roundToBf16 } from '../../src/tensors/bf16.js';
import { f16BitsToF32, f32ToF16Bits, roundToF16 } from '../../src/tensors/f16.js';
import { GgufError, quantizeQ8_0, writeGgufFile } from '../../src/tensors/gguf.js';
import type { GgmlType, GgufMetadataEntry, GgufTensorSpec } from '../../src/tensors/gguf.js';
import { readGgufHeader, readGgufTensorF32 } from '../../src/tensors/gguf-reader.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function tensor(name: string, shape: number[], type: GgmlType, values: Float32Array, rowsPerChunk = 1): GgufTensorSpec {
  return {
    name,
    shape,
    type,
    data: async function* () {
      const row = shape[shape.length - 1] ?? 1;
      for (let i = 0; i < values.length; i += row * rowsPerChunk) yield values.slice(i, i + row * rowsPerChunk);
    },
  };
}

const u32 = (key: string, value: number): GgufMetadataEntry => ({ key, value: { type: 'uint32', value } });

describe('writeGgufFile', () => {
  it('writes the byte layout of gguf.md (hand-checked header, ne reversed, aligned data)', async () => {
    const file = path.join(dir, 'layout.gguf');
    const values = Float32Array.from([1, 2, 3, 4, 5, 6]);
    await writeGgufFile(file, [u32('a.b', 7)], [tensor('t', [2, 3], 'F32', values)]);
    const b = await readFile(file);
    expect(b.toString('latin1', 0, 4)).toBe('GGUF');
    expect(b.readUInt32LE(4)).toBe(3); // version
    expect(b.readBigUInt64LE(8)).toBe(1n); // tensors
    expect(b.readBigUInt64LE(16)).toBe(1n); // kv pairs
    expect(b.readBigUInt64LE(24)).toBe(3n); // key length
    expect(b.toString('utf8', 32, 35)).toBe('a.b');
    expect(b.readUInt32LE(35)).toBe(4); // uint32
    expect(b.readUInt32LE(39)).toBe(7);
    expect(b.readBigUInt64LE(43)).toBe(1n); // name length
    expect(b.toString('utf8', 51, 52)).toBe('t');
    expect(b.readUInt32LE(52)).toBe(2); // n_dims
    expect(b.readBigUInt64LE(56)).toBe(3n); // ne[0] = innermost = row length
    expect(b.readBigUInt64LE(64)).toBe(2n); // ne[1]
    expect(b.readUInt32LE(72)).toBe(0); // F32
    expect(b.readBigUInt64LE(76)).toBe(0n); // offset
    // Header ends at 84 → data at 96 (next multiple of 32), zero padded.
    expect([...b.subarray(84, 96)].every((x) => x === 0)).toBe(true);
    expect([0, 1, 2, 3, 4, 5].map((i) => b.readFloatLE(96 + 4 * i))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(b.length).toBe(96 + 32); // 24 data bytes padded to 32
  });

  it('quantizes Q8_0 like ggml: scale max|x|/127 as f16, round half away from zero', () => {
    const x = new Float32Array(32);
    x[0] = -2.54; // the max → -127
    x[1] = 1.27 / 2 / 1.0; // 0.635 * 50 = 31.75 → 32
    x[2] = 0.01; // 0.5 → 1 (away from zero)
    x[3] = -0.01; // -0.5 → -1
    const out = quantizeQ8_0(x);
    expect(out.length).toBe(34);
    // d = 2.54/127 = 0.02 → f16 bits of 0.02 (0x251f = 0.0200043)
    expect(out.readUInt16LE(0)).toBe(0x251f);
    expect(out.readInt8(2)).toBe(-127);
    expect(out.readInt8(3)).toBe(32);
    expect(out.readInt8(4)).toBe(1);
    expect(out.readInt8(5)).toBe(-1);
    expect(out.readInt8(6)).toBe(0);
    expect(quantizeQ8_0(new Float32Array(32)).readUInt16LE(0)).toBe(0); // all-zero block: d = 0
  });

  it('is read back identically by node-llama-cpp (an independent parser) and by our reader', async () => {
    const file = path.join(dir, 'types.gguf');
    const f = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * s) * 3);
    const metadata: GgufMetadataEntry[] = [
      { key: 'general.architecture', value: { type: 'string', value: 'llama' } },
      { key: 'x.f', value: { type: 'float32', value: 0.5 } },
      { key: 'x.b', value: { type: 'bool', value: true } },
      { key: 'x.i', value: { type: 'int32', value: -5 } },
      { key: 'x.s', value: { type: 'array', itemType: 'string', value: ['a', 'ü', ''] } },
      { key: 'x.n', value: { type: 'array', itemType: 'int32', value: [1, -2, 3] } },
    ];
    const a = f(64, 0.1);
    const b = f(96, 0.2);
    const c = f(33, 0.3);
    const d = f(128, 0.4);
    await writeGgufFile(
      file,
      metadata,
      [tensor('f32', [2, 32], 'F32', a), tensor('f16', [3, 32], 'F16', b, 2), tensor('bf16', [33], 'BF16', c), tensor('q8', [2, 64], 'Q8_0', d)],
      { alignment: 64 },
    );
    const info = await readGgufFileInfo(file, { logWarnings: false });
    expect(info.version).toBe(3);
    const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md.general?.architecture).toBe('llama');
    expect(md.general?.alignment).toBe(64);
    expect(md.x).toEqual({ f: 0.5, b: true, i: -5, s: ['a', 'ü', ''], n: [1, -2, 3] });
    expect(info.tensorInfo?.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType, Number(t.fileOffset) % 64])).toEqual([
      ['f32', [32, 2], 0, 0],
      ['f16', [32, 3], 1, 0],
      ['bf16', [33], 30, 0],
      ['q8', [64, 2], 8, 0],
    ]);

    const header = await readGgufHeader(file);
    expect(header.tensors.map((t) => t.fileOffset)).toEqual(info.tensorInfo?.map((t) => Number(t.fileOffset)));
    const [ta, tb, tc, td] = header.tensors;
    if (!ta || !tb || !tc || !td) throw new Error('missing tensors');
    expect([...(await readGgufTensorF32(file, ta))]).toEqual([...a]);
    expect([...(await readGgufTensorF32(file, tb))]).toEqual([...b].map(roundToF16));
    expect([...(await readGgufTensorF32(file, tc))]).toEqual([...c].map(roundToBf16));
    const q = await readGgufTensorF32(file, td);
    for (let blk = 0; blk < 4; blk++) {
      const amax = Math.max(...[...d.subarray(blk * 32, blk * 32 + 32)].map(Math.abs));
      for (let j = 0; j < 32; j++) expect(Math.abs((q[blk * 32 + j] ?? 0) - (d[blk * 32 + j] ?? 0))).toBeLessThanOrEqual((amax / 127) * 0.5 + 1e-3 * amax);
    }
  });

  it('writes pre-encoded byte chunks as they are, checking whole rows', async () => {
    const file = path.join(dir, 'encoded.gguf');
    const rows = Float32Array.from({ length: 64 }, (_, i) => i / 7);
    const asF16 = Buffer.from(new Uint16Array([...rows].map(f32ToF16Bits)).buffer);
    const spec = (name: string, chunks: (Float32Array | Uint8Array)[]): GgufTensorSpec => ({ name, shape: [2, 32], type: 'F16', data: async function* () { yield* chunks; } });
    // One row pre-encoded, one row as f32: the file holds the same bytes as an all-f32 write.
    await writeGgufFile(file, [], [spec('mixed', [asF16.subarray(0, 64), rows.slice(32)]), spec('plain', [rows])]);
    const h = await readGgufHeader(file);
    const [a, b] = h.tensors;
    if (!a || !b) throw new Error('missing');
    expect([...(await readGgufTensorF32(file, a))]).toEqual([...(await readGgufTensorF32(file, b))]);
    const bad = await writeGgufFile(path.join(dir, 'bad.gguf'), [], [spec('odd', [asF16.subarray(0, 30)])]).catch((e: unknown) => e);
    expect((bad as GgufError).code).toBe('GGUF_BAD_CHUNK');
  });

  it('round-trips random tensors of every type (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            type: fc.constantFrom<GgmlType>('F32', 'F16', 'BF16', 'Q8_0'),
            rows: fc.integer({ min: 1, max: 4 }),
            blocks: fc.integer({ min: 1, max: 3 }),
            seed: fc.integer({ min: 1, max: 1000 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        async (specs) => {
          const file = path.join(dir, 'prop.gguf');
          const data = specs.map((s) => Float32Array.from({ length: s.rows * s.blocks * 32 }, (_, i) => Math.fround(Math.cos(i * s.seed) * s.seed)));
          await writeGgufFile(file, [], specs.map((s, i) => tensor(`t${i}`, [s.rows, s.blocks * 32], s.type, data[i] ?? new Float32Array(0))));
          const header = await readGgufHeader(file);
          for (const [i, s] of specs.entries()) {
            const info = header.tensors[i];
            const src = data[i];
            if (!info || !src) throw new Error('missing');
            const got = await readGgufTensorF32(file, info);
            if (s.type === 'F32') expect([...got]).toEqual([...src]);
            else if (s.type === 'F16') expect([...got]).toEqual([...src].map(roundToF16));
            else if (s.type === 'BF16') expect([...got]).toEqual([...src].map(roundToBf16));
            else expect([...got]).toEqual([...decodeQ8(quantizeQ8_0(src))]);
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  const errorCases: { code: string; tensors: GgufTensorSpec[]; metadata?: GgufMetadataEntry[]; alignment?: number }[] = [
    { code: 'GGUF_BAD_BLOCK', tensors: [tensor('q', [2, 20], 'Q8_0', new Float32Array(40))] },
    { code: 'GGUF_DUPLICATE_TENSOR', tensors: [tensor('a', [1], 'F32', new Float32Array(1)), tensor('a', [1], 'F32', new Float32Array(1))] },
    { code: 'GGUF_NAME_TOO_LONG', tensors: [tensor('n'.repeat(64), [1], 'F32', new Float32Array(1))] },
    { code: 'GGUF_BAD_SHAPE', tensors: [tensor('s', [1, 1, 1, 1, 1], 'F32', new Float32Array(1))] },
    { code: 'GGUF_BAD_SHAPE', tensors: [tensor('z', [0, 4], 'F32', new Float32Array(0))] },
    { code: 'GGUF_DATA_SIZE', tensors: [tensor('short', [3, 2], 'F32', new Float32Array(4))] },
    { code: 'GGUF_DUPLICATE_KEY', tensors: [], metadata: [u32('k', 1), u32('k', 2)] },
    { code: 'GGUF_BAD_VALUE', tensors: [], metadata: [u32('k', 1.5)] },
    { code: 'GGUF_BAD_ALIGNMENT', tensors: [], alignment: 12 },
  ];
  for (const c of errorCases) {
    it(`rejects bad input with ${c.code} and leaves no file behind`, async () => {
      const sub = await mkdtemp(path.join(dir, 'err-'));
      const file = path.join(sub, 'out.gguf');
      const err = await writeGgufFile(file, c.metadata ?? [], c.tensors, c.alignment === undefined ? {} : { alignment: c.alignment }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GgufError);
      expect((err as GgufError).code).toBe(c.code);
      expect(await readdir(sub)).toEqual([]);
    });
  }
});

/** Dequantizes raw Q8_0 blocks by hand (scale × int8), independently of the reader under test. */
function decodeQ8(bytes: Buffer): Float32Array {
  const out = new Float32Array((bytes.length / 34) * 32);
  for (let b = 0; b < bytes.length / 34; b++) {
    const d = f16BitsToF32(bytes.readUInt16LE(b * 34));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = d * bytes.readInt8(b * 34 + 2 + j);
  }
  return out;
}
