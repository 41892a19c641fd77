/**
 * Random kernel inputs for the twin tests: seeded element arrays mixing ordinary values, repeats
 * (ties at selection cuts), signed zeros and specials, encoded in any kernel dtype.
 */
import { encodeFromF32 } from '../../src/tensors/dtype.js';
import { KERNEL_DTYPE, type KernelDType } from '../../src/merge/native/numeric.js';

/** mulberry32: a small seeded generator for test data. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SPECIALS = [0, -0, Infinity, -Infinity, NaN, 1e-40, -3e-39, 6e-8, 65504, 70000, 3.4e38, -1e-45];

/** n f32 values: mostly small Gaussians around `center`, some repeats, zeros and (optionally) specials. */
export function values(rand: () => number, n: number, options: { specials?: boolean; center?: Float32Array } = {}): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rand();
    const c = options.center?.[i] ?? 0;
    if (u < 0.08 && i > 0) out[i] = out[Math.floor(rand() * i)] ?? 0;
    else if (u < 0.1) out[i] = c;
    else if (options.specials && u < 0.13) out[i] = SPECIALS[Math.floor(rand() * SPECIALS.length)] ?? 0;
    else {
      const g = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
      out[i] = c + g * 0.05;
    }
  }
  return out;
}

const NAMES = { 0: 'F32', 1: 'F16', 2: 'BF16', 3: 'F64' } as const;

export function encode(v: Float32Array, dtype: KernelDType): Uint8Array {
  return encodeFromF32(NAMES[dtype], v);
}

export const ALL_DTYPES: readonly KernelDType[] = [KERNEL_DTYPE.F32, KERNEL_DTYPE.F16, KERNEL_DTYPE.BF16, KERNEL_DTYPE.F64];
export const COMPUTE_DTYPES = [KERNEL_DTYPE.F32, KERNEL_DTYPE.F16, KERNEL_DTYPE.BF16] as const;

/** Equal bytes, reported as the first differing index (or -1). */
export function firstDifference(a: Uint8Array | Float64Array, b: Uint8Array | Float64Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
