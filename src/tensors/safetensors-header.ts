/**
 * The safetensors header: its validation (pure, no I/O) and the error every reader throws.
 *
 * The format is an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data
 * area. The checks follow what the reference library (huggingface/safetensors, `read_metadata` and
 * `Metadata::validate`) requires (a differential run of 4,000 crafted and mutated files against
 * Python's safetensors 0.8.0 agreed on every accept/reject; the known differences are listed below):
 * - N ≤ 100,000,000 and 8 + N ≤ file size;
 * - the header is UTF-8 (a byte-order mark is not stripped, so it fails as JSON, as it does there)
 *   holding one JSON object; `__metadata__`, when present and not null, maps strings to strings;
 * - every other key is a tensor `{dtype, shape, data_offsets: [begin, end]}` (other keys in an
 *   entry are ignored, as serde ignores them), with shape entries and offsets non-negative integers;
 * - product(shape) × dtype size = end − begin;
 * - sorted by offsets, the tensors tile the data area exactly: the first begins at 0, each begins
 *   where the previous ended (no gap, no overlap), the last ends at the end of the file.
 * Nothing is allocated from a length before it has been checked against the file size.
 *
 * Known differences, all outside what any writer produces: JSON.parse cannot tell `1.0`, `4e0` or
 * `-0` from an integer, so those pass here where serde rejects them as floats; a repeated
 * `__metadata__` or a repeated field inside one entry is taken last-wins here and rejected there;
 * dtypes newer than `DType` (C64, F4, F6_*, F8_E8M0, F8_*FNUZ) are UNKNOWN_DTYPE here.
 */
import { EvoError } from '../errors.js';
import { dtypeByteSize, parseDType } from './dtype.js';
import type { DType } from './dtype.js';

/** Bytes of the little-endian u64 header length at the start of every file. */
export const HEADER_LENGTH_BYTES = 8;
/** The largest JSON header accepted, in bytes (the reference library's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Why a safetensors file, or a read from one, was rejected:
 * - FILE_TOO_SMALL: fewer than 8 bytes, so no header length.
 * - HEADER_TOO_LARGE: the header length is over MAX_HEADER_BYTES.
 * - HEADER_BEYOND_FILE: 8 + header length is past the end of the file.
 * - HEADER_NOT_UTF8 / HEADER_NOT_JSON / HEADER_NOT_OBJECT: the header text is not UTF-8, not JSON,
 *   or not a JSON object.
 * - BAD_METADATA: `__metadata__` is not an object of string values.
 * - BAD_ENTRY: a tensor entry is not an object, or its dtype is missing or not a string.
 * - UNKNOWN_DTYPE: a dtype string we do not know.
 * - BAD_SHAPE: shape is not an array of non-negative safe integers, or its element count overflows.
 * - BAD_OFFSETS: data_offsets is not [begin, end] with integers 0 ≤ begin ≤ end.
 * - SIZE_MISMATCH: product(shape) × dtype size differs from end − begin.
 * - OFFSETS_OUT_OF_RANGE: a tensor ends past the end of the file.
 * - OFFSETS_OVERLAP / OFFSETS_GAP: in offset order, a tensor begins before / after the previous
 *   one ended (the first must begin at 0).
 * - DATA_SIZE_MISMATCH: the tensors end before the end of the file (trailing bytes).
 * - TENSOR_NOT_FOUND: no tensor of that name. BAD_ROW_RANGE: rows outside the leading dimension.
 * - BAD_BUFFER: a caller's buffer is too small, or a header prefix shorter than its length says.
 * - SHORT_READ: the file ended early during a read (truncated after it was opened).
 * - FILE_UNREADABLE: open, stat or read failed (the cause is attached), or not a regular file.
 * - READER_CLOSED: a read after close().
 */
export type SafetensorsErrorCode =
  | 'FILE_TOO_SMALL'
  | 'HEADER_TOO_LARGE'
  | 'HEADER_BEYOND_FILE'
  | 'HEADER_NOT_UTF8'
  | 'HEADER_NOT_JSON'
  | 'HEADER_NOT_OBJECT'
  | 'BAD_METADATA'
  | 'BAD_ENTRY'
  | 'UNKNOWN_DTYPE'
  | 'BAD_SHAPE'
  | 'BAD_OFFSETS'
  | 'SIZE_MISMATCH'
  | 'OFFSETS_OUT_OF_RANGE'
  | 'OFFSETS_OVERLAP'
  | 'OFFSETS_GAP'
  | 'DATA_SIZE_MISMATCH'
  | 'TENSOR_NOT_FOUND'
  | 'BAD_ROW_RANGE'
  | 'BAD_BUFFER'
  | 'SHORT_READ'
  | 'FILE_UNREADABLE'
  | 'READER_CLOSED';

/** A malformed safetensors file or a bad read from one; names the file and, where known, the tensor. */
export class SafetensorsError extends EvoError {
  declare readonly code: SafetensorsErrorCode;
  readonly file: string;
  readonly tensor: string | undefined;

  constructor(
    code: SafetensorsErrorCode,
    file: string,
    detail: string,
    tensor?: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${file}: ${tensor === undefined ? '' : `tensor ${JSON.stringify(tensor)}: `}${detail}`, options);
    this.name = 'SafetensorsError';
    this.file = file;
    this.tensor = tensor;
  }
}

/** Where one tensor lives in a file. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's first byte in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** A validated header. */
export interface SafetensorsHeader {
  readonly file: string;
  /** Size of the whole file, in bytes. */
  readonly fileSize: number;
  /** N, the JSON header's length in bytes (padding included). */
  readonly headerLength: number;
  /** 8 + N: where the data area starts. */
  readonly dataOffset: number;
  /** Every tensor, in file (offset) order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** `__metadata__`, or {} when absent. */
  readonly metadata: Readonly<Record<string, string>>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function shapeText(shape: readonly unknown[]): string {
  return `[${shape.map((d) => String(d)).join(',')}]`;
}

/** Number of elements of `shape`, or undefined when it exceeds what a safe integer holds. */
export function shapeElementCount(shape: readonly number[]): number | undefined {
  let n = 1;
  for (const d of shape) {
    n *= d;
    // Past 2^53 the product is no longer exact; the reference library rejects past 2^64, but a
    // tensor that large cannot fit in a file anyway.
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return n;
}

/** Reads the header length (u64 LE) at `bytes[0..8)` as a number, or Infinity past 2^53. */
function readHeaderLength(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_LENGTH_BYTES);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  return hi >= 0x200000 ? Number.POSITIVE_INFINITY : hi * 0x1_0000_0000 + lo;
}

/**
 * The header length stored in the first 8 bytes, checked against the cap and the file size.
 * `prefix` must hold at least 8 bytes when `fileSize` ≥ 8.
 */
export function checkHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < HEADER_LENGTH_BYTES) {
    throw new SafetensorsError('FILE_TOO_SMALL', file, `${fileSize} bytes is too small to hold the 8-byte header length`);
  }
  if (prefix.byteLength < HEADER_LENGTH_BYTES) {
    throw new SafetensorsError('BAD_BUFFER', file, `header prefix of ${prefix.byteLength} bytes lacks the 8-byte length`);
  }
  const n = readHeaderLength(prefix);
  if (n > MAX_HEADER_BYTES) {
    throw new SafetensorsError('HEADER_TOO_LARGE', file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (HEADER_LENGTH_BYTES + n > fileSize) {
    throw new SafetensorsError(
      'HEADER_BEYOND_FILE',
      file,
      `header length ${n} runs past the end of the ${fileSize}-byte file`,
    );
  }
  return n;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

interface RawEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

function parseEntry(name: string, value: unknown, dataSize: number, file: string): RawEntry {
  if (!isPlainObject(value)) {
    throw new SafetensorsError('BAD_ENTRY', file, 'entry is not an object with dtype, shape and data_offsets', name);
  }
  const dtypeText = value.dtype;
  if (typeof dtypeText !== 'string') throw new SafetensorsError('BAD_ENTRY', file, 'dtype is missing or not a string', name);
  const dtype = parseDType(dtypeText);
  if (dtype === undefined) {
    throw new SafetensorsError('UNKNOWN_DTYPE', file, `unknown dtype ${JSON.stringify(dtypeText.slice(0, 40))}`, name);
  }
  const shape = value.shape;
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    const shown = Array.isArray(shape) ? shapeText(shape.slice(0, 8)) : JSON.stringify(shape ?? null).slice(0, 40);
    throw new SafetensorsError('BAD_SHAPE', file, `shape ${shown} is not a list of non-negative integers`, name);
  }
  const offsets = value.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1])) {
    const shown = JSON.stringify(offsets ?? null).slice(0, 60);
    throw new SafetensorsError('BAD_OFFSETS', file, `data_offsets ${shown} is not [begin, end] of non-negative integers`, name);
  }
  const begin = offsets[0];
  const end = offsets[1];
  if (end < begin) throw new SafetensorsError('BAD_OFFSETS', file, `data_offsets [${begin},${end}] end before they begin`, name);
  const count = shapeElementCount(shape);
  if (count === undefined) {
    throw new SafetensorsError('BAD_SHAPE', file, `shape ${shapeText(shape)} has too many elements`, name);
  }
  const size = dtypeByteSize(dtype);
  const bytes = count * size;
  if (!Number.isSafeInteger(bytes) || bytes !== end - begin) {
    throw new SafetensorsError(
      'SIZE_MISMATCH',
      file,
      `shape ${shapeText(shape)} × ${dtype} is ${bytes} bytes but its offsets span ${end - begin}`,
      name,
    );
  }
  if (end > dataSize) {
    throw new SafetensorsError(
      'OFFSETS_OUT_OF_RANGE',
      file,
      `data_offsets [${begin},${end}] run past the ${dataSize}-byte data area`,
      name,
    );
  }
  return { name, dtype, shape: Object.freeze([...shape]), begin, end };
}

function parseMetadata(value: unknown, file: string): Readonly<Record<string, string>> {
  if (value === null) return Object.freeze({});
  if (!isPlainObject(value)) throw new SafetensorsError('BAD_METADATA', file, '__metadata__ is not an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError('BAD_METADATA', file, `__metadata__ key ${JSON.stringify(k)} is not a string`);
    }
    // defineProperty keeps a key named "__proto__" an ordinary own key.
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: false, configurable: false });
  }
  return Object.freeze(out);
}

/**
 * Parses and validates a header. `bytes` holds at least the first 8 + N bytes of the file (it may
 * hold the whole file); `fileSize` is the size of the whole file. Pure: throws only SafetensorsError.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const n = checkHeaderLength(bytes, fileSize, file);
  const dataOffset = HEADER_LENGTH_BYTES + n;
  if (bytes.byteLength < dataOffset) {
    throw new SafetensorsError('BAD_BUFFER', file, `header prefix of ${bytes.byteLength} bytes is shorter than ${dataOffset}`);
  }
  let text: string;
  try {
    text = utf8.decode(bytes.subarray(HEADER_LENGTH_BYTES, dataOffset));
  } catch (cause) {
    throw new SafetensorsError('HEADER_NOT_UTF8', file, 'header is not valid UTF-8', undefined, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message.slice(0, 120) : 'parse error';
    throw new SafetensorsError('HEADER_NOT_JSON', file, `header is not JSON (${why})`, undefined, { cause });
  }
  if (!isPlainObject(json)) throw new SafetensorsError('HEADER_NOT_OBJECT', file, 'header is not a JSON object');

  const dataSize = fileSize - dataOffset;
  let metadata: Readonly<Record<string, string>> = Object.freeze({});
  const entries: RawEntry[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (key === '__metadata__') metadata = parseMetadata(value, file);
    else entries.push(parseEntry(key, value, dataSize, file));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  let position = 0;
  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    if (e.begin !== position) {
      throw new SafetensorsError(
        e.begin < position ? 'OFFSETS_OVERLAP' : 'OFFSETS_GAP',
        file,
        e.begin < position
          ? `data_offsets [${e.begin},${e.end}] overlap the previous tensor, which ends at ${position}`
          : `data_offsets [${e.begin},${e.end}] leave a gap after ${position}`,
        e.name,
      );
    }
    position = e.end;
    tensors.set(
      e.name,
      Object.freeze({
        name: e.name,
        dtype: e.dtype,
        shape: e.shape,
        byteOffset: dataOffset + e.begin,
        byteLength: e.end - e.begin,
      }),
    );
  }
  if (position !== dataSize) {
    throw new SafetensorsError(
      'DATA_SIZE_MISMATCH',
      file,
      `tensors cover ${position} bytes of a ${dataSize}-byte data area`,
    );
  }
  return Object.freeze({ file, fileSize, headerLength: n, dataOffset, tensors, metadata });
}
