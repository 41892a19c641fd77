/**
 * The merge kernels as TypeScript sees them: the argument shapes, the `KernelBinding` table, and
 * the one place that loads the C++ addon (build/Release/evomerge_kernels.node, built by
 * `npm install` through binding.gyp) and casts it to that table. Every kernel has a TypeScript twin
 * with the same stem and arguments (linear.cc ↔ linear.ts); when the addon cannot be loaded the
 * twins run instead and a warning is logged once. Kernels see raw element buffers (little-endian),
 * never files, and allocate nothing per element.
 */
import { loadAddon } from '../../native-addon.js';
import { convertDType } from './convert.js';
import { gramStats } from './gram.js';
import { linearMerge } from './linear.js';
import { maskedL1 } from './masked-l1.js';
import { modelStockMix } from './model-stock-mix.js';
import type { ComputeCode, KernelDType } from './numeric.js';
import { bernoulliMask, dellaMask } from './random-mask.js';
import { karcherDots, karcherStep, karcherTangent } from './karcher.js';
import { multislerpMix, multislerpMoments, multislerpTangent } from './multislerp.js';
import { nearswapMerge } from './nearswap.js';
import { sceVariance } from './sce-variance.js';
import { rankHistogram, rankLowHistogram } from './rank-mask.js';
import { slerpMix } from './slerp-mix.js';
import { taskVectorMerge } from './task-vector.js';

/** Element range [start, end) of the output (and of every input, which share its layout). */
interface Range {
  readonly start: number;
  readonly end: number;
}

/** A tensor seen as [outer, len, inner]: outer·inner vectors of len elements (layout.ts). */
interface Layout {
  readonly outer: number;
  readonly len: number;
  readonly inner: number;
}

export interface ConvertArgs extends Range {
  readonly src: Uint8Array;
  readonly srcDType: KernelDType;
  /** dtype each value is rounded to before encoding (the compute dtype; F32 = none). */
  readonly roundDType: ComputeCode;
  readonly out: Uint8Array;
  readonly outDType: KernelDType;
}

export interface LinearArgs extends Range {
  readonly inputs: readonly Uint8Array[];
  readonly dtypes: Int32Array;
  /** One per input, already rounded to the compute dtype. */
  readonly weights: Float32Array;
  /** Σ weights (rounded) when normalizing; 1 = no division. */
  readonly divisor: number;
  readonly computeDType: ComputeCode;
  readonly out: Uint8Array;
  readonly outDType: KernelDType;
}

/** Kept iff draw32(key0, key1, j) < threshold (random.ts): a DARE mask drawn by the kernel as it goes. */
export interface BernoulliRule {
  readonly kind: 'bernoulli';
  readonly key0: number;
  readonly key1: number;
  /** ceil(p · 2^32) (random.ts keepThreshold). */
  readonly threshold: number;
  /** Counter of element 0: a row chunk's first element in its whole tensor (0 for a whole tensor). */
  readonly indexOffset: number;
}

/**
 * Kept iff the rank of |δ[j]| in its whole tensor lies in [lo, hi) (ties by lower index first),
 * evaluated by the kernel as it goes from the bounds rank-window.ts found. Only valid for a range
 * starting at element 0 of the buffers, which may be a row chunk of the tensor.
 */
export interface RankRule {
  readonly kind: 'rank';
  readonly lo: number;
  readonly hi: number;
  readonly descending: boolean;
  /** Order keys at ranks lo and hi − 1 (rank-window.ts). */
  readonly keyLo: number;
  readonly keyHi: number;
  /**
   * Ranks of the first key equal to keyLo (and to keyHi, when different) at or after element 0 of
   * the buffers: the count of smaller keys in the tensor plus the equal ones before the chunk.
   */
  readonly beforeLo: number;
  readonly beforeHi: number;
}

/**
 * Kept positions of one sparsified input: a whole-tensor byte mask (1 = kept), a rule the kernel
 * evaluates block by block (no mask in memory, no pass to write one), or null for everything.
 */
export type MaskSource = Uint8Array | BernoulliRule | RankRule | null;

export interface TaskVectorArgs extends Range {
  readonly base: Uint8Array;
  readonly baseDType: KernelDType;
  readonly inputs: readonly Uint8Array[];
  readonly dtypes: Int32Array;
  /** Kept positions per input (byte masks whole-tensor indexed); null = not sparsified. */
  readonly masks: readonly MaskSource[];
  /** L1 rescale factor per input; 1 = none. */
  readonly scales: Float32Array;
  /** dtype the rescale product rounds to first (F32 for DARE/DELLA under F16 compute, §1.2). */
  readonly sparsifyDType: ComputeCode;
  /** One per input, rounded to the compute dtype. */
  readonly weights: Float32Array;
  /** TIES sign election (sum of weighted deltas) with the per-element agreeing-weight divisor. */
  readonly consensus: boolean;
  /** SCE: the election and the agreement use the unweighted deltas' signs. */
  readonly electOnRaw: boolean;
  /** > 0: consensus divisors clamp to at least this (SCE's 1e-6); 0: a zero divisor becomes 1 (TIES). */
  readonly minDivisor: number;
  readonly normalize: boolean;
  /** Divisor without consensus: R(Σ w), set to 1 by the caller when |Σ w| < 1e-8. */
  readonly divisor: number;
  /** Multiplier of the mixed delta; 1 = none. */
  readonly lambda: number;
  readonly computeDType: ComputeCode;
  readonly out: Uint8Array;
  readonly outDType: KernelDType;
}

export interface RankHistogramArgs {
  readonly base: Uint8Array;
  readonly baseDType: KernelDType;
  readonly x: Uint8Array;
  readonly xDType: KernelDType;
  readonly computeDType: ComputeCode;
  /** Elements in the buffers (below 2^32). */
  readonly count: number;
  /** Order keys of descending |δ| (TIES top-k) instead of ascending (breadcrumbs). */
  readonly descending: boolean;
  /** Receives top[t] = the count of order keys k with k >>> 16 = t (65536 entries). */
  readonly top: Uint32Array;
  /** Receives [OR, AND] of the keys' low 16 bits (0 and 0xFFFF when count = 0). */
  readonly lowBits: Uint32Array;
}

export interface RankLowHistogramArgs extends Omit<RankHistogramArgs, 'top' | 'lowBits'> {
  /** Top-16-bit buckets whose keys are counted by their low 16 bits. */
  readonly bucketLo: number;
  readonly bucketHi: number;
  /** Receive the counts of keys (bucketLo << 16 | l) and (bucketHi << 16 | l), 65536 entries each. */
  readonly lowLo: Uint32Array;
  readonly lowHi: Uint32Array;
}

export interface BernoulliMaskArgs extends Range {
  readonly key0: number;
  readonly key1: number;
  /** ceil(p · 2^32) (random.ts keepThreshold). */
  readonly threshold: number;
  readonly mask: Uint8Array;
}

export interface DellaMaskArgs extends Layout {
  readonly base: Uint8Array;
  readonly baseDType: KernelDType;
  readonly x: Uint8Array;
  readonly xDType: KernelDType;
  readonly computeDType: ComputeCode;
  /** dtype ranks and probabilities are computed in (BF16 under BF16 compute, else F32). */
  readonly workDType: ComputeCode;
  readonly key0: number;
  readonly key1: number;
  /** Counter of element 0: a row chunk's first element in its whole tensor (0 for a whole tensor). */
  readonly indexOffset: number;
  /** density − epsilon (rounded to f32 by the kernel). */
  readonly lowP: number;
  /** epsilon (rounded to f32 by the kernel). */
  readonly eps: number;
  readonly mask: Uint8Array;
}

export interface MaskedL1Args {
  readonly base: Uint8Array;
  readonly baseDType: KernelDType;
  readonly x: Uint8Array;
  readonly xDType: KernelDType;
  readonly computeDType: ComputeCode;
  /** null: everything counts as kept. */
  readonly mask: MaskSource;
  readonly count: number;
  /** Receives the exact sums Σ|δ| and Σ|δ| over kept entries as L1_BINS bins each (masked-l1.ts). */
  readonly out: BigInt64Array;
}

export interface GramArgs extends Layout {
  readonly inputs: readonly Uint8Array[];
  readonly dtypes: Int32Array;
  /** When given, the vectors are R(x − base). */
  readonly base: Uint8Array | null;
  readonly baseDType: KernelDType;
  readonly computeDType: ComputeCode;
  /** Positions counted (1 = counted, whole-tensor indexed); absent or null = every position. */
  readonly mask?: Uint8Array | null;
  /**
   * Sum each product rounded to the compute dtype, R(v_a·v_b), as torch's elementwise product
   * before a reduction does (SCE's `mean(τ**2)`); absent or false = exact f64 products.
   */
  readonly roundProducts?: boolean;
  /** vectors × m(m+1)/2 sums, pairs in the order (0,0), (0,1), …, (m−1,m−1). */
  readonly out: Float64Array;
}

export interface SlerpMixArgs extends Layout, Range {
  readonly v0: Uint8Array;
  readonly v0DType: KernelDType;
  readonly v1: Uint8Array;
  readonly v1DType: KernelDType;
  /** When given, mixes the task vectors and adds the base back. */
  readonly base: Uint8Array | null;
  readonly baseDType: KernelDType;
  readonly computeDType: ComputeCode;
  /** dtype the mixing operations round to (F32 for slerp's numpy arithmetic). */
  readonly opDType: ComputeCode;
  /** Per-vector coefficients (length outer·inner). */
  readonly c0: Float32Array;
  readonly c1: Float32Array;
  /** Per-vector divisor; 1 = none. */
  readonly div: Float32Array;
  readonly out: Uint8Array;
  readonly outDType: KernelDType;
}

export interface ModelStockMixArgs extends Layout, Range {
  readonly base: Uint8Array;
  readonly baseDType: KernelDType;
  readonly inputs: readonly Uint8Array[];
  readonly dtypes: Int32Array;
  readonly computeDType: ComputeCode;
  /** Per-vector t and R(1 − t). */
  readonly t: Float32Array;
  readonly omt: Float32Array;
  readonly out: Uint8Array;
  readonly outDType: KernelDType;
}

export interface NearswapArgs extends Range {
  /** The base model's tensor. */
  readonly a: Uint8Array;
  readonly aDType: KernelDType;
  readonly b: Uint8Array;
  readonly bDType: KernelDType;
  /** Distance scale (rounded to f32 by the kernel). */
  readonly t: number;
  readonly computeDType: ComputeCode;
  readonly out: Uint8Array;
  readonly outDType: KernelDType;
}

export interface SceVarianceArgs {
  readonly base: Uint8Array;
  readonly baseDType: KernelDType;
  readonly inputs: readonly Uint8Array[];
  readonly dtypes: Int32Array;
  readonly computeDType: ComputeCode;
  readonly count: number;
  /** Receives the per-element variance across inputs of R(x − base), rounded to the compute dtype. */
  readonly variance: Float32Array;
  /** Receives [how many variances are non-zero (NaN counts)]. */
  readonly out: Float64Array;
}

/** The inputs every multislerp pass reads per element (multislerp.cc). */
export interface MultislerpInputs {
  readonly inputs: readonly Uint8Array[];
  readonly dtypes: Int32Array;
  /** When given, the inputs are taken relative to it and it is added back. */
  readonly base: Uint8Array | null;
  readonly baseDType: KernelDType;
  readonly computeDType: ComputeCode;
  readonly count: number;
  /** Per input: R(‖δᵢ‖ + eps), the divisor of the unit vector. */
  readonly divisors: Float32Array;
  /** Per input, rounded (and normalised) as mergekit does. */
  readonly weights: Float32Array;
}

/** What the tangent and mix passes recompute per element, given the moments' results. */
export interface MultislerpArgs extends MultislerpInputs {
  /** Per input: R(uᵢ·m). */
  readonly dots: Float32Array;
  /** R(‖Σ wᵢuᵢ‖). */
  readonly meanNorm: number;
}

/**
 * The moments pass: first without dots (for ‖mean‖), then with the rounded ‖mean‖ for the dots.
 * `out` receives [Σ mean², then with withDots Σ R(uᵢ·m) per input]: mean = R(Σ R(uᵢwᵢ)) before
 * its division, m = R(mean / meanNorm) (f64, four lanes by index).
 */
export type MultislerpMomentsArgs = MultislerpInputs & { readonly out: Float64Array } & ({ readonly withDots: false } | { readonly withDots: true; readonly meanNorm: number });

export interface MultislerpTangentArgs extends MultislerpArgs {
  /** Receives [Σ τ²]. */
  readonly out: Float64Array;
}

export interface MultislerpMixArgs extends MultislerpArgs, Range {
  readonly cosT: number;
  /** R(R(sin T) / T). */
  readonly sincT: number;
  /** R(Σ wᵢ‖δᵢ‖). */
  readonly scale: number;
  readonly out: Uint8Array;
  readonly outDType: KernelDType;
}

export interface KarcherTangentArgs {
  readonly inputs: readonly Uint8Array[];
  readonly dtypes: Int32Array;
  readonly computeDType: ComputeCode;
  readonly count: number;
  /** Per input: its f32 norm (unitᵢ = R(xᵢ / normᵢ)). */
  readonly norms: Float32Array;
  readonly coefs: Float32Array;
  readonly dots: Float32Array;
  /** The current mean direction (compute-dtype values); read as R(u / uDiv) unless uDiv = 1. */
  readonly u: Float32Array;
  readonly uDiv: number;
  /** Receives the tangent sum. */
  readonly t: Float32Array;
  /** Receives [Σ t²]. */
  readonly out: Float64Array;
}

export interface KarcherDotsArgs {
  readonly inputs: readonly Uint8Array[];
  readonly dtypes: Int32Array;
  readonly computeDType: ComputeCode;
  readonly count: number;
  /** Per input: its f32 norm (unitᵢ = R(xᵢ / normᵢ)). */
  readonly norms: Float32Array;
  /** The current mean direction; read as R(u / uDiv) unless uDiv = 1. */
  readonly u: Float32Array;
  readonly uDiv: number;
  /** Receives, per input, Σ ū·unitᵢ (f64, four lanes by index). */
  readonly out: Float64Array;
}

export interface KarcherStepArgs {
  readonly computeDType: ComputeCode;
  readonly count: number;
  /** Updated in place. */
  readonly u: Float32Array;
  readonly uDiv: number;
  /** null: u = R(cosN·ū) (the final scaling). */
  readonly t: Float32Array | null;
  readonly cosN: number;
  readonly sinN: number;
  readonly normT: number;
}

/**
 * A zeroed buffer of `byteLength` bytes for scratch that lives across tasks. The addon maps it for
 * transparent huge pages on Linux (a fault per 2 MiB instead of per 4 KiB when first touched);
 * the TypeScript table returns a plain ArrayBuffer.
 */
function allocPages(byteLength: number): ArrayBuffer {
  return new ArrayBuffer(byteLength);
}

/** Frees an allocPages buffer now (the addon detaches and unmaps it); the collector frees the rest. */
function releasePages(buffer: ArrayBuffer): void {
  void buffer;
}

/** The kernel table; the addon and the TypeScript twins both implement it. */
export interface KernelBinding {
  readonly allocPages: (byteLength: number) => ArrayBuffer;
  /** Frees a buffer of allocPages at once; nothing may use it afterwards (it is detached). */
  readonly releasePages: (buffer: ArrayBuffer) => void;
  readonly convertDType: (a: ConvertArgs) => void;
  readonly linearMerge: (a: LinearArgs) => void;
  readonly taskVectorMerge: (a: TaskVectorArgs) => void;
  readonly rankHistogram: (a: RankHistogramArgs) => void;
  readonly rankLowHistogram: (a: RankLowHistogramArgs) => void;
  readonly bernoulliMask: (a: BernoulliMaskArgs) => void;
  readonly dellaMask: (a: DellaMaskArgs) => void;
  readonly maskedL1: (a: MaskedL1Args) => void;
  readonly gramStats: (a: GramArgs) => void;
  readonly slerpMix: (a: SlerpMixArgs) => void;
  readonly modelStockMix: (a: ModelStockMixArgs) => void;
  readonly nearswapMerge: (a: NearswapArgs) => void;
  readonly sceVariance: (a: SceVarianceArgs) => void;
  readonly multislerpTangent: (a: MultislerpTangentArgs) => void;
  readonly multislerpMix: (a: MultislerpMixArgs) => void;
  readonly multislerpMoments: (a: MultislerpMomentsArgs) => void;
  readonly karcherTangent: (a: KarcherTangentArgs) => void;
  readonly karcherStep: (a: KarcherStepArgs) => void;
  readonly karcherDots: (a: KarcherDotsArgs) => void;
}

/** The TypeScript twins, used when the addon is missing or `kernels: 'ts'` is asked for. */
export const TS_KERNELS: KernelBinding = {
  allocPages,
  releasePages,
  convertDType,
  linearMerge,
  taskVectorMerge,
  rankHistogram,
  rankLowHistogram,
  bernoulliMask,
  dellaMask,
  maskedL1,
  gramStats,
  slerpMix,
  modelStockMix,
  nearswapMerge,
  sceVariance,
  multislerpTangent,
  multislerpMix,
  multislerpMoments,
  karcherTangent,
  karcherStep,
  karcherDots,
};

const KERNEL_NAMES = Object.keys(TS_KERNELS) as readonly (keyof KernelBinding)[];

/** The addon's interface version; binding.cc exports the same number as `abiVersion`. */
const ADDON_ABI_VERSION = 5;
const ADDON_NAME = 'evomerge_kernels';

export interface LoadedKernels {
  readonly kernels: KernelBinding;
  /** True when the C++ addon is in use. */
  readonly native: boolean;
  /** Why the addon is not in use (absent when it is). */
  readonly reason?: string;
}

export type KernelLogger = (message: string) => void;

export interface LoadKernelsOptions {
  /** Receives the one-time fallback warning. Default: a line on stderr. */
  readonly logger?: KernelLogger;
}

function tryLoadAddon(): { kernels: KernelBinding } | { reason: string } {
  const r = loadAddon(ADDON_NAME, ADDON_ABI_VERSION, KERNEL_NAMES);
  // The one cast of the addon: loadAddon checked its functions name by name.
  return 'reason' in r ? r : { kernels: r.module as unknown as KernelBinding };
}

let loaded: LoadedKernels | undefined;

/**
 * The kernels to use: the addon when it loads, else the TypeScript twins, in which case
 * `logger` (default: stderr) hears about it once per process. The addon is loaded once.
 * Set EVOMERGE_KERNELS=ts to force the twins.
 */
export function loadKernels(options: LoadKernelsOptions = {}): LoadedKernels {
  if (loaded !== undefined) return loaded;
  const r = tryLoadAddon();
  if ('kernels' in r) {
    loaded = { kernels: r.kernels, native: true };
  } else {
    loaded = { kernels: TS_KERNELS, native: false, reason: r.reason };
    const log = options.logger ?? ((m: string) => process.stderr.write(`${m}\n`));
    log(`evomerge: native merge kernels unavailable (${r.reason}); using the TypeScript kernels (slower).`);
  }
  return loaded;
}
