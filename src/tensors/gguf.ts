import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { syncDirectoryOf } from './atomic-file.js';
import { f32ToBf16 } from './bf16.js';
import { f32ToF16, f32ToF16Bits } from './f16.js';

/**
 * A streaming GGUF (version 3) writer. Layout, all little-endian:
 *   magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
 *   metadata: (string key, u32 value type, value)…,
 *   tensor infos: (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset)…,
 *   zero padding to `general.alignment`, then tensor data, each tensor at an aligned offset
 *   relative to the start of the data section.
 * Strings are u64 length + UTF-8 bytes. The header is built in memory (it holds the vocabulary,
 * a few MB at most); tensor data is streamed chunk by chunk, so no whole model is ever held.
 */

/** The ggml element types this writer emits. */
export type GgmlType = 'F32' | 'F16' | 'BF16' | 'Q8_0';

/** ggml's numeric ids for {@link GgmlType} (ggml.h `enum ggml_type`). */
export const GGML_TYPE_ID: Readonly<Record<GgmlType, number>> = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 };

/** Elements per Q8_0 block; a block is an f16 scale followed by 32 int8 values (34 bytes). */
export const Q8_0_BLOCK = 32;
const Q8_0_BLOCK_BYTES = 34;

/** GGUF metadata value types (gguf.md `gguf_metadata_value_type`). */
export const GGUF_VALUE_TYPE_ID = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

export type GgufNumberType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type GgufBigIntType = 'uint64' | 'int64';

export type GgufValue =
  | { readonly type: GgufNumberType; readonly value: number }
  | { readonly type: GgufBigIntType; readonly value: bigint }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'array'; readonly itemType: 'string'; readonly value: readonly string[] }
  | { readonly type: 'array'; readonly itemType: 'bool'; readonly value: readonly boolean[] }
  | { readonly type: 'array'; readonly itemType: GgufNumberType; readonly value: ArrayLike<number> };

export interface GgufMetadataEntry {
  readonly key: string;
  readonly value: GgufValue;
}

export interface GgufTensorSpec {
  /** llama.cpp tensor name, e.g. `blk.0.attn_q.weight` (at most 63 bytes). */
  readonly name: string;
  /** Shape in row-major order, outermost first (PyTorch order); written reversed as ggml's `ne`. */
  readonly shape: readonly number[];
  readonly type: GgmlType;
  /**
   * Yields the tensor's data in row-major order, in chunks of whole rows (Q8_0 blocks run along
   * rows): a Float32Array chunk is encoded into `type`; a Uint8Array chunk is taken as already
   * encoded in `type` (little-endian) and written as is, which spares a decode and re-encode
   * when the source already has the output type. Called once, when the tensor's turn comes.
   */
  readonly data: () => AsyncIterable<Float32Array | Uint8Array>;
}

export interface WriteGgufFileOptions {
  /** Data alignment in bytes, a multiple of 8. Default: 32 (written as `general.alignment` only if different). */
  readonly alignment?: number;
}

export interface GgufWriteSummary {
  readonly file: string;
  readonly bytes: number;
  readonly tensorCount: number;
  /** Byte offset of the data section in the file. */
  readonly dataOffset: number;
}

export class GgufError extends EvoError {
  readonly file: string;
  readonly tensor: string | undefined;
  constructor(code: string, file: string, message: string, tensor?: string) {
    super(code, `${file}${tensor === undefined ? '' : ` tensor ${tensor}`}: ${message}`);
    this.name = 'GgufError';
    this.file = file;
    this.tensor = tensor;
  }
}

if (os.endianness() !== 'LE') throw new Error('evomerge writes GGUF through little-endian typed arrays; big-endian hosts are not supported');

const DEFAULT_ALIGNMENT = 32;
const MAX_NAME_BYTES = 63;
const MAX_DIMS = 4;
/** Output is written through a buffer of this many bytes. */
const WRITE_BUFFER_BYTES = 4 << 20;

/** Bytes a tensor of `elements` values takes in `type`. */
export function ggmlTensorBytes(type: GgmlType, elements: number): number {
  switch (type) {
    case 'F32':
      return elements * 4;
    case 'F16':
    case 'BF16':
      return elements * 2;
    case 'Q8_0':
      return (elements / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
    default: {
      const never: never = type;
      throw new Error(`unknown ggml type ${String(never)}`);
    }
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Appends little-endian values to a growing byte list (the header). */
class HeaderBuilder {
  private chunks: Buffer[] = [];
  length = 0;
  private push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  magic(): void {
    this.push(Buffer.from('GGUF', 'ascii'));
  }
  u32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(type: GgufNumberType | GgufBigIntType | 'bool', v: number | bigint | boolean): void {
    let b: Buffer;
    switch (type) {
      case 'uint8':
        b = Buffer.alloc(1);
        b.writeUInt8(Number(v));
        break;
      case 'int8':
        b = Buffer.alloc(1);
        b.writeInt8(Number(v));
        break;
      case 'uint16':
        b = Buffer.alloc(2);
        b.writeUInt16LE(Number(v));
        break;
      case 'int16':
        b = Buffer.alloc(2);
        b.writeInt16LE(Number(v));
        break;
      case 'uint32':
        b = Buffer.alloc(4);
        b.writeUInt32LE(Number(v));
        break;
      case 'int32':
        b = Buffer.alloc(4);
        b.writeInt32LE(Number(v));
        break;
      case 'float32':
        b = Buffer.alloc(4);
        b.writeFloatLE(Number(v));
        break;
      case 'float64':
        b = Buffer.alloc(8);
        b.writeDoubleLE(Number(v));
        break;
      case 'uint64':
        b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt(v));
        break;
      case 'int64':
        b = Buffer.alloc(8);
        b.writeBigInt64LE(BigInt(v));
        break;
      case 'bool':
        b = Buffer.from([v ? 1 : 0]);
        break;
      default: {
        const never: never = type;
        throw new Error(`unknown GGUF type ${String(never)}`);
      }
    }
    this.push(b);
  }
  value(v: GgufValue): void {
    this.u32(GGUF_VALUE_TYPE_ID[v.type]);
    switch (v.type) {
      case 'string':
        this.string(v.value);
        return;
      case 'array': {
        this.u32(GGUF_VALUE_TYPE_ID[v.itemType]);
        this.u64(v.value.length);
        if (v.itemType === 'string') for (const s of v.value) this.string(s);
        else if (v.itemType === 'bool') for (const x of v.value) this.scalar('bool', x);
        else {
          const values = v.value;
          for (let i = 0; i < values.length; i++) this.scalar(v.itemType, values[i] ?? 0);
        }
        return;
      }
      default:
        this.scalar(v.type, v.value);
    }
  }
  pad(alignment: number): void {
    const n = alignUp(this.length, alignment) - this.length;
    if (n > 0) this.push(Buffer.alloc(n));
  }
  finish(): Buffer {
    const out = Buffer.concat(this.chunks, this.length);
    this.chunks = [out];
    return out;
  }
}

/** Checks what can be checked before a byte is written; throws GgufError naming the key or tensor. */
function validate(file: string, metadata: readonly GgufMetadataEntry[], tensors: readonly GgufTensorSpec[], alignment: number): void {
  if (!Number.isSafeInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) {
    throw new GgufError('GGUF_BAD_ALIGNMENT', file, `alignment must be a positive multiple of 8, got ${alignment}`);
  }
  const keys = new Set<string>();
  for (const { key, value } of metadata) {
    if (keys.has(key)) throw new GgufError('GGUF_DUPLICATE_KEY', file, `metadata key ${key} appears twice`);
    keys.add(key);
    if (key === 'general.alignment') {
      throw new GgufError('GGUF_RESERVED_KEY', file, 'set general.alignment through options.alignment, not as metadata');
    }
    if (value.type === 'uint32' || value.type === 'int32' || value.type === 'uint8' || value.type === 'int8' || value.type === 'uint16' || value.type === 'int16') {
      if (!Number.isInteger(value.value)) throw new GgufError('GGUF_BAD_VALUE', file, `metadata ${key} must be an integer, got ${value.value}`);
    }
  }
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new GgufError('GGUF_DUPLICATE_TENSOR', file, 'name appears twice', t.name);
    names.add(t.name);
    if (Buffer.byteLength(t.name, 'utf8') > MAX_NAME_BYTES) {
      throw new GgufError('GGUF_NAME_TOO_LONG', file, `name longer than ${MAX_NAME_BYTES} bytes`, t.name);
    }
    if (t.shape.length < 1 || t.shape.length > MAX_DIMS) {
      throw new GgufError('GGUF_BAD_SHAPE', file, `needs 1 to ${MAX_DIMS} dimensions, got [${t.shape.join(', ')}]`, t.name);
    }
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d <= 0) throw new GgufError('GGUF_BAD_SHAPE', file, `dimensions must be positive integers, got [${t.shape.join(', ')}]`, t.name);
    }
    const rowLength = t.shape[t.shape.length - 1] ?? 0;
    if (t.type === 'Q8_0' && rowLength % Q8_0_BLOCK !== 0) {
      throw new GgufError('GGUF_BAD_BLOCK', file, `Q8_0 needs a row length divisible by ${Q8_0_BLOCK}, got ${rowLength}`, t.name);
    }
  }
}

/** Encodes one chunk of f32 values into the tensor's on-disk type. */
function encodeChunk(type: GgmlType, values: Float32Array): Buffer {
  switch (type) {
    // Typed-array views write the host's byte order; GGUF is little-endian (checked at module load).
    case 'F32':
      return Buffer.from(Float32Array.from(values).buffer);
    case 'F16': {
      const out = new Uint16Array(values.length);
      f32ToF16(values, out);
      return Buffer.from(out.buffer);
    }
    case 'BF16': {
      const out = new Uint16Array(values.length);
      f32ToBf16(values, out);
      return Buffer.from(out.buffer);
    }
    case 'Q8_0':
      return quantizeQ8_0(values);
    default: {
      const never: never = type;
      throw new Error(`unknown ggml type ${String(never)}`);
    }
  }
}

/**
 * ggml's reference Q8_0 quantizer: per block of 32, d = max|x| / 127 (in f32), q = round(x / d)
 * with ties away from zero, computed as x * (1/d) in f32; the stored scale is d rounded to f16.
 */
export function quantizeQ8_0(values: Float32Array): Buffer {
  if (values.length % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 input length ${values.length} is not a multiple of ${Q8_0_BLOCK}`);
  const blocks = values.length / Q8_0_BLOCK;
  const out = Buffer.allocUnsafe(blocks * Q8_0_BLOCK_BYTES);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(values[base + j] ?? 0));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    out.writeUInt16LE(f32ToF16Bits(d), o);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const x = Math.fround((values[base + j] ?? 0) * id);
      const q = x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
      out.writeInt8(q, o + 2 + j);
    }
  }
  return out;
}

/** Sequential writer with a fixed buffer, so small chunks do not become small syscalls. */
class BufferedFileWriter {
  private readonly buf = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private used = 0;
  position = 0;
  private readonly fh: FileHandle;
  constructor(fh: FileHandle) {
    this.fh = fh;
  }
  async write(data: Uint8Array): Promise<void> {
    if (data.length >= this.buf.length) {
      // Large chunks skip the copy into the buffer.
      await this.flush();
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await this.fh.write(data, off, data.length - off);
        off += bytesWritten;
      }
      this.position += data.length;
      return;
    }
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, this.buf.length - this.used);
      this.buf.set(data.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === this.buf.length) await this.flush();
    }
    this.position += data.length;
  }
  async zeros(n: number): Promise<void> {
    if (n > 0) await this.write(Buffer.alloc(n));
  }
  async flush(): Promise<void> {
    let off = 0;
    while (off < this.used) {
      const { bytesWritten } = await this.fh.write(this.buf, off, this.used - off);
      off += bytesWritten;
    }
    this.used = 0;
  }
}

/**
 * Writes a GGUF file: metadata in the given order, tensors in the given order, each tensor's data
 * pulled from its `data()` stream only when it is written. Everything goes to a temporary name in
 * the same folder, is fsynced, then renamed over `file`; on failure the temporary file is removed.
 */
export async function writeGgufFile(
  file: string,
  metadata: readonly GgufMetadataEntry[],
  tensors: readonly GgufTensorSpec[],
  options: WriteGgufFileOptions = {},
): Promise<GgufWriteSummary> {
  const alignment = options.alignment ?? DEFAULT_ALIGNMENT;
  validate(file, metadata, tensors, alignment);

  const entries: GgufMetadataEntry[] = [...metadata];
  if (alignment !== DEFAULT_ALIGNMENT) entries.push({ key: 'general.alignment', value: { type: 'uint32', value: alignment } });

  const header = new HeaderBuilder();
  header.magic();
  header.u32(3);
  header.u64(tensors.length);
  header.u64(entries.length);
  for (const { key, value } of entries) {
    header.string(key);
    header.value(value);
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    const bytes = ggmlTensorBytes(t.type, elements);
    sizes.push(bytes);
    header.string(t.name);
    header.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) header.u64(t.shape[i] ?? 0);
    header.u32(GGML_TYPE_ID[t.type]);
    header.u64(offset);
    offset = alignUp(offset + bytes, alignment);
  }
  header.pad(alignment);
  const headerBytes = header.finish();

  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  let closed = false;
  try {
    const out = new BufferedFileWriter(fh);
    await out.write(headerBytes);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      if (t === undefined) continue;
      const expected = t.shape.reduce((a, b) => a * b, 1);
      const rowLength = t.shape[t.shape.length - 1] ?? 1;
      const rowBytes = ggmlTensorBytes(t.type, rowLength);
      let seen = 0;
      for await (const chunk of t.data()) {
        const encoded = chunk instanceof Float32Array ? undefined : chunk;
        const values = encoded === undefined ? chunk.length : (chunk.length / rowBytes) * rowLength;
        if (encoded === undefined ? chunk.length % rowLength !== 0 : chunk.length % rowBytes !== 0) {
          const what = encoded === undefined ? `${chunk.length} values` : `${chunk.length} bytes`;
          throw new GgufError('GGUF_BAD_CHUNK', file, `data chunk of ${what} is not whole rows of ${rowLength}`, t.name);
        }
        seen += values;
        if (seen > expected) throw new GgufError('GGUF_DATA_SIZE', file, `data has more than the ${expected} values its shape holds`, t.name);
        await out.write(encoded ?? encodeChunk(t.type, chunk as Float32Array));
      }
      if (seen !== expected) throw new GgufError('GGUF_DATA_SIZE', file, `data has ${seen} values, shape holds ${expected}`, t.name);
      await out.zeros(alignUp(sizes[i] ?? 0, alignment) - (sizes[i] ?? 0));
    }
    await out.flush();
    await fh.sync();
    await fh.close();
    closed = true;
    await rename(tmp, file);
    await syncDirectoryOf(file);
    return { file, bytes: out.position, tensorCount: tensors.length, dataOffset: headerBytes.length };
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
