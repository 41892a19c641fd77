/**
 * The training kernels as the autograd sees them: the C++ addon (build/Release/
 * evomerge_train_kernels.node) when it loads, else the TypeScript twins (gemm.ts, attention.ts)
 * with a one-time warning. `threads` only splits independent outputs, so it never changes a result.
 */
import { loadAddon } from '../native-addon.js';
import { type AttentionShape, attentionBackwardReference, attentionForwardReference } from './attention.js';
import {
  crossEntropyReference,
  rmsNormBackwardReference,
  rmsNormForwardReference,
  ropeReference,
  swigluBackwardReference,
  swigluForwardReference,
} from './elementwise.js';
import { type GemmArgs, gemmReference } from './gemm.js';

export interface TrainKernels {
  readonly native: boolean;
  gemm(g: GemmArgs, threads: number): void;
  attentionForward(s: AttentionShape, q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, p: Float32Array, threads: number): void;
  attentionBackward(
    s: AttentionShape,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    p: Float32Array,
    dout: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    threads: number,
  ): void;
  rmsNormForward(x: Float32Array, w: Float32Array, y: Float32Array, inv: Float32Array, n: number, e: number, eps: number, threads: number): void;
  rmsNormBackward(x: Float32Array, w: Float32Array, inv: Float32Array, dy: Float32Array, dx: Float32Array | null, dw: Float32Array | null, n: number, e: number, threads: number): void;
  rope(x: Float32Array, y: Float32Array, cos: Float32Array, sin: Float32Array, n: number, features: number, headDim: number, seq: number, sign: number, add: boolean, threads: number): void;
  swigluForward(gate: Float32Array, up: Float32Array, y: Float32Array, sig: Float32Array, count: number, threads: number): void;
  swigluBackward(gate: Float32Array, up: Float32Array, sig: Float32Array, dy: Float32Array, dgate: Float32Array, dup: Float32Array, count: number, threads: number): void;
  crossEntropy(logits: Float32Array, targets: Int32Array, mask: Uint8Array, rowLoss: Float64Array, dlogits: Float32Array | null, scale: number, n: number, v: number, threads: number): void;
}

export const TS_TRAIN_KERNELS: TrainKernels = {
  native: false,
  gemm: (g) => gemmReference(g),
  attentionForward: (s, q, k, v, o, p) => attentionForwardReference(s, q, k, v, o, p),
  attentionBackward: (s, q, k, v, p, dout, dq, dk, dv) => attentionBackwardReference(s, q, k, v, p, dout, dq, dk, dv),
  rmsNormForward: (x, w, y, inv, n, e, eps) => rmsNormForwardReference(x, w, y, inv, n, e, eps),
  rmsNormBackward: (x, w, inv, dy, dx, dw, n, e) => rmsNormBackwardReference(x, w, inv, dy, dx, dw, n, e),
  rope: (x, y, cos, sin, n, features, headDim, seq, sign, add) => ropeReference(x, y, cos, sin, n, features, headDim, seq, sign, add),
  swigluForward: (gate, up, y, sig, count) => swigluForwardReference(gate, up, y, sig, count),
  swigluBackward: (gate, up, sig, dy, dgate, dup, count) => swigluBackwardReference(gate, up, sig, dy, dgate, dup, count),
  crossEntropy: (logits, targets, mask, rowLoss, dlogits, scale, n, v) => crossEntropyReference(logits, targets, mask, rowLoss, dlogits, scale, n, v),
};

/** The addon's functions, positional for speed (see native/train-binding.cc); the per-row ops take TrainKernels' arguments as they are. */
interface TrainAddon extends Pick<TrainKernels, 'rmsNormForward' | 'rmsNormBackward' | 'rope' | 'swigluForward' | 'swigluBackward' | 'crossEntropy'> {
  gemm(...args: [Float32Array, number, number, number, Float32Array, number, number, Float32Array, number, number, number, number, number, boolean, number]): void;
  attentionForward(...args: [number, number, number, number, number, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, number]): void;
  attentionBackward(
    ...args: [number, number, number, number, number, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, number]
  ): void;
}

function nativeKernels(addon: TrainAddon): TrainKernels {
  return {
    native: true,
    gemm: (g, threads) => addon.gemm(g.a, g.aOffset, g.sam, g.sak, g.b, g.bOffset, g.ldb, g.c, g.cOffset, g.ldc, g.m, g.n, g.k, g.accumulate, threads),
    attentionForward: (s, q, k, v, o, p, threads) => addon.attentionForward(s.batch, s.seq, s.heads, s.kvHeads, s.headDim, q, k, v, o, p, threads),
    attentionBackward: (s, q, k, v, p, dout, dq, dk, dv, threads) =>
      addon.attentionBackward(s.batch, s.seq, s.heads, s.kvHeads, s.headDim, q, k, v, p, dout, dq, dk, dv, threads),
    rmsNormForward: (...a) => addon.rmsNormForward(...a),
    rmsNormBackward: (...a) => addon.rmsNormBackward(...a),
    rope: (...a) => addon.rope(...a),
    swigluForward: (...a) => addon.swigluForward(...a),
    swigluBackward: (...a) => addon.swigluBackward(...a),
    crossEntropy: (...a) => addon.crossEntropy(...a),
  };
}

let loaded: TrainKernels | undefined;

/** The addon's kernels when it loads (once per process), else the twins; EVOMERGE_KERNELS=ts forces the twins. */
export function loadTrainKernels(logger: (message: string) => void = (m) => process.stderr.write(`${m}\n`)): TrainKernels {
  if (loaded !== undefined) return loaded;
  const r = loadAddon('evomerge_train_kernels', 1, ['gemm', 'attentionForward', 'attentionBackward', 'rmsNormForward', 'rmsNormBackward', 'rope', 'swigluForward', 'swigluBackward', 'crossEntropy']);
  if ('module' in r) {
    // The one cast of the addon: loadAddon checked its functions by name.
    loaded = nativeKernels(r.module as unknown as TrainAddon);
  } else {
    loaded = TS_TRAIN_KERNELS;
    logger(`evomerge: native training kernels unavailable (${r.reason}); using the TypeScript kernels (much slower).`);
  }
  return loaded;
}
