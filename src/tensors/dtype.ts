import { EvoError } from '../errors.js';
import { bf16ToF32, f32ToBf16, roundToBf16 } from './bf16.js';
import { f16ToF32, f32ToF16, roundToF16 } from './f16.js';

/** Element types of the safetensors format, spelled as in its header. */
export type DType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/** The floating-point dtypes the merge engine computes in (mergekit's `dtype:` values). */
export type FloatDType = 'F32' | 'F16' | 'BF16';

/** The dtypes `decodeToF32` / `encodeFromF32` convert (the compute dtypes plus F64). */
export type ConvertibleDType = FloatDType | 'F64';

/** mergekit's spelling of the compute dtypes (`dtype: bfloat16` in a merge config). */
export type MergekitDType = 'float32' | 'float16' | 'bfloat16';

/** Every DType, in the order the safetensors format ranks them (smallest alignment first). */
export const DTYPES: readonly DType[] = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
];

export const FLOAT_DTYPES: readonly FloatDType[] = ['F32', 'F16', 'BF16'];

const BYTE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/** Bytes per element. */
export function dtypeByteSize(d: DType): number {
  return BYTE_SIZE[d];
}

/**
 * The position of `d` in the safetensors library's `Dtype` enum. Its writer orders tensors by this
 * rank, descending, then by name, so the widest (most aligned) tensors come first.
 */
export function dtypeRank(d: DType): number {
  return DTYPES.indexOf(d);
}

/** True for the compute dtypes F32, F16, BF16. */
export function isFloatDType(d: string): d is FloatDType {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

/** True for the dtypes `decodeToF32` / `encodeFromF32` handle. */
export function isConvertibleDType(d: string): d is ConvertibleDType {
  return isFloatDType(d) || d === 'F64';
}

/** The DType spelled `s` in a safetensors header, or undefined when `s` is not one. */
export function parseDType(s: string): DType | undefined {
  return Object.hasOwn(BYTE_SIZE, s) ? (s as DType) : undefined;
}

/**
 * The DType for a mergekit `dtype:` value ('float32', 'float16', 'bfloat16', optionally prefixed
 * 'torch.' as mergekit allows), or undefined for anything else.
 */
export function dtypeFromMergekit(name: string): FloatDType | undefined {
  const bare = name.startsWith('torch.') ? name.slice('torch.'.length) : name;
  switch (bare) {
    case 'float32':
      return 'F32';
    case 'float16':
      return 'F16';
    case 'bfloat16':
      return 'BF16';
    default:
      return undefined;
  }
}

/** mergekit's name for a compute dtype. */
export function dtypeToMergekit(d: FloatDType): MergekitDType {
  switch (d) {
    case 'F32':
      return 'float32';
    case 'F16':
      return 'float16';
    case 'BF16':
      return 'bfloat16';
    default: {
      const never: never = d;
      return never;
    }
  }
}

/** A conversion was asked for a dtype it does not handle (a programming error, not bad input). */
export class DTypeConversionError extends EvoError {
  readonly dtype: DType;
  constructor(dtype: DType, what: string) {
    super('UNSUPPORTED_DTYPE', `${what}: dtype ${dtype} is not one of ${['F64', ...FLOAT_DTYPES].join(', ')}`);
    this.name = 'DTypeConversionError';
    this.dtype = dtype;
  }
}

// Typed-array views assume the host is little-endian, like the safetensors format.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkHost(): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new EvoError('BIG_ENDIAN_HOST', 'evomerge needs a little-endian host');
}

/** A view of `bytes` whose byteOffset is a multiple of `align`, copying only when it is not. */
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  return bytes.byteOffset % align === 0 ? bytes : bytes.slice();
}

function elementCount(dtype: DType, byteLength: number, what: string): number {
  const size = dtypeByteSize(dtype);
  if (byteLength % size !== 0) {
    throw new RangeError(`${what}: ${byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  return byteLength / size;
}

/**
 * Decodes little-endian `bytes` of `dtype` (F32, F16, BF16 or F64) into f32 values. Writes into
 * `out` (which must hold at least that many elements) and returns the filled prefix of it, or a new
 * array. F32 input is copied; F64 is rounded to nearest f32. Unaligned input is copied first.
 */
export function decodeToF32(dtype: DType, bytes: Uint8Array, out?: Float32Array): Float32Array {
  checkHost();
  const n = elementCount(dtype, bytes.byteLength, 'decodeToF32');
  if (out !== undefined && out.length < n) {
    throw new RangeError(`decodeToF32: output holds ${out.length} elements, need ${n}`);
  }
  const dst = out === undefined ? new Float32Array(n) : out.subarray(0, n);
  switch (dtype) {
    case 'F32': {
      const src = aligned(bytes, 4);
      dst.set(new Float32Array(src.buffer, src.byteOffset, n));
      return dst;
    }
    case 'F64': {
      const src = aligned(bytes, 8);
      dst.set(new Float64Array(src.buffer, src.byteOffset, n));
      return dst;
    }
    case 'BF16': {
      const src = aligned(bytes, 2);
      bf16ToF32(new Uint16Array(src.buffer, src.byteOffset, n), dst);
      return dst;
    }
    case 'F16': {
      const src = aligned(bytes, 2);
      f16ToF32(new Uint16Array(src.buffer, src.byteOffset, n), dst);
      return dst;
    }
    default:
      throw new DTypeConversionError(dtype, 'decodeToF32');
  }
}

/**
 * Encodes f32 values as little-endian `dtype` bytes (F32, F16, BF16 or F64; rounding to nearest
 * even). Writes into `out` (at least n × size bytes) and returns the filled prefix, or a new array.
 * When `out` is unaligned for the dtype the result is built aside and copied in.
 */
export function encodeFromF32(dtype: DType, src: Float32Array, out?: Uint8Array): Uint8Array {
  checkHost();
  if (!isConvertibleDType(dtype)) throw new DTypeConversionError(dtype, 'encodeFromF32');
  const size = dtypeByteSize(dtype);
  const n = src.length;
  const byteLength = n * size;
  if (out !== undefined && out.byteLength < byteLength) {
    throw new RangeError(`encodeFromF32: output holds ${out.byteLength} bytes, need ${byteLength}`);
  }
  const target = out === undefined ? new Uint8Array(byteLength) : out.subarray(0, byteLength);
  const work = target.byteOffset % size === 0 ? target : new Uint8Array(byteLength);
  switch (dtype) {
    case 'F32':
      new Float32Array(work.buffer, work.byteOffset, n).set(src);
      break;
    case 'F64':
      new Float64Array(work.buffer, work.byteOffset, n).set(src);
      break;
    case 'BF16':
      f32ToBf16(src, new Uint16Array(work.buffer, work.byteOffset, n));
      break;
    case 'F16':
      f32ToF16(src, new Uint16Array(work.buffer, work.byteOffset, n));
      break;
    default: {
      const never: never = dtype;
      return never;
    }
  }
  if (work !== target) target.set(work);
  return target;
}

/** Rounds one value to the nearest `dtype` value (ties to even), returned as a number. */
export function roundToDType(dtype: FloatDType, x: number): number {
  switch (dtype) {
    case 'F32':
      return Math.fround(x);
    case 'BF16':
      return roundToBf16(x);
    case 'F16':
      return roundToF16(x);
    default: {
      const never: never = dtype;
      return never;
    }
  }
}
