/**
 * Writing safetensors files. The layout (tensor order, offsets, header bytes) is fixed by the plan
 * alone, byte-compatible with Python's safetensors library (`prepare()` in its tensor.rs):
 * - tensors sorted by dtype rank descending (its `Dtype` enum order, widest first), then by name
 *   (byte order of the UTF-8 names);
 * - header JSON `{"__metadata__":{…},"name":{"dtype":…,"shape":[…],"data_offsets":[b,e]},…}`,
 *   compact, metadata first (in the caller's key order, as given), tensors in layout order;
 * - the JSON padded with spaces to a multiple of 8 bytes.
 * So an output's bytes depend only on its plan and its tensor data.
 *
 * Data goes to a temporary file beside the destination, preallocated to its final size; commit()
 * fsyncs it, renames it over the destination and fsyncs the directory.
 */
import { promises as fsp } from 'node:fs';
import { EvoError } from '../errors.js';
import { commitTempFile, tempPathFor } from './atomic-file.js';
import { dtypeByteSize, dtypeRank, parseDType } from './dtype.js';
import type { DType } from './dtype.js';
import { HEADER_LENGTH_BYTES, MAX_HEADER_BYTES, shapeElementCount } from './safetensors-header.js';

/** One tensor to be written: its name, dtype and shape (the data comes later). */
export interface PlannedTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

/** Where a planned tensor's bytes go. */
export interface LayoutEntry {
  /** Absolute byte offset in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** The byte layout of a safetensors file; plain data, so it can be posted to worker threads. */
export interface SafetensorsLayout {
  /** The 8-byte header length, the JSON and its space padding: the file's first dataOffset bytes. */
  readonly headerBytes: Uint8Array;
  readonly dataOffset: number;
  readonly entries: ReadonlyMap<string, LayoutEntry>;
  /** Size of the whole file, in bytes. */
  readonly totalBytes: number;
  /** Tensor names in file order. */
  readonly order: readonly string[];
}

/**
 * A plan or a write was rejected:
 * - BAD_TENSOR_NAME: not a well-formed string (lone surrogates cannot be written as UTF-8), or
 *   "__metadata__".
 * - DUPLICATE_TENSOR, UNKNOWN_DTYPE, BAD_SHAPE (not non-negative safe integers, or too large).
 * - BAD_METADATA: a metadata value is not a string.
 * - HEADER_TOO_LARGE: the JSON header would exceed the format's 100,000,000-byte limit.
 * - UNKNOWN_TENSOR: a write names a tensor that is not in the layout.
 * - BYTE_LENGTH_MISMATCH: the bytes written do not fit the tensor.
 * - WRITER_CLOSED: a write after commit() or abort().
 * - WRITE_FAILED: the file system refused (the cause is attached).
 */
export type SafetensorsWriteErrorCode =
  | 'BAD_TENSOR_NAME'
  | 'DUPLICATE_TENSOR'
  | 'UNKNOWN_DTYPE'
  | 'BAD_SHAPE'
  | 'BAD_METADATA'
  | 'HEADER_TOO_LARGE'
  | 'UNKNOWN_TENSOR'
  | 'BYTE_LENGTH_MISMATCH'
  | 'WRITER_CLOSED'
  | 'WRITE_FAILED';

export class SafetensorsWriteError extends EvoError {
  declare readonly code: SafetensorsWriteErrorCode;
  /** The destination file, when the error happened while writing one. */
  readonly file: string | undefined;
  readonly tensor: string | undefined;

  constructor(
    code: SafetensorsWriteErrorCode,
    detail: string,
    where: { file?: string; tensor?: string } = {},
    options?: { cause?: unknown },
  ) {
    const prefix =
      (where.file === undefined ? '' : `${where.file}: `) +
      (where.tensor === undefined ? '' : `tensor ${JSON.stringify(where.tensor)}: `);
    super(code, `${prefix}${detail}`, options);
    this.name = 'SafetensorsWriteError';
    this.file = where.file;
    this.tensor = where.tensor;
  }
}

const LONE_SURROGATE = /\p{Cs}/u;
const encoder = new TextEncoder();

/** Orders names as Rust orders `String`s: by UTF-8 bytes, i.e. by code point. */
function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i) ?? 0;
    const cb = b.codePointAt(i) ?? 0;
    if (ca !== cb) return ca - cb;
    if (ca > 0xffff) i++;
  }
  return a.length - b.length;
}

/**
 * Fixes the byte layout of a file holding `tensors` (in any order) and `metadata`. With metadata
 * undefined the header has no `__metadata__` key; with {} it has an empty one (as Python writes).
 */
export function planSafetensorsLayout(
  tensors: readonly PlannedTensor[],
  metadata?: Readonly<Record<string, string>>,
): SafetensorsLayout {
  const seen = new Set<string>();
  const sized: { t: PlannedTensor; bytes: number; shape: readonly number[] }[] = [];
  for (const t of tensors) {
    const name = t.name;
    if (typeof name !== 'string' || LONE_SURROGATE.test(name) || name === '__metadata__') {
      throw new SafetensorsWriteError('BAD_TENSOR_NAME', 'name is not a writable tensor name', { tensor: String(name) });
    }
    if (seen.has(name)) throw new SafetensorsWriteError('DUPLICATE_TENSOR', 'appears twice in the plan', { tensor: name });
    seen.add(name);
    if (parseDType(t.dtype) === undefined) {
      throw new SafetensorsWriteError('UNKNOWN_DTYPE', `unknown dtype ${JSON.stringify(t.dtype)}`, { tensor: name });
    }
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsWriteError('BAD_SHAPE', `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, {
        tensor: name,
      });
    }
    const count = shapeElementCount(shape);
    const bytes = count === undefined ? Number.POSITIVE_INFINITY : count * dtypeByteSize(t.dtype);
    if (!Number.isSafeInteger(bytes)) {
      throw new SafetensorsWriteError('BAD_SHAPE', `shape [${shape.join(',')}] is too large`, { tensor: name });
    }
    sized.push({ t, bytes, shape: Object.freeze([...shape]) });
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string' || LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) {
        throw new SafetensorsWriteError('BAD_METADATA', `metadata key ${JSON.stringify(k)} must map to a well-formed string`);
      }
    }
  }
  sized.sort((a, b) => dtypeRank(b.t.dtype) - dtypeRank(a.t.dtype) || compareNames(a.t.name, b.t.name));

  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  const relative: { name: string; begin: number; bytes: number; dtype: DType; shape: readonly number[] }[] = [];
  for (const { t, bytes, shape } of sized) {
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`,
    );
    relative.push({ name: t.name, begin: offset, bytes, dtype: t.dtype, shape });
    offset += bytes;
  }
  const json = encoder.encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.byteLength / 8) * 8;
  if (n > MAX_HEADER_BYTES) {
    throw new SafetensorsWriteError('HEADER_TOO_LARGE', `header of ${n} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const dataOffset = HEADER_LENGTH_BYTES + n;
  const headerBytes = new Uint8Array(dataOffset).fill(0x20);
  new DataView(headerBytes.buffer).setBigUint64(0, BigInt(n), true);
  headerBytes.set(json, HEADER_LENGTH_BYTES);

  const entries = new Map<string, LayoutEntry>();
  for (const r of relative) {
    entries.set(r.name, Object.freeze({ byteOffset: dataOffset + r.begin, byteLength: r.bytes, dtype: r.dtype, shape: r.shape }));
  }
  return Object.freeze({
    headerBytes,
    dataOffset,
    entries,
    totalBytes: dataOffset + offset,
    order: Object.freeze(relative.map((r) => r.name)),
  });
}

/** Bytes per write call (libuv caps one call near 2 GiB). */
const MAX_WRITE_CHUNK = 1 << 30;

async function writeAll(handle: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const len = Math.min(bytes.byteLength - done, MAX_WRITE_CHUNK);
    const { bytesWritten } = await handle.write(bytes, done, len, position + done);
    done += bytesWritten;
  }
}

/**
 * Writes one safetensors file through a temporary name. Tensors may be written in any order, in
 * pieces, or by other threads that open `tempPath` with 'r+' and write at `layout.entries`'
 * offsets; bytes never written read as zeros. Nothing appears at `file` before commit().
 */
export class SafetensorsWriter {
  /** The destination. */
  readonly file: string;
  readonly layout: SafetensorsLayout;
  /** The temporary file being written (same directory as `file`). */
  readonly tempPath: string;
  #handle: fsp.FileHandle | undefined;

  private constructor(file: string, layout: SafetensorsLayout, tempPath: string, handle: fsp.FileHandle) {
    this.file = file;
    this.layout = layout;
    this.tempPath = tempPath;
    this.#handle = handle;
  }

  /** Plans the layout (throwing before any file is touched), creates the temp file and writes the header. */
  static async create(
    file: string,
    tensors: readonly PlannedTensor[],
    metadata?: Readonly<Record<string, string>>,
  ): Promise<SafetensorsWriter> {
    return SafetensorsWriter.fromLayout(file, planSafetensorsLayout(tensors, metadata));
  }

  /** Like create(), from a layout already planned. */
  static async fromLayout(file: string, layout: SafetensorsLayout): Promise<SafetensorsWriter> {
    const tempPath = tempPathFor(file);
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await fsp.open(tempPath, 'wx');
      // Sets the final size up front (sparse where the file system allows), so positional writes
      // from several threads never extend the file.
      await handle.truncate(layout.totalBytes);
      await writeAll(handle, layout.headerBytes, 0);
      return new SafetensorsWriter(file, layout, tempPath, handle);
    } catch (cause) {
      await handle?.close().catch(() => undefined);
      await fsp.rm(tempPath, { force: true });
      throw new SafetensorsWriteError('WRITE_FAILED', `cannot create ${tempPath}: ${String(cause)}`, { file }, { cause });
    }
  }

  #open(): fsp.FileHandle {
    if (this.#handle === undefined) throw new SafetensorsWriteError('WRITER_CLOSED', 'writer is committed or aborted', { file: this.file });
    return this.#handle;
  }

  #entry(name: string): LayoutEntry {
    const e = this.layout.entries.get(name);
    if (e === undefined) throw new SafetensorsWriteError('UNKNOWN_TENSOR', 'not in this file’s plan', { file: this.file, tensor: name });
    return e;
  }

  /** Writes a whole tensor; `bytes` must be exactly its byte length. */
  async writeTensor(name: string, bytes: Uint8Array): Promise<void> {
    const e = this.#entry(name);
    if (bytes.byteLength !== e.byteLength) {
      throw new SafetensorsWriteError(
        'BYTE_LENGTH_MISMATCH',
        `shape [${e.shape.join(',')}] × ${e.dtype} is ${e.byteLength} bytes, got ${bytes.byteLength}`,
        { file: this.file, tensor: name },
      );
    }
    await this.#write(bytes, e.byteOffset, name);
  }

  /** Writes `bytes` at `offsetInTensor` bytes into the tensor; the range must lie inside it. */
  async writeTensorAt(name: string, offsetInTensor: number, bytes: Uint8Array): Promise<void> {
    const e = this.#entry(name);
    if (!Number.isSafeInteger(offsetInTensor) || offsetInTensor < 0 || offsetInTensor + bytes.byteLength > e.byteLength) {
      throw new SafetensorsWriteError(
        'BYTE_LENGTH_MISMATCH',
        `bytes [${offsetInTensor}, ${offsetInTensor}+${bytes.byteLength}) are outside its ${e.byteLength} bytes`,
        { file: this.file, tensor: name },
      );
    }
    await this.#write(bytes, e.byteOffset + offsetInTensor, name);
  }

  async #write(bytes: Uint8Array, position: number, tensor: string): Promise<void> {
    const handle = this.#open();
    try {
      await writeAll(handle, bytes, position);
    } catch (cause) {
      throw new SafetensorsWriteError('WRITE_FAILED', `write failed: ${String(cause)}`, { file: this.file, tensor }, { cause });
    }
  }

  /** fsyncs the temp file, renames it over `file` and fsyncs the directory. */
  async commit(): Promise<void> {
    const handle = this.#open();
    this.#handle = undefined;
    try {
      await handle.sync();
      await handle.close();
    } catch (cause) {
      await handle.close().catch(() => undefined);
      await fsp.rm(this.tempPath, { force: true });
      throw new SafetensorsWriteError('WRITE_FAILED', `cannot sync ${this.tempPath}: ${String(cause)}`, { file: this.file }, { cause });
    }
    try {
      await commitTempFile(this.tempPath, this.file);
    } catch (err) {
      await fsp.rm(this.tempPath, { force: true });
      throw err;
    }
  }

  /** Closes and removes the temp file; `file` is left as it was. Safe to call more than once. */
  async abort(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle !== undefined) {
      await handle.close().catch(() => undefined);
      await fsp.rm(this.tempPath, { force: true });
    }
  }
}

/** A planned tensor with its bytes (little-endian, row-major). */
export interface TensorWithData extends PlannedTensor {
  data: Uint8Array;
}

/** Writes a whole safetensors file atomically from in-memory tensors. */
export async function writeSafetensors(
  file: string,
  tensors: readonly TensorWithData[],
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const writer = await SafetensorsWriter.create(file, tensors, metadata);
  try {
    for (const t of tensors) await writer.writeTensor(t.name, t.data);
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** The bytes of a whole safetensors file, built in memory (for tests and small files). */
export function serializeSafetensors(
  tensors: readonly TensorWithData[],
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const layout = planSafetensorsLayout(tensors, metadata);
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.headerBytes);
  for (const t of tensors) {
    const e = layout.entries.get(t.name);
    if (e === undefined) continue;
    if (t.data.byteLength !== e.byteLength) {
      throw new SafetensorsWriteError('BYTE_LENGTH_MISMATCH', `expected ${e.byteLength} bytes, got ${t.data.byteLength}`, {
        tensor: t.name,
      });
    }
    out.set(t.data, e.byteOffset);
  }
  return out;
}
