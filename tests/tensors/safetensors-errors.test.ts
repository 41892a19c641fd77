import { mkdtempSync, rmSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SafetensorsError,
  SafetensorsReader,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  readSafetensorsHeaderSync,
  readTensorBytesSync,
} from '../../src/tensors/safetensors.js';
import type { SafetensorsErrorCode } from '../../src/tensors/safetensors.js';
import { openSync, closeSync } from 'node:fs';

/** A file: 8-byte LE length of `header`, the header bytes, then `dataBytes` zero bytes. */
function craft(header: string | Uint8Array, dataBytes = 0, lengthOverride?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.byteLength), true);
  out.set(h, 8);
  return out;
}

function codeOf(fn: () => unknown): { code: string; tensor: string | undefined; message: string } {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof SafetensorsError)) throw err;
    return { code: err.code, tensor: err.tensor, message: err.message };
  }
  throw new Error('expected a SafetensorsError');
}

function parse(bytes: Uint8Array): ReturnType<typeof parseSafetensorsHeader> {
  return parseSafetensorsHeader(bytes, bytes.byteLength, 'model.safetensors');
}

const entry = (dtype: string, shape: unknown, offsets: unknown): string =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

describe('one crafted file per header error code', () => {
  const cases: { code: SafetensorsErrorCode; bytes: Uint8Array; tensor?: string }[] = [
    { code: 'FILE_TOO_SMALL', bytes: new Uint8Array([2, 0, 0, 0, 0]) },
    { code: 'HEADER_TOO_LARGE', bytes: craft('{}', 0, 100_000_001n) },
    { code: 'HEADER_TOO_LARGE', bytes: craft('{}', 0, 0xffff_ffff_ffff_ffffn) },
    { code: 'HEADER_BEYOND_FILE', bytes: craft('{}', 0, 3n) },
    { code: 'HEADER_NOT_UTF8', bytes: craft(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])) },
    // A byte-order mark is not stripped: the reference parser fails on it as JSON.
    { code: 'HEADER_NOT_JSON', bytes: craft(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])) },
    { code: 'HEADER_NOT_JSON', bytes: craft('{"a":') },
    { code: 'HEADER_NOT_OBJECT', bytes: craft('[]') },
    { code: 'HEADER_NOT_OBJECT', bytes: craft('null') },
    { code: 'BAD_METADATA', bytes: craft('{"__metadata__":{"format":1}}') },
    { code: 'BAD_METADATA', bytes: craft('{"__metadata__":["pt"]}') },
    { code: 'BAD_ENTRY', bytes: craft('{"x":5}'), tensor: 'x' },
    { code: 'BAD_ENTRY', bytes: craft(`{"x":{"shape":[],"data_offsets":[0,0]}}`), tensor: 'x' },
    { code: 'UNKNOWN_DTYPE', bytes: craft(`{"x":${entry('F7', [], [0, 0])}}`), tensor: 'x' },
    { code: 'BAD_SHAPE', bytes: craft(`{"x":${entry('F32', [-1], [0, 0])}}`), tensor: 'x' },
    { code: 'BAD_SHAPE', bytes: craft(`{"x":${entry('F32', [1.5], [0, 0])}}`), tensor: 'x' },
    { code: 'BAD_SHAPE', bytes: craft(`{"x":${entry('F32', '3', [0, 12])}}`), tensor: 'x' },
    { code: 'BAD_SHAPE', bytes: craft(`{"x":${entry('F32', [2 ** 40, 2 ** 40], [0, 0])}}`), tensor: 'x' },
    { code: 'BAD_OFFSETS', bytes: craft(`{"x":${entry('F32', [1], [4, 0])}}`, 4), tensor: 'x' },
    { code: 'BAD_OFFSETS', bytes: craft(`{"x":${entry('F32', [1], [0])}}`, 4), tensor: 'x' },
    { code: 'BAD_OFFSETS', bytes: craft(`{"x":${entry('F32', [1], ['0', 4])}}`, 4), tensor: 'x' },
    { code: 'SIZE_MISMATCH', bytes: craft(`{"x.weight":${entry('F32', [2, 3], [0, 20])}}`, 20), tensor: 'x.weight' },
    { code: 'OFFSETS_OUT_OF_RANGE', bytes: craft(`{"x":${entry('F32', [6], [0, 24])}}`, 16), tensor: 'x' },
    {
      code: 'OFFSETS_OVERLAP',
      bytes: craft(`{"a":${entry('F32', [2], [0, 8])},"b":${entry('F32', [2], [4, 12])}}`, 12),
      tensor: 'b',
    },
    {
      code: 'OFFSETS_GAP',
      bytes: craft(`{"a":${entry('F32', [2], [0, 8])},"b":${entry('F32', [2], [12, 20])}}`, 20),
      tensor: 'b',
    },
    { code: 'OFFSETS_GAP', bytes: craft(`{"a":${entry('F32', [2], [4, 12])}}`, 12), tensor: 'a' },
    { code: 'DATA_SIZE_MISMATCH', bytes: craft(`{"a":${entry('F32', [2], [0, 8])}}`, 12) },
    { code: 'DATA_SIZE_MISMATCH', bytes: craft('{}', 1) },
  ];
  for (const c of cases) {
    it(`${c.code}: ${JSON.stringify(new TextDecoder().decode(c.bytes.subarray(8, 60)))}`, () => {
      const got = codeOf(() => parse(c.bytes));
      expect(got.code).toBe(c.code);
      expect(got.tensor).toBe(c.tensor);
      expect(got.message.startsWith('model.safetensors: ')).toBe(true);
    });
  }

  it('states sizes in the message', () => {
    const got = codeOf(() => parse(craft(`{"x.weight":${entry('F32', [2, 3], [0, 20])}}`, 20)));
    expect(got.message).toBe('model.safetensors: tensor "x.weight": shape [2,3] × F32 is 24 bytes but its offsets span 20');
  });

  it('BAD_BUFFER when the prefix given is shorter than the header it announces', () => {
    const bytes = craft('{}    ');
    expect(codeOf(() => parseSafetensorsHeader(bytes.subarray(0, 10), bytes.byteLength, 'f')).code).toBe('BAD_BUFFER');
  });
});

describe('what the reference library accepts is accepted', () => {
  it('entries out of order, trailing spaces, null metadata, unknown entry keys, empty tensors', () => {
    const header =
      '{"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16],"extra":true},"__metadata__":null,' +
      '"z":{"dtype":"BF16","shape":[0,3],"data_offsets":[8,8]},' +
      '"a":{"dtype":"U8","shape":[2,2,2],"data_offsets":[0,8]}}   ';
    const h = parse(craft(header, 16));
    // Offset order: z's empty range [8,8] sorts before b's [8,16].
    expect([...h.tensors.keys()]).toEqual(['a', 'z', 'b']);
    expect(h.metadata).toEqual({});
    expect(h.tensors.get('b')).toEqual({ name: 'b', dtype: 'F32', shape: [2], byteOffset: h.dataOffset + 8, byteLength: 8 });
    expect(h.headerLength).toBe(new TextEncoder().encode(header).byteLength);
  });

  it('an empty header with no data, and a 0-d scalar', () => {
    expect(parse(craft('{}')).tensors.size).toBe(0);
    const h = parse(craft(`{"s":${entry('F64', [], [0, 8])}}`, 8));
    expect(h.tensors.get('s')?.byteLength).toBe(8);
  });

  it('keeps a metadata key named __proto__ as data', () => {
    const h = parse(craft('{"__metadata__":{"__proto__":"x","format":"pt"}}'));
    expect(Object.keys(h.metadata)).toEqual(['__proto__', 'format']);
    expect(h.metadata.format).toBe('pt');
  });
});

describe('file-level and read errors', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'evomerge-st-errors-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const good = craft(`{"m":${entry('F32', [3, 2], [0, 24])},"v":${entry('U8', [4], [24, 28])}}`, 28);
  const file = path.join(dir, 'model.safetensors');
  writeFileSync(file, good);

  it('FILE_UNREADABLE for a missing file or a directory', async () => {
    await expect(SafetensorsReader.open(path.join(dir, 'missing.safetensors'))).rejects.toMatchObject({ code: 'FILE_UNREADABLE' });
    expect(codeOf(() => SafetensorsReader.openSync(path.join(dir, 'missing.safetensors'))).code).toBe('FILE_UNREADABLE');
    mkdirSync(path.join(dir, 'd.safetensors'));
    await expect(readSafetensorsHeader(path.join(dir, 'd.safetensors'))).rejects.toMatchObject({ code: 'FILE_UNREADABLE' });
  });

  it('header errors surface through the file readers before any large allocation', async () => {
    // Claims a 99 MB header in a 16-byte file: rejected from the 8-byte prefix alone.
    const liar = path.join(dir, 'liar.safetensors');
    writeFileSync(liar, craft('{}      ', 0, 99_000_000n));
    await expect(readSafetensorsHeader(liar)).rejects.toMatchObject({ code: 'HEADER_BEYOND_FILE', file: liar });
    const fd = openSync(liar, 'r');
    try {
      expect(codeOf(() => readSafetensorsHeaderSync(fd, liar)).code).toBe('HEADER_BEYOND_FILE');
    } finally {
      closeSync(fd);
    }
    const tiny = path.join(dir, 'tiny.safetensors');
    writeFileSync(tiny, new Uint8Array(3));
    await expect(SafetensorsReader.open(tiny)).rejects.toMatchObject({ code: 'FILE_TOO_SMALL' });
  });

  it('TENSOR_NOT_FOUND, BAD_ROW_RANGE, BAD_BUFFER, READER_CLOSED', async () => {
    const r = await SafetensorsReader.open(file);
    expect(codeOf(() => r.tensor('nope'))).toMatchObject({ code: 'TENSOR_NOT_FOUND', tensor: 'nope' });
    await expect(r.readTensor('nope')).rejects.toMatchObject({ code: 'TENSOR_NOT_FOUND' });
    await expect(r.readRows('m', 2, 2)).rejects.toMatchObject({ code: 'BAD_ROW_RANGE', tensor: 'm' });
    expect(codeOf(() => r.readRowsSync('m', -1, 1)).code).toBe('BAD_ROW_RANGE');
    expect(codeOf(() => r.readRowsSync('m', 0.5, 1)).code).toBe('BAD_ROW_RANGE');
    await expect(r.readTensor('m', new Uint8Array(23))).rejects.toMatchObject({ code: 'BAD_BUFFER' });
    expect(codeOf(() => readTensorBytesSync(r.fd, 0, 4, new Uint8Array(2), file)).code).toBe('BAD_BUFFER');
    await r.close();
    await r.close();
    await expect(r.readTensor('m')).rejects.toMatchObject({ code: 'READER_CLOSED' });
    expect(codeOf(() => r.readTensorSync('m')).code).toBe('READER_CLOSED');
  });

  it('SHORT_READ when the file is truncated after opening', async () => {
    const t = path.join(dir, 'trunc.safetensors');
    writeFileSync(t, good);
    const r = SafetensorsReader.openSync(t);
    truncateSync(t, good.byteLength - 10);
    expect(codeOf(() => r.readTensorSync('v'))).toMatchObject({ code: 'SHORT_READ', tensor: 'v' });
    await expect(r.readTensor('m')).rejects.toMatchObject({ code: 'SHORT_READ' });
    r.closeSync();
  });
});
