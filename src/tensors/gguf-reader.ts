import { open, type FileHandle } from 'node:fs/promises';
import { GGML_TYPE_ID, GGUF_VALUE_TYPE_ID, GgufError, Q8_0_BLOCK, ggmlTensorBytes } from './gguf.js';
import type { GgmlType, GgufBigIntType, GgufNumberType, GgufValue } from './gguf.js';
import { bf16BitsToF32 } from './bf16.js';
import { f16BitsToF32 } from './f16.js';

/**
 * Reads GGUF headers (metadata and tensor infos) and dequantizes the tensor types our writer
 * emits. Used by tests and diagnostics to check what was written; llama.cpp is the real consumer.
 */

export interface GgufTensorInfo {
  readonly name: string;
  /** Row-major shape, outermost first (the reverse of ggml's `ne`). */
  readonly shape: readonly number[];
  /** The ggml type name when it is one we know, else its numeric id. */
  readonly type: GgmlType | number;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly fileOffset: number;
}

export interface GgufFileHeader {
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  readonly dataOffset: number;
}

const TYPE_BY_ID = new Map<number, GgmlType>((Object.entries(GGML_TYPE_ID) as [GgmlType, number][]).map(([k, v]) => [v, k]));
const VALUE_TYPE_BY_ID = new Map<number, keyof typeof GGUF_VALUE_TYPE_ID>(
  (Object.entries(GGUF_VALUE_TYPE_ID) as [keyof typeof GGUF_VALUE_TYPE_ID, number][]).map(([k, v]) => [v, k]),
);

class NeedMore extends Error {}

class Cursor {
  pos = 0;
  readonly buf: Buffer;
  /** True when `buf` is the whole file, so running out of bytes is an error, not a cue to read more. */
  readonly complete: boolean;
  readonly file: string;
  constructor(buf: Buffer, complete: boolean, file: string) {
    this.buf = buf;
    this.complete = complete;
    this.file = file;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      if (this.complete) throw new GgufError('GGUF_TRUNCATED', this.file, `header runs past the end of the file at byte ${this.pos}`);
      throw new NeedMore();
    }
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError('GGUF_MALFORMED', this.file, `u64 ${v} at byte ${this.pos - 8} is too large`);
    return Number(v);
  }
  string(): string {
    const n = this.u64();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  scalar(type: GgufNumberType | GgufBigIntType | 'bool'): number | bigint | boolean {
    const sizes = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8, uint64: 8, int64: 8, bool: 1 } as const;
    this.need(sizes[type]);
    const p = this.pos;
    this.pos += sizes[type];
    switch (type) {
      case 'uint8':
        return this.buf.readUInt8(p);
      case 'int8':
        return this.buf.readInt8(p);
      case 'uint16':
        return this.buf.readUInt16LE(p);
      case 'int16':
        return this.buf.readInt16LE(p);
      case 'uint32':
        return this.buf.readUInt32LE(p);
      case 'int32':
        return this.buf.readInt32LE(p);
      case 'float32':
        return this.buf.readFloatLE(p);
      case 'float64':
        return this.buf.readDoubleLE(p);
      case 'uint64':
        return this.buf.readBigUInt64LE(p);
      case 'int64':
        return this.buf.readBigInt64LE(p);
      case 'bool':
        return this.buf.readUInt8(p) !== 0;
      default: {
        const never: never = type;
        throw new Error(String(never));
      }
    }
  }
  valueType(key: string): keyof typeof GGUF_VALUE_TYPE_ID {
    const id = this.u32();
    const t = VALUE_TYPE_BY_ID.get(id);
    if (t === undefined) throw new GgufError('GGUF_MALFORMED', this.file, `metadata ${key} has unknown value type ${id}`);
    return t;
  }
  value(key: string): GgufValue {
    const type = this.valueType(key);
    if (type === 'string') return { type, value: this.string() };
    if (type === 'bool') return { type, value: this.scalar(type) as boolean };
    if (type === 'uint64' || type === 'int64') return { type, value: this.scalar(type) as bigint };
    if (type === 'array') {
      const itemType = this.valueType(key);
      const n = this.u64();
      if (itemType === 'string') {
        const value: string[] = [];
        for (let i = 0; i < n; i++) value.push(this.string());
        return { type, itemType, value };
      }
      if (itemType === 'bool') {
        const value: boolean[] = [];
        for (let i = 0; i < n; i++) value.push(this.scalar('bool') as boolean);
        return { type, itemType, value };
      }
      if (itemType === 'array' || itemType === 'uint64' || itemType === 'int64') {
        throw new GgufError('GGUF_UNSUPPORTED', this.file, `metadata ${key}: arrays of ${itemType} are not supported by this reader`);
      }
      const value: number[] = [];
      for (let i = 0; i < n; i++) value.push(this.scalar(itemType) as number);
      return { type, itemType, value };
    }
    return { type, value: this.scalar(type) as number };
  }
}

function parseHeader(c: Cursor): GgufFileHeader {
  const magic = c.buf.toString('latin1', 0, 4);
  c.pos = 4;
  if (c.buf.length < 4 || magic !== 'GGUF') throw new GgufError('GGUF_BAD_MAGIC', c.file, `not a GGUF file (magic ${JSON.stringify(magic)})`);
  const version = c.u32();
  if (version !== 2 && version !== 3) throw new GgufError('GGUF_UNSUPPORTED', c.file, `GGUF version ${version} (expected 2 or 3)`);
  const tensorCount = c.u64();
  const kvCount = c.u64();
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string();
    metadata.set(key, c.value(key));
  }
  const alignmentValue = metadata.get('general.alignment');
  const alignment = alignmentValue?.type === 'uint32' ? alignmentValue.value : 32;
  const raw: { name: string; shape: number[]; type: GgmlType | number; offset: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string();
    const nDims = c.u32();
    if (nDims < 1 || nDims > 4) throw new GgufError('GGUF_MALFORMED', c.file, `${nDims} dimensions`, name);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(c.u64());
    const typeId = c.u32();
    const offset = c.u64();
    raw.push({ name, shape: ne.reverse(), type: TYPE_BY_ID.get(typeId) ?? typeId, offset });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  return {
    version,
    metadata,
    tensors: raw.map((t) => ({ name: t.name, shape: t.shape, type: t.type, fileOffset: dataOffset + t.offset })),
    alignment,
    dataOffset,
  };
}

/** Reads a GGUF file's header, growing its read window until the header fits. */
export async function readGgufHeader(file: string): Promise<GgufFileHeader> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    let window = Math.min(size, 1 << 20);
    for (;;) {
      const buf = Buffer.alloc(window);
      await readFully(fh, buf, 0);
      try {
        return parseHeader(new Cursor(buf, window === size, file));
      } catch (err) {
        if (!(err instanceof NeedMore)) throw err;
        window = Math.min(size, window * 4);
      }
    }
  } finally {
    await fh.close();
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + off}`);
    off += bytesRead;
  }
}

/** Reads one tensor and dequantizes it to f32 (F32, F16, BF16 and Q8_0). */
export async function readGgufTensorF32(file: string, info: GgufTensorInfo): Promise<Float32Array> {
  if (typeof info.type === 'number') throw new GgufError('GGUF_UNSUPPORTED', file, `ggml type ${info.type} cannot be decoded`, info.name);
  const elements = info.shape.reduce((a, b) => a * b, 1);
  const buf = Buffer.alloc(ggmlTensorBytes(info.type, elements));
  const fh = await open(file, 'r');
  try {
    await readFully(fh, buf, info.fileOffset);
  } finally {
    await fh.close();
  }
  const out = new Float32Array(elements);
  switch (info.type) {
    case 'F32':
      for (let i = 0; i < elements; i++) out[i] = buf.readFloatLE(i * 4);
      break;
    case 'F16':
      for (let i = 0; i < elements; i++) out[i] = f16BitsToF32(buf.readUInt16LE(i * 2));
      break;
    case 'BF16':
      for (let i = 0; i < elements; i++) out[i] = bf16BitsToF32(buf.readUInt16LE(i * 2));
      break;
    case 'Q8_0':
      for (let b = 0; b < elements / Q8_0_BLOCK; b++) {
        const d = f16BitsToF32(buf.readUInt16LE(b * 34));
        for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * buf.readInt8(b * 34 + 2 + j);
      }
      break;
    default: {
      const never: never = info.type;
      throw new Error(String(never));
    }
  }
  return out;
}
