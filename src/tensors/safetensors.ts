/**
 * Reading safetensors files: the header (validated by safetensors-header.ts) and positional tensor
 * reads into the caller's buffers. A whole file is never read.
 */
import { close as closeCallback, closeSync, fstat, fstatSync, open, openSync, read, readSync } from 'node:fs';
import { HEADER_LENGTH_BYTES, SafetensorsError, checkHeaderLength, parseSafetensorsHeader } from './safetensors-header.js';
import type { SafetensorsHeader, TensorInfo } from './safetensors-header.js';

export {
  HEADER_LENGTH_BYTES,
  MAX_HEADER_BYTES,
  SafetensorsError,
  checkHeaderLength,
  parseSafetensorsHeader,
  shapeElementCount,
} from './safetensors-header.js';
export type { SafetensorsErrorCode, SafetensorsHeader, TensorInfo } from './safetensors-header.js';

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function unreadable(file: string, what: string, cause: unknown): SafetensorsError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new SafetensorsError('FILE_UNREADABLE', file, `cannot ${what}: ${why}`, undefined, { cause });
}

/** Bytes per fs read call; libuv caps one read near 2 GiB. */
const MAX_READ_CHUNK = 1 << 30;

function fillSync(fd: number, dst: Uint8Array, position: number, file: string, tensor?: string): void {
  let done = 0;
  while (done < dst.byteLength) {
    let got: number;
    try {
      got = readSync(fd, dst, done, Math.min(dst.byteLength - done, MAX_READ_CHUNK), position + done);
    } catch (cause) {
      throw unreadable(file, 'read', cause);
    }
    if (got === 0) {
      throw new SafetensorsError('SHORT_READ', file, `file ended at byte ${position + done}, expected ${dst.byteLength - done} more`, tensor);
    }
    done += got;
  }
}

function readOnce(fd: number, dst: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, dst, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

async function fill(fd: number, dst: Uint8Array, position: number, file: string, tensor?: string): Promise<void> {
  let done = 0;
  while (done < dst.byteLength) {
    let got: number;
    try {
      got = await readOnce(fd, dst, done, Math.min(dst.byteLength - done, MAX_READ_CHUNK), position + done);
    } catch (cause) {
      throw unreadable(file, 'read', cause);
    }
    if (got === 0) {
      throw new SafetensorsError('SHORT_READ', file, `file ended at byte ${position + done}, expected ${dst.byteLength - done} more`, tensor);
    }
    done += got;
  }
}

function fileSizeSync(fd: number, file: string): number {
  let st;
  try {
    st = fstatSync(fd);
  } catch (cause) {
    throw unreadable(file, 'stat', cause);
  }
  if (!st.isFile()) throw new SafetensorsError('FILE_UNREADABLE', file, 'not a regular file');
  return st.size;
}

/** Reads and validates the header of the open file `fd` (`file` names it in errors). */
export function readSafetensorsHeaderSync(fd: number, file: string): SafetensorsHeader {
  const fileSize = fileSizeSync(fd, file);
  const prefix = new Uint8Array(Math.min(HEADER_LENGTH_BYTES, fileSize));
  fillSync(fd, prefix, 0, file);
  const n = checkHeaderLength(prefix, fileSize, file);
  const bytes = new Uint8Array(HEADER_LENGTH_BYTES + n);
  bytes.set(prefix);
  fillSync(fd, bytes.subarray(HEADER_LENGTH_BYTES), HEADER_LENGTH_BYTES, file);
  return parseSafetensorsHeader(bytes, fileSize, file);
}

function openFd(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    open(file, 'r', (err, fd) => (err ? reject(unreadable(file, 'open', err)) : resolve(fd)));
  });
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => closeCallback(fd, (err) => (err ? reject(err) : resolve())));
}

function fileSize(fd: number, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    fstat(fd, (err, st) => {
      if (err) reject(unreadable(file, 'stat', err));
      else if (!st.isFile()) reject(new SafetensorsError('FILE_UNREADABLE', file, 'not a regular file'));
      else resolve(st.size);
    });
  });
}

async function readHeaderFromFd(fd: number, file: string): Promise<SafetensorsHeader> {
  const size = await fileSize(fd, file);
  const prefix = new Uint8Array(Math.min(HEADER_LENGTH_BYTES, size));
  await fill(fd, prefix, 0, file);
  const n = checkHeaderLength(prefix, size, file);
  const bytes = new Uint8Array(HEADER_LENGTH_BYTES + n);
  bytes.set(prefix);
  await fill(fd, bytes.subarray(HEADER_LENGTH_BYTES), HEADER_LENGTH_BYTES, file);
  return parseSafetensorsHeader(bytes, size, file);
}

/** Opens `file`, reads and validates its header, and closes it. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fd = await openFd(file);
  try {
    return await readHeaderFromFd(fd, file);
  } finally {
    await closeFd(fd);
  }
}

function destination(dst: Uint8Array | undefined, byteLength: number, file: string, tensor?: string): Uint8Array {
  if (dst === undefined) return new Uint8Array(byteLength);
  if (dst.byteLength < byteLength) {
    throw new SafetensorsError('BAD_BUFFER', file, `buffer of ${dst.byteLength} bytes cannot hold ${byteLength}`, tensor);
  }
  return dst.subarray(0, byteLength);
}

/**
 * Reads `byteLength` bytes at absolute `byteOffset` of the open file `fd` into `dst` (or a new
 * array) and returns the filled view. For worker threads that hold an fd and a TensorInfo's
 * location; `file` only names the file in errors.
 */
export function readTensorBytesSync(
  fd: number,
  byteOffset: number,
  byteLength: number,
  dst?: Uint8Array,
  file = `fd ${fd}`,
): Uint8Array {
  if (!isCount(byteOffset) || !isCount(byteLength)) {
    throw new SafetensorsError('BAD_BUFFER', file, `bad byte range ${byteOffset}+${byteLength}`);
  }
  const out = destination(dst, byteLength, file);
  fillSync(fd, out, byteOffset, file);
  return out;
}

/** Byte range of rows [rowStart, rowStart + rowCount) of a tensor: rows run along the leading dimension. */
export function rowByteRange(
  info: TensorInfo,
  rowStart: number,
  rowCount: number,
  file: string,
): { byteOffset: number; byteLength: number } {
  // A 0-d tensor is one row; otherwise a row is one index of dimension 0.
  const rows = info.shape.length === 0 ? 1 : (info.shape[0] ?? 0);
  if (!isCount(rowStart) || !isCount(rowCount) || rowStart + rowCount > rows) {
    throw new SafetensorsError(
      'BAD_ROW_RANGE',
      file,
      `rows [${rowStart}, ${rowStart}+${rowCount}) are outside its ${rows} rows`,
      info.name,
    );
  }
  const rowBytes = rows === 0 ? 0 : info.byteLength / rows;
  return { byteOffset: info.byteOffset + rowStart * rowBytes, byteLength: rowCount * rowBytes };
}

/**
 * An open safetensors file with a validated header. Reads are positional (pread) into the
 * caller's buffer, so concurrent reads are safe and no whole file is ever loaded.
 */
export class SafetensorsReader {
  readonly header: SafetensorsHeader;
  #fd: number | undefined;

  private constructor(fd: number, header: SafetensorsHeader) {
    this.#fd = fd;
    this.header = header;
  }

  get file(): string {
    return this.header.file;
  }

  /** The open file descriptor (for handing a location to readTensorBytesSync). */
  get fd(): number {
    if (this.#fd === undefined) throw new SafetensorsError('READER_CLOSED', this.file, 'reader is closed');
    return this.#fd;
  }

  static async open(file: string): Promise<SafetensorsReader> {
    const fd = await openFd(file);
    try {
      return new SafetensorsReader(fd, await readHeaderFromFd(fd, file));
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
  }

  static openSync(file: string): SafetensorsReader {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (cause) {
      throw unreadable(file, 'open', cause);
    }
    try {
      return new SafetensorsReader(fd, readSafetensorsHeaderSync(fd, file));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** The tensor's location; throws TENSOR_NOT_FOUND. */
  tensor(name: string): TensorInfo {
    const info = this.header.tensors.get(name);
    if (info === undefined) throw new SafetensorsError('TENSOR_NOT_FOUND', this.file, 'no such tensor', name);
    return info;
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  /** Reads a whole tensor's bytes into `dst` (at least byteLength long) or a new array. */
  async readTensor(name: string, dst?: Uint8Array): Promise<Uint8Array> {
    const info = this.tensor(name);
    const out = destination(dst, info.byteLength, this.file, name);
    await fill(this.fd, out, info.byteOffset, this.file, name);
    return out;
  }

  readTensorSync(name: string, dst?: Uint8Array): Uint8Array {
    const info = this.tensor(name);
    const out = destination(dst, info.byteLength, this.file, name);
    fillSync(this.fd, out, info.byteOffset, this.file, name);
    return out;
  }

  /**
   * Reads rows [rowStart, rowStart + rowCount) along the leading dimension (a 1-d tensor's rows
   * are its elements; a 0-d tensor has one row).
   */
  async readRows(name: string, rowStart: number, rowCount: number, dst?: Uint8Array): Promise<Uint8Array> {
    const range = rowByteRange(this.tensor(name), rowStart, rowCount, this.file);
    const out = destination(dst, range.byteLength, this.file, name);
    await fill(this.fd, out, range.byteOffset, this.file, name);
    return out;
  }

  readRowsSync(name: string, rowStart: number, rowCount: number, dst?: Uint8Array): Uint8Array {
    const range = rowByteRange(this.tensor(name), rowStart, rowCount, this.file);
    const out = destination(dst, range.byteLength, this.file, name);
    fillSync(this.fd, out, range.byteOffset, this.file, name);
    return out;
  }

  /** Closes the file; further reads throw READER_CLOSED. Closing twice is harmless. */
  async close(): Promise<void> {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    await closeFd(fd);
  }

  closeSync(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    closeSync(fd);
  }
}

