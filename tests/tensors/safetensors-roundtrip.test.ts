import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DTYPES, dtypeByteSize, dtypeRank } from '../../src/tensors/dtype.js';
import type { DType } from '../../src/tensors/dtype.js';
import {
  SafetensorsReader,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  readTensorBytesSync,
} from '../../src/tensors/safetensors.js';
import {
  SafetensorsWriteError,
  SafetensorsWriter,
  planSafetensorsLayout,
  serializeSafetensors,
  writeSafetensors,
} from '../../src/tensors/safetensors-writer.js';
import type { TensorWithData } from '../../src/tensors/safetensors-writer.js';
import { randomBytes } from '../random-bytes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'evomerge-st-roundtrip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('round trip of every dtype and shape', () => {
  const shapes: number[][] = [[], [0], [1], [7], [3, 5], [0, 4], [4, 0], [2, 3, 4], [1, 1, 1, 1]];
  const tensors: TensorWithData[] = [];
  let seed = 1;
  for (const dtype of DTYPES) {
    for (const shape of shapes) {
      tensors.push({ name: `${dtype}.${shape.join('x') || 'scalar'}`, dtype, shape, data: randomBytes(count(shape) * dtypeByteSize(dtype), seed++) });
    }
  }
  // NaN payloads: signalling and quiet NaNs with payload bits must survive as raw bytes.
  tensors.push({ name: 'nan.f32', dtype: 'F32', shape: [3], data: new Uint8Array(new Uint32Array([0x7f800001, 0xffc12345, 0x7fbfffff]).buffer) });
  tensors.push({ name: 'nan.bf16', dtype: 'BF16', shape: [2], data: new Uint8Array(new Uint16Array([0x7f81, 0xffc1]).buffer) });
  const metadata = { format: 'pt', 'note ü': 'a"b\\c\n' };
  const file = path.join(dir, 'all.safetensors');

  it('writes, then reads back every tensor bit-identically (async and sync)', async () => {
    await writeSafetensors(file, tensors, metadata);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const reader = await SafetensorsReader.open(file);
    expect(reader.header.metadata).toEqual(metadata);
    expect(reader.header.tensors.size).toBe(tensors.length);
    for (const t of tensors) {
      const info = reader.tensor(t.name);
      expect(info.dtype).toBe(t.dtype);
      expect(info.shape).toEqual(t.shape);
      expect(equalBytes(await reader.readTensor(t.name), t.data)).toBe(true);
      expect(equalBytes(reader.readTensorSync(t.name), t.data)).toBe(true);
      expect(equalBytes(readTensorBytesSync(reader.fd, info.byteOffset, info.byteLength), t.data)).toBe(true);
    }
    await reader.close();
  });

  it('reads into a caller buffer that is larger than the tensor', async () => {
    const reader = SafetensorsReader.openSync(file);
    const buf = new Uint8Array(1024).fill(0xee);
    const t = tensors.find((x) => x.name === 'F32.2x3x4');
    expect(t).toBeDefined();
    if (t === undefined) return;
    const got = await reader.readTensor(t.name, buf);
    expect(got.buffer).toBe(buf.buffer);
    expect(got.byteLength).toBe(96);
    expect(equalBytes(got, t.data)).toBe(true);
    expect(buf[96]).toBe(0xee);
    reader.closeSync();
  });

  it('reads row ranges along the leading dimension; 1-d rows are elements; 0-d is one row', async () => {
    const reader = await SafetensorsReader.open(file);
    const m = tensors.find((x) => x.name === 'F32.2x3x4');
    const v = tensors.find((x) => x.name === 'BF16.7');
    const s = tensors.find((x) => x.name === 'F64.scalar');
    const e = tensors.find((x) => x.name === 'I32.0x4');
    if (m === undefined || v === undefined || s === undefined || e === undefined) throw new Error('fixture');
    expect(equalBytes(await reader.readRows(m.name, 1, 1), m.data.subarray(48, 96))).toBe(true);
    expect(equalBytes(reader.readRowsSync(m.name, 0, 2), m.data)).toBe(true);
    expect((await reader.readRows(m.name, 2, 0)).byteLength).toBe(0);
    expect(equalBytes(reader.readRowsSync(v.name, 2, 3), v.data.subarray(4, 10))).toBe(true);
    expect(equalBytes(await reader.readRows(s.name, 0, 1), s.data)).toBe(true);
    expect((await reader.readRows(e.name, 0, 0)).byteLength).toBe(0);
    await expect(reader.readRows(s.name, 0, 2)).rejects.toMatchObject({ code: 'BAD_ROW_RANGE' });
    await reader.close();
  });

  it('readSafetensorsHeader matches the reader, and the layout is in dtype-rank then name order', async () => {
    const h = await readSafetensorsHeader(file);
    const order = [...h.tensors.values()];
    for (let i = 1; i < order.length; i++) {
      const a = order[i - 1];
      const b = order[i];
      if (a === undefined || b === undefined) continue;
      const rankOrder = dtypeRank(a.dtype) - dtypeRank(b.dtype);
      expect(rankOrder > 0 || (rankOrder === 0 && a.name < b.name)).toBe(true);
    }
    expect(order[0]?.dtype).toBe('U64');
    expect(order.at(-1)?.dtype).toBe('BOOL');
  });
});

const nameArb = fc.string({ unit: fc.constantFrom('a', 'b', '.', '0', 'é', '"', '\\', '\n', '😀', '\uff00'), maxLength: 6 });
const tensorListArb = fc.uniqueArray(
  fc.record({
    name: nameArb,
    dtype: fc.constantFrom<DType>(...DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
  }),
  { selector: (t) => t.name, maxLength: 8 },
);
const metadataArb = fc.option(fc.dictionary(fc.string({ maxLength: 5 }).filter((k) => !/^\d+$/.test(k)), fc.string({ maxLength: 8 }), { maxKeys: 3 }), { nil: undefined });

describe('property: random valid files round-trip', () => {
  it('serialize → parse gives back every tensor, shape, dtype, byte and the metadata', () => {
    fc.assert(
      fc.property(tensorListArb, metadataArb, (list, metadata) => {
        const tensors = list
          .filter((t) => t.name !== '__metadata__')
          .map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: randomBytes(count(t.shape) * dtypeByteSize(t.dtype), t.seed) }));
        const bytes = serializeSafetensors(tensors, metadata);
        const h = parseSafetensorsHeader(bytes, bytes.byteLength, 'p.safetensors');
        expect(h.dataOffset % 8).toBe(0);
        expect(h.metadata).toEqual(metadata ?? {});
        expect(h.tensors.size).toBe(tensors.length);
        for (const t of tensors) {
          const info = h.tensors.get(t.name);
          expect(info).toBeDefined();
          if (info === undefined) continue;
          expect(info.dtype).toBe(t.dtype);
          expect(info.shape).toEqual(t.shape);
          expect(equalBytes(bytes.subarray(info.byteOffset, info.byteOffset + info.byteLength), t.data)).toBe(true);
        }
        // Planning is a function of the set, not of the order it came in.
        const reversed = serializeSafetensors([...tensors].reverse(), metadata);
        expect(equalBytes(reversed, bytes)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('SafetensorsWriter', () => {
  const planned = [
    { name: 'w', dtype: 'F32' as const, shape: [4, 2] },
    { name: 'b', dtype: 'BF16' as const, shape: [3] },
  ];

  it('accepts pieces, and bytes written by another handle at the layout offsets', async () => {
    const file = path.join(dir, 'pieces.safetensors');
    const writer = await SafetensorsWriter.create(file, planned, { format: 'pt' });
    expect(existsSync(file)).toBe(false);
    expect(path.dirname(writer.tempPath)).toBe(dir);
    const w = randomBytes(32, 7);
    await writer.writeTensorAt('w', 16, w.subarray(16));
    await writer.writeTensorAt('w', 0, w.subarray(0, 16));
    // What a worker thread does: open the temp file itself and write at the absolute offset.
    const entry = writer.layout.entries.get('b');
    if (entry === undefined) throw new Error('layout');
    const fd = openSync(writer.tempPath, 'r+');
    writeSync(fd, new Uint8Array([1, 2, 3, 4, 5, 6]), 0, 6, entry.byteOffset);
    closeSync(fd);
    await writer.commit();
    expect(existsSync(writer.tempPath)).toBe(false);
    const reader = SafetensorsReader.openSync(file);
    expect(equalBytes(reader.readTensorSync('w'), w)).toBe(true);
    expect([...reader.readTensorSync('b')]).toEqual([1, 2, 3, 4, 5, 6]);
    reader.closeSync();
    expect(readFileSync(file).byteLength).toBe(writer.layout.totalBytes);
  });

  it('abort leaves the previous file untouched and no temp file', async () => {
    const file = path.join(dir, 'keep.safetensors');
    writeFileSync(file, 'previous');
    const writer = await SafetensorsWriter.create(file, planned);
    await writer.writeTensor('b', new Uint8Array(6));
    await writer.abort();
    await writer.abort();
    expect(readFileSync(file, 'utf8')).toBe('previous');
    expect(existsSync(writer.tempPath)).toBe(false);
    await expect(writer.writeTensor('b', new Uint8Array(6))).rejects.toMatchObject({ code: 'WRITER_CLOSED' });
  });

  it('rejects wrong byte lengths, unknown tensors and out-of-range pieces, naming the tensor', async () => {
    const file = path.join(dir, 'bad.safetensors');
    const writer = await SafetensorsWriter.create(file, planned);
    await expect(writer.writeTensor('w', new Uint8Array(31))).rejects.toMatchObject({ code: 'BYTE_LENGTH_MISMATCH', tensor: 'w' });
    await expect(writer.writeTensor('nope', new Uint8Array(1))).rejects.toMatchObject({ code: 'UNKNOWN_TENSOR', tensor: 'nope' });
    await expect(writer.writeTensorAt('w', 30, new Uint8Array(4))).rejects.toMatchObject({ code: 'BYTE_LENGTH_MISMATCH' });
    await writer.abort();
    expect(existsSync(file)).toBe(false);
  });

  it('rejects a bad plan before touching the disk', async () => {
    const file = path.join(dir, 'never.safetensors');
    const bad: [unknown[], string, string | undefined][] = [
      [[...planned, { name: 'w', dtype: 'F16', shape: [1] }], 'DUPLICATE_TENSOR', 'w'],
      [[{ name: 'x', dtype: 'F32', shape: [-1] }], 'BAD_SHAPE', 'x'],
      [[{ name: 'x', dtype: 'F32', shape: [1.5] }], 'BAD_SHAPE', 'x'],
      [[{ name: 'x', dtype: 'F32', shape: [2 ** 30, 2 ** 30] }], 'BAD_SHAPE', 'x'],
      [[{ name: 'x', dtype: 'Q4', shape: [1] }], 'UNKNOWN_DTYPE', 'x'],
      [[{ name: '\ud800', dtype: 'F32', shape: [1] }], 'BAD_TENSOR_NAME', '\ud800'],
      [[{ name: '__metadata__', dtype: 'F32', shape: [1] }], 'BAD_TENSOR_NAME', '__metadata__'],
    ];
    for (const [tensors, code, tensor] of bad) {
      const err = await SafetensorsWriter.create(file, tensors as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SafetensorsWriteError);
      expect(err).toMatchObject({ code, tensor });
    }
    expect(() => planSafetensorsLayout([], { a: 1 } as never)).toThrow(expect.objectContaining({ code: 'BAD_METADATA' }));
    expect(readdirSync(dir).filter((f) => f.includes('never'))).toEqual([]);
  });

  it('plans an empty file: "{}" padded to 8 bytes; {} metadata is written as an empty map', () => {
    const empty = planSafetensorsLayout([]);
    expect(new TextDecoder().decode(empty.headerBytes.subarray(8))).toBe('{}      ');
    expect(empty.totalBytes).toBe(16);
    const withMeta = planSafetensorsLayout([], {});
    expect(new TextDecoder().decode(withMeta.headerBytes.subarray(8)).trimEnd()).toBe('{"__metadata__":{}}');
  });
});
